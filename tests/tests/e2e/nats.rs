//! The NATS pattern against a real `nats-server`, driven directly over gRPC
//! (lifecycle then PubSub, as the proxy does): core NATS and JetStream
//! delivery, acks and redelivery, slow subscribers, a NATS server that dies
//! and comes back, and trace context carried inside messages.

use std::{collections::HashMap, time::Duration};

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prism_proto::{
    lifecycle::v1::HealthStatus,
    pubsub::v1::{
        AckRequest, Message, PublishRequest, SubscribeRequest, UnsubscribeRequest,
        pub_sub_client::PubSubClient,
    },
};
use prism_tests::{NatsServer, eventually, otlp::OtlpReceiver, pattern::PatternProcess};
use serde_json::{Value, json};
use tonic::{Code, Streaming, transport::Channel};

/// Longest wait for one expected message.
const RECEIVE: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(15);

async fn pattern_with(nats: &NatsServer, config: Value, env: &[(&str, &str)]) -> PatternProcess {
    let mut config = config;
    config["url"] = json!(nats.url());
    PatternProcess::start("prism-nats", "events", config, env).await
}

async fn pattern(nats: &NatsServer, config: Value) -> PatternProcess {
    pattern_with(nats, config, &[]).await
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
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(err.message().starts_with(&format!("{field}: ")), "{err:?}");
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
    let err = pubsub
        .unsubscribe(UnsubscribeRequest {
            topic: "t".into(),
            subscriber_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("subscriber_id: "));
    assert_eq!(
        pattern.health().await.status(),
        HealthStatus::Healthy,
        "bad requests leave it serving"
    );
}

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

/// Kills nats-server under a running pattern and starts it again: health
/// leaves HEALTHY and comes back, the process stays the same, and delivery
/// resumes on the subscription opened before.
async fn survives_a_nats_restart(config: Value) {
    let mut nats = NatsServer::start().await;
    let pattern = pattern(&nats, config).await;
    let pid = pattern.pid();
    let mut pubsub = client(&pattern).await;
    let mut stream = subscribe(&mut pubsub, "t", "survivor", false).await;
    let id = publish(&mut pubsub, "t", b"before").await;
    assert_eq!(next(&mut stream).await.message_id, id);

    nats.kill();
    wait_health(&pattern, "health to leave HEALTHY", |s| {
        s != HealthStatus::Healthy
    })
    .await;
    let err = pubsub
        .publish(PublishRequest {
            topic: "t".into(),
            payload: b"down".to_vec(),
            metadata: HashMap::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");

    nats.restart().await;
    wait_health(&pattern, "HEALTHY again", |s| s == HealthStatus::Healthy).await;
    assert_eq!(pattern.pid(), pid, "the same process reconnected");
    let id = eventually(WAIT, "a publish after the restart", || {
        let mut pubsub = pubsub.clone();
        async move {
            pubsub
                .publish(PublishRequest {
                    topic: "t".into(),
                    payload: b"after".to_vec(),
                    metadata: HashMap::new(),
                })
                .await
                .ok()
                .map(|r| r.into_inner().message_id)
        }
    })
    .await;
    let m = next(&mut stream).await;
    assert_eq!(m.message_id, id, "delivery resumed on the old subscription");
    let health = pattern.health().await;
    assert!(
        health.details["connects"].parse::<u64>().unwrap() >= 2,
        "{health:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_subscriptions_survive_a_nats_restart() {
    survives_a_nats_restart(json!({"request_timeout_ms": 1000})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_subscriptions_survive_a_nats_restart() {
    survives_a_nats_restart(json!({"jetstream": true, "request_timeout_ms": 1000})).await;
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
async fn the_consumer_span_belongs_to_the_publishers_trace() {
    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let receiver = OtlpReceiver::start().await;
    let nats = NatsServer::start().await;
    let endpoint = receiver.endpoint();
    let pattern = pattern_with(
        &nats,
        json!({"jetstream": true}),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    )
    .await;
    let mut pubsub = client(&pattern).await;
    let mut stream = subscribe(&mut pubsub, "orders.*", "auditor", true).await;
    let mut request = tonic::Request::new(PublishRequest {
        topic: "orders.paid".into(),
        payload: b"secret-payload".to_vec(),
        metadata: HashMap::from([("tenant".to_string(), "secret-meta".to_string())]),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    let id = pubsub
        .publish(request)
        .await
        .unwrap()
        .into_inner()
        .message_id;
    let m = next(&mut stream).await;
    assert_eq!(m.message_id, id);
    assert!(
        m.traceparent.starts_with(&format!("00-{TRACE_ID}-")),
        "the delivery is in the publisher's trace: {}",
        m.traceparent
    );

    let spans = receiver
        .wait_trace(TRACE_ID, WAIT, |spans| {
            spans.iter().any(|s| s.kind == SpanKind::Consumer)
                && spans.iter().any(|s| s.kind == SpanKind::Producer)
        })
        .await;
    let server = spans
        .iter()
        .find(|s| s.kind == SpanKind::Server && s.name == "prism.pubsub.v1.PubSub/Publish")
        .expect("the pattern's server span");
    let producer = spans.iter().find(|s| s.kind == SpanKind::Producer).unwrap();
    let consumer = spans.iter().find(|s| s.kind == SpanKind::Consumer).unwrap();
    assert_eq!(producer.name, "orders.paid publish");
    assert_eq!(producer.parent_span_id, server.span_id);
    assert_eq!(consumer.name, "orders.paid receive");
    assert_eq!(consumer.parent_span_id, producer.span_id);
    assert_eq!(
        m.traceparent.split('-').nth(2),
        Some(consumer.span_id.as_str()),
        "Message.traceparent names the consumer span"
    );
    for (span, operation) in [(producer, "publish"), (consumer, "receive")] {
        assert_eq!(span.service, "prism-nats");
        assert_eq!(span.attr("messaging.system"), Some("nats"));
        assert_eq!(span.attr("messaging.destination.name"), Some("orders.paid"));
        assert_eq!(span.attr("messaging.operation.type"), Some(operation));
        assert_eq!(span.attr("messaging.message.id"), Some(id.as_str()));
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
