//! Long calls and what reaches the pattern: a Subscribe stream ends
//! UNAUTHENTICATED when its token expires, and a new one with a fresh token
//! goes on; the pattern's spans name the caller (set by the proxy), never
//! the token.

use std::time::Duration;

use prism_proto::{
    keyvalue::v1::SetRequest,
    pubsub::v1::{PublishRequest, SubscribeRequest},
};
use prism_tests::{otlp::OtlpReceiver, otlp::trace_id_header};
use serde_json::json;
use tonic::Code;

use super::{NAMESPACES, Setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_unauthenticated_when_its_token_expires() {
    let setup = Setup::start("", NAMESPACES).await;
    setup.proxy.wait_serving("events").await;
    let short = setup.issuer.token(
        "listener",
        Duration::from_secs(3),
        json!({"scope": "events.read"}),
    );
    let subscribe = || SubscribeRequest {
        topic: "orders".into(),
        subscriber_id: String::new(),
        manual_ack: false,
    };
    let mut stream = setup
        .proxy
        .pubsub_as("events", Some(&short))
        .await
        .subscribe(subscribe())
        .await
        .expect("subscribe while the token is valid")
        .into_inner();
    let publisher = setup.token("publisher", json!({}));
    setup
        .proxy
        .pubsub_as("events", Some(&publisher))
        .await
        .publish(PublishRequest {
            topic: "orders".into(),
            payload: b"first".to_vec(),
            metadata: Default::default(),
        })
        .await
        .expect("publish");
    let first = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("in time")
        .expect("a message")
        .expect("not the end");
    assert_eq!(first.payload, b"first");

    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => break status,
            }
        }
    })
    .await
    .expect("the stream ends once the token expires");
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    assert!(ended.message().contains("token expired"), "{ended:?}");

    // The expired token opens nothing; a fresh one does.
    let refused = setup
        .proxy
        .pubsub_as("events", Some(&short))
        .await
        .subscribe(subscribe())
        .await
        .expect_err("expired");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let fresh = setup.token("listener", json!({"scope": "events.read"}));
    setup
        .proxy
        .pubsub_as("events", Some(&fresh))
        .await
        .subscribe(subscribe())
        .await
        .expect("a fresh token subscribes again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pattern_sees_the_caller_never_the_token() {
    let receiver = OtlpReceiver::start().await;
    let setup = Setup::start_with_env(
        "",
        NAMESPACES,
        &[(
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
            receiver.endpoint(),
        )],
    )
    .await;
    setup.proxy.wait_serving("orders").await;
    let token = setup.writer();
    let response = setup
        .proxy
        .kv_as("orders", Some(&token))
        .await
        .set(SetRequest {
            key: "k".into(),
            value: b"v".to_vec(),
            ttl_seconds: 0,
        })
        .await
        .expect("set");
    let trace_id = trace_id_header(response.metadata());
    let spans = receiver
        .wait_trace(&trace_id, Duration::from_secs(20), |spans| {
            spans.iter().any(|s| s.service == "prism-memstore")
                && spans.iter().any(|s| s.service == "prism-proxy")
        })
        .await;
    let proxy_server = spans
        .iter()
        .find(|s| {
            s.service == "prism-proxy"
                && s.attr("rpc.method") == Some("Set")
                && s.kind == opentelemetry_proto::tonic::trace::v1::span::SpanKind::Server
        })
        .expect("the proxy's server span");
    assert_eq!(proxy_server.attr("enduser.id"), Some("sub:svc-writer"));
    let pattern_server = spans
        .iter()
        .find(|s| s.service == "prism-memstore" && s.attr("rpc.method") == Some("Set"))
        .expect("the pattern's server span");
    assert_eq!(
        pattern_server.attr("enduser.id"),
        Some("sub:svc-writer"),
        "the proxy forwards who called"
    );
    for span in receiver.spans() {
        for (key, value) in &span.attributes {
            assert!(
                !value.contains(&token[..40]),
                "span {} attribute {key} holds the token",
                span.name
            );
        }
    }
}
