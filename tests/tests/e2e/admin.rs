//! The admin API against a real proxy: live figures, latency histograms,
//! events, restart, hot reload (make-before-break, under load), config
//! reload by call and by file change, and Prometheus metrics.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use prism_proto::{
    admin::v1::{
        EventKind, GetLatencyRequest, ListEventsRequest, PatternState, ReloadConfigRequest,
        ReloadPatternRequest, RestartPatternRequest, WatchEventsRequest, WatchPatternsRequest,
    },
    keyvalue::v1::{ExistsRequest, GetRequest},
    lifecycle::v1::HealthStatus,
};
use prism_tests::{Proxy, ProxyBuilder, eventually, procs};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::keyvalue::set_v;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_latency_and_metrics_are_recorded() {
    let proxy = Proxy::start_default().await;
    let mut kv = proxy.kv("default").await;
    for i in 0..50 {
        kv.set(set_v(&format!("k{i}"))).await.unwrap();
        kv.get(GetRequest {
            key: format!("k{i}"),
        })
        .await
        .unwrap();
    }
    for _ in 0..10 {
        let err = kv
            .get(GetRequest {
                key: "missing".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }

    let info = proxy.pattern("default").await;
    let traffic = info.traffic.expect("traffic summary");
    assert_eq!(traffic.count, 110);
    assert_eq!(traffic.total, 110);
    // NOT_FOUND of a missing key is a caller outcome, not an error.
    assert_eq!(traffic.error_rate, 0.0);
    assert!(
        (traffic.client_error_rate - 10.0 / 110.0).abs() < 1e-6,
        "{}",
        traffic.client_error_rate
    );
    assert!(
        traffic.p50_us > 0 && traffic.p50_us <= traffic.p99_us && traffic.p99_us <= traffic.max_us
    );

    let mut admin = proxy.admin().await;
    let get = admin
        .get_latency(GetLatencyRequest {
            namespace: "default".into(),
            operation: "Get".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(get.count, 60);
    assert_eq!(get.operations, ["Get", "Set"]);
    assert_eq!(get.window_seconds, 60);
    assert_eq!(get.buckets.iter().map(|b| b.count).sum::<u64>(), 60);
    assert!(get.p50_us <= get.p90_us && get.p90_us <= get.p99_us && get.p99_us <= get.max_us);
    assert_eq!(get.rps_history.len(), 60);
    let unknown = admin
        .get_latency(GetLatencyRequest {
            namespace: "nope".into(),
            operation: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let metrics = proxy.metrics().await;
    for needle in [
        r#"prism_requests_total{namespace="default",operation="Set",code="OK",outcome="ok"} 50"#,
        r#"prism_requests_total{namespace="default",operation="Get",code="NOT_FOUND",outcome="client_error"} 10"#,
        r#"prism_request_duration_seconds_count{namespace="default",operation="Get"} 60"#,
        r#"prism_request_duration_seconds_bucket{namespace="default",operation="Get",le="0.0001"}"#,
        r#"prism_pattern_up{namespace="default"} 1"#,
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_changes_the_pid_and_is_streamed_as_events() {
    let proxy = Proxy::start_default().await;
    let before = proxy.pattern("default").await;
    let mut admin = proxy.admin().await;
    let mut snapshots = admin
        .watch_patterns(WatchPatternsRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = snapshots.next().await.unwrap().unwrap();
    assert_eq!(
        first.patterns[0].pid, before.pid,
        "a snapshot comes at once"
    );
    assert_eq!(
        first.proxy.unwrap().admin_listen,
        proxy.admin_addr.to_string()
    );
    let mut events = admin
        .watch_events(WatchEventsRequest {
            namespace: "default".into(),
            after_seq: 0,
        })
        .await
        .unwrap()
        .into_inner();

    let restarted = admin
        .restart_pattern(RestartPatternRequest {
            namespace: "default".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let after = restarted.pattern.unwrap();
    assert_ne!(after.pid, before.pid);
    assert_eq!(after.state(), PatternState::Running);
    assert_eq!(after.restart_count, 1);
    assert_eq!(
        (restarted.old_pid, restarted.new_pid),
        (before.pid, after.pid)
    );
    // The reply reports the new process's own health, checked once.
    let health = after.health.unwrap();
    assert_eq!(health.status(), HealthStatus::Healthy, "{health:?}");
    assert!(!health.message.contains("gone"), "{health:?}");
    assert_eq!(
        restarted.message,
        format!("restarted `default`: pid {} → {}", before.pid, after.pid)
    );
    assert!(!procs::alive(before.pid));
    proxy
        .kv("default")
        .await
        .set(set_v("k"))
        .await
        .expect("serves after restart");

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let snap = tokio::time::timeout_at(deadline, snapshots.next())
            .await
            .expect("a snapshot with the new pid within 5 s")
            .unwrap()
            .unwrap();
        if snap.patterns.iter().any(|p| p.pid == after.pid) {
            break;
        }
    }

    let mut kinds = Vec::new();
    while !kinds.contains(&EventKind::PatternStarted) {
        let e = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .unwrap();
        kinds.push(e.kind());
    }
    assert_eq!(kinds[0], EventKind::RestartRequested, "{kinds:?}");

    let log = admin
        .list_events(ListEventsRequest {
            namespace: "default".into(),
            limit: 0,
            after_seq: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let started: Vec<_> = log
        .iter()
        .filter(|e| e.kind() == EventKind::PatternStarted)
        .collect();
    assert_eq!(started.len(), 2, "{log:?}");
    // Both processes started HEALTHY: that is no change of health, and the
    // first is not logged as one from the "starting" placeholder.
    assert!(
        log.iter().all(|e| e.kind() != EventKind::HealthChanged),
        "{log:?}"
    );
    assert!(
        log.windows(2)
            .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms)
    );

    let err = admin
        .restart_pattern(RestartPatternRequest {
            namespace: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_hot_reloads_under_load_fail_no_call() {
    let proxy = Proxy::start_default().await;
    let kv = proxy.kv("default").await;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..4)
        .map(|t| {
            let (mut kv, stop, ok) = (kv.clone(), stop.clone(), ok.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("load:{t}:{i}");
                    i += 1;
                    // Set and Exists never depend on what an earlier process
                    // held, so every failure is the proxy's fault.
                    let result = match i % 2 {
                        0 => kv.set(set_v(&key)).await.map(drop),
                        _ => kv.exists(ExistsRequest { key }).await.map(drop),
                    };
                    match result {
                        Ok(()) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => failures.push(e),
                    }
                }
                failures
            })
        })
        .collect();

    let mut admin = proxy.admin().await;
    let mut pids = vec![proxy.pattern("default").await.pid];
    for round in 0..10 {
        let served = ok.load(Ordering::Relaxed);
        eventually(Duration::from_secs(5), "calls to flow", || async {
            (ok.load(Ordering::Relaxed) > served + 20).then_some(())
        })
        .await;
        let reloaded = admin
            .reload_pattern(ReloadPatternRequest {
                namespace: "default".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("reload {round}: {e}"))
            .into_inner();
        assert_eq!(reloaded.old_pid, *pids.last().unwrap());
        assert_ne!(reloaded.new_pid, reloaded.old_pid);
        pids.push(reloaded.new_pid);
    }
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for task in load {
        failures.extend(task.await.unwrap());
    }
    assert!(
        failures.is_empty(),
        "{} failed calls, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    assert!(ok.load(Ordering::Relaxed) > 200);

    let info = proxy.pattern("default").await;
    assert_eq!(info.pid, *pids.last().unwrap());
    assert_eq!(info.state(), PatternState::Running);
    for old in &pids[..pids.len() - 1] {
        eventually(
            Duration::from_secs(10),
            "old processes to be stopped",
            || async { (!procs::alive(*old)).then_some(()) },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_hot_reload_keeps_the_old_process_serving() {
    // A private copy of the pattern binary that the test can break.
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("prism-memstore");
    std::fs::copy(prism_tests::bins::bin("prism-memstore"), &binary).unwrap();
    let proxy = ProxyBuilder::new()
        .supervisor("ready_timeout_ms", "3000")
        .namespace(&format!(
            "{{name: default, pattern: keyvalue, backend: memstore, binary: {}}}",
            binary.display()
        ))
        .start()
        .await;
    let before = proxy.wait_healthy("default").await;
    proxy.kv("default").await.set(set_v("kept")).await.unwrap();

    std::fs::remove_file(&binary).unwrap();
    std::fs::write(&binary, "#!/bin/sh\nexit 3\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();

    let err = proxy
        .admin()
        .await
        .reload_pattern(ReloadPatternRequest {
            namespace: "default".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert!(err.message().contains("exit code 3"), "{}", err.message());

    let after = proxy.pattern("default").await;
    assert_eq!(after.pid, before.pid, "the old process keeps serving");
    assert_eq!(after.state(), PatternState::Running);
    let value = proxy
        .kv("default")
        .await
        .get(GetRequest { key: "kept".into() })
        .await
        .expect("old process still answers")
        .into_inner()
        .value;
    assert_eq!(value, b"v");
    let log = proxy
        .admin()
        .await
        .list_events(ListEventsRequest {
            namespace: "default".into(),
            limit: 2,
            after_seq: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(log[0].kind(), EventKind::ReloadFailed);
    // Then the audit of the call that asked for it, with its result.
    assert_eq!(log[1].kind(), EventKind::AdminAction);
    assert!(log[1].reason.contains("hot reload: failed"), "{:?}", log[1]);
}

const TWO_NAMESPACES: &str = "namespaces:
  - {name: default, pattern: keyvalue, backend: memstore}
  - {name: gone, pattern: keyvalue, backend: memstore}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_config_adds_removes_and_changes_namespaces() {
    let proxy = Proxy::start_with_config(&format!("watch_config: false\n{TWO_NAMESPACES}")).await;
    let old_default = proxy.wait_healthy("default").await;
    let gone_pid = proxy.wait_healthy("gone").await.pid;
    let mut admin = proxy.admin().await;

    std::fs::write(
        proxy.config_path(),
        "watch_config: false\nnamespaces:\n  - {name: default, pattern: keyvalue, backend: memstore, config: {max_keys: 7}}\n  - {name: extra, pattern: keyvalue, backend: memstore}\n  - {name: broken, pattern: keyvalue, backend: mongo}\n",
    )
    .unwrap();
    let err = admin
        .reload_config(ReloadConfigRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("mongo"), "{}", err.message());
    assert_eq!(
        proxy.pattern("gone").await.pid,
        gone_pid,
        "an invalid file changes nothing"
    );

    std::fs::write(
        proxy.config_path(),
        "watch_config: false\nnamespaces:\n  - {name: default, pattern: keyvalue, backend: memstore, config: {max_keys: 7}}\n  - {name: extra, pattern: keyvalue, backend: memstore}\n",
    )
    .unwrap();
    let changes = admin
        .reload_config(ReloadConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changes.added, ["extra"]);
    assert_eq!(changes.removed, ["gone"]);
    assert_eq!(changes.changed, ["default"]);

    let default = proxy.wait_healthy("default").await;
    assert_ne!(
        default.pid, old_default.pid,
        "changed config means a new process"
    );
    assert_eq!(default.health.unwrap().details["max_keys"], "7");
    proxy.wait_healthy("extra").await;
    proxy
        .kv("extra")
        .await
        .set(set_v("k"))
        .await
        .expect("new namespace serves");
    let err = proxy
        .kv("gone")
        .await
        .get(GetRequest { key: "k".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    eventually(
        Duration::from_secs(5),
        "the removed namespace's process to stop",
        || async { (!procs::alive(gone_pid)).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_config_file_applies_it() {
    let proxy = Proxy::start_with_config(
        "namespaces:\n  - {name: default, pattern: keyvalue, backend: memstore}\n",
    )
    .await;
    proxy.wait_healthy("default").await;
    let started = Instant::now();
    std::fs::write(
        proxy.config_path(),
        "namespaces:\n  - {name: default, pattern: keyvalue, backend: memstore}\n  - {name: later, pattern: keyvalue, backend: memstore}\n",
    )
    .unwrap();
    eventually(
        Duration::from_secs(10),
        "the new namespace to appear",
        || async {
            let listed = proxy.list().await;
            listed
                .patterns
                .iter()
                .any(|p| {
                    p.namespace == "later"
                        && p.health
                            .as_ref()
                            .is_some_and(|h| h.status() == HealthStatus::Healthy)
                })
                .then_some(())
        },
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(10));
}
