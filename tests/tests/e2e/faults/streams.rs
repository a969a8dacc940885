//! Subscribers whose namespace cannot serve them any more get a retryable
//! UNAVAILABLE ending their stream, never silence.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_of_a_namespace_that_turns_failed_get_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = dir.path().join("healthy");
    std::fs::write(&healthy, "").unwrap();
    // Serves while the flag file exists, crashes at once after.
    let binary = script(
        dir.path(),
        "prism-flaky",
        &format!(
            "[ -e {} ] && exec {} \"$@\"\nexit 1",
            healthy.display(),
            bins::bin("prism-memstore").display()
        ),
    );
    let proxy = crate::pubsub::with_ps_namespace(
        strict_proxy(),
        &format!("backend: memstore, binary: {}", binary.display()),
    )
    .start()
    .await;
    let before = proxy.wait_healthy(crate::pubsub::NS).await;
    let mut client = ps_client(&proxy).await;
    let mut streams = Vec::new();
    for id in ["a", "b"] {
        streams.push(subscribe(&mut client, "t", id).await);
    }

    std::fs::remove_file(&healthy).unwrap();
    procs::signal(before.pid, libc::SIGKILL);
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
    let dir = tempfile::tempdir().unwrap();
    let healthy = dir.path().join("healthy");
    std::fs::write(&healthy, "").unwrap();
    let binary = script(
        dir.path(),
        "prism-flaky",
        &format!(
            "[ -e {} ] && exec {} \"$@\"\nexit 1",
            healthy.display(),
            bins::bin("prism-memstore").display()
        ),
    );
    // Restarting, never FAILED within the test: only the bound ends it.
    let proxy = crate::pubsub::with_ps_namespace(
        budget_proxy(1000, 300).supervisor("resubscribe_timeout_ms", "1000"),
        &format!("backend: memstore, binary: {}", binary.display()),
    )
    .start()
    .await;
    let before = proxy.wait_healthy(crate::pubsub::NS).await;
    let mut client = ps_client(&proxy).await;
    let mut stream = subscribe(&mut client, "t", "a").await;

    std::fs::remove_file(&healthy).unwrap();
    procs::signal(before.pid, libc::SIGKILL);
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
