//! W3C trace context (`traceparent`, `tracestate`) carried in gRPC metadata,
//! which is HTTP/2 headers underneath.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;

use crate::sampling::{self, Decision, Sampling};

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(key), HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}

/// The caller's trace context, or an empty context when there is none (or it is malformed).
pub fn extract(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&Headers(headers))
}

/// Writes `cx` as `traceparent` (and `tracestate`) into `headers`.
pub fn inject(cx: &Context, headers: &mut HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeadersMut(headers));
}

/// The `traceparent` value of `span` (of the current call, unsampled, when
/// `span` is disabled), to carry inside a message.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if let Some(context) = sampling::unsampled_of(span) {
        return Some(context.traceparent());
    }
    let mut headers = HeaderMap::new();
    inject(&span.context(), &mut headers);
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The trace context a message carried as its `traceparent`.
pub fn from_traceparent(traceparent: &str) -> Context {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::try_from(traceparent) {
        headers.insert("traceparent", value);
    }
    extract(&headers)
}

/// The trace of one message delivered to a receiver, continuing the
/// `traceparent` the message carried: the span `consumer` opens (built only
/// when the delivery is sampled; disabled otherwise) and the `traceparent`
/// the receiver gets. Unsampled, that string is the one allocation.
pub fn continue_message(
    traceparent: Option<&str>,
    consumer: impl FnOnce() -> tracing::Span,
) -> (tracing::Span, Option<String>) {
    let open = || {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let span = consumer();
        if let Some(parent) = traceparent.filter(|tp| sampling::parse_traceparent(tp).is_some()) {
            let _ = span.set_parent(from_traceparent(parent));
        }
        let traceparent = traceparent_of(&span);
        (span, traceparent)
    };
    match Sampling::global().map(|sampling| sampling.decide(traceparent)) {
        None => open(),
        Some(Decision::Unsampled(context)) => (tracing::Span::none(), Some(context.traceparent())),
        Some(Decision::Sampled { root_trace_id }) => sampling::with_trace_id(root_trace_id, open),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn round_trips_traceparent() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", PARENT.parse().unwrap());
        let cx = extract(&headers);
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );

        let mut out = HeaderMap::new();
        inject(&cx, &mut out);
        assert_eq!(out["traceparent"], PARENT);
    }

    #[test]
    fn malformed_traceparent_is_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", "00-nothex-xyz-01".parse().unwrap());
        assert!(!extract(&headers).span().span_context().is_valid());
    }
}
