//! Pattern processes that crash, loop, hang or cannot be spawned (no file
//! descriptors left): restarted, FAILED after the budget, still retried,
//! and healed once the cause is gone; an operator's restart retries at once.

use super::*;

/// A [`strict_proxy`] serving namespace `default` on MemStore, healthy.
async fn strict_default() -> (Proxy, PatternInfo) {
    let proxy = strict_proxy()
        .namespace("{name: default, pattern: keyvalue, backend: memstore}")
        .start()
        .await;
    let before = proxy.wait_healthy("default").await;
    (proxy, before)
}

/// A proxy from `builder` whose KeyValue namespace `namespace` runs
/// `binary`, once that namespace is FAILED with a last error containing
/// `error`.
async fn failed_namespace(
    builder: ProxyBuilder,
    namespace: &str,
    binary: &Path,
    error: &str,
) -> (Proxy, PatternInfo) {
    let proxy = builder
        .namespace(&format!(
            "{{name: {namespace}, pattern: keyvalue, backend: memstore, binary: {}}}",
            binary.display()
        ))
        .start()
        .await;
    let failed = proxy
        .wait_pattern(namespace, WAIT, "FAILED", |p| {
            p.state() == PatternState::Failed
        })
        .await;
    assert!(failed.last_error.contains(error), "{}", failed.last_error);
    (proxy, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_namespace_is_failed_then_heals_once_its_binary_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let binary = script(dir.path(), "prism-crashy", "exit 1");
    let (proxy, failed) = failed_namespace(strict_proxy(), "crashy", &binary, "exit code 1").await;
    let err = proxy
        .kv("crashy")
        .await
        .get(GetRequest { key: "k".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("failed"), "{}", err.message());
    // Still retried while FAILED: the count keeps growing.
    proxy
        .wait_pattern("crashy", WAIT, "retried while FAILED", |p| {
            p.state() == PatternState::Failed && p.restart_count > failed.restart_count
        })
        .await;

    replace_binary(&bins::bin("prism-memstore"), &binary);
    let fixed = Instant::now();
    let healed = proxy.wait_healthy("crashy").await;
    eprintln!(
        "crash loop: healthy {:?} after the binary was fixed",
        fixed.elapsed()
    );
    assert!(healed.pid != 0);
    proxy
        .kv("crashy")
        .await
        .set(set("k", b"v"))
        .await
        .expect("serves once fixed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_pattern_is_restarted_and_calls_recover() {
    let (proxy, before) = strict_default().await;
    procs::signal(before.pid, libc::SIGSTOP);
    let after = proxy
        .wait_pattern("default", WAIT, "RUNNING on a new pid", |p| {
            p.state() == PatternState::Running && p.pid != before.pid && p.pid != 0
        })
        .await;
    assert!(after.restart_count > before.restart_count);
    assert!(
        after.last_error.contains("UNHEALTHY"),
        "restarted for not answering: {}",
        after.last_error
    );
    eventually(WAIT, "the stopped process to be gone", || async {
        (!procs::alive(before.pid)).then_some(())
    })
    .await;
    let kv = proxy.kv("default").await;
    time_to_heal("Set to succeed on the new process", || {
        let mut kv = kv.clone();
        async move { kv.set(set("k", b"v")).await.map(drop) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restart_of_a_failed_namespace_retries_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("prism-late");
    // FAILED is retried only every 30–60 s here, far beyond this test.
    let (proxy, _) = failed_namespace(budget_proxy(2, 60_000), "late", &binary, "not found").await;

    replace_binary(&bins::bin("prism-memstore"), &binary);
    let asked = Instant::now();
    let restarted = proxy
        .admin()
        .await
        .restart_pattern(RestartPatternRequest {
            namespace: "late".into(),
        })
        .await
        .expect("the restart starts it at once")
        .into_inner();
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_ne!(restarted.pattern.expect("pattern").pid, 0);
    proxy.wait_healthy("late").await;
    proxy
        .kv("late")
        .await
        .set(set("k", b"v"))
        .await
        .expect("serves");
}

/// Sets the soft limit on open files of process `pid` (util-linux `prlimit`).
fn limit_open_files(pid: u32, soft: u64) {
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={soft}:"))
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit --nofile={soft}: on {pid} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawns_that_fail_for_want_of_file_descriptors_heal_once_there_are_some() {
    let (proxy, before) = strict_default().await;
    // Opened now: no new descriptor is needed to ask the proxy later.
    let admin = proxy.admin().await;
    let state = || {
        let mut admin = admin.clone();
        async move {
            admin
                .list_patterns(ListPatternsRequest {})
                .await
                .expect("ListPatterns on the open connection")
                .into_inner()
                .patterns
                .into_iter()
                .find(|p| p.namespace == "default")
                .expect("listed")
        }
    };
    state().await;

    // Only descriptors 0–4 may be opened: every spawn fails with EMFILE.
    limit_open_files(proxy.pid(), 5);
    procs::signal(before.pid, libc::SIGKILL);
    let failed = eventually(WAIT, "FAILED for want of descriptors", || {
        let info = state();
        async move {
            let info = info.await;
            (info.state() == PatternState::Failed).then_some(info)
        }
    })
    .await;
    assert!(
        failed.last_error.contains("Too many open files"),
        "{}",
        failed.last_error
    );
    assert!(procs::alive(proxy.pid()), "the proxy stays up");

    limit_open_files(proxy.pid(), 1024);
    let freed = Instant::now();
    let healed = eventually(WAIT, "RUNNING again", || {
        let info = state();
        async move {
            let info = info.await;
            (info.state() == PatternState::Running && info.pid != 0).then_some(info)
        }
    })
    .await;
    eprintln!(
        "fd exhaustion: RUNNING {:?} after descriptors were freed",
        freed.elapsed()
    );
    assert_ne!(healed.pid, before.pid);
    proxy.wait_healthy("default").await;
    proxy
        .kv("default")
        .await
        .set(set("k", b"v"))
        .await
        .expect("serves again");
}
