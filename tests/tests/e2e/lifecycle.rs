//! The proxy ⇄ pattern lifecycle section of ACCEPTANCE.md: spawning on
//! private addresses, health, restarts with backoff, FAILED namespaces, and
//! shutdown without orphans.

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use prism_proto::{
    admin::v1::PatternState,
    keyvalue::v1::{GetRequest, SetRequest},
    lifecycle::v1::HealthStatus,
};
use prism_tests::{Proxy, ProxyBuilder, bins, eventually, procs};
use tokio::time::Instant;
use tonic::Code;

use crate::keyvalue::set_v;
use tonic_health::pb::health_check_response::ServingStatus;

async fn wait_gone(pid: u32, timeout: Duration) {
    eventually(
        timeout,
        &format!("process {pid} to be gone"),
        || async move { (!procs::alive(pid)).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawns_each_pattern_on_its_own_socket_and_reports_health() {
    let (a, b) = tokio::join!(Proxy::start_default(), Proxy::start_default());
    let (pa, pb) = (a.pattern("default").await, b.pattern("default").await);
    for p in [&pa, &pb] {
        assert!(p.endpoint.starts_with("unix:"), "{}", p.endpoint);
        assert!(p.binary.ends_with("prism-memstore"), "{}", p.binary);
        assert!(!p.version.is_empty());
        assert!(procs::alive(p.pid));
        let health = p.health.as_ref().unwrap();
        assert_eq!(health.status(), HealthStatus::Healthy);
        assert!(health.details.contains_key("keys"), "{:?}", health.details);
    }
    assert_ne!(
        pa.endpoint, pb.endpoint,
        "two proxies chose the same address"
    );
    assert_ne!(pa.pid, pb.pid);

    for proxy in [&a, &b] {
        proxy
            .kv("default")
            .await
            .set(set_v("k"))
            .await
            .expect("serves");
        assert_eq!(
            proxy.serving_status("").await.unwrap(),
            ServingStatus::Serving
        );
        assert_eq!(
            proxy.serving_status("default").await.unwrap(),
            ServingStatus::Serving
        );
        assert_eq!(
            proxy
                .serving_status("prism.keyvalue.v1.KeyValue")
                .await
                .unwrap(),
            ServingStatus::Serving
        );
        let unknown = proxy.serving_status("nope").await.unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_heals_within_three_seconds() {
    let proxy = Proxy::start_default().await;
    let before = proxy.pattern("default").await;
    let kv = proxy.kv("default").await;
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..4)
        .map(|t| {
            let (mut kv, stop, ok) = (kv.clone(), stop.clone(), ok.clone());
            tokio::spawn(async move {
                let mut unexpected = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("load:{t}:{i}");
                    i += 1;
                    match kv.set(set_v(&key)).await {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if e.code() == Code::Unavailable => {}
                        Err(e) => unexpected.push(e),
                    }
                }
                unexpected
            })
        })
        .collect();
    eventually(Duration::from_secs(5), "load to flow", || async {
        (ok.load(Ordering::Relaxed) > 50).then_some(())
    })
    .await;

    let killed_at = Instant::now();
    procs::signal(before.pid, libc::SIGKILL);
    let after = proxy
        .wait_pattern(
            "default",
            Duration::from_secs(3),
            "HEALTHY with a new pid",
            |p| {
                p.pid != before.pid
                    && p.state() == PatternState::Running
                    && p.health
                        .as_ref()
                        .is_some_and(|h| h.status() == HealthStatus::Healthy)
            },
        )
        .await;
    assert!(killed_at.elapsed() < Duration::from_secs(3));
    assert!(after.restart_count >= 1);
    assert!(after.last_error.contains("exited"), "{}", after.last_error);

    let served_before = ok.load(Ordering::Relaxed);
    eventually(Duration::from_secs(3), "calls to succeed again", || async {
        (ok.load(Ordering::Relaxed) > served_before + 50).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let unexpected = task.await.unwrap();
        assert!(
            unexpected.is_empty(),
            "only UNAVAILABLE is acceptable: {unexpected:?}"
        );
    }
    assert!(procs::alive(proxy.pid()), "the proxy stayed up");
    assert!(!procs::alive(before.pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_looping_pattern_is_failed_after_n_tries_and_others_serve() {
    let proxy = ProxyBuilder::new()
        .supervisor("max_consecutive_failures", "3")
        .supervisor("restart_backoff_initial_ms", "20")
        .namespace("{name: default, pattern: keyvalue, backend: memstore}")
        // `false` starts and exits at once, whatever its arguments.
        .namespace("{name: broken, pattern: keyvalue, backend: memstore, binary: /bin/false}")
        .start()
        .await;
    let info = proxy
        .wait_pattern("broken", Duration::from_secs(10), "FAILED", |p| {
            p.state() == PatternState::Failed
        })
        .await;
    assert!(
        info.last_error.contains("3 consecutive failures"),
        "{}",
        info.last_error
    );
    assert!(
        info.last_error.contains("exit code 1"),
        "{}",
        info.last_error
    );
    assert_eq!(
        info.restart_count, 3,
        "two restarts after the first try, then a retry scheduled while FAILED"
    );
    assert_eq!(info.pid, 0);
    assert_eq!(info.health.unwrap().status(), HealthStatus::Unhealthy);

    proxy.wait_healthy("default").await;
    proxy
        .kv("default")
        .await
        .set(set_v("k"))
        .await
        .expect("default serves");
    let err = proxy
        .kv("broken")
        .await
        .get(GetRequest { key: "k".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        err.message().contains("broken") && err.message().contains("failed"),
        "{}",
        err.message()
    );
    assert_eq!(
        proxy.serving_status("broken").await.unwrap(),
        ServingStatus::NotServing
    );
    assert_eq!(
        proxy.serving_status("default").await.unwrap(),
        ServingStatus::Serving
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_binary_is_failed_while_default_serves() {
    let proxy = ProxyBuilder::new()
        .namespace("{name: default, pattern: keyvalue, backend: memstore}")
        .namespace(
            "{name: ghost, pattern: keyvalue, backend: memstore, binary: /nonexistent/prism-ghost}",
        )
        .start()
        .await;
    let info = proxy
        .wait_pattern("ghost", Duration::from_secs(5), "FAILED", |p| {
            p.state() == PatternState::Failed
        })
        .await;
    assert!(info.last_error.contains("not found"), "{}", info.last_error);
    assert!(
        info.last_error.contains("/nonexistent/prism-ghost"),
        "{}",
        info.last_error
    );
    proxy.wait_healthy("default").await;
    proxy
        .kv("default")
        .await
        .set(set_v("k"))
        .await
        .expect("default serves");
    assert!(procs::alive(proxy.pid()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_the_pattern_rejects_is_failed_with_the_reason() {
    let proxy = ProxyBuilder::new()
        .namespace("{name: default, pattern: keyvalue, backend: memstore}")
        .namespace("{name: picky, pattern: keyvalue, backend: memstore, config: {max_kyes: 5}}")
        .start()
        .await;
    let info = proxy
        .wait_pattern("picky", Duration::from_secs(10), "FAILED", |p| {
            p.state() == PatternState::Failed
        })
        .await;
    assert!(
        info.last_error.contains("rejected its config"),
        "{}",
        info.last_error
    );
    assert!(info.last_error.contains("max_kyes"), "{}", info.last_error);
    assert_eq!(
        info.restart_count, 1,
        "a rejected config is FAILED at once, then retried only at the capped backoff"
    );
    proxy.wait_healthy("default").await;
    proxy
        .kv("default")
        .await
        .set(set_v("k"))
        .await
        .expect("default serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_refuses_new_calls_finishes_in_flight_and_leaves_no_process() {
    let mut proxy = ProxyBuilder::new()
        .namespace("{name: default, pattern: keyvalue, backend: memstore}")
        .namespace(
            "{name: slow, pattern: keyvalue, backend: memstore, config: {simulated_latency_ms: 2500}}",
        )
        .start()
        .await;
    proxy.wait_healthy("default").await;
    proxy.wait_healthy("slow").await;
    let pids: Vec<u32> = proxy.list().await.patterns.iter().map(|p| p.pid).collect();

    let mut slow = proxy.kv("slow").await;
    let in_flight = tokio::spawn(async move { slow.set(set_v("k")).await });
    eventually(
        Duration::from_secs(5),
        "the slow call to be in flight",
        || async { (proxy.list().await.in_flight >= 1).then_some(()) },
    )
    .await;

    proxy.signal(libc::SIGTERM);
    let mut kv = proxy.kv("default").await;
    let refused = eventually(Duration::from_secs(2), "new calls to be refused", || {
        let mut kv = kv.clone();
        async move { kv.set(set_v("new")).await.err() }
    })
    .await;
    assert_eq!(refused.code(), Code::Unavailable, "{}", refused.message());
    assert!(
        !in_flight.is_finished(),
        "the slow call is still running while new ones are refused"
    );
    let _ = kv.set(set_v("x")).await;

    in_flight
        .await
        .unwrap()
        .expect("the in-flight call finished successfully");
    let status = proxy.wait_exit(Duration::from_secs(10)).await;
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        proxy.log()
    );
    for pid in pids {
        wait_gone(pid, Duration::from_secs(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_the_proxy_and_its_patterns() {
    let mut proxy = Proxy::start_default().await;
    let pid = proxy.pattern("default").await.pid;
    proxy.signal(libc::SIGINT);
    let status = proxy.wait_exit(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status:?}");
    wait_gone(pid, Duration::from_secs(2)).await;
    assert!(proxy.log().contains("pattern stopped"), "{}", proxy.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_exit_when_the_proxy_is_killed() {
    let mut proxy = Proxy::start_default().await;
    let pid = proxy.pattern("default").await.pid;
    proxy.signal(libc::SIGKILL);
    proxy.wait_exit(Duration::from_secs(5)).await;
    wait_gone(pid, Duration::from_secs(3)).await;
}

#[test]
fn bad_config_exits_64_naming_the_field_before_binding() {
    let cases = [
        (
            "namespaces:\n  - {name: a, pattern: keyvalue, backend: mongo}\n",
            "mongo",
        ),
        ("listen: 127.0.0.1:1\nadmin_lisen: x\n", "admin_lisen"),
        (
            "namespaces:\n  - {name: a, pattern: keyvalue, backend: memstore}\n  - {name: a, pattern: keyvalue, backend: memstore}\n",
            "namespaces[1].name",
        ),
        (
            "supervisor:\n  max_consecutive_failures: 0\n",
            "supervisor.max_consecutive_failures",
        ),
    ];
    crate::config_safety::assert_exit_64_naming(&cases, &[]);
    let output = Command::new(bins::bin("prism-proxy"))
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_admin_watch_streams_and_subscriptions() {
    use prism_proto::{
        admin::v1::{WatchEventsRequest, WatchPatternsRequest},
        pubsub::v1::{SubscribeRequest, pub_sub_client::PubSubClient},
    };
    let mut proxy = Proxy::start_default().await;
    proxy.wait_healthy("events").await;
    let mut admin = proxy.admin().await;
    let mut snapshots = admin
        .watch_patterns(WatchPatternsRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut events = admin
        .watch_events(WatchEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut request = tonic::Request::new(SubscribeRequest {
        topic: "t".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-prism-namespace", "events".parse().unwrap());
    let mut messages = PubSubClient::new(proxy.channel().await)
        .subscribe(request)
        .await
        .unwrap()
        .into_inner();
    snapshots.message().await.unwrap();

    proxy.signal(libc::SIGTERM);
    let status = proxy.wait_exit(Duration::from_secs(10)).await;
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        proxy.log()
    );
    // Every stream ended rather than hanging the shutdown.
    while let Ok(Some(_)) = snapshots.message().await {}
    while let Ok(Some(_)) = events.message().await {}
    // Subscriptions end with a retryable UNAVAILABLE, not a clean end.
    let ended = messages.message().await.unwrap_err();
    assert_eq!(ended.code(), Code::Unavailable, "{}", ended.message());
    assert!(
        ended.message().contains("shutting down"),
        "{}",
        ended.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_namespace_refuses_calls_beyond_its_in_flight_budget() {
    let proxy = ProxyBuilder::new()
        .namespace(
            "{name: slow, pattern: keyvalue, backend: memstore, config: {simulated_latency_ms: 1500}, limits: {max_in_flight_bytes: 100000}}",
        )
        .start()
        .await;
    proxy.wait_healthy("slow").await;
    let kv = proxy.kv("slow").await;
    let set = |i: usize| SetRequest {
        key: format!("k{i}"),
        value: vec![7; 30_000],
        ttl_seconds: 0,
    };
    // Three calls of ~30 KB fit in the 100 000-byte budget; a fourth does not.
    let held: Vec<_> = (0..3)
        .map(|i| {
            let mut kv = kv.clone();
            tokio::spawn(async move { kv.set(set(i)).await })
        })
        .collect();
    eventually(Duration::from_secs(5), "three calls in flight", || async {
        (proxy.list().await.in_flight >= 3).then_some(())
    })
    .await;
    let refused = kv.clone().set(set(3)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("max_in_flight_bytes") && refused.message().contains("100000"),
        "{}",
        refused.message()
    );
    for call in held {
        call.await.unwrap().expect("admitted calls finish");
    }
    kv.clone()
        .set(set(3))
        .await
        .expect("room again once they finished");
}

/// A namespace's `worker_threads` reaches its pattern process as
/// `--worker-threads`; a namespace without it leaves the pattern its default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaces_worker_threads_size_its_pattern_process() {
    let proxy = Proxy::start_with_config(
        "namespaces:\n  - name: sized\n    pattern: keyvalue\n    worker_threads: 3\n  - name: plain\n    pattern: keyvalue\n",
    )
    .await;
    let args = |pid: u32| -> Vec<String> {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .expect("the pattern's command line")
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    };
    let sized = args(proxy.wait_healthy("sized").await.pid);
    let at = sized
        .iter()
        .position(|a| a == "--worker-threads")
        .unwrap_or_else(|| panic!("no --worker-threads in {sized:?}"));
    assert_eq!(sized[at + 1], "3", "{sized:?}");
    let plain = args(proxy.wait_healthy("plain").await.pid);
    assert!(!plain.iter().any(|a| a == "--worker-threads"), "{plain:?}");
    proxy
        .kv("sized")
        .await
        .set(set_v("k"))
        .await
        .expect("serves");
}
