//! The PubSub suite of ACCEPTANCE.md, written once. A backend joins by giving
//! a setup function that starts a proxy whose namespace `ps` is served by it
//! (see `memstore::pubsub_env`), then `pubsub_suite!(name, setup)`. Cases
//! that need a capability the backend lacks say so and return early.

use std::{any::Any, collections::HashMap, time::Duration};

use prism_proto::{
    admin::v1::RestartPatternRequest,
    keyvalue::v1::GetRequest,
    pubsub::v1::{
        AckRequest, Message, PublishBatchRequest, PublishRequest, SubscribeRequest,
        UnsubscribeRequest, pub_sub_client::PubSubClient,
    },
};
use prism_tests::{Proxy, ProxyBuilder, assert_invalid_field, eventually, proxy::NamespaceHeader};
use tokio::time::Instant;
use tonic::{Code, Streaming, service::interceptor::InterceptedService, transport::Channel};

/// The namespace every suite case uses.
pub(crate) const NS: &str = "ps";
/// The payload limit the suite configures on `ps`.
pub(crate) const MAX_PAYLOAD: usize = 64 * 1024;
/// The per-subscriber buffer the suite configures: small so slowness shows
/// fast, yet above [`BATCH`]. A batch reaches the proxy as one burst, and an
/// at-most-once subscriber's buffer takes a burst whole or drops its oldest
/// messages, however fast the subscriber reads.
pub(crate) const SUBSCRIBER_BUFFER: usize = 64;
/// The size of the batch the suite publishes and expects whole.
const BATCH: usize = 50;
const _: () = assert!(BATCH <= SUBSCRIBER_BUFFER);
const WAIT: Duration = Duration::from_secs(10);

pub(crate) type PsClient = PubSubClient<InterceptedService<Channel, NamespaceHeader>>;

/// A proxy serving namespace `ps`, and whatever backend server it needs.
pub(crate) struct PubSubEnv {
    pub proxy: Proxy,
    /// Backend delivers at least once, with durable subscribers.
    pub durable: bool,
    pub _backend: Option<Box<dyn Any + Send>>,
}

impl PubSubEnv {
    pub(crate) async fn client(&self) -> PsClient {
        PubSubClient::with_interceptor(self.proxy.channel().await, NamespaceHeader::new(NS))
            .max_decoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
    }
}

/// A builder with the suite's `ps` namespace on the given backend.
pub(crate) fn with_ps_namespace(builder: ProxyBuilder, backend_and_config: &str) -> ProxyBuilder {
    builder.namespace(&format!(
        "{{name: {NS}, pattern: pubsub, {backend_and_config}, limits: {{max_value_bytes: {MAX_PAYLOAD}, subscriber_buffer: {SUBSCRIBER_BUFFER}}}}}"
    ))
}

macro_rules! pubsub_suite {
    ($name:ident, $setup:path) => {
        mod $name {
            use prism_tests::ProxyBuilder;

            use super::pubsub as suite;

            macro_rules! case {
                ($case:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        suite::$case(&$setup(ProxyBuilder::new()).await).await;
                    }
                };
            }

            case!(subscriber_sees_id_payload_metadata_and_timestamp);
            case!(fan_out_to_three_subscribers);
            case!(fan_out_to_a_hundred_subscribers);
            case!(order_per_publisher_is_kept);
            case!(cancelling_the_stream_stops_delivery);
            case!(unsubscribe_stops_delivery);
            case!(a_slow_subscriber_never_blocks_the_others);
            case!(wildcards_match_tokens);
            case!(bad_topics_and_payloads_are_invalid);
            case!(bad_metadata_and_subscriber_ids_are_invalid);
            case!(a_batch_arrives_complete_in_order_with_its_ids);
            case!(an_invalid_batch_publishes_nothing);
            case!(the_delivery_is_in_the_publishers_trace);
            case!(subscriptions_survive_a_pattern_restart);
            case!(unacknowledged_messages_are_redelivered);
            case!(keyvalue_calls_on_a_pubsub_namespace_are_unimplemented);
        }
    };
}

pub(crate) async fn publish(ps: &mut PsClient, topic: &str, payload: &[u8]) -> String {
    ps.publish(PublishRequest {
        topic: topic.into(),
        payload: payload.to_vec(),
        metadata: HashMap::new(),
    })
    .await
    .unwrap_or_else(|e| panic!("publish to {topic}: {e}"))
    .into_inner()
    .message_id
}

