//! Tracing for gRPC servers and clients.
//!
//! [`TraceLayer`] wraps a tonic server: for each traced call it continues the
//! caller's `traceparent` (or starts a trace), opens the SERVER span named
//! after the RPC (`prism.keyvalue.v1.KeyValue/Get`) with the `rpc.*`,
//! `prism.namespace`, `prism.pattern` and `prism.request_id` attributes,
//! records the gRPC status, and answers with `x-prism-trace-id` (and echoes
//! `x-request-id`) on every response, errors included.
//!
//! [`client_span`] and [`inject`] do the same for an outgoing call.
//!
//! Whether a call is sampled is decided first ([`crate::sampling`]): an
//! unsampled call builds none of these spans or attributes, yet still
//! answers with its trace id and passes a `traceparent` on.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderMap, HeaderValue};
use opentelemetry::{
    propagation::{Injector, TextMapPropagator},
    trace::{TraceContextExt, TraceId},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tower::{Layer, Service};
use tracing::{Instrument, Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    propagation,
    sampling::{self, Decision, Sampling, unsampled_of, unsampled_span},
};

pub const TRACE_ID_HEADER: &str = "x-prism-trace-id";
pub const REQUEST_ID_HEADER: &str = "x-request-id";
pub const NAMESPACE_HEADER: &str = "x-prism-namespace";
pub const PATTERN_HEADER: &str = "x-prism-pattern";
/// The authenticated caller (`sub:…`, `cert:…`), set by the proxy on calls
/// to patterns; a pattern's spans record it as `enduser.id`.
pub const SUBJECT_HEADER: &str = "x-prism-subject";
/// Longest `x-request-id` echoed and recorded.
const MAX_REQUEST_ID: usize = 128;

/// Which calls get a SERVER span.
#[derive(Debug, Clone)]
pub struct TraceLayer {
    traced: fn(&str) -> bool,
    /// Whether `x-prism-subject` names the caller: only behind the proxy,
    /// which sets it; on the proxy's own edge a client could forge it.
    trust_subject: bool,
    /// `None`: the process's, set up by [`crate::init`].
    sampling: Option<Arc<Sampling>>,
}

/// Prism's data-plane services only: not lifecycle, health, admin or
/// reflection, which would flood traces with polling.
fn data_plane_path(path: &str) -> bool {
    path.starts_with("/prism.")
        && !path.starts_with("/prism.lifecycle.")
        && !path.starts_with("/prism.admin.")
}

impl TraceLayer {
    /// The proxy's edge (the caller is recorded by its auth layer).
    pub fn data_plane() -> Self {
        Self {
            traced: data_plane_path,
            trust_subject: false,
            sampling: None,
        }
    }

    /// A pattern behind the proxy: the caller comes in `x-prism-subject`.
    pub fn pattern() -> Self {
        Self {
            traced: data_plane_path,
            trust_subject: true,
            sampling: None,
        }
    }

    /// Samples with `sampling` instead of the process's.
    pub fn with_sampling(mut self, sampling: Sampling) -> Self {
        self.sampling = Some(Arc::new(sampling));
        self
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceService {
            inner,
            traced: self.traced,
            trust_subject: self.trust_subject,
            sampling: self.sampling.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TraceService<S> {
    inner: S,
    traced: fn(&str) -> bool,
    trust_subject: bool,
    sampling: Option<Arc<Sampling>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for TraceService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The ready service answers this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !(self.traced)(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        let name = request.uri().path().trim_start_matches('/');
        let sampling = match self.sampling.as_deref() {
            Some(sampling) => Some(sampling),
            None => Sampling::global(),
        };
        let decision = match sampling {
            Some(sampling) => sampling.decide(
                request
                    .headers()
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok()),
            ),
            None => Decision::Sampled {
                root_trace_id: None,
            },
        };
        let (span, trace_id) = match decision {
            Decision::Unsampled(context) => (unsampled_span(context), Some(context.trace_id)),
            Decision::Sampled { root_trace_id } => {
                let parent = propagation::extract(request.headers());
                let span = sampling::with_trace_id(root_trace_id, || {
                    server_span(name, request.headers(), parent)
                });
                self.record_sampled(&span, request.headers());
                let trace_id = trace_id_of(&span);
                (span, trace_id)
            }
        };
        let request_id = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .filter(|v| v.len() <= MAX_REQUEST_ID && v.to_str().is_ok())
            .cloned();
        let response = {
            let _entered = span.enter();
            inner.call(request)
        };
        Box::pin(async move {
            let mut response = response.instrument(span.clone()).await?;
            if matches!(decision, Decision::Sampled { .. }) {
                let code = grpc_status(response.headers());
                record_status(&span, code, Side::Server);
            }
            let headers = response.headers_mut();
            if let Some(value) = trace_id.and_then(|id| HeaderValue::try_from(id.to_string()).ok())
            {
                headers.insert(TRACE_ID_HEADER, value);
            }
            if let Some(value) = request_id {
                headers.insert(REQUEST_ID_HEADER, value);
            }
            Ok(response)
        })
    }
}

impl<S> TraceService<S> {
    /// The sampled span's attributes from the request headers.
    fn record_sampled(&self, span: &Span, headers: &HeaderMap) {
        if self.trust_subject
            && let Some(subject) = headers
                .get(SUBJECT_HEADER)
                .filter(|v| v.len() <= 320)
                .and_then(|v| v.to_str().ok())
        {
            span.record("enduser.id", subject);
        }
        if let Some(id) = headers
            .get(REQUEST_ID_HEADER)
            .filter(|v| v.len() <= MAX_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
        {
            span.record("prism.request_id", id);
        }
    }
}

fn server_span(name: &str, headers: &HeaderMap, parent: opentelemetry::Context) -> Span {
    let (service, method) = name.split_once('/').unwrap_or((name, ""));
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let span = tracing::info_span!(
        target: "prism::grpc",
        "grpc.server",
        otel.name = name,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        otel.status_code = Empty,
        prism.namespace = header(NAMESPACE_HEADER).filter(|n| !n.is_empty() && n.len() <= 63).unwrap_or("default"),
        prism.pattern = Empty,
        prism.request_id = Empty,
        enduser.id = Empty,
        trace_id = Empty,
    );
    if let Some(pattern) = header(PATTERN_HEADER).filter(|p| p.len() <= 63) {
        span.record("prism.pattern", pattern);
    }
    let _ = span.set_parent(parent);
    if let Some(id) = trace_id_of(&span) {
        span.record("trace_id", tracing::field::display(id));
    }
    span
}

/// The CLIENT span for a call to `service/method`; a disabled span inside
/// an unsampled call, which [`inject`] still gives a `traceparent`.
pub fn client_span(service: &str, method: &str) -> Span {
    if sampling::current_is_unsampled() {
        return Span::none();
    }
    tracing::info_span!(
        target: "prism::grpc",
        "grpc.client",
        otel.name = %format_args!("{service}/{method}"),
        otel.kind = "client",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        otel.status_code = Empty,
        prism.namespace = Empty,
        prism.pattern = Empty,
        enduser.id = Empty,
    )
}

/// Writes `span`'s trace context into an outgoing call's metadata (the
/// current call's, unsampled, when `span` is disabled).
pub fn inject(span: &Span, metadata: &mut MetadataMap) {
    if let Some(context) = unsampled_of(span) {
        if let Ok(value) = MetadataValue::try_from(context.traceparent()) {
            metadata.insert("traceparent", value);
        }
        return;
    }
    TraceContextPropagator::new().inject_context(&span.context(), &mut Metadata(metadata));
}

struct Metadata<'a>(&'a mut MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

/// Records the call's gRPC status on its span; errors set the span status.
/// On the server side only codes that mean the server failed count as
/// errors (as the OpenTelemetry conventions say); on the client side every
/// non-OK code does.
pub fn record_status(span: &Span, code: i32, side: Side) {
    if span.is_disabled() {
        return;
    }
    span.record("rpc.grpc.status_code", code);
    let server_error = matches!(code, 2 | 4 | 12 | 13 | 14 | 15);
    if code != 0 && (side == Side::Client || server_error) {
        span.record("otel.status_code", "ERROR");
    }
}

/// The trace id of `span`, when tracing is installed and the id is valid.
pub fn trace_id_of(span: &Span) -> Option<TraceId> {
    if let Some(context) = unsampled_of(span) {
        return Some(context.trace_id);
    }
    let id = span.context().span().span_context().trace_id();
    (id != TraceId::INVALID).then_some(id)
}

/// `grpc-status` from a trailers-only response; absent means OK (the status
/// of a successful call travels in the trailers).
fn grpc_status(headers: &HeaderMap) -> i32 {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_plane_paths_are_traced() {
        let traced = TraceLayer::data_plane().traced;
        assert!(traced("/prism.keyvalue.v1.KeyValue/Get"));
        assert!(!traced("/prism.lifecycle.v1.PatternLifecycle/HealthCheck"));
        assert!(!traced("/prism.admin.v1.Admin/ListPatterns"));
        assert!(!traced("/grpc.health.v1.Health/Check"));
    }

    #[test]
    fn status_comes_from_trailers_only_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(grpc_status(&headers), 0);
        headers.insert("grpc-status", "5".parse().unwrap());
        assert_eq!(grpc_status(&headers), 5);
    }
}
