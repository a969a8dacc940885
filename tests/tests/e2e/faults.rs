//! Faults, each case asserting what callers see and that the namespace heals
//! by itself: a backend (Redis, core NATS, JetStream) down for longer than
//! the failure budget then back on the same port; a pattern that crash-loops
//! until its binary is fixed; a SIGSTOPped pattern; a SIGSTOPped Redis; a
//! namespace that turns FAILED under live subscribers.
//!
//! The failure budget is small in every case (health every 200 ms, two
//! failed checks or two failed starts are enough), so the old behaviour —
//! restarting a pattern whose backend is down until FAILED — would show
//! within the outage. Heal times are printed; the asserted bound (4 s) is
//! twice the 2 s target, for a loaded machine.

use std::{
    future::Future,
    path::Path,
    time::{Duration, Instant},
};

use prism_proto::{
    admin::v1::{PatternInfo, PatternState},
    keyvalue::v1::{GetRequest, SetRequest},
    pubsub::v1::{Message, PublishRequest, pub_sub_client::PubSubClient},
};
use prism_tests::{
    NatsServer, Proxy, ProxyBuilder, RedisServer, bins, eventually, procs, proxy::NamespaceHeader,
};
use tonic::{Code, Status, Streaming};

use crate::pubsub::{PsClient, subscribe};

/// The most a backend's return may take to show as served calls.
const HEAL_BOUND: Duration = Duration::from_secs(4);
/// How long each outage is held: longer than the failure budget.
const OUTAGE: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_secs(15);

/// A proxy with a small failure budget: two failed health checks 200 ms
/// apart restart a broken pattern; two failures in a row make it FAILED.
fn strict_proxy() -> ProxyBuilder {
    ProxyBuilder::new()
        .supervisor("health_interval_ms", "200")
        .supervisor("health_timeout_ms", "1000")
        .supervisor("unhealthy_threshold", "2")
        .supervisor("max_consecutive_failures", "2")
        .supervisor("restart_backoff_initial_ms", "20")
        .supervisor("restart_backoff_max_ms", "300")
}

fn set(key: &str, value: &[u8]) -> SetRequest {
    SetRequest {
        key: key.into(),
        value: value.to_vec(),
        ttl_seconds: 0,
    }
}

fn with_deadline<T>(message: T, deadline: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(deadline);
    request
}

