//! One trace per request across the proxy and the pattern, exported over
//! OTLP to a real receiver; correlation ids returned to the caller; export
//! that never gets in the way of calls.

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prism_proto::keyvalue::v1::{GetRequest, SetRequest};
use prism_tests::otlp::trace_id_header;
use prism_tests::{
    Proxy, ProxyBuilder, eventually,
    otlp::{OtlpReceiver, ReceivedSpan},
};
use tonic::Code;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const WAIT: Duration = Duration::from_secs(15);

async fn traced_proxy(receiver: &OtlpReceiver, extra: &[(&str, &str)]) -> Proxy {
    let mut builder = ProxyBuilder::new()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test");
    for (k, v) in extra {
        builder = builder.env(k, v);
    }
    let proxy = builder.start().await;
    proxy.wait_healthy("default").await;
    proxy
}

fn find<'a>(spans: &'a [ReceivedSpan], service: &str, kind: SpanKind) -> Option<&'a ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.service == service && s.kind == kind)
}

/// The four spans of one KeyValue call, or `None` while some are missing.
fn chain(spans: &[ReceivedSpan]) -> Option<[&ReceivedSpan; 4]> {
    Some([
        find(spans, "prism-proxy", SpanKind::Server)?,
        find(spans, "prism-proxy", SpanKind::Client)?,
        find(spans, "prism-memstore", SpanKind::Server)?,
        find(spans, "prism-memstore", SpanKind::Internal)?,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_crosses_proxy_and_pattern_continuing_the_callers_traceparent() {
    let receiver = OtlpReceiver::start().await;
    let proxy = traced_proxy(&receiver, &[]).await;
    let mut kv = proxy.kv("default").await;
    kv.set(SetRequest {
        key: "secret-key".into(),
        value: b"secret-value".to_vec(),
        ttl_seconds: 0,
    })
    .await
    .unwrap();

    let mut request = tonic::Request::new(GetRequest {
        key: "secret-key".into(),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN}-01").parse().unwrap(),
    );
    request
        .metadata_mut()
        .insert("x-request-id", "req-42".parse().unwrap());
    let response = kv.get(request).await.unwrap();
    assert_eq!(trace_id_header(response.metadata()), TRACE_ID);
    assert_eq!(response.metadata().get("x-request-id").unwrap(), "req-42");

    let spans = receiver
        .wait_trace(TRACE_ID, WAIT, |s| chain(s).is_some())
        .await;
    let [server, client, pattern, backend] = chain(&spans).unwrap();

    assert_eq!(server.name, "prism.keyvalue.v1.KeyValue/Get");
    assert_eq!(
        server.parent_span_id, CALLER_SPAN,
        "the caller's traceparent is continued"
    );
    for (k, v) in [
        ("rpc.system", "grpc"),
        ("rpc.service", "prism.keyvalue.v1.KeyValue"),
        ("rpc.method", "Get"),
        ("rpc.grpc.status_code", "0"),
        ("prism.namespace", "default"),
        ("prism.pattern", "keyvalue"),
        ("prism.request_id", "req-42"),
    ] {
        assert_eq!(server.attr(k), Some(v), "server span {k}: {server:?}");
    }
    assert_eq!(client.name, "prism.keyvalue.v1.KeyValue/Get");
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(client.attr("rpc.grpc.status_code"), Some("0"));
    assert_eq!(client.attr("prism.namespace"), Some("default"));
    assert_eq!(pattern.name, "prism.keyvalue.v1.KeyValue/Get");
    assert_eq!(
        pattern.parent_span_id, client.span_id,
        "the pattern continues the proxy's client span"
    );
    assert_eq!(pattern.attr("prism.namespace"), Some("default"));
    assert_eq!(pattern.attr("prism.pattern"), Some("keyvalue"));
    assert_eq!(backend.name, "memstore GET");
    assert_eq!(backend.parent_span_id, pattern.span_id);

    for span in [server, pattern] {
        assert_eq!(span.resource["service.namespace"], "prism");
        assert_eq!(span.resource["deployment.environment"], "test");
        assert!(!span.resource["service.version"].is_empty());
        assert_eq!(span.resource["service.instance.id"].len(), 32);
    }
    assert_ne!(
        server.resource["service.instance.id"],
        pattern.resource["service.instance.id"]
    );
    for span in receiver.spans() {
        for value in span.attributes.values() {
            assert!(
                !value.contains("secret"),
                "a key or value leaked into {span:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_traceparent_starts_one_connected_trace() {
    let receiver = OtlpReceiver::start().await;
    let proxy = traced_proxy(&receiver, &[]).await;
    let mut kv = proxy.kv("default").await;
    let response = kv
        .set(SetRequest {
            key: "k".into(),
            value: b"v".to_vec(),
            ttl_seconds: 0,
        })
        .await
        .unwrap();
    let trace_id = trace_id_header(response.metadata());
    assert_eq!(trace_id.len(), 32);
    let spans = receiver
        .wait_trace(&trace_id, WAIT, |s| chain(s).is_some())
        .await;
    let [server, client, pattern, backend] = chain(&spans).unwrap();
    assert_eq!(server.parent_span_id, "", "the proxy started the trace");
    assert_eq!(server.name, "prism.keyvalue.v1.KeyValue/Set");
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(pattern.parent_span_id, client.span_id);
    assert_eq!(backend.parent_span_id, pattern.span_id);
    assert_eq!(backend.name, "memstore SET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_the_trace_id_and_an_error_status() {
    let receiver = OtlpReceiver::start().await;
    let proxy = traced_proxy(&receiver, &[]).await;
    let mut kv = proxy.kv("default").await;
    let err = kv
        .get(GetRequest {
            key: "missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let trace_id = trace_id_header(err.metadata());
    let spans = receiver
        .wait_trace(&trace_id, WAIT, |s| chain(s).is_some())
        .await;
    let [server, client, _, _] = chain(&spans).unwrap();
    assert_eq!(server.attr("rpc.grpc.status_code"), Some("5"));
    assert_eq!(client.attr("rpc.grpc.status_code"), Some("5"));
    assert_eq!(
        client.status_code, 2,
        "a failed client call is an error span"
    );
    assert_ne!(server.status_code, 2, "NOT_FOUND is not a server fault");

    let err = proxy
        .kv("nowhere")
        .await
        .get(GetRequest { key: "k".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(trace_id_header(err.metadata()).len(), 32);

    let mut broken = tonic::Request::new(GetRequest { key: String::new() });
    broken
        .metadata_mut()
        .insert("traceparent", "00-garbage-01".parse().unwrap());
    let err = kv.get(broken).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        trace_id_header(err.metadata()).len(),
        32,
        "a bad traceparent starts a new trace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_succeed_without_a_collector_and_the_drop_is_logged_once() {
    // A port nobody listens on.
    let closed = prism_harness::procs::ClosedPort::new().unwrap();
    let dead = closed.addr();
    let proxy = ProxyBuilder::new()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{dead}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .start()
        .await;
    proxy.wait_healthy("default").await;
    let mut kv = proxy.kv("default").await;
    let report = |log: &str, service: &str| {
        log.lines()
            .filter(|l| l.contains("trace export failed") && l.contains(service))
            .count()
    };
    for round in 0..3 {
        for i in 0..30 {
            kv.set(SetRequest {
                key: format!("k{round}-{i}"),
                value: b"v".to_vec(),
                ttl_seconds: 0,
            })
            .await
            .expect("calls succeed with no collector");
        }
        eventually(
            WAIT,
            "both processes to report the failed export",
            || async {
                let log = proxy.log();
                (report(&log, "prism-proxy") >= 1 && report(&log, "prism-memstore") >= 1)
                    .then_some(())
            },
        )
        .await;
    }
    let log = proxy.log();
    assert_eq!(
        report(&log, "prism-proxy"),
        1,
        "reported once, not per batch:\n{log}"
    );
    assert_eq!(
        report(&log, "prism-memstore"),
        1,
        "reported once, not per batch:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_inside_a_request_carry_its_trace_id() {
    let proxy = ProxyBuilder::new()
        .env("PRISM_LOG_FORMAT", "json")
        .env("RUST_LOG", "info,prism_proxy=debug")
        .start()
        .await;
    proxy.wait_healthy("default").await;
    let err = proxy
        .kv("default")
        .await
        .get(GetRequest { key: "k".into() })
        .await
        .unwrap_err();
    let trace_id = trace_id_header(err.metadata());
    let line = eventually(WAIT, "the call's log line", || async {
        proxy
            .log()
            .lines()
            .find(|l| l.contains("call finished") && l.contains(&trace_id))
            .map(str::to_string)
    })
    .await;
    let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(json["fields"]["namespace"], "default");
}
