//! Backends that go away and come back: the pattern stays alive and is
//! never restarted, calls fail fast naming the backend, and the namespace
//! serves again soon after the backend returns.

use super::*;

/// The deadline callers set during an outage, and the bound their failure
/// must come well within (measured: tens of ms after a kill, about 600 ms
/// for a stopped Redis — see the printed figures).
const CALLER_DEADLINE: Duration = Duration::from_secs(10);
const FAIL_FAST: Duration = Duration::from_secs(3);

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

/// A proxy serving namespace `cache` on `server` with 300 ms timeouts,
/// healthy, and its client, `k` set to `v` through it.
async fn redis_setup(server: &RedisServer) -> (Proxy, PatternInfo, KvClient) {
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
    (proxy, before, kv)
}

/// A Get of `k` that gives up after `deadline`.
async fn get_k(mut kv: KvClient, deadline: Duration) -> Result<(), Status> {
    let request = with_deadline(GetRequest { key: "k".into() }, deadline);
    kv.get(request).await.map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_past_the_budget_fails_fast_then_heals_without_a_restart() {
    let mut server = RedisServer::start().await;
    let (proxy, before, kv) = redis_setup(&server).await;

    server.kill();
    let get = || get_k(kv.clone(), CALLER_DEADLINE);
    let (messages, slowest) = hold_outage(&proxy, "cache", before.pid, FAIL_FAST, get).await;
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
    let (messages, slowest) = hold_outage(&proxy, ns, before.pid, FAIL_FAST, || {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_fails_calls_within_the_command_timeout_and_heals_on_sigcont() {
    let server = RedisServer::start().await;
    let (proxy, before, kv) = redis_setup(&server).await;

    // A stopped Redis keeps its socket open but never answers: only
    // timeouts tell. Until health notices (one 300 ms ping), a call waits for
    // the pattern's command_timeout_ms (300 ms) plus its pool wait (about
    // 600 ms in all); after that calls fail at once naming Redis.
    let pid = server.pid().expect("running");
    procs::signal(pid, libc::SIGSTOP);
    let get = || get_k(kv.clone(), CALLER_DEADLINE);
    let (messages, slowest) = hold_outage(&proxy, "cache", before.pid, FAIL_FAST, get).await;
    named_backend(&messages, "cache", "redis");

    procs::signal(pid, libc::SIGCONT);
    let healed = time_to_heal("Get to succeed after SIGCONT", || {
        get_k(kv.clone(), Duration::from_secs(1))
    })
    .await;
    eprintln!(
        "SIGSTOP redis: {} calls, slowest failure {slowest:?}; served again {healed:?} after SIGCONT",
        messages.len()
    );
    assert!(healed <= HEAL_BOUND, "healed after {healed:?}");
    assert_untouched(&proxy, "cache", &before).await;
}
