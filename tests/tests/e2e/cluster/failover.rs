//! Failover under load on the local clusters, with the windows measured
//! and printed (run with `--no-capture` to see them).
//!
//! Redis: a writer sets `fo:<n>` = `<n>` one after another through the
//! proxy while a Redis master is SIGKILLed. Calls fail while the master's
//! slots have no master (the replica takes over after the cluster's node
//! timeout) and then succeed again. No acknowledged write is lost: every
//! key whose Set returned OK is read back through the proxy afterwards
//! with its value, and a scan of `fo:` holds every one of them.
//!
//! NATS: a JetStream publisher and a core NATS publisher publish numbered
//! messages while the node the JetStream pattern is connected to is
//! SIGKILLed. The pattern moves to another node (its health names the
//! server it is on); every JetStream publish that was acknowledged reaches
//! the subscriber; core NATS messages lost in the switch are counted.

use std::{
    collections::{BTreeSet, HashSet},
    time::Duration,
};

use prism_proto::{
    keyvalue::v1::{GetRequest, ScanRequest, SetRequest},
    pubsub::v1::{PublishRequest, pub_sub_client::PubSubClient},
};
use prism_tests::{
    Proxy, ProxyBuilder,
    cluster::{nats_cluster, redis_cluster, redis_cluster_yaml},
    eventually,
    proxy::NamespaceHeader,
};
use tokio::time::Instant;

use crate::pubsub::{PsClient, subscribe};

/// Each call's own deadline, so a call stuck on a dead node ends.
const CALL: Duration = Duration::from_secs(2);
/// How long calls may fail after the kill before the test gives up.
const FAILOVER_LIMIT: Duration = Duration::from_secs(45);

/// A proxy that polls health often and never restarts a pattern for being
/// UNHEALTHY: the pattern has to ride the failover out.
fn patient() -> ProxyBuilder {
    ProxyBuilder::new()
        .supervisor("health_interval_ms", "200")
        .supervisor("unhealthy_threshold", "100000")
}

