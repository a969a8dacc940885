//! The NATS pattern on a real `nats-server`. The shared PubSub suite runs
//! through the proxy on core NATS and on JetStream (the setups below); the
//! NATS-specific cases follow: through the proxy, a nats-server that dies
//! and comes back, and the consumer span in the publisher's trace; on the
//! pattern alone (lifecycle then PubSub over gRPC, as the proxy drives it),
//! what the proxy would hide: the pattern's own validation, drops,
//! backpressure, acks and redelivery.

use std::{collections::HashMap, time::Duration};

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prism_proto::{
    admin::v1::PatternState,
    lifecycle::v1::HealthStatus,
    pubsub::v1::{
        AckRequest, Message, PublishBatchRequest, PublishRequest, SubscribeRequest,
        UnsubscribeRequest, pub_sub_client::PubSubClient,
    },
};
use prism_tests::{
    NatsServer, Proxy, ProxyBuilder, assert_invalid_field, eventually, otlp::OtlpReceiver,
    pattern::PatternProcess,
};
use serde_json::{Value, json};
use tonic::{Code, Streaming, transport::Channel};

use crate::pubsub::{self as suite, NS, PubSubEnv, with_ps_namespace};

/// Longest wait for one expected message.
const RECEIVE: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(15);

/// Setup for the PubSub suite on core NATS (at most once).
pub(crate) async fn pubsub_core_env(builder: ProxyBuilder) -> PubSubEnv {
    nats_env(builder, false).await
}

/// Setup for the PubSub suite on JetStream (at least once, durable).
pub(crate) async fn pubsub_jetstream_env(builder: ProxyBuilder) -> PubSubEnv {
    nats_env(builder, true).await
}

async fn nats_env(builder: ProxyBuilder, jetstream: bool) -> PubSubEnv {
    let nats = NatsServer::start().await;
    let backend = format!(
        "backend: nats, config: {{url: \"{}\", jetstream: {jetstream}}}",
        nats.url()
    );
    let proxy = with_ps_namespace(builder, &backend).start().await;
    let info = proxy.wait_healthy(NS).await;
    assert_eq!(
        info.health.unwrap().details["jetstream"],
        if jetstream { "on" } else { "off" }
    );
    PubSubEnv {
        proxy,
        durable: jetstream,
        _backend: Some(Box::new(nats)),
    }
}

/// A proxy serving `ps` on `nats` with `config` (YAML flow mapping body),
/// polling health often and never restarting an UNHEALTHY pattern, so the
/// pattern has to heal by itself.
async fn patient_proxy(nats: &NatsServer, config: &str) -> Proxy {
    let backend = format!(
        "backend: nats, config: {{url: \"{}\", {config}}}",
        nats.url()
    );
    let proxy = with_ps_namespace(
        ProxyBuilder::new()
            .supervisor("health_interval_ms", "100")
            .supervisor("unhealthy_threshold", "1000"),
        &backend,
    )
    .start()
    .await;
    proxy.wait_healthy(NS).await;
    proxy
}

async fn health_through(proxy: &Proxy) -> HealthStatus {
    let info = proxy.pattern(NS).await;
    info.health.map(|h| h.status()).unwrap_or_default()
}

