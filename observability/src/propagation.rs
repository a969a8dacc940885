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

/// One CONSUMER span for a run of deliveries that carry the same sampled
/// context, such as the messages of one `PublishBatch` read in one go:
/// the first message of a run opens the span ([`continue_message`]), the
/// next ones with the same `traceparent` join it (a clone of its
/// `traceparent`, the one allocation each), and the run ends when the
/// deliverer finds nothing more ready ([`ConsumerRuns::end`]) or a message
/// carries another context. A span of one message names it in
/// `messaging.message.id`; a span of more counts them in
/// `messaging.batch.message_count` instead, since a message id on a span
/// of several would name only one of them (consumer spans declare both
/// fields empty). Unsampled deliveries never open a run.
#[derive(Debug, Default)]
pub struct ConsumerRuns {
    open: Option<Run>,
}

#[derive(Debug)]
struct Run {
    /// The `traceparent` the run's messages carried.
    sent: String,
    span: tracing::Span,
    /// The `traceparent` its receivers get: the span's.
    delivered: Option<String>,
    messages: u64,
    /// The id of the run's first message, named on the span if it stays alone.
    first_id: String,
}

impl ConsumerRuns {
    /// The span and `traceparent` for one delivery of message `message_id`
    /// (see [`continue_message`]), joining the open run when `traceparent`
    /// is the run's.
    pub fn continue_message(
        &mut self,
        traceparent: Option<&str>,
        message_id: &str,
        consumer: impl FnOnce() -> tracing::Span,
    ) -> (tracing::Span, Option<String>) {
        if let (Some(run), Some(sent)) = (self.open.as_mut(), traceparent)
            && run.sent == sent
        {
            run.messages += 1;
            return (run.span.clone(), run.delivered.clone());
        }
        self.end();
        let (span, delivered) = continue_message(traceparent, consumer);
        match traceparent {
            Some(sent) if !span.is_disabled() => {
                self.open = Some(Run {
                    sent: sent.to_string(),
                    span: span.clone(),
                    delivered: delivered.clone(),
                    messages: 1,
                    first_id: message_id.to_string(),
                });
            }
            // No context to share: a span of its own (or none, unsampled).
            _ => {
                span.record("messaging.message.id", message_id);
            }
        }
        (span, delivered)
    }

    /// Ends the open run, if any: its span names its message or counts its
    /// messages, and closes once the last delivery holding it is done.
    pub fn end(&mut self) {
        if let Some(run) = self.open.take() {
            if run.messages > 1 {
                run.span
                    .record("messaging.batch.message_count", run.messages);
            } else {
                run.span
                    .record("messaging.message.id", run.first_id.as_str());
            }
        }
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

    const OTHER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    fn traced<T>(f: impl FnOnce() -> T) -> T {
        use opentelemetry::trace::TracerProvider;
        use tracing_subscriber::layer::SubscriberExt;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, f)
    }

    fn consumer() -> tracing::Span {
        tracing::info_span!(
            "receive",
            messaging.message.id = tracing::field::Empty,
            messaging.batch.message_count = tracing::field::Empty
        )
    }

    type Fields = std::collections::HashMap<u64, Vec<(String, String)>>;

    /// The fields each span was given, by span id, at its start or later.
    #[derive(Clone, Default)]
    struct Recorded(std::sync::Arc<std::sync::Mutex<Fields>>);

    struct Visitor<'a>(&'a mut Vec<(String, String)>);

    impl tracing::field::Visit for Visitor<'_> {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0
                .push((field.name().to_string(), format!("{value:?}")));
        }

        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            self.0.push((field.name().to_string(), value.to_string()));
        }
    }

    impl Recorded {
        /// The value `span` was given for `field`, the last one if several.
        fn value(&self, span: &tracing::Span, field: &str) -> Option<String> {
            let id = span.id().expect("an enabled span").into_u64();
            let fields = self.0.lock().unwrap();
            fields
                .get(&id)?
                .iter()
                .rev()
                .find(|(name, _)| name == field)
                .map(|(_, value)| value.clone())
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorded {
        fn on_new_span(
            &self,
            attrs: &tracing::span::Attributes<'_>,
            id: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut fields = self.0.lock().unwrap();
            attrs.record(&mut Visitor(fields.entry(id.into_u64()).or_default()));
        }

        fn on_record(
            &self,
            id: &tracing::span::Id,
            values: &tracing::span::Record<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut fields = self.0.lock().unwrap();
            values.record(&mut Visitor(fields.entry(id.into_u64()).or_default()));
        }
    }

    #[test]
    fn a_span_of_one_message_names_it_and_a_span_of_a_run_counts_them() {
        use opentelemetry::trace::TracerProvider;
        use tracing_subscriber::layer::SubscriberExt;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let recorded = Recorded::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(recorded.clone());
        tracing::subscriber::with_default(subscriber, || {
            let mut runs = ConsumerRuns::default();
            let (run, _) = runs.continue_message(Some(PARENT), "a", consumer);
            let (_, _) = runs.continue_message(Some(PARENT), "b", consumer);
            let (alone, _) = runs.continue_message(Some(OTHER), "c", consumer);
            runs.end();
            let (fresh, _) = runs.continue_message(None, "d", consumer);

            let count = "messaging.batch.message_count";
            let id = "messaging.message.id";
            assert_eq!(recorded.value(&run, count).as_deref(), Some("2"));
            assert_eq!(recorded.value(&run, id), None, "two messages, no one id");
            assert_eq!(recorded.value(&alone, id).as_deref(), Some("c"));
            assert_eq!(recorded.value(&alone, count), None);
            assert_eq!(
                recorded.value(&fresh, id).as_deref(),
                Some("d"),
                "named at once: a delivery without context opens no run"
            );
        });
    }

    #[test]
    fn deliveries_of_one_context_share_a_consumer_span_until_the_run_ends() {
        traced(|| {
            let mut runs = ConsumerRuns::default();
            let (_a, first) = runs.continue_message(Some(PARENT), "m", consumer);
            let (_b, second) = runs.continue_message(Some(PARENT), "m", consumer);
            let first = first.expect("a traceparent");
            assert_eq!(second.as_deref(), Some(first.as_str()));
            assert!(
                first.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "in the publisher's trace: {first}"
            );
            assert_ne!(first, PARENT, "with a span of its own");

            let (_c, other) = runs.continue_message(Some(OTHER), "m", consumer);
            let other = other.expect("a traceparent");
            assert!(other.starts_with("00-0af7651916cd43dd8448eb211c80319c-"));
            let (_d, again) = runs.continue_message(Some(PARENT), "m", consumer);
            let again = again.expect("a traceparent");
            assert_ne!(again, first, "another context ended the first run");

            runs.end();
            let (_e, after) = runs.continue_message(Some(PARENT), "m", consumer);
            assert_ne!(after.as_deref(), Some(again.as_str()), "end() ends the run");
        });
    }

    #[test]
    fn deliveries_without_context_each_start_their_own_trace() {
        traced(|| {
            let mut runs = ConsumerRuns::default();
            let (_a, first) = runs.continue_message(None, "m", consumer);
            let (_b, second) = runs.continue_message(None, "m", consumer);
            assert!(first.is_some());
            assert_ne!(first, second);
            assert!(runs.open.is_none());
        });
    }

    #[test]
    fn malformed_traceparent_is_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", "00-nothex-xyz-01".parse().unwrap());
        assert!(!extract(&headers).span().span_context().is_valid());
    }
}