pub(crate) async fn subscribe(
    ps: &mut PsClient,
    topic: &str,
    subscriber_id: &str,
) -> Streaming<Message> {
    ps.subscribe(SubscribeRequest {
        topic: topic.into(),
        subscriber_id: subscriber_id.into(),
        manual_ack: false,
    })
    .await
    .unwrap_or_else(|e| panic!("subscribe to {topic}: {e}"))
    .into_inner()
}

/// The next message within `WAIT`.
pub(crate) async fn next(stream: &mut Streaming<Message>) -> Message {
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("a message within the wait")
        .expect("no stream error")
        .expect("the stream is still open")
}

/// True when nothing arrives within `quiet`.
async fn silent(stream: &mut Streaming<Message>, quiet: Duration) -> bool {
    match tokio::time::timeout(quiet, stream.message()).await {
        Err(_) => true,
        Ok(Ok(None)) => true,
        Ok(Ok(Some(m))) => panic!("unexpected message {:?}", m.payload),
        Ok(Err(_)) => true,
    }
}

pub(crate) async fn subscriber_sees_id_payload_metadata_and_timestamp(env: &PubSubEnv) {
    let mut ps = env.client().await;
    let mut stream = subscribe(&mut ps, "orders.created", "s1").await;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let id = ps
        .publish(PublishRequest {
            topic: "orders.created".into(),
            payload: vec![0, 1, 255],
            metadata: HashMap::from([("tenant".to_string(), "acme".to_string())]),
        })
        .await
        .unwrap()
        .into_inner()
        .message_id;
    assert!(!id.is_empty());
    let message = next(&mut stream).await;
    assert_eq!(message.message_id, id);
    assert_eq!(message.topic, "orders.created");
    assert_eq!(message.payload, [0, 1, 255]);
    assert_eq!(message.metadata["tenant"], "acme");
    assert_eq!(message.subscriber_id, "s1");
    assert!(message.delivery_attempt >= 1);
    assert!(
        (before - 5_000..=before + 60_000).contains(&message.timestamp_ms),
        "timestamp {} is epoch milliseconds",
        message.timestamp_ms
    );
}

async fn fan_out(env: &PubSubEnv, subscribers: usize) {
    let mut ps = env.client().await;
    let mut streams = Vec::new();
    for i in 0..subscribers {
        streams.push(subscribe(&mut ps, "fan", &format!("sub-{i}")).await);
    }
    let ids = [
        publish(&mut ps, "fan", b"one").await,
        publish(&mut ps, "fan", b"two").await,
    ];
    let receivers: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            tokio::spawn(
                async move { [next(&mut s).await.message_id, next(&mut s).await.message_id] },
            )
        })
        .collect();
    for r in receivers {
        assert_eq!(r.await.unwrap(), ids, "every subscriber gets every message");
    }
}

pub(crate) async fn fan_out_to_three_subscribers(env: &PubSubEnv) {
    fan_out(env, 3).await;
}

pub(crate) async fn fan_out_to_a_hundred_subscribers(env: &PubSubEnv) {
    fan_out(env, 100).await;
}

pub(crate) async fn order_per_publisher_is_kept(env: &PubSubEnv) {
    let mut ps = env.client().await;
    let mut stream = subscribe(&mut ps, "ordered", "s").await;
    for i in 0..10u8 {
        publish(&mut ps, "ordered", &[i]).await;
    }
    for i in 0..10u8 {
        assert_eq!(next(&mut stream).await.payload, [i]);
    }
}

pub(crate) async fn cancelling_the_stream_stops_delivery(env: &PubSubEnv) {
    let mut ps = env.client().await;
    let stream = subscribe(&mut ps, "cancel", "gone").await;
    let mut witness = subscribe(&mut ps, "cancel", "witness").await;
    drop(stream);
    // Within 500 ms of cancelling, the gone subscriber holds no subscription.
    let dropped_at = Instant::now();
    eventually(
        Duration::from_millis(500),
        "the subscription to end",
        || async {
            let metrics = env.proxy.metrics().await;
            metrics
                .contains(&format!(
                    "prism_pubsub_subscriptions{{namespace=\"{NS}\"}} 1"
                ))
                .then_some(())
        },
    )
    .await;
    assert!(dropped_at.elapsed() <= Duration::from_millis(500));
    publish(&mut ps, "cancel", b"after").await;
    assert_eq!(next(&mut witness).await.payload, b"after");
}

