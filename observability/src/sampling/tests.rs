//! The sampling decision, and what an unsampled call costs and still does
//! through the server layer: no OpenTelemetry span anywhere in it, its trace
//! id returned and passed on.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use opentelemetry::trace::{TraceId, TracerProvider};
use opentelemetry_sdk::{
    error::OTelSdkResult,
    trace::{SdkTracerProvider, SpanData, SpanExporter},
};
use tonic::metadata::MetadataMap;
use tower::{Layer, Service};
use tracing_subscriber::layer::SubscriberExt;

use super::*;
use crate::{
    Sampler as S,
    grpc::{self, TRACE_ID_HEADER, TraceLayer},
};

const PARENT: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn traceparent(flags: &str) -> String {
    format!("00-{PARENT}-00f067aa0ba902b7-{flags}")
}

#[test]
fn traceparent_is_read_as_the_propagator_reads_it() {
    let remote = parse_traceparent(&traceparent("01")).unwrap();
    assert_eq!(remote.trace_id.to_string(), PARENT);
    assert!(remote.sampled);
    assert!(!parse_traceparent(&traceparent("00")).unwrap().sampled);
    for bad in [
        "",
        "00-nothex-xyz-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    ] {
        assert_eq!(parse_traceparent(bad), None, "{bad}");
    }
}

