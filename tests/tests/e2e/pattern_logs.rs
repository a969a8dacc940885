//! Pattern logs through a real proxy: lines a real pattern writes reach the
//! admin API tagged with namespace and pid, a restart shows the new pid, a
//! watcher resumes after the last line it saw, `PRISM_LOG_FORMAT=json` makes
//! every line of every binary JSON from the first, and a pattern flooding its
//! output neither grows the proxy's memory nor is held up.

use std::{path::Path, time::Duration};

use prism_harness::procs;
use prism_proto::admin::v1::{
    ListPatternLogsRequest, LogStream, PatternLogLine, RestartPatternRequest,
    WatchPatternLogsRequest,
};
use prism_tests::{NatsServer, Proxy, ProxyBuilder, RedisServer, bins, eventually};
use tokio_stream::StreamExt;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(30);

/// Lines from `stream` until one satisfies `wanted` (which is returned).
async fn next_matching(
    stream: &mut tonic::Streaming<PatternLogLine>,
    what: &str,
    wanted: impl Fn(&PatternLogLine) -> bool,
) -> PatternLogLine {
    let found = tokio::time::timeout(WAIT, async {
        while let Some(line) = stream.next().await {
            let line = line.expect("a log line");
            if wanted(&line) {
                return Some(line);
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(line)) => line,
        Ok(None) => panic!("the stream ended before {what}"),
        Err(_) => panic!("no {what} within {WAIT:?}"),
    }
}

async fn list(proxy: &Proxy, namespace: &str, since_seq: u64) -> Vec<PatternLogLine> {
    proxy
        .admin()
        .await
        .list_pattern_logs(ListPatternLogsRequest {
            namespace: namespace.into(),
            limit: 0,
            since_seq,
        })
        .await
        .expect("ListPatternLogs")
        .into_inner()
        .lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patterns_lines_reach_the_admin_stream_with_namespace_and_pid() {
    let proxy = Proxy::start_default().await;
    let before = proxy.wait_healthy("default").await;
    let mut admin = proxy.admin().await;
    let mut stream = admin
        .watch_pattern_logs(WatchPatternLogsRequest {
            namespace: "default".into(),
            since_seq: 0,
            tail: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let listening = next_matching(&mut stream, "the pattern's start-up line", |l| {
        l.text.contains("pattern listening")
    })
    .await;
    assert_eq!(listening.namespace, "default");
    assert_eq!(listening.pid, before.pid);
    assert_eq!(listening.stream(), LogStream::Stderr);
    assert!(listening.timestamp_ms > 0);
    // The pattern's own line names its namespace and pid too.
    assert!(
        listening
            .text
            .contains(&format!("namespace=default pid={}", before.pid)),
        "{}",
        listening.text
    );

    let restarted = admin
        .restart_pattern(RestartPatternRequest {
            namespace: "default".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .pattern
        .unwrap();
    assert_ne!(restarted.pid, before.pid);
    let after = next_matching(&mut stream, "a line of the new process", |l| {
        l.pid == restarted.pid
    })
    .await;
    assert!(after.seq > listening.seq);

    // A watcher that reconnects resumes after the last line it saw.
    let mut resumed = admin
        .watch_pattern_logs(WatchPatternLogsRequest {
            namespace: "default".into(),
            since_seq: listening.seq,
            tail: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let first = resumed.next().await.unwrap().unwrap();
    assert_eq!(
        first.seq,
        list(&proxy, "default", listening.seq).await[0].seq,
        "the first line after {}",
        listening.seq
    );
    assert!(first.seq > listening.seq);

    // Lines of the old and the new process are both kept, oldest first.
    let kept = list(&proxy, "default", 0).await;
    assert!(kept.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(kept.iter().any(|l| l.pid == before.pid));
    assert!(kept.iter().any(|l| l.pid == restarted.pid));

    // The proxy's stderr still shows the pattern's lines, tagged.
    eventually(WAIT, "the echoed line", || async {
        proxy
            .log()
            .contains(&format!("[default pid {}]", restarted.pid))
            .then_some(())
    })
    .await;
    // And the proxy logs the restart as such.
    assert!(proxy.log().contains("restart requested"), "{}", proxy.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_namespace_is_not_found() {
    let proxy = Proxy::start_default().await;
    let err = proxy
        .admin()
        .await
        .list_pattern_logs(ListPatternLogsRequest {
            namespace: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("nope"), "{}", err.message());
}

fn assert_json(line: &str, whose: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .filter(|v| v.is_object())
        .unwrap_or_else(|| panic!("{whose}: not a JSON object: {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_format_makes_every_line_of_every_binary_json() {
    let redis = RedisServer::start().await;
    let nats = NatsServer::start().await;
    let namespaces = [
        ("kv", "memstore"),
        ("cache", "redis"),
        ("events", "nats"),
        ("fleet", "multicast-registry"),
    ];
    let proxy = ProxyBuilder::new()
        .env("PRISM_LOG_FORMAT", "json")
        .namespace("{name: kv, pattern: keyvalue, backend: memstore}")
        .namespace(&format!(
            "{{name: cache, pattern: keyvalue, backend: redis, config: {{address: {}}}}}",
            redis.url()
        ))
        .namespace(&format!(
            "{{name: events, pattern: pubsub, backend: nats, config: {{url: \"{}\"}}}}",
            nats.url()
        ))
        .namespace("{name: fleet, pattern: multicast-registry}")
        .start()
        .await;
    for (ns, binary) in namespaces {
        let info = proxy.wait_healthy(ns).await;
        // Every captured line of the pattern is JSON, the first included,
        // and names its namespace and pid.
        let lines = eventually(WAIT, "the pattern's lines", || async {
            let lines = list(&proxy, ns, 0).await;
            lines
                .iter()
                .any(|l| l.text.contains("pattern listening"))
                .then_some(lines)
        })
        .await;
        for line in &lines {
            let json = assert_json(&line.text, binary);
            assert_eq!(json["namespace"], ns, "{}", line.text);
            assert_eq!(json["pid"], info.pid, "{}", line.text);
        }
        assert!(info.binary.ends_with(&format!("prism-{binary}")));
    }
    // Every line on the proxy's stderr is JSON: its own and its patterns'.
    let log = proxy.log();
    assert!(!log.trim().is_empty());
    for line in log.lines() {
        assert_json(line, "prism-proxy's stderr");
    }
}

/// A pattern binary that writes about 60 MB of lines and one 8 MB line
/// without a break to stderr, then `flood done`, while serving as MemStore.
fn flooding_pattern(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("prism-flood");
    let line = "x".repeat(300);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n(yes '{line}' | head -n 200000; head -c 8000000 /dev/zero | tr '\\0' y; echo; echo 'flood done') >&2 &\nexec '{}' \"$@\"\n",
            bins::bin("prism-memstore").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_pattern_leaves_the_proxy_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let binary = flooding_pattern(dir.path());
    let proxy = ProxyBuilder::new()
        .namespace(&format!(
            "{{name: loud, pattern: keyvalue, backend: memstore, binary: {}}}",
            binary.display()
        ))
        .start()
        .await;
    let rss_at_start = procs::rss_kb(proxy.pid()).expect("the proxy's RSS");
    let mut peak = rss_at_start;
    // The flood ends: the pattern was never held up by a full pipe.
    let done = eventually(WAIT * 2, "the end of the flood", || {
        let proxy = &proxy;
        peak = peak.max(procs::rss_kb(proxy.pid()).unwrap_or(0));
        async move {
            list(proxy, "loud", 0)
                .await
                .into_iter()
                .find(|l| l.text == "flood done")
        }
    })
    .await;
    peak = peak.max(procs::rss_kb(proxy.pid()).unwrap_or(0));
    let kept = list(&proxy, "loud", 0).await;
    assert!(kept.len() <= 5_000, "{} lines kept", kept.len());
    let bytes: usize = kept.iter().map(|l| l.text.len()).sum();
    assert!(bytes <= 2 * 1024 * 1024, "{bytes} bytes kept");
    let long = kept
        .iter()
        .find(|l| l.text.starts_with('y'))
        .expect("the long line is kept, cut");
    assert!(long.truncated);
    assert_eq!(long.text.len(), 8 * 1024);
    assert!(done.seq > 200_000, "every line was read: {}", done.seq);
    // 68 MB went through; the proxy grew by far less.
    let grew_mb = peak.saturating_sub(rss_at_start) / 1024;
    println!("proxy RSS {rss_at_start} kB at start, peak {peak} kB during a 68 MB flood");
    assert!(
        grew_mb < 40,
        "the proxy grew by {grew_mb} MB (from {rss_at_start} kB)"
    );
    // And the pattern serves.
    proxy.wait_healthy("loud").await;
    let mut kv = proxy.kv("loud").await;
    kv.set(crate::keyvalue::set_v("k")).await.unwrap();
}