pub(crate) async fn unsubscribe_stops_delivery(env: &PubSubEnv) {
    let mut ps = env.client().await;
    let mut stream = subscribe(&mut ps, "unsub", "leaver").await;
    publish(&mut ps, "unsub", b"before").await;
    assert_eq!(next(&mut stream).await.payload, b"before");
    let started = Instant::now();
    let unsubscribed = ps
        .unsubscribe(UnsubscribeRequest {
            topic: "unsub".into(),
            subscriber_id: "leaver".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .unsubscribed;
    assert!(unsubscribed);
    publish(&mut ps, "unsub", b"after").await;
    let ended = tokio::time::timeout(Duration::from_millis(500), stream.message())
        .await
        .expect("the stream ends within 500 ms");
    assert!(
        matches!(ended, Ok(None)),
        "the stream ends cleanly, with nothing after: {ended:?}"
    );
    assert!(started.elapsed() <= Duration::from_millis(500));
    let again = ps
        .unsubscribe(UnsubscribeRequest {
            topic: "unsub".into(),
            subscriber_id: "leaver".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .unsubscribed;
    assert!(!again, "unsubscribing twice finds nothing the second time");
}

pub(crate) async fn a_slow_subscriber_never_blocks_the_others(env: &PubSubEnv) {
    let mut ps = env.client().await;
    // Never read: the slow one. It has a connection of its own, as separate
    // applications do: HTTP/2 flow control would otherwise let a stream the
    // client leaves unread hold up the client's other streams.
    let mut slow = subscribe(&mut env.client().await, "busy", "slow").await;
    let mut fast = subscribe(&mut ps, "busy", "fast").await;
    let total = SUBSCRIBER_BUFFER * 4;
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < total {
            got.push(next(&mut fast).await.payload);
        }
        got
    });
    // Big enough that HTTP/2's own windows cannot soak them all up.
    let mut payload = vec![0u8; 40 * 1024];
    for i in 0..total {
        payload[..4].copy_from_slice(&(i as u32).to_be_bytes());
        publish(&mut ps, "busy", &payload).await;
    }
    // Had the slow one held anything up, the fast reader would time out.
    let got = reader.await.unwrap();
    assert_eq!(got.len(), total, "the fast subscriber got everything");

    let first = next(&mut slow).await;
    if env.durable {
        // At least once: nothing is lost, the slow one just lags.
        assert_eq!(first.dropped_before, 0);
        let mut count = 1;
        while count < total {
            next(&mut slow).await;
            count += 1;
        }
    } else {
        // At most once: the slow one lost messages, and is told how many.
        let mut dropped = first.dropped_before;
        let mut delivered = 1u64;
        while let Ok(Ok(Some(m))) =
            tokio::time::timeout(Duration::from_millis(300), slow.message()).await
        {
            dropped += m.dropped_before;
            delivered += 1;
        }
        assert!(dropped > 0, "a slow at-most-once subscriber loses messages");
        assert_eq!(
            delivered + dropped,
            total as u64,
            "every message is delivered or counted"
        );
        let metrics = env.proxy.metrics().await;
        assert!(
            metrics.contains(&format!("prism_pubsub_dropped_total{{namespace=\"{NS}\"}}")),
            "{metrics}"
        );
    }
}

pub(crate) async fn wildcards_match_tokens(env: &PubSubEnv) {
    let mut ps = env.client().await;
    let mut one = subscribe(&mut ps, "orders.*", "one").await;
    let mut rest = subscribe(&mut ps, "orders.>", "rest").await;
    publish(&mut ps, "orders.eu.created", b"deep").await;
    publish(&mut ps, "orders.eu", b"shallow").await;
    publish(&mut ps, "payments.eu", b"other").await;
    assert_eq!(next(&mut one).await.payload, b"shallow");
    assert_eq!(next(&mut rest).await.payload, b"deep");
    assert_eq!(next(&mut rest).await.payload, b"shallow");
    assert!(silent(&mut one, Duration::from_millis(200)).await);
}

pub(crate) async fn bad_topics_and_payloads_are_invalid(env: &PubSubEnv) {
    let mut ps = env.client().await;
    for topic in ["", "a..b", "with space", "orders.*"] {
        let err = ps
            .publish(PublishRequest {
                topic: topic.into(),
                payload: vec![],
                metadata: HashMap::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{topic:?}");
        assert!(err.message().starts_with("topic"), "{}", err.message());
    }
    let err = ps
        .publish(PublishRequest {
            topic: "big".into(),
            payload: vec![0; MAX_PAYLOAD + 1],
            metadata: HashMap::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains(&MAX_PAYLOAD.to_string()),
        "{}",
        err.message()
    );
    let err = ps
        .subscribe(SubscribeRequest {
            topic: "a.>.b".into(),
            subscriber_id: "x".into(),
            manual_ack: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

/// Metadata and subscriber ids follow one rule set whatever the backend;
/// refusals name the field and never echo a huge input.
pub(crate) async fn bad_metadata_and_subscriber_ids_are_invalid(env: &PubSubEnv) {
    let mut ps = env.client().await;
    let huge_key = "k".repeat(60_000);
    for (what, key, value) in [
        ("a 60,000-byte key", huge_key.as_str(), "v"),
        ("a key with a newline", "a\nb", "v"),
        ("a key with a colon", "a:b", "v"),
        ("a reserved key", "Nats-Msg-Id", "v"),
        ("a value with a line break", "k", "a\r\nb"),
    ] {
        let err = ps
            .publish(PublishRequest {
                topic: "meta.bad".into(),
                payload: vec![],
                metadata: HashMap::from([(key.to_string(), value.to_string())]),
            })
            .await
            .expect_err(what);
        assert_invalid_field(&err, "metadata", what);
    }
    for (what, id) in [
        ("a newline", "a\nb".to_string()),
        ("1 MB", "s".repeat(1 << 20)),
    ] {
        let err = ps
            .subscribe(SubscribeRequest {
                topic: "meta.bad".into(),
                subscriber_id: id,
                manual_ack: false,
            })
            .await
            .expect_err(what);
        assert_invalid_field(&err, "subscriber_id", what);
    }
}

/// Message `i` of a test batch on `topic`: its number in payload and metadata.
fn numbered(topic: &str, i: usize) -> PublishRequest {
    PublishRequest {
        topic: topic.into(),
        payload: format!("message {i}").into_bytes(),
        metadata: HashMap::from([("seq".to_string(), i.to_string())]),
    }
}

pub(crate) async fn a_batch_arrives_complete_in_order_with_its_ids(env: &PubSubEnv) {
    let mut ps = env.client().await;
    let mut stream = subscribe(&mut ps, "batch.orders", "batcher").await;
    // Reading while the batch is published, as a live subscriber does.
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < BATCH {
            got.push(next(&mut stream).await);
        }
        got
    });
    let ids = ps
        .publish_batch(PublishBatchRequest {
            messages: (0..BATCH).map(|i| numbered("batch.orders", i)).collect(),
        })
        .await
        .expect("publish the batch")
        .into_inner()
        .message_ids;
    assert_eq!(ids.len(), BATCH, "one id per message");
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), BATCH, "ids are distinct: {ids:?}");
    assert!(ids.iter().all(|id| !id.is_empty()));

    let got = reader.await.unwrap();
    for (i, (m, id)) in got.iter().zip(&ids).enumerate() {
        assert_eq!(
            &m.message_id, id,
            "message {i}: the id the response gave, in order"
        );
        assert_eq!(m.topic, "batch.orders");
        assert_eq!(m.payload, format!("message {i}").into_bytes());
        assert_eq!(
            m.metadata,
            HashMap::from([("seq".to_string(), i.to_string())]),
            "metadata intact, nothing internal added"
        );
        assert_eq!(m.dropped_before, 0, "message {i}: nothing lost before it");
        assert_eq!(m.subscriber_id, "batcher");
    }
}

pub(crate) async fn an_invalid_batch_publishes_nothing(env: &PubSubEnv) {
    let mut ps = env.client().await;
    let mut stream = subscribe(&mut ps, "batch.bad", "watcher").await;
    let valid =
        |n: usize| -> Vec<PublishRequest> { (0..n).map(|i| numbered("batch.bad", i)).collect() };
    let mut oversized = valid(7);
    oversized[3].payload = vec![0; MAX_PAYLOAD + 1];
    let mut wildcard = valid(3);
    wildcard[1].topic = "batch.*".into();
    let limit = MAX_PAYLOAD.to_string();
    for (what, messages, starts, names) in [
        ("empty", vec![], "messages: ", "message"),
        ("1001 messages", valid(1001), "messages: ", "1000"),
        (
            "an oversized payload",
            oversized,
            "messages[3].payload: ",
            limit.as_str(),
        ),
        (
            "a wildcard topic",
            wildcard,
            "messages[1].topic: ",
            "wildcards",
        ),
    ] {
        let err = ps
            .publish_batch(PublishBatchRequest { messages })
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
        assert!(
            err.message().starts_with(starts),
            "{what}: {}",
            err.message()
        );
        assert!(err.message().contains(names), "{what}: {}", err.message());
    }
    // Had any message of those batches gone out, it would arrive first.
    let marker = publish(&mut ps, "batch.bad", b"marker").await;
    let first = next(&mut stream).await;
    assert_eq!(
        (first.message_id.as_str(), first.payload.as_slice()),
        (marker.as_str(), b"marker".as_slice()),
        "nothing of a refused batch is published"
    );
}

pub(crate) async fn the_delivery_is_in_the_publishers_trace(env: &PubSubEnv) {
    let mut ps = env.client().await;
    let mut stream = subscribe(&mut ps, "traced", "t").await;
    let response = ps
        .publish(PublishRequest {
            topic: "traced".into(),
            payload: b"x".to_vec(),
            metadata: HashMap::new(),
        })
        .await
        .unwrap();
    let trace_id = prism_tests::otlp::trace_id_header(response.metadata());
    let message = next(&mut stream).await;
    assert_eq!(
        trace_of(&message.traceparent),
        trace_id,
        "the delivery belongs to the publisher's trace"
    );

    // Every message of a batch belongs to the batch call's trace.
    let response = ps
        .publish_batch(PublishBatchRequest {
            messages: (0..3).map(|i| numbered("traced", i)).collect(),
        })
        .await
        .unwrap();
    let batch_trace_id = prism_tests::otlp::trace_id_header(response.metadata());
    assert_ne!(
        batch_trace_id, trace_id,
        "a call of its own, a trace of its own"
    );
    for i in 0..3 {
        let message = next(&mut stream).await;
        assert_eq!(message.metadata["seq"], i.to_string());
        assert_eq!(
            trace_of(&message.traceparent),
            batch_trace_id,
            "message {i} of the batch belongs to the publisher's trace"
        );
    }
}

/// The trace id a W3C `traceparent` names.
fn trace_of(traceparent: &str) -> &str {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "a W3C traceparent: {traceparent:?}");
    parts[1]
}

pub(crate) async fn subscriptions_survive_a_pattern_restart(env: &PubSubEnv) {
    let mut ps = env.client().await;
    let mut stream = subscribe(&mut ps, "durable.topic", "survivor").await;
    let before = env.proxy.pattern(NS).await.pid;
    env.proxy
        .admin()
        .await
        .restart_pattern(RestartPatternRequest {
            namespace: NS.into(),
        })
        .await
        .expect("restart");
    assert_ne!(env.proxy.pattern(NS).await.pid, before);
    // The proxy subscribes again on the new process by itself; publish until
    // a message makes it through.
    let deadline = Instant::now() + WAIT;
    let got = loop {
        assert!(
            Instant::now() < deadline,
            "no delivery on the restarted pattern"
        );
        publish(&mut ps, "durable.topic", b"after restart").await;
        if let Ok(Ok(Some(m))) =
            tokio::time::timeout(Duration::from_millis(200), stream.message()).await
        {
            break m;
        }
    };
    assert_eq!(got.payload, b"after restart");
}

pub(crate) async fn unacknowledged_messages_are_redelivered(env: &PubSubEnv) {
    let mut ps = env.client().await;
    if !env.durable {
        eprintln!("skipped: this backend delivers at most once (no \"ack\" capability)");
        let err = ps
            .subscribe(SubscribeRequest {
                topic: "redeliver".into(),
                subscriber_id: "r".into(),
                manual_ack: true,
            })
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::Unimplemented,
            "manual_ack is refused, not ignored"
        );
        return;
    }
    let manual = |ps: &mut PsClient| {
        let mut ps = ps.clone();
        async move {
            ps.subscribe(SubscribeRequest {
                topic: "redeliver".into(),
                subscriber_id: "r".into(),
                manual_ack: true,
            })
            .await
            .unwrap()
            .into_inner()
        }
    };
    let mut first = manual(&mut ps).await;
    let id = publish(&mut ps, "redeliver", b"again").await;
    let got = next(&mut first).await;
    assert_eq!(got.message_id, id);
    drop(first);
    let mut second = manual(&mut ps).await;
    let again = next(&mut second).await;
    assert_eq!(
        again.message_id, id,
        "the unacknowledged message comes back"
    );
    assert!(again.delivery_attempt >= 2, "{}", again.delivery_attempt);
    let acked = ps
        .ack(AckRequest {
            topic: "redeliver".into(),
            subscriber_id: "r".into(),
            message_ids: vec![id],
        })
        .await
        .unwrap()
        .into_inner()
        .acked;
    assert_eq!(acked, 1);
}

pub(crate) async fn keyvalue_calls_on_a_pubsub_namespace_are_unimplemented(env: &PubSubEnv) {
    let err = env
        .proxy
        .kv(NS)
        .await
        .get(GetRequest { key: "k".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);
    assert!(err.message().contains("pubsub"), "{}", err.message());
}