/// Kills nats-server under a running pattern and starts it again: health
/// leaves HEALTHY and comes back, the proxy never restarts the process, and
/// delivery resumes on the subscription opened before.
async fn heals_after_a_nats_restart(jetstream: bool) {
    let mut nats = NatsServer::start().await;
    let proxy = patient_proxy(
        &nats,
        &format!("jetstream: {jetstream}, request_timeout_ms: 1000"),
    )
    .await;
    let pid = proxy.pattern(NS).await.pid;
    let env = PubSubEnv {
        proxy,
        durable: jetstream,
        _backend: None,
    };
    let mut ps = env.client().await;
    let mut stream = suite::subscribe(&mut ps, "heal", "survivor").await;
    let id = suite::publish(&mut ps, "heal", b"before").await;
    assert_eq!(suite::next(&mut stream).await.message_id, id);

    nats.kill();
    let info = env
        .proxy
        .wait_pattern(NS, WAIT, "UNHEALTHY while NATS is down", |p| {
            p.health
                .as_ref()
                .is_some_and(|h| h.status() == HealthStatus::Unhealthy)
        })
        .await;
    assert!(
        info.health.unwrap().message.contains("reconnecting"),
        "health says why"
    );
    let err = ps
        .publish(PublishRequest {
            topic: "heal".into(),
            payload: b"down".to_vec(),
            metadata: HashMap::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");

    nats.restart().await;
    let info = env.proxy.wait_healthy(NS).await;
    assert_eq!(info.pid, pid, "the same process reconnected by itself");
    assert_eq!(info.restart_count, 0);
    assert_eq!(info.state(), PatternState::Running);
    let id = eventually(WAIT, "a publish after the restart", || {
        let mut ps = ps.clone();
        async move {
            ps.publish(PublishRequest {
                topic: "heal".into(),
                payload: b"after".to_vec(),
                metadata: HashMap::new(),
            })
            .await
            .ok()
            .map(|r| r.into_inner().message_id)
        }
    })
    .await;
    let m = suite::next(&mut stream).await;
    assert_eq!(m.message_id, id, "delivery resumed on the old subscription");
    assert_eq!(m.payload, b"after");
    assert_eq!(health_through(&env.proxy).await, HealthStatus::Healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_nats_heals_after_nats_restarts() {
    heals_after_a_nats_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_heals_after_nats_restarts() {
    heals_after_a_nats_restart(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_span_is_a_child_of_the_producer_span() {
    let receiver = OtlpReceiver::start().await;
    let nats = NatsServer::start().await;
    let backend = format!(
        "backend: nats, config: {{url: \"{}\", jetstream: true}}",
        nats.url()
    );
    let proxy = with_ps_namespace(
        ProxyBuilder::new()
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint())
            .env("OTEL_BSP_SCHEDULE_DELAY", "50"),
        &backend,
    )
    .start()
    .await;
    proxy.wait_healthy(NS).await;
    let env = PubSubEnv {
        proxy,
        durable: true,
        _backend: None,
    };
    let mut ps = env.client().await;
    let mut stream = suite::subscribe(&mut ps, "orders.*", "auditor").await;
    let response = ps
        .publish(PublishRequest {
            topic: "orders.paid".into(),
            payload: b"secret-payload".to_vec(),
            metadata: HashMap::from([("tenant".to_string(), "secret-meta".to_string())]),
        })
        .await
        .unwrap();
    let trace_id = prism_tests::otlp::trace_id_header(response.metadata());
    let id = response.into_inner().message_id;
    let m = suite::next(&mut stream).await;
    assert_eq!(m.message_id, id);

    let spans = receiver
        .wait_trace(&trace_id, WAIT, |spans| {
            spans.iter().any(|s| s.kind == SpanKind::Consumer)
                && spans.iter().any(|s| s.kind == SpanKind::Producer)
                && spans
                    .iter()
                    .any(|s| s.kind == SpanKind::Server && s.service == "prism-nats")
        })
        .await;
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server && s.service == "prism-nats")
        .unwrap();
    let producer = spans.iter().find(|s| s.kind == SpanKind::Producer).unwrap();
    let consumer = spans.iter().find(|s| s.kind == SpanKind::Consumer).unwrap();
    assert_eq!(server.name, "prism.pubsub.v1.PubSub/Publish");
    assert_eq!(server.attr("prism.namespace"), Some(NS));
    assert_eq!(producer.name, "orders.paid publish");
    assert_eq!(producer.parent_span_id, server.span_id);
    assert_eq!(consumer.name, "orders.paid receive");
    assert_eq!(
        consumer.parent_span_id, producer.span_id,
        "the subscriber's span continues the publisher's"
    );
    assert_eq!(consumer.trace_id, trace_id);
    let parts: Vec<&str> = m.traceparent.split('-').collect();
    assert_eq!(
        (parts[1], parts[2]),
        (trace_id.as_str(), consumer.span_id.as_str()),
        "Message.traceparent names the consumer span"
    );
    for (span, operation) in [(producer, "publish"), (consumer, "receive")] {
        assert_eq!(span.service, "prism-nats");
        assert_eq!(span.attr("messaging.system"), Some("nats"));
        assert_eq!(span.attr("messaging.destination.name"), Some("orders.paid"));
        assert_eq!(span.attr("messaging.operation.type"), Some(operation));
        assert_eq!(span.attr("messaging.message.id"), Some(id.as_str()));
    }

    // A batch: one PRODUCER span for all of it, each delivery a child of it.
    let paid = |n: u8| PublishRequest {
        topic: "orders.paid".into(),
        payload: vec![n],
        metadata: HashMap::new(),
    };
    let response = ps
        .publish_batch(PublishBatchRequest {
            messages: vec![paid(1), paid(2)],
        })
        .await
        .unwrap();
    let trace_id = prism_tests::otlp::trace_id_header(response.metadata());
    let ids = response.into_inner().message_ids;
    for id in &ids {
        assert_eq!(&suite::next(&mut stream).await.message_id, id);
    }
    // A CONSUMER span covers the messages read in one go that carry the
    // same context: one or two spans here, covering both messages.
    let covered = |spans: &[prism_tests::otlp::ReceivedSpan]| -> usize {
        spans
            .iter()
            .filter(|s| s.kind == SpanKind::Consumer)
            .map(|s| {
                s.attr("messaging.batch.message_count")
                    .map_or(1, |n| n.parse().expect("a count"))
            })
            .sum()
    };
    let spans = receiver
        .wait_trace(&trace_id, WAIT, |spans| {
            covered(spans) == 2
                && spans.iter().any(|s| s.kind == SpanKind::Producer)
                && spans
                    .iter()
                    .any(|s| s.kind == SpanKind::Server && s.service == "prism-nats")
        })
        .await;
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server && s.service == "prism-nats")
        .unwrap();
    assert_eq!(server.name, "prism.pubsub.v1.PubSub/PublishBatch");
    let producers: Vec<_> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Producer)
        .collect();
    assert_eq!(producers.len(), 1, "one PRODUCER span per batch");
    let producer = producers[0];
    assert_eq!(producer.name, "orders.paid publish");
    assert_eq!(producer.parent_span_id, server.span_id);
    assert_eq!(producer.attr("messaging.batch.message_count"), Some("2"));
    assert_eq!(
        producer.attr("messaging.destination.name"),
        Some("orders.paid")
    );
    assert_eq!(covered(&spans), 2, "every message under a CONSUMER span");
    // A span of one message names it; a span of both counts them and names
    // neither, since one id would not say which messages it covers.
    for consumer in spans.iter().filter(|s| s.kind == SpanKind::Consumer) {
        assert_eq!(consumer.parent_span_id, producer.span_id);
        match consumer.attr("messaging.batch.message_count") {
            Some(_) => assert_eq!(consumer.attr("messaging.message.id"), None, "{consumer:?}"),
            None => {
                let id = consumer.attr("messaging.message.id").unwrap();
                assert!(ids.iter().any(|sent| sent == id), "{id} is not in {ids:?}");
            }
        }
    }

    for span in receiver.spans() {
        for value in span.attributes.values() {
            assert!(
                !value.contains("secret"),
                "payload or metadata leaked into {span:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_url_fails_the_namespace_but_a_dead_server_does_not() {
    let mut nats = NatsServer::start().await;
    nats.kill();
    let proxy = ProxyBuilder::new()
        .supervisor("unhealthy_threshold", "1000")
        .namespace("{name: broken, pattern: pubsub, backend: nats, config: {url: \"http://127.0.0.1:4222\"}}")
        .namespace(&format!(
            "{{name: waiting, pattern: pubsub, backend: nats, config: {{url: \"{}\", request_timeout_ms: 200}}}}",
            nats.url()
        ))
        .start()
        .await;
    let broken = proxy
        .wait_pattern("broken", WAIT, "FAILED", |p| {
            p.state() == PatternState::Failed
        })
        .await;
    assert!(broken.last_error.contains("url"), "{}", broken.last_error);
    assert_eq!(
        broken.restart_count, 1,
        "a rejected config is FAILED at once, then retried only at the capped backoff"
    );

    let waiting = proxy
        .wait_pattern("waiting", WAIT, "RUNNING and UNHEALTHY", |p| {
            p.state() == PatternState::Running
                && p.health
                    .as_ref()
                    .is_some_and(|h| h.status() == HealthStatus::Unhealthy)
        })
        .await;
    nats.restart().await;
    let healed = proxy.wait_healthy("waiting").await;
    assert_eq!(healed.pid, waiting.pid, "it connected once NATS was up");
}

// The pattern on its own.

/// `prism-nats` on its own, initialized with `config` on `nats` and started.
async fn pattern(nats: &NatsServer, mut config: Value) -> PatternProcess {
    config["url"] = json!(nats.url());
    PatternProcess::start("prism-nats", "events", config, &[]).await
}

async fn client(pattern: &PatternProcess) -> PubSubClient<Channel> {
    PubSubClient::new(pattern.channel().await)
}

async fn publish(client: &mut PubSubClient<Channel>, topic: &str, payload: &[u8]) -> String {
    client
        .publish(PublishRequest {
            topic: topic.into(),
            payload: payload.to_vec(),
            metadata: HashMap::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("publish to {topic}: {e}"))
        .into_inner()
        .message_id
}

async fn subscribe(
    client: &mut PubSubClient<Channel>,
    topic: &str,
    subscriber_id: &str,
    manual_ack: bool,
) -> Streaming<Message> {
    client
        .subscribe(SubscribeRequest {
            topic: topic.into(),
            subscriber_id: subscriber_id.into(),
            manual_ack,
        })
        .await
        .unwrap_or_else(|e| panic!("subscribe to {topic}: {e}"))
        .into_inner()
}

async fn next(stream: &mut Streaming<Message>) -> Message {
    tokio::time::timeout(RECEIVE, stream.message())
        .await
        .expect("a message within the deadline")
        .expect("the stream is healthy")
        .expect("the stream is still open")
}

/// Waits until the pattern reports `status`.
async fn wait_health(pattern: &PatternProcess, what: &str, check: impl Fn(HealthStatus) -> bool) {
    eventually(WAIT, what, || async {
        check(pattern.health().await.status()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_delivers_in_order_with_ids_metadata_and_wildcards() {
    let nats = NatsServer::start().await;
    let pattern = pattern(&nats, json!({})).await;
    assert_eq!(pattern.metadata.interfaces, ["prism.pubsub.v1.PubSub"]);
    assert!(!pattern.metadata.capabilities.contains(&"ack".to_string()));
    let mut pubsub = client(&pattern).await;
    let mut star = subscribe(&mut pubsub, "orders.*", "star", false).await;
    let mut tail = subscribe(&mut pubsub, "orders.>", "", false).await;

    let before = chrono_ms();
    let mut ids = Vec::new();
    for i in 0..10 {
        let response = pubsub
            .publish(PublishRequest {
                topic: "orders.created".into(),
                payload: vec![i, 0x00, 0xFF],
                metadata: HashMap::from([("content-type".to_string(), "x/y".to_string())]),
            })
            .await
            .unwrap();
        ids.push(response.into_inner().message_id);
    }
    publish(&mut pubsub, "orders.eu.created", b"deep").await;

    for (i, id) in ids.iter().enumerate() {
        let m = next(&mut star).await;
        assert_eq!(&m.message_id, id, "same id, in publish order");
        assert_eq!(m.payload, vec![i as u8, 0x00, 0xFF]);
        assert_eq!(m.topic, "orders.created");
        assert_eq!(m.metadata["content-type"], "x/y");
        assert_eq!(
            m.metadata.len(),
            1,
            "no internal headers leak: {:?}",
            m.metadata
        );
        assert!(m.timestamp_ms >= before && m.timestamp_ms <= chrono_ms());
        assert_eq!(m.delivery_attempt, 1);
        assert_eq!(m.subscriber_id, "star");
    }
    for id in &ids {
        let m = next(&mut tail).await;
        assert_eq!(&m.message_id, id);
        assert!(
            m.subscriber_id.starts_with("sub-"),
            "the server picked an id"
        );
    }
    assert_eq!(
        next(&mut tail).await.topic,
        "orders.eu.created",
        "`>` spans tokens"
    );

    let health = pattern.health().await;
    assert_eq!(health.status(), HealthStatus::Healthy, "{health:?}");
    assert_eq!(health.details["jetstream"], "off");
    assert_eq!(health.details["subscriptions"], "2");
    assert_eq!(health.details["server"], nats.url());
    assert!(health.details["out_msgs"].parse::<u64>().unwrap() >= 11);
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_invalid_argument_naming_the_field() {
    let nats = NatsServer::start().await;
    let pattern = pattern(&nats, json!({"max_payload_bytes": 1000})).await;
    let mut pubsub = client(&pattern).await;
    let bad_publish = |topic: &str, payload: usize, meta: &[(&str, &str)]| PublishRequest {
        topic: topic.into(),
        payload: vec![1; payload],
        metadata: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    for (request, field) in [
        (bad_publish("", 1, &[]), "topic"),
        (bad_publish("a b", 1, &[]), "topic"),
        (bad_publish("orders.*", 1, &[]), "topic"),
        (bad_publish(&"t".repeat(300), 1, &[]), "topic"),
        (bad_publish("t", 1001, &[]), "payload"),
        (
            bad_publish("t", 1, &[("prism-message-id", "x")]),
            "metadata",
        ),
        (bad_publish("t", 1, &[("k", "a\nb")]), "metadata"),
    ] {
        let err = pubsub.publish(request).await.unwrap_err();
        assert_invalid_field(&err, field, field);
    }
    let err = pubsub
        .publish(bad_publish("t", 1001, &[]))
        .await
        .unwrap_err();
    assert!(
        err.message().contains("1000"),
        "the limit is named: {err:?}"
    );

    let err = pubsub
        .subscribe(SubscribeRequest {
            topic: "a.>.b".into(),
            subscriber_id: String::new(),
            manual_ack: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = pubsub
        .subscribe(SubscribeRequest {
            topic: "t".into(),
            subscriber_id: "s".into(),
            manual_ack: true,
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unimplemented,
        "core NATS has no acks: {err:?}"
    );
    let err = pubsub
        .ack(AckRequest {
            topic: "t".into(),
            subscriber_id: "s".into(),
            message_ids: vec!["x".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    crate::validation::an_empty_subscriber_id_is_refused(&mut pubsub).await;
    assert_eq!(
        pattern.health().await.status(),
        HealthStatus::Healthy,
        "bad requests leave it serving"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_pattern_refuses_publishes_nothing() {
    let nats = NatsServer::start().await;
    // Above the NATS server's own max_payload (1 MiB by default), so both
    // limits can bite.
    let pattern = pattern(&nats, json!({"max_payload_bytes": 2 * MIB})).await;
    let mut pubsub = client(&pattern).await;
    let mut stream = subscribe(&mut pubsub, "t", "s", false).await;
    let message = |payload: usize| PublishRequest {
        topic: "t".into(),
        payload: vec![1; payload],
        metadata: HashMap::new(),
    };
    for (messages, starts, names) in [
        (vec![], "messages: ", "message"),
        (vec![message(1); 1001], "messages: ", "limit of 1000"),
        (
            vec![message(1), message(1), message(2 * MIB + 1)],
            "messages[2].payload: ",
            "max_payload_bytes",
        ),
        (
            vec![message(1), message(MIB + 1), message(1)],
            "messages[1].payload: ",
            "the NATS server's max_payload",
        ),
    ] {
        let err = pubsub
            .publish_batch(PublishBatchRequest { messages })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().starts_with(starts), "{}", err.message());
        assert!(err.message().contains(names), "{}", err.message());
    }
    let marker = publish(&mut pubsub, "t", b"marker").await;
    assert_eq!(
        next(&mut stream).await.message_id,
        marker,
        "nothing of a refused batch went out"
    );
    let ids = pubsub
        .publish_batch(PublishBatchRequest {
            messages: vec![message(1), message(2)],
        })
        .await
        .unwrap()
        .into_inner()
        .message_ids;
    for id in ids {
        assert_eq!(next(&mut stream).await.message_id, id);
    }
}

const MIB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribing_or_cancelling_stops_delivery() {
    let nats = NatsServer::start().await;
    let pattern = pattern(&nats, json!({})).await;
    let mut pubsub = client(&pattern).await;
    let mut kept = subscribe(&mut pubsub, "t", "kept", false).await;
    let mut gone = subscribe(&mut pubsub, "t", "gone", false).await;
    let cancelled = subscribe(&mut pubsub, "t", "cancelled", false).await;
    drop(cancelled);

    let unsubscribed = pubsub
        .unsubscribe(UnsubscribeRequest {
            topic: "t".into(),
            subscriber_id: "gone".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .unsubscribed;
    assert!(unsubscribed);
    let end = tokio::time::timeout(Duration::from_millis(500), gone.message())
        .await
        .expect("the stream ends within 500 ms");
    assert!(matches!(end, Ok(None)), "{end:?}");

    eventually(WAIT, "the cancelled stream to be forgotten", || async {
        (pattern.health().await.details["subscriptions"] == "1").then_some(())
    })
    .await;
    let id = publish(&mut pubsub, "t", b"after").await;
    assert_eq!(next(&mut kept).await.message_id, id);
    let again = pubsub
        .unsubscribe(UnsubscribeRequest {
            topic: "t".into(),
            subscriber_id: "gone".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .unsubscribed;
    assert!(!again, "nothing left to end");
}

/// Big enough that a few of them fill the HTTP/2 buffers in front of an
/// idle subscriber, so the pattern's own buffer fills next.
const BIG: usize = 100 * 1024;

fn numbered(i: u32) -> Vec<u8> {
    let mut payload = vec![0; BIG];
    payload[..4].copy_from_slice(&i.to_be_bytes());
    payload
}

fn number(m: &Message) -> u32 {
    u32::from_be_bytes(m.payload[..4].try_into().unwrap())
}

fn detail(health: &prism_proto::lifecycle::v1::HealthCheckResponse, key: &str) -> u64 {
    health.details[key].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_core_subscriber_loses_messages_counted_without_holding_others() {
    const N: u32 = 150;
    let nats = NatsServer::start().await;
    let pattern = pattern(&nats, json!({"subscriber_buffer": 4})).await;
    let mut pubsub = client(&pattern).await;
    // Each subscriber on its own connection, as separate clients would be.
    let mut slow = subscribe(&mut client(&pattern).await, "t", "slow", false).await;
    let mut fast = subscribe(&mut client(&pattern).await, "t", "fast", false).await;
    // In lockstep: the fast one has each message before the next is sent,
    // while the slow one reads nothing.
    for i in 0..N {
        publish(&mut pubsub, "t", &numbered(i)).await;
        assert_eq!(
            number(&next(&mut fast).await),
            i,
            "the fast one gets everything"
        );
    }

    let health = eventually(
        WAIT,
        "both subscriptions to have taken every message",
        || async {
            let health = pattern.health().await;
            (detail(&health, "delivered") + detail(&health, "dropped") == 2 * u64::from(N))
                .then_some(health)
        },
    )
    .await;
    assert_eq!(health.status(), HealthStatus::Degraded, "{health:?}");
    let dropped = detail(&health, "dropped");
    assert!(dropped > 0, "{health:?}");

    let mut reported = 0;
    let mut last = None;
    for _ in 0..(u64::from(N) - dropped) {
        let m = next(&mut slow).await;
        let n = number(&m);
        assert!(last.is_none_or(|l| n > l), "order is kept across drops");
        last = Some(n);
        reported += m.dropped_before;
    }
    // Drops after the last delivery are reported on the next message.
    publish(&mut pubsub, "t", b"marker").await;
    let marker = next(&mut slow).await;
    assert_eq!(marker.payload, b"marker");
    assert_eq!(
        reported + marker.dropped_before,
        dropped,
        "every drop is reported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_acks_and_backpressure_keep_every_message() {
    let nats = NatsServer::start().await;
    let pattern = pattern(&nats, json!({"jetstream": true, "subscriber_buffer": 2})).await;
    for capability in ["ack", "durable"] {
        assert!(
            pattern
                .metadata
                .capabilities
                .contains(&capability.to_string())
        );
    }
    let mut pubsub = client(&pattern).await;
    let mut stream = subscribe(&mut client(&pattern).await, "jobs.*", "worker", true).await;
    let mut ids = Vec::new();
    for i in 0..50u32 {
        ids.push(publish(&mut pubsub, "jobs.new", &numbered(i)).await);
    }
    eventually(WAIT, "a full buffer to show as DEGRADED", || async {
        let health = pattern.health().await;
        (health.status() == HealthStatus::Degraded).then_some(())
    })
    .await;
    let mut received = Vec::new();
    for _ in 0..50 {
        let m = next(&mut stream).await;
        assert_eq!(m.dropped_before, 0);
        assert_eq!(m.delivery_attempt, 1);
        received.push(m.message_id);
    }
    assert_eq!(received, ids, "all of them, in order, nothing dropped");
    let health = pattern.health().await;
    assert_eq!(health.details["pending_acks"], "50", "{health:?}");
    assert_eq!(health.details["stream"], "PRISM_EVENTS");

    let acked = pubsub
        .ack(AckRequest {
            topic: "jobs.*".into(),
            subscriber_id: "worker".into(),
            message_ids: [ids.clone(), vec!["unknown".into()]].concat(),
        })
        .await
        .unwrap()
        .into_inner()
        .acked;
    assert_eq!(acked, 50, "unknown ids are not counted");
    let again = pubsub
        .ack(AckRequest {
            topic: "jobs.*".into(),
            subscriber_id: "worker".into(),
            message_ids: ids.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .acked;
    assert_eq!(again, 0, "an id is acknowledged once");
    wait_health(&pattern, "HEALTHY once drained", |s| {
        s == HealthStatus::Healthy
    })
    .await;
    assert_eq!(pattern.health().await.details["pending_acks"], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_redelivers_unacked_messages_when_the_subscriber_returns() {
    let nats = NatsServer::start().await;
    // A long ack_wait: a quick redelivery proves the dropped stream gave the
    // message back at once.
    let pattern = pattern(&nats, json!({"jetstream": true, "ack_wait_ms": 60000})).await;
    let mut pubsub = client(&pattern).await;
    let mut first = subscribe(&mut pubsub, "jobs", "worker", true).await;
    let id = publish(&mut pubsub, "jobs", b"do it").await;
    let m = next(&mut first).await;
    assert_eq!(
        (m.message_id.as_str(), m.delivery_attempt),
        (id.as_str(), 1)
    );
    drop(first);

    let mut second = subscribe(&mut pubsub, "jobs", "worker", true).await;
    let again = next(&mut second).await;
    assert_eq!(again.message_id, id);
    assert_eq!(again.payload, b"do it");
    assert!(again.delivery_attempt >= 2, "{again:?}");
    let acked = pubsub
        .ack(AckRequest {
            topic: "jobs".into(),
            subscriber_id: "worker".into(),
            message_ids: vec![id.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .acked;
    assert_eq!(acked, 1);
    drop(second);

    // Acknowledged: not delivered again; the durable place is kept.
    let later = publish(&mut pubsub, "jobs", b"next").await;
    let mut third = subscribe(&mut pubsub, "jobs", "worker", true).await;
    let m = next(&mut third).await;
    assert_eq!(
        m.message_id, later,
        "published while away, delivered on return"
    );

    // Unsubscribe forgets the place: what is published meanwhile is not kept.
    assert!(
        pubsub
            .unsubscribe(UnsubscribeRequest {
                topic: "jobs".into(),
                subscriber_id: "worker".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .unsubscribed
    );
    publish(&mut pubsub, "jobs", b"nobody").await;
    let mut fresh = subscribe(&mut pubsub, "jobs", "worker", true).await;
    let newest = publish(&mut pubsub, "jobs", b"newest").await;
    assert_eq!(next(&mut fresh).await.message_id, newest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_down_at_start_is_waited_for() {
    let mut nats = NatsServer::start().await;
    nats.kill();
    let pattern = pattern(&nats, json!({"jetstream": true, "request_timeout_ms": 500})).await;
    wait_health(&pattern, "UNHEALTHY while NATS is away", |s| {
        s == HealthStatus::Unhealthy
    })
    .await;
    let mut pubsub = client(&pattern).await;
    let err = pubsub
        .subscribe(SubscribeRequest {
            topic: "t".into(),
            subscriber_id: "s".into(),
            manual_ack: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);

    nats.restart().await;
    wait_health(&pattern, "HEALTHY once NATS is up", |s| {
        s == HealthStatus::Healthy
    })
    .await;
    let mut stream = subscribe(&mut pubsub, "t", "s", false).await;
    let id = publish(&mut pubsub, "t", b"x").await;
    assert_eq!(next(&mut stream).await.message_id, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_on_a_server_without_it_is_degraded_and_unavailable() {
    let nats = NatsServer::start_without_jetstream().await;
    let pattern = pattern(&nats, json!({"jetstream": true})).await;
    let mut pubsub = client(&pattern).await;
    let err = pubsub
        .publish(PublishRequest {
            topic: "t".into(),
            payload: b"x".to_vec(),
            metadata: HashMap::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("JetStream"), "{err:?}");
    let health = pattern.health().await;
    assert_eq!(health.status(), HealthStatus::Degraded, "{health:?}");
    assert!(health.message.contains("PRISM_EVENTS"), "{health:?}");
}