/// Calls `call` for [`OUTAGE`]: every call must fail UNAVAILABLE within
/// `bound`, the namespace must stay RUNNING on pid `pid` (no restart, never
/// FAILED). Returns the error messages seen, in order, and the slowest call.
async fn hold_outage<F, Fut>(
    proxy: &Proxy,
    namespace: &str,
    pid: u32,
    bound: Duration,
    mut call: F,
) -> (Vec<String>, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Status>>,
{
    let end = Instant::now() + OUTAGE;
    let mut messages = Vec::new();
    let mut slowest = Duration::ZERO;
    while Instant::now() < end {
        let began = Instant::now();
        let err = call()
            .await
            .expect_err("no call succeeds while the backend is down");
        let took = began.elapsed();
        slowest = slowest.max(took);
        assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
        assert!(took < bound, "took {took:?}: {}", err.message());
        messages.push(err.message().to_string());
        let info = proxy.pattern(namespace).await;
        assert_eq!(info.state(), PatternState::Running, "{info:?}");
        assert_eq!(info.pid, pid, "the pattern was never restarted");
        // Pacing the calls, not waiting for a state.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (messages, slowest)
}

/// Polls `call` until it succeeds; how long that took.
async fn time_to_heal<F, Fut>(what: &str, mut call: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Status>>,
{
    let began = Instant::now();
    eventually(WAIT, what, || {
        let attempt = call();
        async move { attempt.await.ok() }
    })
    .await;
    began.elapsed()
}

fn named_backend(messages: &[String], namespace: &str, backend: &str) {
    let expected = format!("namespace `{namespace}`: backend {backend} unreachable (");
    assert!(
        messages.iter().any(|m| m.starts_with(&expected)),
        "some call names the backend ({expected}…): {messages:?}"
    );
}

async fn assert_untouched(proxy: &Proxy, namespace: &str, before: &PatternInfo) {
    let after = proxy.wait_healthy(namespace).await;
    assert_eq!(after.pid, before.pid, "never restarted");
    assert_eq!(after.restart_count, before.restart_count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_past_the_budget_fails_fast_then_heals_without_a_restart() {
    let mut server = RedisServer::start().await;
    let proxy = strict_proxy()
        .namespace(&format!(
            "{{name: cache, pattern: keyvalue, backend: redis, config: {{address: {}, connect_timeout_ms: 300, command_timeout_ms: 300, health_timeout_ms: 300}}}}",
            server.url()
        ))
        .start()
        .await;
    let before = proxy.wait_healthy("cache").await;
    let kv = proxy.kv("cache").await;
    kv.clone().set(set("k", b"v")).await.expect("Set");

    server.kill();
    let get = || {
        let mut kv = kv.clone();
        async move {
            let request = with_deadline(GetRequest { key: "k".into() }, Duration::from_secs(5));
            kv.get(request).await.map(drop)
        }
    };
    let (messages, slowest) =
        hold_outage(&proxy, "cache", before.pid, Duration::from_secs(1), get).await;
    named_backend(&messages, "cache", "redis");
    let info = proxy.pattern("cache").await;
    let health = info.health.expect("health");
    assert!(health.message.contains("redis unreachable"), "{health:?}");
    assert_eq!(health.details["unreachable_backend"], "redis");

    let back = Instant::now();
    server.restart().await;
    let started = back.elapsed();
    let healed = started
        + time_to_heal("Set to succeed once Redis is back", || {
            let mut kv = kv.clone();
            async move {
                let request = with_deadline(set("k2", b"v2"), Duration::from_secs(1));
                kv.set(request).await.map(drop)
            }
        })
        .await;
    eprintln!(
        "redis outage: {} calls, slowest failure {slowest:?}; served again {healed:?} after the restart began (redis-server answered after {started:?})",
        messages.len()
    );
    assert!(healed <= HEAL_BOUND, "healed after {healed:?}");
    let value = kv
        .clone()
        .get(GetRequest { key: "k2".into() })
        .await
        .expect("Get");
    assert_eq!(value.into_inner().value, b"v2");
    assert_untouched(&proxy, "cache", &before).await;
}

/// A proxy serving namespace `ps` on `nats`, a subscriber on topic `t`, and
/// the client.
async fn nats_setup(
    nats: &NatsServer,
    jetstream: bool,
) -> (Proxy, PatternInfo, PsClient, Streaming<Message>) {
    let proxy = crate::pubsub::with_ps_namespace(
        strict_proxy(),
        &format!(
            "backend: nats, config: {{url: \"{}\", jetstream: {jetstream}, request_timeout_ms: 300, connect_timeout_ms: 300}}",
            nats.url()
        ),
    )
    .start()
    .await;
    let before = proxy.wait_healthy(crate::pubsub::NS).await;
    let mut client = ps_client(&proxy).await;
    let mut stream = subscribe(&mut client, "t", "faults").await;
    // The subscription is live once a message published now arrives.
    let first = eventually(WAIT, "the subscription to deliver", || {
        let mut client = client.clone();
        async move { publish(&mut client, b"first").await.ok() }
    });
    first.await;
    let message = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a message")
        .expect("no error")
        .expect("open");
    assert_eq!(message.payload, b"first");
    (proxy, before, client, stream)
}

async fn ps_client(proxy: &Proxy) -> PsClient {
    PubSubClient::with_interceptor(
        proxy.channel().await,
        NamespaceHeader::new(crate::pubsub::NS),
    )
}

async fn publish(client: &mut PsClient, payload: &[u8]) -> Result<(), Status> {
    let request = with_deadline(
        PublishRequest {
            topic: "t".into(),
            payload: payload.to_vec(),
            metadata: Default::default(),
        },
        Duration::from_secs(5),
    );
    client.publish(request).await.map(drop)
}

/// Kills NATS for longer than the budget and brings it back on the same
/// port and store; asserts the caller's view, and that the subscriber opened
/// before the outage gets what is published after it.
async fn nats_outage(jetstream: bool) {
    let mut nats = if jetstream {
        NatsServer::start().await
    } else {
        NatsServer::start_without_jetstream().await
    };
    let (proxy, before, client, mut stream) = nats_setup(&nats, jetstream).await;
    let ns = crate::pubsub::NS;

    nats.kill();
    let (messages, slowest) = hold_outage(&proxy, ns, before.pid, Duration::from_secs(2), || {
        let mut client = client.clone();
        async move { publish(&mut client, b"lost").await }
    })
    .await;
    named_backend(&messages, ns, "nats");

    let back = Instant::now();
    nats.restart().await;
    let started = back.elapsed();
    let healed = started
        + time_to_heal("Publish to succeed once NATS is back", || {
            let mut client = client.clone();
            async move { publish(&mut client, b"after").await }
        })
        .await;
    eprintln!(
        "nats outage (jetstream: {jetstream}): {} calls, slowest failure {slowest:?}; served again {healed:?} after the restart began (nats-server answered after {started:?})",
        messages.len()
    );
    assert!(healed <= HEAL_BOUND, "healed after {healed:?}");
    // The subscriber's stream stayed open through the outage; what was
    // published after NATS returned reaches it.
    let message = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a message after the outage")
        .expect("the stream did not fail")
        .expect("the stream is still open");
    assert_eq!(message.payload, b"after");
    assert_untouched(&proxy, ns, &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_core_down_past_the_budget_fails_fast_then_heals_without_a_restart() {
    nats_outage(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_down_past_the_budget_fails_fast_then_heals_without_a_restart() {
    nats_outage(true).await;
}

/// Replaces `path` by `source` in one step (copy beside it, then rename),
/// as a deploy would.
fn replace_binary(source: &Path, path: &Path) {
    let staged = path.with_extension("new");
    std::fs::copy(source, &staged).expect("copy");
    std::fs::rename(&staged, path).expect("rename");
}

fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_namespace_is_failed_then_heals_once_its_binary_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let binary = script(dir.path(), "prism-crashy", "exit 1");
    let proxy = strict_proxy()
        .namespace(&format!(
            "{{name: crashy, pattern: keyvalue, backend: memstore, binary: {}}}",
            binary.display()
        ))
        .start()
        .await;
    let failed = proxy
        .wait_pattern("crashy", WAIT, "FAILED", |p| {
            p.state() == PatternState::Failed
        })
        .await;
    assert!(
        failed.last_error.contains("exit code 1"),
        "{}",
        failed.last_error
    );
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
    let proxy = strict_proxy()
        .namespace("{name: default, pattern: keyvalue, backend: memstore}")
        .start()
        .await;
    let before = proxy.wait_healthy("default").await;
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
async fn a_stopped_redis_fails_calls_within_the_command_timeout_and_heals_on_sigcont() {
    let server = RedisServer::start().await;
    let proxy = strict_proxy()
        .namespace(&format!(
            "{{name: cache, pattern: keyvalue, backend: redis, config: {{address: {}, connect_timeout_ms: 300, command_timeout_ms: 300, health_timeout_ms: 300}}}}",
            server.url()
        ))
        .start()
        .await;
    let before = proxy.wait_healthy("cache").await;
    let kv = proxy.kv("cache").await;
    kv.clone().set(set("k", b"v")).await.expect("Set");

    // A stopped Redis keeps its socket open but never answers: only
    // timeouts tell. The bound is the pattern's command_timeout_ms (300 ms),
    // plus a pool wait, with room for a loaded machine.
    let pid = server.pid().expect("running");
    procs::signal(pid, libc::SIGSTOP);
    let get = || {
        let mut kv = kv.clone();
        async move {
            let request = with_deadline(GetRequest { key: "k".into() }, Duration::from_secs(5));
            kv.get(request).await.map(drop)
        }
    };
    let (messages, slowest) = hold_outage(
        &proxy,
        "cache",
        before.pid,
        Duration::from_millis(1500),
        get,
    )
    .await;
    named_backend(&messages, "cache", "redis");

    procs::signal(pid, libc::SIGCONT);
    let healed = time_to_heal("Get to succeed after SIGCONT", || {
        let mut kv = kv.clone();
        async move {
            let request = with_deadline(GetRequest { key: "k".into() }, Duration::from_secs(1));
            kv.get(request).await.map(drop)
        }
    })
    .await;
    eprintln!(
        "SIGSTOP redis: {} calls, slowest failure {slowest:?}; served again {healed:?} after SIGCONT",
        messages.len()
    );
    assert!(healed <= HEAL_BOUND, "healed after {healed:?}");
    assert_untouched(&proxy, "cache", &before).await;
}

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
        let ended = tokio::time::timeout(WAIT, async {
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
        .expect("it ends with an error, not OK");
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