/// What a writer saw around a kill.
#[derive(Debug, Default)]
struct Outcome {
    acked: Vec<u64>,
    failed: usize,
    /// From the kill to the end of the last failed call.
    window: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_master_killed_under_load_fails_over_and_keeps_every_acknowledged_write() {
    let mut cluster = redis_cluster().await;
    let proxy = patient()
        .namespace(&format!(
            "{{name: kv, pattern: keyvalue, backend: redis, config: {{cluster: {}, command_timeout_ms: 1000}}}}",
            redis_cluster_yaml(&cluster)
        ))
        .start()
        .await;
    proxy.wait_healthy("kv").await;
    let mut kv = proxy.kv("kv").await;

    let set = |n: u64| {
        let mut request = tonic::Request::new(SetRequest {
            key: format!("fo:{n}"),
            value: n.to_string().into_bytes(),
            ttl_seconds: 0,
        });
        request.set_timeout(CALL);
        request
    };
    let mut outcome = Outcome::default();
    let mut n = 0;
    // Load before the kill; every write here must succeed.
    while n < 300 {
        kv.set(set(n))
            .await
            .unwrap_or_else(|e| panic!("fo:{n}: {e}"));
        outcome.acked.push(n);
        n += 1;
    }
    let roles = cluster.roles().await.expect("cluster roles");
    let victim = roles
        .iter()
        .find(|r| r.master && r.slots > 0)
        .expect("a master")
        .port;
    cluster.node_mut(victim).expect("victim node").kill();
    let killed = Instant::now();
    // Keep writing until calls have succeeded for 200 writes in a row after
    // the last failure.
    let mut streak = 0;
    while streak < 200 {
        if killed.elapsed() > FAILOVER_LIMIT {
            for node in &cluster.nodes {
                let log = node.log();
                let lines: Vec<&str> = log.lines().collect();
                eprintln!(
                    "--- node {} ---\n{}",
                    node.port(),
                    lines[lines.len().saturating_sub(15)..].join("\n")
                );
            }
            panic!(
                "still failing {FAILOVER_LIMIT:?} after the kill ({} failed); health {:?}; roles {:?}",
                outcome.failed,
                proxy.pattern("kv").await.health,
                cluster.roles().await
            );
        }
        match kv.set(set(n)).await {
            Ok(_) => {
                outcome.acked.push(n);
                streak += 1;
            }
            Err(status) => {
                assert!(
                    matches!(
                        status.code(),
                        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
                    ),
                    "fo:{n}: {status:?}"
                );
                outcome.failed += 1;
                outcome.window = killed.elapsed();
                streak = 0;
            }
        }
        n += 1;
    }
    eprintln!(
        "redis failover: master :{victim} killed; {} calls failed over {:?}; {} writes acknowledged",
        outcome.failed,
        outcome.window,
        outcome.acked.len()
    );

    // Every acknowledged write is there with its value.
    for &n in &outcome.acked {
        let mut request = tonic::Request::new(GetRequest {
            key: format!("fo:{n}"),
        });
        request.set_timeout(CALL * 5);
        let value = kv
            .get(request)
            .await
            .unwrap_or_else(|e| panic!("acknowledged fo:{n} lost: {e}"))
            .into_inner()
            .value;
        assert_eq!(value, n.to_string().into_bytes(), "fo:{n}");
    }
    let scanned = scan_all(&proxy, "fo:").await;
    let acked: HashSet<String> = outcome.acked.iter().map(|n| format!("fo:{n}")).collect();
    assert!(acked.is_subset(&scanned), "a scan misses acknowledged keys");
    // The cluster keeps serving every slot, the pattern says which node died.
    let health = proxy.pattern("kv").await.health.expect("health");
    assert_eq!(health.details["slots_covered"], "16384", "{health:?}");
}

async fn scan_all(proxy: &Proxy, prefix: &str) -> HashSet<String> {
    let mut kv = proxy.kv("kv").await;
    let mut seen = HashSet::new();
    let mut cursor = String::new();
    loop {
        let page = kv
            .scan(ScanRequest {
                prefix: prefix.into(),
                cursor: cursor.clone(),
                limit: 500,
            })
            .await
            .expect("scan")
            .into_inner();
        for key in page.keys {
            assert!(seen.insert(key.clone()), "{key} repeated");
        }
        if page.next_cursor.is_empty() {
            return seen;
        }
        cursor = page.next_cursor;
    }
}

async fn ps_client(proxy: &Proxy, ns: &str) -> PsClient {
    PubSubClient::with_interceptor(proxy.channel().await, NamespaceHeader::new(ns))
}

/// `<server_name> <host>:<port>` the namespace's pattern is connected to.
async fn connected_to(proxy: &Proxy, ns: &str) -> String {
    let health = proxy.pattern(ns).await.health.expect("health");
    health.details["connected_to"].clone()
}

fn port_of(connected: &str) -> u16 {
    connected
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {connected:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_node_in_use_killed_under_load_moves_the_pattern_and_loses_no_jetstream_message() {
    let mut cluster = nats_cluster().await;
    let url = cluster.url();
    let proxy = patient()
        .namespace(&format!(
            "{{name: js, pattern: pubsub, backend: nats, config: {{url: '{url}', jetstream: true, replicas: 3, request_timeout_ms: 2000}}}}"
        ))
        .namespace(&format!(
            "{{name: core, pattern: pubsub, backend: nats, config: {{url: '{url}', request_timeout_ms: 2000}}}}"
        ))
        .start()
        .await;
    proxy.wait_healthy("js").await;
    proxy.wait_healthy("core").await;
    let before = connected_to(&proxy, "js").await;
    let victim = port_of(&before);

    let mut js = ps_client(&proxy, "js").await;
    let mut core = ps_client(&proxy, "core").await;
    let js_stream = subscribe(&mut js, "seq", "fo-js").await;
    let core_stream = subscribe(&mut core, "seq", "fo-core").await;
    let js_seen = collect(js_stream);
    let core_seen = collect(core_stream);
    // The namespace's stream keeps a copy on every node.
    let info = cluster.stream_info("PRISM_JS").await.expect("stream info");
    assert!(info.contains("\"num_replicas\":3"), "{info}");

    let publish = |n: u64| {
        let mut request = tonic::Request::new(PublishRequest {
            topic: "seq".into(),
            payload: n.to_string().into_bytes(),
            metadata: Default::default(),
        });
        request.set_timeout(CALL);
        request
    };
    let (mut js_acked, mut core_acked) = (BTreeSet::new(), BTreeSet::new());
    let (mut js_failed, mut window) = (0, Duration::ZERO);
    let mut n = 0;
    while n < 200 {
        js.publish(publish(n))
            .await
            .expect("publish before the kill");
        js_acked.insert(n);
        core.publish(publish(n))
            .await
            .expect("core publish before the kill");
        core_acked.insert(n);
        n += 1;
    }
    cluster.node_mut(victim).expect("victim").kill();
    let killed = Instant::now();
    let mut streak = 0;
    while streak < 200 {
        assert!(
            killed.elapsed() < FAILOVER_LIMIT,
            "JetStream publishes still failing {FAILOVER_LIMIT:?} after the kill"
        );
        match js.publish(publish(n)).await {
            Ok(_) => {
                js_acked.insert(n);
                streak += 1;
            }
            Err(_) => {
                js_failed += 1;
                window = killed.elapsed();
                streak = 0;
            }
        }
        if core.publish(publish(n)).await.is_ok() {
            core_acked.insert(n);
        }
        n += 1;
    }
    let after = eventually(
        Duration::from_secs(30),
        "the pattern on another node",
        || {
            let proxy = &proxy;
            async move {
                let now = connected_to(proxy, "js").await;
                (port_of(&now) != victim).then_some(now)
            }
        },
    )
    .await;

    // Every acknowledged JetStream publish arrives (at least once).
    let missing = eventually(
        Duration::from_secs(60),
        "every acknowledged JetStream message",
        || {
            let seen = js_seen.clone();
            let acked = js_acked.clone();
            async move {
                let seen = seen.lock().unwrap();
                let missing: Vec<u64> = acked.difference(&seen).copied().collect();
                missing.is_empty().then_some(missing)
            }
        },
    )
    .await;
    assert!(missing.is_empty());
    // Core NATS is at most once: count what the switch cost.
    let core_received = core_seen.lock().unwrap().len();
    let core_lost = core_acked.difference(&core_seen.lock().unwrap()).count();
    eprintln!(
        "nats failover: node {before} killed, pattern moved to {after}; \
         JetStream: {js_failed} publishes failed over {window:?}, {} acknowledged, none lost; \
         core NATS: {} acknowledged, {core_received} received, {core_lost} lost",
        js_acked.len(),
        core_acked.len(),
    );
}

type Seen = std::sync::Arc<std::sync::Mutex<BTreeSet<u64>>>;

/// Collects the numbers a subscription delivers, in the background.
fn collect(mut stream: tonic::Streaming<prism_proto::pubsub::v1::Message>) -> Seen {
    let seen = Seen::default();
    let out = seen.clone();
    tokio::spawn(async move {
        while let Ok(Some(message)) = stream.message().await {
            if let Some(n) = std::str::from_utf8(&message.payload)
                .ok()
                .and_then(|s| s.parse().ok())
            {
                out.lock().unwrap().insert(n);
            }
        }
    });
    seen
}