#[test]
fn the_decision_follows_the_sampler_and_keeps_the_callers_trace() {
    let unsampled_parent = traceparent("00");
    let sampled_parent = traceparent("01");
    let parent_based = Sampling::new(S::ParentBasedAlwaysOn, true);
    match parent_based.decide(Some(&unsampled_parent)) {
        Decision::Unsampled(context) => {
            assert_eq!(context.trace_id.to_string(), PARENT);
            let sent = context.traceparent();
            assert_eq!(sent.len(), 55);
            let remote = parse_traceparent(&sent).unwrap();
            assert_eq!(remote.trace_id, context.trace_id);
            assert!(!remote.sampled);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parent_based.decide(Some(&sampled_parent)),
        Decision::Sampled {
            root_trace_id: None
        }
    );
    assert!(matches!(
        parent_based.decide(None),
        Decision::Sampled {
            root_trace_id: Some(_)
        }
    ));
    // Nothing is exported: nothing is sampled, whatever the caller says.
    let silent = Sampling::new(S::AlwaysOn, false);
    assert!(matches!(
        silent.decide(Some(&sampled_parent)),
        Decision::Unsampled(_)
    ));
    assert!(matches!(
        Sampling::new(S::AlwaysOff, true).decide(None),
        Decision::Unsampled(_)
    ));
}

#[test]
fn a_ratio_decides_as_the_sdk_would_for_the_same_trace_id() {
    use opentelemetry::trace::SpanKind;
    let sdk = Sampler::TraceIdRatioBased(0.5);
    let ours = Sampling::new(S::TraceIdRatio(0.5), true);
    let (mut sampled, mut unsampled) = (0, 0);
    for _ in 0..400 {
        let (id, decided) = match ours.decide(None) {
            Decision::Sampled {
                root_trace_id: Some(id),
            } => (id, true),
            Decision::Unsampled(context) => (context.trace_id, false),
            other => panic!("{other:?}"),
        };
        let sdk_says = sdk
            .should_sample(None, id, "", &SpanKind::Server, &[], &[])
            .decision
            == SamplingDecision::RecordAndSample;
        assert_eq!(decided, sdk_says);
        if decided {
            sampled += 1;
        } else {
            unsampled += 1;
        }
    }
    assert!(sampled > 100 && unsampled > 100, "{sampled} / {unsampled}");
}

/// Keeps what it is given.
#[derive(Debug, Clone, Default)]
struct Kept(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Kept {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

/// A handler that opens a CLIENT span and an inner span, as the proxy and
/// the patterns do, and keeps the `traceparent` it would send on.
#[derive(Clone, Default)]
struct Handler(Arc<Mutex<Option<String>>>);

impl Service<http::Request<()>> for Handler {
    type Response = http::Response<()>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        let sent = self.0.clone();
        Box::pin(async move {
            let _inner = tracing::info_span!(target: "prism::memstore", "memstore GET").entered();
            let client = grpc::client_span("prism.keyvalue.v1.KeyValue", "Get");
            let mut metadata = MetadataMap::new();
            grpc::inject(&client, &mut metadata);
            grpc::record_status(&client, 0, grpc::Side::Client);
            *sent.lock().unwrap() = metadata
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Ok(http::Response::new(()))
        })
    }
}

/// Runs one call through the server layer with `sampling`; returns the
/// answer's trace id, the `traceparent` the handler sent on and the spans
/// exported.
async fn call(sampling: Sampling, parent: Option<&str>) -> (String, Option<String>, Vec<SpanData>) {
    let kept = Kept::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(kept.clone())
        .with_id_generator(Ids::default())
        .build();
    let subscriber = tracing_subscriber::registry().with(sampled_only(
        tracing_opentelemetry::layer().with_tracer(provider.tracer("test")),
    ));
    let _default = tracing::subscriber::set_default(subscriber);
    let handler = Handler::default();
    let mut service = TraceLayer::data_plane()
        .with_sampling(sampling)
        .layer(handler.clone());
    let mut request = http::Request::builder().uri("/prism.keyvalue.v1.KeyValue/Get");
    if let Some(parent) = parent {
        request = request.header("traceparent", parent);
    }
    let response = service.call(request.body(()).unwrap()).await.unwrap();
    provider.force_flush().unwrap();
    let trace_id = response.headers()[TRACE_ID_HEADER]
        .to_str()
        .unwrap()
        .to_string();
    let sent = handler.0.lock().unwrap().clone();
    let spans = kept.0.lock().unwrap().clone();
    (trace_id, sent, spans)
}

#[tokio::test]
async fn an_unsampled_call_builds_no_span_yet_returns_and_passes_on_its_trace_id() {
    let (trace_id, sent, spans) = call(
        Sampling::new(S::ParentBasedAlwaysOn, true),
        Some(&traceparent("00")),
    )
    .await;
    assert!(spans.is_empty(), "{spans:?}");
    assert_eq!(trace_id, PARENT);
    let sent = parse_traceparent(&sent.expect("a traceparent for the next hop")).unwrap();
    assert_eq!(sent.trace_id.to_string(), PARENT);
    assert!(!sent.sampled);

    // Without an exporter a new trace still gets an id, passed on.
    let (trace_id, sent, spans) = call(Sampling::new(S::AlwaysOn, false), None).await;
    assert!(spans.is_empty());
    assert_eq!(trace_id.len(), 32);
    assert_ne!(trace_id, TraceId::INVALID.to_string());
    assert_eq!(
        parse_traceparent(&sent.unwrap())
            .unwrap()
            .trace_id
            .to_string(),
        trace_id
    );
}

#[tokio::test]
async fn a_sampled_call_exports_its_spans_under_the_trace_id_it_returns() {
    for parent in [Some(traceparent("01")), None] {
        let (trace_id, sent, spans) = call(
            Sampling::new(S::ParentBasedAlwaysOn, true),
            parent.as_deref(),
        )
        .await;
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.contains(&"prism.keyvalue.v1.KeyValue/Get"));
        assert!(names.contains(&"memstore GET"));
        for span in &spans {
            assert_eq!(span.span_context.trace_id().to_string(), trace_id);
        }
        if parent.is_some() {
            assert_eq!(trace_id, PARENT);
        }
        let sent = parse_traceparent(&sent.unwrap()).unwrap();
        assert_eq!(sent.trace_id.to_string(), trace_id);
        assert!(sent.sampled);
    }
}

#[tokio::test]
async fn a_ratio_sampled_root_keeps_the_id_it_was_sampled_on() {
    let mut exported = 0;
    for _ in 0..40 {
        let (trace_id, _, spans) = call(Sampling::new(S::TraceIdRatio(0.5), true), None).await;
        if let Some(server) = spans
            .iter()
            .find(|s| s.name == "prism.keyvalue.v1.KeyValue/Get")
        {
            exported += 1;
            assert_eq!(server.span_context.trace_id().to_string(), trace_id);
            assert_eq!(spans.len(), 3);
        } else {
            assert!(spans.is_empty(), "{spans:?}");
        }
    }
    assert!(exported > 0 && exported < 40, "{exported}");
}
