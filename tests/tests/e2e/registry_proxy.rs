//! What the proxy adds to the multicast registry, through a real proxy and a
//! real `prism-multicast-registry`: routing by namespace, refusals at the
//! proxy (its own payload limit below the pattern's), Receive streams that
//! end UNAVAILABLE when the pattern dies, the namespace is removed or the
//! proxy shuts down, and that
//! count as open streams for the listener bounds, and the latency
//! histograms, metrics and admin snapshot of a registry namespace.

use std::time::Duration;

use prism_proto::{
    admin::v1::{GetLatencyRequest, ReloadConfigRequest},
    json,
    lifecycle::v1::HealthStatus,
    registry::v1::{
        DeliveryStatus, EnumerateRequest, GetRequest, MulticastRequest, ReceiveRequest,
        RegisterRequest,
    },
};
use prism_tests::{
    Proxy, ProxyBuilder, assert_invalid_field, eventually, procs, registry::RegistryClient,
};
use serde_json::json;
use tonic::Code;

use crate::registry::{enumerate_all, multicast, next, receive, register};

const WAIT: Duration = Duration::from_secs(15);
/// The proxy's payload limit on `fleet`, below the pattern's own.
const PROXY_PAYLOAD: usize = 1000;

/// `fleet` and `yard` (registries on MemStore slots) and `default` (KeyValue).
async fn proxy() -> Proxy {
    let proxy = ProxyBuilder::new()
        .namespace(&format!(
            "{{name: fleet, pattern: multicast-registry, limits: {{max_value_bytes: {PROXY_PAYLOAD}}}, config: {{max_value_bytes: 65536}}}}"
        ))
        .namespace("{name: yard, pattern: multicast-registry}")
        .namespace("{name: default, pattern: keyvalue}")
        .start()
        .await;
    for ns in ["fleet", "yard", "default"] {
        proxy.wait_healthy(ns).await;
    }
    proxy
}

