//! Config safety: a watched file rewritten the way `generate > prism.yaml`
//! does it (truncated, then written in slow pieces) never applies its empty
//! or half-written state; absurd numbers and missing backend addresses are
//! refused at start-up with exit 64 naming the field, and on reload with the
//! running config untouched, whether the file is watched or reloaded by hand.

use std::{
    io::Write,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use prism_proto::{
    admin::v1::{EventKind, ListEventsRequest, ReloadConfigRequest},
    keyvalue::v1::GetRequest,
};
use prism_tests::{bins, proxy::Proxy, wait::eventually};
use tonic::Code;

use crate::keyvalue::set;

const KV: &str = "  - {name: kv, pattern: keyvalue, backend: memstore}\n";
const KV2: &str = "  - {name: kv2, pattern: keyvalue, backend: memstore}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_then_slow_full_write_never_removes_the_namespace() {
    let proxy = Proxy::start_with_config(&format!("namespaces:\n{KV}")).await;
    let kv_pid = proxy.wait_healthy("kv").await.pid;
    proxy
        .kv("kv")
        .await
        .set(set("k", b"before", 0))
        .await
        .expect("set before the rewrite");

    // The new file adds kv2 before kv, so a half-written one that parses
    // would drop kv.
    let full = format!("namespaces:\n{KV2}{KV}");
    let path = proxy.config_path();
    let written = Arc::new(AtomicBool::new(false));
    let writer = {
        let written = written.clone();
        std::thread::spawn(move || {
            // The sleeps are the input: a slow generator, not a wait.
            let mut file = std::fs::File::create(&path).expect("truncate");
            std::thread::sleep(Duration::from_millis(1500));
            for piece in full.as_bytes().chunks(12) {
                std::thread::sleep(Duration::from_millis(120));
                file.write_all(piece).expect("write a piece");
                file.flush().expect("flush");
            }
            written.store(true, Ordering::SeqCst);
        })
    };

    // Throughout the rewrite and until kv2 is applied, kv stays listed with
    // its first process.
    let mut polls = 0u32;
    eventually(Duration::from_secs(30), "kv2 to be added", || {
        polls += 1;
        let proxy = &proxy;
        let written = written.clone();
        async move {
            let list = proxy.list().await;
            let kv = list.patterns.iter().find(|p| p.namespace == "kv");
            let kv = kv.unwrap_or_else(|| panic!("kv was removed: {list:?}"));
            assert_eq!(kv.pid, kv_pid, "kv was restarted: {list:?}");
            let added = list.patterns.iter().any(|p| p.namespace == "kv2");
            if added {
                assert!(
                    written.load(Ordering::SeqCst),
                    "applied before it was whole"
                );
            }
            added.then_some(())
        }
    })
    .await;
    writer.join().expect("writer");
    assert!(
        polls > 10,
        "the rewrite was watched throughout ({polls} polls)"
    );

    proxy.wait_healthy("kv2").await;
    let value = proxy
        .kv("kv")
        .await
        .get(GetRequest { key: "k".into() })
        .await
        .expect("data set before is still readable")
        .into_inner()
        .value;
    assert_eq!(value, b"before");
    assert_eq!(proxy.pattern("kv").await.pid, kv_pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_numbers_and_missing_addresses_exit_64_naming_the_field() {
    let huge = u64::MAX;
    let cases = [
        ("worker_threads: 100000\n".to_string(), "worker_threads"),
        (
            format!("supervisor:\n  health_timeout_ms: {huge}\n"),
            "supervisor.health_timeout_ms",
        ),
        (
            "supervisor:\n  ready_timeout_ms: 86400001\n".to_string(),
            "supervisor.ready_timeout_ms",
        ),
        (
            "supervisor:\n  restart_backoff_initial_ms: 20000\n  restart_backoff_max_ms: 1000\n"
                .to_string(),
            "supervisor.restart_backoff_initial_ms",
        ),
        (
            "namespaces:\n  - {name: c, pattern: keyvalue, backend: redis}\n".to_string(),
            "namespaces[0].config.address",
        ),
        (
            "namespaces:\n  - {name: o, pattern: pubsub, backend: nats, config: {jetstream: true}}\n"
                .to_string(),
            "namespaces[0].config.url",
        ),
        (
            format!(
                "namespaces:\n  - {{name: m, pattern: keyvalue, backend: memstore, config: {{sweep_interval_ms: {huge}}}}}\n"
            ),
            "namespaces[0].config.sweep_interval_ms",
        ),
    ];
    assert_exit_64_naming(&cases, &["--metrics-listen", "off"]);
}

/// Starts `prism-proxy` (with `args`) on each config of `cases`, its listen
/// and admin port held by another socket, and asserts it exits 64 naming
/// the case's field without having served: a proxy that bound before
/// checking its config would fail with a bind error instead.
pub(crate) fn assert_exit_64_naming<Y: AsRef<str>>(cases: &[(Y, &str)], args: &[&str]) {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    for (yaml, field) in cases {
        let yaml = yaml.as_ref();
        let path = dir.path().join("prism.yaml");
        std::fs::write(&path, yaml).unwrap();
        let output = Command::new(bins::bin("prism-proxy"))
            .arg("--config")
            .arg(&path)
            .args(["--listen", &port, "--admin-listen", &port])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{yaml}: {stderr}");
        assert!(stderr.contains(field), "{field} not named in: {stderr}");
        assert!(output.stdout.is_empty(), "nothing was listening");
    }
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_refuses_a_fresh_empty_file_and_out_of_range_numbers() {
    let yaml = format!("watch_config: false\nnamespaces:\n{KV}");
    let proxy = Proxy::start_with_config(&yaml).await;
    let kv_pid = proxy.wait_healthy("kv").await.pid;
    let mut admin = proxy.admin().await;

    std::fs::write(proxy.config_path(), "").unwrap();
    let err = admin
        .reload_config(ReloadConfigRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("empty"), "{}", err.message());

    for (bad, field) in [
        (
            "supervisor:\n  restart_backoff_initial_ms: 5000\n  restart_backoff_max_ms: 10\n",
            "supervisor.restart_backoff_initial_ms",
        ),
        ("worker_threads: 100000\n", "worker_threads"),
        (
            "namespaces:\n  - {name: kv, pattern: keyvalue, backend: redis}\n",
            "namespaces[0].config.address",
        ),
    ] {
        let text = if bad.starts_with("namespaces") {
            format!("watch_config: false\n{bad}")
        } else {
            format!("{bad}{yaml}")
        };
        std::fs::write(proxy.config_path(), text).unwrap();
        let err = admin
            .reload_config(ReloadConfigRequest {})
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(field), "{}", err.message());
    }
    let kv = proxy.pattern("kv").await;
    assert_eq!(kv.pid, kv_pid, "a refused reload changes nothing");
    assert_eq!(proxy.list().await.patterns.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_file_out_of_range_is_refused_and_changes_nothing() {
    let proxy = Proxy::start_with_config(&format!("namespaces:\n{KV}")).await;
    let kv_pid = proxy.wait_healthy("kv").await.pid;
    // Applied, it would replace kv with kv2.
    std::fs::write(
        proxy.config_path(),
        format!("supervisor:\n  stable_after_ms: 86400001\nnamespaces:\n{KV2}"),
    )
    .unwrap();
    let mut admin = proxy.admin().await;
    let failed = eventually(
        Duration::from_secs(20),
        "the watcher to refuse the file",
        || {
            let mut admin = admin.clone();
            async move {
                let events = admin
                    .list_events(ListEventsRequest {
                        namespace: String::new(),
                        limit: 0,
                        after_seq: 0,
                    })
                    .await
                    .expect("ListEvents")
                    .into_inner()
                    .events;
                events
                    .into_iter()
                    .find(|e| e.kind() == EventKind::ConfigReloadFailed)
            }
        },
    )
    .await;
    assert!(
        failed.reason.contains("supervisor.stable_after_ms"),
        "{}",
        failed.reason
    );
    let list = proxy.list().await;
    assert!(
        !list.patterns.iter().any(|p| p.namespace == "kv2"),
        "{list:?}"
    );
    assert_eq!(proxy.pattern("kv").await.pid, kv_pid);
    let status = admin
        .reload_config(ReloadConfigRequest {})
        .await
        .unwrap_err();
    assert!(status.message().contains("stable_after_ms"), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_that_stays_empty_is_applied_as_the_defaults() {
    let proxy = Proxy::start_with_config(&format!("namespaces:\n{KV}")).await;
    let kv_pid = proxy.wait_healthy("kv").await.pid;
    let emptied = std::time::Instant::now();
    std::fs::write(proxy.config_path(), "").unwrap();
    // Written empty on purpose: after the empty window it is the built-in
    // config (`default` and `events` on MemStore), and kv goes.
    eventually(
        Duration::from_secs(30),
        "`default` to be listed",
        || async {
            let list = proxy.list().await;
            list.patterns
                .iter()
                .any(|p| p.namespace == "default")
                .then_some(())
        },
    )
    .await;
    let waited = emptied.elapsed();
    assert!(
        waited >= Duration::from_secs(5),
        "applied after {waited:?}, before the empty window"
    );
    let names: Vec<String> = proxy
        .list()
        .await
        .patterns
        .into_iter()
        .map(|p| p.namespace)
        .collect();
    assert!(!names.contains(&"kv".to_string()), "{names:?}");
    proxy.wait_healthy("default").await;
    eventually(Duration::from_secs(10), "kv's process to stop", || async {
        (!prism_tests::procs::alive(kv_pid)).then_some(())
    })
    .await;
}
