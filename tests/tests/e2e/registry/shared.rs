//! Registry behaviour that needs more than one process on the same
//! backends: two proxies sharing one Redis (and one NATS) agree on the
//! identities and deliver to receivers attached to the other; a JetStream
//! receiver that disconnects gets what was PENDING when it comes back; one
//! Multicast is one trace, down to each delivery's CONSUMER span.

use std::{collections::BTreeSet, time::Duration};

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prism_proto::{
    json,
    registry::v1::{DeliveryStatus, MulticastRequest},
};
use prism_tests::{NatsServer, Proxy, ProxyBuilder, RedisServer, otlp::OtlpReceiver};
use serde_json::json;

use super::{
    enumerate_all, envs, multicast, multicast_until_delivered, next, receive, register, statuses,
};

/// Two proxies with the same registry namespace `reg` on shared servers.
async fn two_proxies(registry: &str, messaging: &str) -> (Proxy, Proxy) {
    let ns = envs::namespace(envs::NS, registry, messaging, 1000);
    let a = ProxyBuilder::new().namespace(&ns).start().await;
    let b = ProxyBuilder::new().namespace(&ns).start().await;
    a.wait_healthy(envs::NS).await;
    b.wait_healthy(envs::NS).await;
    (a, b)
}

pub(crate) async fn two_proxies_agree_and_deliver_across(registry: &str, messaging: &str) {
    let (a, b) = two_proxies(registry, messaging).await;
    let mut on_a = envs::client(&a, envs::NS).await;
    let mut on_b = envs::client(&b, envs::NS).await;
    for i in 0..20 {
        let reg = if i % 2 == 0 { &mut on_a } else { &mut on_b };
        register(
            reg,
            &format!("d{i:02}"),
            json!({"i": i, "side": i % 2}),
            600,
        )
        .await;
    }
    let everyone: BTreeSet<String> = (0..20).map(|i| format!("d{i:02}")).collect();
    assert_eq!(enumerate_all(&mut on_a, json!({})).await, everyone);
    assert_eq!(enumerate_all(&mut on_b, json!({})).await, everyone);
    assert_eq!(
        enumerate_all(&mut on_a, json!({"side": 1})).await,
        enumerate_all(&mut on_b, json!({"side": 1})).await
    );

    // d00 receives through proxy A, d01 through proxy B; each proxy
    // multicasts to both.
    let mut r0 = receive(&mut on_a, "d00").await;
    let mut r1 = receive(&mut on_b, "d01").await;
    let filter = json!({"i": {"$in": [0, 1]}});
    for (name, reg) in [("a", &mut on_a), ("b", &mut on_b)] {
        let response = multicast_until_delivered(reg, filter.clone(), name.as_bytes(), 2).await;
        assert_eq!(response.target_count, 2, "{response:?}");
        for r in [&mut r0, &mut r1] {
            let mut got = next(r).await;
            // Earlier attempts of the same send may arrive first.
            while got.multicast_id != response.multicast_id {
                got = next(r).await;
            }
            assert_eq!(got.payload, name.as_bytes());
        }
    }
    // Unregistered through B, gone through A.
    on_b.unregister(prism_proto::registry::v1::UnregisterRequest {
        identity: "d05".into(),
    })
    .await
    .unwrap();
    assert!(!enumerate_all(&mut on_a, json!({})).await.contains("d05"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_proxies_on_redis_and_nats_agree_and_deliver_across() {
    let redis = RedisServer::start().await;
    let nats = NatsServer::start().await;
    two_proxies_agree_and_deliver_across(
        &format!("{{backend: redis, address: \"{}\"}}", redis.url()),
        &format!("{{backend: nats, url: \"{}\"}}", nats.url()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_proxies_on_redis_and_jetstream_agree_and_deliver_across() {
    let redis = RedisServer::start().await;
    let nats = NatsServer::start().await;
    two_proxies_agree_and_deliver_across(
        &format!("{{backend: redis, address: \"{}\"}}", redis.url()),
        &format!(
            "{{backend: nats, url: \"{}\", jetstream: true}}",
            nats.url()
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_proxies_on_one_redis_agree_and_deliver_across() {
    let redis = RedisServer::start().await;
    let slot = format!("{{backend: redis, address: \"{}\"}}", redis.url());
    two_proxies_agree_and_deliver_across(&slot, &slot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jetstream_receiver_that_reconnects_gets_what_was_pending() {
    let env = envs::redis_jetstream_env(ProxyBuilder::new()).await;
    let mut reg = env.client().await;
    register(&mut reg, "truck-7", json!({"fleet": "north"}), 600).await;
    let mut stream = receive(&mut reg, "truck-7").await;
    multicast_until_delivered(&mut reg, json!({"fleet": "north"}), b"while-attached", 1).await;
    assert_eq!(next(&mut stream).await.payload, b"while-attached");
    super::drain(&mut stream).await;
    drop(stream);

    // Detached: the next messages are stored, PENDING.
    let pending = super::eventually(Duration::from_secs(15), "the receiver to detach", || {
        let mut reg = reg.clone();
        async move {
            let response = multicast(&mut reg, json!({"fleet": "north"}), b"while-away").await;
            (statuses(&response)["truck-7"] == DeliveryStatus::Pending).then_some(response)
        }
    })
    .await;
    assert_eq!(pending.pending_count, 1);
    let second = multicast(&mut reg, json!({"fleet": "north"}), b"while-away-2").await;
    assert_eq!(second.pending_count, 1, "{second:?}");

    // Back: what was pending arrives, each once. (A message sent while the
    // last receiver's pull was still open at the server may come after later
    // ones: it went back to the inbox when that pull gave it back.)
    let mut stream = receive(&mut reg, "truck-7").await;
    let wanted = BTreeSet::from([pending.multicast_id.clone(), second.multicast_id.clone()]);
    let mut got = Vec::new();
    while !wanted.iter().all(|id| got.contains(id)) {
        let message = next(&mut stream).await;
        assert!(
            message.payload.starts_with(b"while-away"),
            "only what was pending: {:?}",
            message.payload
        );
        got.push(message.multicast_id);
    }
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "no duplicates: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_multicast_is_one_trace_down_to_each_delivery() {
    let otlp = OtlpReceiver::start().await;
    let proxy = ProxyBuilder::new()
        .namespace(&envs::namespace(
            envs::NS,
            "{backend: memstore}",
            "{backend: memstore}",
            1000,
        ))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp.endpoint())
        .start()
        .await;
    proxy.wait_healthy(envs::NS).await;
    let mut reg = envs::client(&proxy, envs::NS).await;
    register(&mut reg, "lamp-1", json!({"room": "hall"}), 600).await;
    register(&mut reg, "lamp-2", json!({"room": "hall"}), 600).await;
    let mut l1 = receive(&mut reg, "lamp-1").await;
    let mut l2 = receive(&mut reg, "lamp-2").await;
    let response = reg
        .multicast(MulticastRequest {
            filter: Some(json::to_struct(&json!({"room": "hall"}))),
            payload: b"on".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let trace_id = prism_tests::otlp::trace_id_header(response.metadata());
    let response = response.into_inner();
    assert_eq!(response.delivered_count, 2, "{response:?}");
    for stream in [&mut l1, &mut l2] {
        let message = next(stream).await;
        assert_eq!(
            message.traceparent.split('-').nth(1),
            Some(trace_id.as_str()),
            "the delivery carries the multicast's trace"
        );
    }
    let spans = otlp
        .wait_trace(&trace_id, Duration::from_secs(20), |spans| {
            spans
                .iter()
                .filter(|s| s.kind == SpanKind::Consumer)
                .count()
                >= 2
                && spans
                    .iter()
                    .any(|s| s.attr("prism.multicast.target_count").is_some())
                && spans.iter().any(|s| s.service == "prism-proxy")
        })
        .await;
    let pattern_span = spans
        .iter()
        .find(|s| s.attr("prism.multicast.target_count").is_some())
        .unwrap();
    assert_eq!(pattern_span.attr("prism.multicast.target_count"), Some("2"));
    assert_eq!(pattern_span.service, "prism-multicast-registry");
    let services: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    assert!(services.contains("prism-proxy"), "{services:?}");
    assert!(
        spans
            .iter()
            .filter(|s| s.kind == SpanKind::Consumer)
            .all(|s| s.service == "prism-multicast-registry"),
        "deliveries are the pattern's CONSUMER spans"
    );
}