/// Multicasts `payload` to `identity` until its receiver (just attached)
/// has it: the receiver attaches at the pattern a moment after Receive
/// returns.
async fn send_until_delivered(reg: &mut RegistryClient, identity: &str, payload: &[u8]) {
    eventually(WAIT, "the receiver to be attached", || {
        let mut reg = reg.clone();
        async move {
            let response = multicast(&mut reg, json!({"id": identity}), payload).await;
            (response.delivered_count == 1).then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_routed_by_namespace_and_refused_at_the_proxy_per_rule() {
    let proxy = proxy().await;
    let mut fleet = proxy.registry("fleet").await;
    let mut yard = proxy.registry("yard").await;
    register(&mut fleet, "s1", json!({"id": "s1", "floor": 1}), 600).await;
    register(&mut yard, "y1", json!({"id": "y1"}), 600).await;
    assert_eq!(
        enumerate_all(&mut fleet, json!({})).await,
        ["s1".to_string()].into()
    );
    assert_eq!(
        enumerate_all(&mut yard, json!({})).await,
        ["y1".to_string()].into()
    );
    let elsewhere = yard
        .get(GetRequest {
            identity: "s1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), Code::NotFound, "{elsewhere:?}");

    let unknown = proxy
        .registry("nope")
        .await
        .get(GetRequest {
            identity: "s1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(
        unknown.message().contains("`nope`"),
        "{}",
        unknown.message()
    );
    let keyvalue = proxy
        .registry("default")
        .await
        .get(GetRequest {
            identity: "s1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(keyvalue.code(), Code::Unimplemented);
    assert_eq!(
        keyvalue.message(),
        "namespace `default` serves keyvalue, not multicast-registry"
    );

    // The pattern would take this payload; the proxy's limit is lower.
    let over = fleet
        .multicast(MulticastRequest {
            payload: vec![7; PROXY_PAYLOAD + 1],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_invalid_field(&over, "payload", "payload over the proxy's limit");
    assert!(
        over.message()
            .contains(&format!("limit of {PROXY_PAYLOAD} bytes (max_value_bytes)")),
        "{}",
        over.message()
    );
    let at_limit = fleet
        .multicast(MulticastRequest {
            payload: vec![7; PROXY_PAYLOAD],
            ..Default::default()
        })
        .await
        .expect("a payload at the limit")
        .into_inner();
    assert_eq!(at_limit.target_count, 1);

    let register_err = |identity: &str, ttl_seconds: i64, metadata: serde_json::Value| {
        let mut fleet = fleet.clone();
        let identity = identity.to_string();
        async move {
            fleet
                .register(RegisterRequest {
                    identity,
                    metadata: Some(json::to_struct(&metadata)),
                    ttl_seconds,
                })
                .await
                .unwrap_err()
        }
    };
    let cases = [
        (register_err("", 0, json!({})).await, "identity"),
        (register_err("x", -5, json!({})).await, "ttl_seconds"),
        (
            register_err("x", 0, (0..9).fold(json!(1), |v, _| json!([v]))).await,
            "metadata",
        ),
        (
            fleet
                .enumerate(EnumerateRequest {
                    filter: Some(json::to_struct(&json!({"floor": {"$near": 1}}))),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
            "filter.floor",
        ),
        (
            fleet
                .enumerate(EnumerateRequest {
                    limit: 10_001,
                    ..Default::default()
                })
                .await
                .unwrap_err(),
            "limit",
        ),
        (
            fleet
                .multicast(MulticastRequest {
                    timeout_ms: 60_001,
                    ..Default::default()
                })
                .await
                .unwrap_err(),
            "timeout_ms",
        ),
        (
            fleet
                .receive(ReceiveRequest {
                    identity: "a\u{0}b".into(),
                })
                .await
                .unwrap_err(),
            "identity",
        ),
    ];
    for (err, field) in cases {
        assert_invalid_field(&err, field, field);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_ends_unavailable_when_the_pattern_dies_and_works_after_the_restart() {
    let proxy = proxy().await;
    let mut fleet = proxy.registry("fleet").await;
    register(&mut fleet, "r1", json!({"id": "r1"}), 600).await;
    let mut inbox = receive(&mut fleet, "r1").await;
    send_until_delivered(&mut fleet, "r1", b"before").await;
    assert_eq!(next(&mut inbox).await.payload, b"before");

    let before = proxy.pattern("fleet").await;
    procs::signal(before.pid, libc::SIGKILL);
    let ended = tokio::time::timeout(WAIT, inbox.message())
        .await
        .expect("the stream ends within the wait")
        .expect_err("it ends with an error, not cleanly");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(ended.message().contains("fleet"), "{}", ended.message());

    proxy
        .wait_pattern("fleet", WAIT, "restarted", |p| {
            p.pid != before.pid
                && p.pid != 0
                && p.health
                    .as_ref()
                    .is_some_and(|h| h.status() == HealthStatus::Healthy)
        })
        .await;
    // MemStore slots start empty: the identity registers again, as a
    // heartbeat would, and a new Receive gets what is sent now.
    register(&mut fleet, "r1", json!({"id": "r1"}), 600).await;
    let mut again = receive(&mut fleet, "r1").await;
    send_until_delivered(&mut fleet, "r1", b"after").await;
    assert_eq!(next(&mut again).await.payload, b"after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_ends_unavailable_when_the_proxy_shuts_down() {
    let mut proxy = proxy().await;
    let mut fleet = proxy.registry("fleet").await;
    register(&mut fleet, "r1", json!({"id": "r1"}), 600).await;
    let mut inbox = receive(&mut fleet, "r1").await;
    send_until_delivered(&mut fleet, "r1", b"hello").await;
    assert_eq!(next(&mut inbox).await.payload, b"hello");
    proxy.signal(libc::SIGTERM);
    let ended = tokio::time::timeout(WAIT, inbox.message())
        .await
        .expect("the stream ends within the wait")
        .expect_err("it ends with an error, not cleanly");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(proxy.wait_exit(WAIT).await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_ends_unavailable_when_its_namespace_is_removed() {
    let proxy = Proxy::start_with_config(
        "watch_config: false\nnamespaces:\n  - {name: fleet, pattern: multicast-registry}\n  - {name: yard, pattern: multicast-registry}\n",
    )
    .await;
    proxy.wait_healthy("fleet").await;
    proxy.wait_healthy("yard").await;
    let mut fleet = proxy.registry("fleet").await;
    let mut yard = proxy.registry("yard").await;
    register(&mut fleet, "r1", json!({"id": "r1"}), 600).await;
    register(&mut yard, "r1", json!({"id": "r1"}), 600).await;
    let mut removed = receive(&mut fleet, "r1").await;
    let mut kept = receive(&mut yard, "r1").await;
    std::fs::write(
        proxy.config_path(),
        "watch_config: false\nnamespaces:\n  - {name: yard, pattern: multicast-registry}\n",
    )
    .unwrap();
    let changes = proxy
        .admin()
        .await
        .reload_config(ReloadConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changes.removed, ["fleet"]);
    let ended = tokio::time::timeout(WAIT, removed.message())
        .await
        .expect("the stream ends within the wait")
        .expect_err("it ends with an error, not cleanly");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(ended.message().contains("removed"), "{}", ended.message());
    send_until_delivered(&mut yard, "r1", b"kept").await;
    assert_eq!(next(&mut kept).await.payload, b"kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_receive_holds_an_open_stream_slot_and_outlives_the_idle_timeout() {
    let idle = Duration::from_millis(800);
    let proxy = Proxy::start_with_config(&format!(
        "listeners: {{max_open_streams: 2, idle_timeout_ms: {}}}\nnamespaces:\n  - {{name: fleet, pattern: multicast-registry}}\n",
        idle.as_millis()
    ))
    .await;
    proxy.wait_healthy("fleet").await;
    let mut fleet = proxy.registry("fleet").await;
    for id in ["a", "b"] {
        register(&mut fleet, id, json!({"id": id}), 600).await;
    }
    let mut a = receive(&mut proxy.registry("fleet").await, "a").await;
    let b = receive(&mut proxy.registry("fleet").await, "b").await;
    let full = fleet
        .get(GetRequest {
            identity: "a".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(full.code(), Code::ResourceExhausted, "{full:?}");
    assert!(
        full.message().contains("max_open_streams = 2"),
        "{}",
        full.message()
    );
    drop(b);
    eventually(WAIT, "a slot to free up", || {
        let mut fleet = fleet.clone();
        async move {
            fleet
                .get(GetRequest {
                    identity: "a".into(),
                })
                .await
                .ok()
        }
    })
    .await;

    // Quiet for longer than the idle timeout: the stream and its
    // connection stay.
    tokio::time::sleep(idle * 3).await;
    send_until_delivered(&mut fleet, "a", b"still here").await;
    assert_eq!(next(&mut a).await.payload, b"still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_metrics_and_the_admin_snapshot_show_a_registry_namespace() {
    let proxy = proxy().await;
    let mut fleet = proxy.registry("fleet").await;
    for i in 0..3 {
        register(
            &mut fleet,
            &format!("s{i}"),
            json!({"id": format!("s{i}")}),
            600,
        )
        .await;
    }
    let mut inbox = receive(&mut fleet, "s0").await;
    send_until_delivered(&mut fleet, "s0", b"one").await;
    assert_eq!(next(&mut inbox).await.payload, b"one");
    let response = multicast(&mut fleet, json!({}), b"all").await;
    assert_eq!(response.target_count, 3);
    let delivered = response
        .results
        .iter()
        .filter(|r| r.status() == DeliveryStatus::Delivered)
        .count();
    assert_eq!(delivered, 1, "{response:?}");

    let mut admin = proxy.admin().await;
    for operation in ["Register", "Multicast"] {
        let latency = admin
            .get_latency(GetLatencyRequest {
                namespace: "fleet".into(),
                operation: operation.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(latency.count >= 1, "{operation}: {latency:?}");
        assert!(
            latency.operations.iter().any(|o| o == "Register")
                && latency.operations.iter().any(|o| o == "Multicast"),
            "{:?}",
            latency.operations
        );
    }
    let register_count = admin
        .get_latency(GetLatencyRequest {
            namespace: "fleet".into(),
            operation: "Register".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(register_count, 3);

    let metrics = proxy.metrics().await;
    for needle in [
        r#"prism_requests_total{namespace="fleet",operation="Register",code="OK",outcome="ok"} 3"#,
        r#"prism_registry_receive_streams{namespace="fleet"} 1"#,
    ] {
        assert!(metrics.contains(needle), "{needle} in\n{metrics}");
    }

    // The pattern's health figures reach the admin snapshot within a few
    // health checks.
    let info = eventually(WAIT, "the registry's figures in the snapshot", || async {
        let info = proxy.pattern("fleet").await;
        let details = &info.health.as_ref()?.details;
        let count = |key: &str| details.get(key).and_then(|v| v.parse::<u64>().ok());
        let counted = count("multicasts") >= Some(2) && count("registry.identities") == Some(3);
        counted.then_some(info)
    })
    .await;
    assert_eq!(info.pattern, "multicast-registry");
    assert_eq!(info.backend, "memstore/memstore");
    let details = &info.health.unwrap().details;
    assert_eq!(details["registry.backend"], "memstore");
    assert_eq!(details["messaging.backend"], "memstore");
    assert_eq!(details["messaging.receivers"], "1");
    for key in ["delivered", "pending", "failed"] {
        assert!(details.contains_key(key), "{key} in {details:?}");
    }
}
