//! Subscribers whose namespace cannot serve them any more get a retryable
//! UNAVAILABLE ending their stream, never silence.

use super::*;

/// A proxy serving the pubsub namespace from a MemStore that serves while
/// a flag file exists and exits 1 at once after.
struct Flaky {
    proxy: Proxy,
    flag: PathBuf,
    pid: u32,
    _dir: tempfile::TempDir,
}

impl Flaky {
    /// Started from `builder`, once the namespace is healthy.
    async fn start(builder: ProxyBuilder) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("healthy");
        std::fs::write(&flag, "").unwrap();
        let binary = script(
            dir.path(),
            "prism-flaky",
            &format!(
                "[ -e {} ] && exec {} \"$@\"\nexit 1",
                flag.display(),
                bins::bin("prism-memstore").display()
            ),
        );
        let proxy = crate::pubsub::with_ps_namespace(
            builder,
            &format!("backend: memstore, binary: {}", binary.display()),
        )
        .start()
        .await;
        let pid = proxy.wait_healthy(crate::pubsub::NS).await.pid;
        Self {
            proxy,
            flag,
            pid,
            _dir: dir,
        }
    }

    /// Kills the pattern; every start of it from now on fails.
    fn break_for_good(&self) {
        std::fs::remove_file(&self.flag).unwrap();
        procs::signal(self.pid, libc::SIGKILL);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_of_a_namespace_that_turns_failed_get_unavailable() {
    let flaky = Flaky::start(strict_proxy()).await;
    let proxy = &flaky.proxy;
    let mut client = ps_client(proxy).await;
    let mut streams = Vec::new();
    for id in ["a", "b"] {
        streams.push(subscribe(&mut client, "t", id).await);
    }

    flaky.break_for_good();
    let failed_at = Instant::now();
    for mut stream in streams {
        let ended = end_of(&mut stream).await.expect("an error, not OK");
        assert_eq!(ended.code(), Code::Unavailable, "{}", ended.message());
        assert!(ended.message().contains("FAILED"), "{}", ended.message());
        assert!(
            ended.message().contains("exit code 1"),
            "{}",
            ended.message()
        );
    }
    eprintln!(
        "FAILED namespace: subscribers told {:?} after the crash",
        failed_at.elapsed()
    );
    let info = proxy.pattern(crate::pubsub::NS).await;
    assert_eq!(info.state(), PatternState::Failed);
}

/// Ends of `stream`: the status it failed with, or `None` for a clean end.
async fn end_of(stream: &mut Streaming<Message>) -> Option<Status> {
    tokio::time::timeout(WAIT, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await
    .expect("the stream ends rather than staying silent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_of_a_removed_namespace_get_unavailable() {
    let namespaces = "watch_config: false\nnamespaces:\n  - {name: default, pattern: keyvalue, backend: memstore}\n";
    let proxy = Proxy::start_with_config(&format!(
        "{namespaces}  - {{name: ps, pattern: pubsub, backend: memstore}}\n"
    ))
    .await;
    proxy.wait_healthy("ps").await;
    let mut client = ps_client(&proxy).await;
    let mut stream = subscribe(&mut client, "t", "a").await;

    std::fs::write(proxy.config_path(), namespaces).unwrap();
    let changes = proxy
        .admin()
        .await
        .reload_config(ReloadConfigRequest {})
        .await
        .expect("reload")
        .into_inner();
    assert_eq!(changes.removed, ["ps"]);
    let ended = end_of(&mut stream).await.expect("an error, not OK");
    assert_eq!(ended.code(), Code::Unavailable, "{}", ended.message());
    assert!(ended.message().contains("removed"), "{}", ended.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_no_pattern_takes_back_in_time_gets_unavailable() {
    // Restarting, never FAILED within the test: only the bound ends it.
    let flaky =
        Flaky::start(budget_proxy(1000, 300).supervisor("resubscribe_timeout_ms", "1000")).await;
    let proxy = &flaky.proxy;
    let mut client = ps_client(proxy).await;
    let mut stream = subscribe(&mut client, "t", "a").await;

    flaky.break_for_good();
    let lost = Instant::now();
    let ended = end_of(&mut stream).await.expect("an error, not OK");
    let took = lost.elapsed();
    assert_eq!(ended.code(), Code::Unavailable, "{}", ended.message());
    assert!(
        ended.message().contains("resubscribe_timeout_ms"),
        "{}",
        ended.message()
    );
    assert!(
        took >= Duration::from_secs(1),
        "not before the bound: {took:?}"
    );
    eprintln!("resubscribe bound 1 s: the stream ended {took:?} after the pattern died");
    let info = proxy.pattern(crate::pubsub::NS).await;
    assert_ne!(info.state(), PatternState::Failed);
}
