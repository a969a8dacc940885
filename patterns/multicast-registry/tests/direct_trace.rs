//! One Multicast is one trace: the pattern's server span (with the target
//! count), its slot span, and each receiver's CONSUMER span, exported by
//! the built `prism-multicast-registry` to a real OTLP receiver.

#[path = "support/registry.rs"]
mod support;

use prism_harness::{OtlpReceiver, wait::poll};
use prism_proto::{json, registry::v1::MulticastRequest};
use serde_json::json;
use support::{DEADLINE, Registry, next};
use tonic::Request;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_multicast_is_one_trace_down_to_each_receiver() {
    let receiver = OtlpReceiver::start().await.expect("OTLP receiver");
    let endpoint = receiver.endpoint();
    let registry = Registry::start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]).await;
    registry.register("sensor-1", json!({"floor": 1}), 0).await;
    registry.register("sensor-2", json!({"floor": 1}), 0).await;
    let mut one = registry.receive("sensor-1").await;
    let mut two = registry.receive("sensor-2").await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = Request::new(MulticastRequest {
        filter: Some(json::to_struct(&json!({"floor": 1}))),
        payload: b"traced".to_vec(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    let sent = registry
        .client()
        .multicast(request)
        .await
        .expect("multicast")
        .into_inner();
    assert_eq!(sent.delivered_count, 2);
    for stream in [&mut one, &mut two] {
        let message = next(stream).await;
        assert!(
            message.traceparent.contains(trace_id),
            "{}",
            message.traceparent
        );
    }

    let spans = poll(DEADLINE, || async {
        let spans = receiver.trace(trace_id);
        let consumers = spans
            .iter()
            .filter(|s| s.attr("messaging.operation") == Some("receive"))
            .count();
        (consumers == 2).then_some(spans)
    })
    .await
    .unwrap_or_else(|| panic!("no trace; spans: {:#?}", receiver.spans()));
    let server = spans
        .iter()
        .find(|s| s.attr("prism.multicast.target_count").is_some())
        .unwrap_or_else(|| panic!("no multicast span: {spans:#?}"));
    assert_eq!(server.name, "prism.registry.v1.MulticastRegistry/Multicast");
    assert_eq!(server.attr("prism.multicast.target_count"), Some("2"));
    assert_eq!(server.attr("prism.multicast.delivered_count"), Some("2"));
    let select = spans
        .iter()
        .find(|s| s.name == "registry select")
        .unwrap_or_else(|| panic!("no slot span: {spans:#?}"));
    assert_eq!(select.parent_span_id, server.span_id);
    assert_eq!(select.attr("prism.backend"), Some("memstore"));
    let mut ids = Vec::new();
    for consumer in spans
        .iter()
        .filter(|s| s.attr("messaging.operation") == Some("receive"))
    {
        assert_eq!(consumer.parent_span_id, server.span_id, "{consumer:#?}");
        assert_eq!(consumer.attr("messaging.system"), Some("memstore"));
        assert!(consumer.attr("prism.identity").is_none());
        ids.push(
            consumer
                .attr("messaging.message.id")
                .unwrap_or_default()
                .to_string(),
        );
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "one message id per identity: {ids:?}");
}
