//! Trace context that travels inside messages. Publishing opens a PRODUCER
//! span under the call's server span and writes its W3C context into the
//! NATS headers; delivering opens a CONSUMER span whose parent is the
//! context read back from those headers, so a subscriber's work belongs to
//! the publisher's trace. Attributes follow the OpenTelemetry messaging
//! conventions; never payloads or metadata values.
//!
//! Inside a call that is not sampled (see `prism_observability::sampling`)
//! neither span is built: the context still travels, flagged unsampled, at
//! the cost of the `traceparent` string alone.

use std::collections::HashMap;

use async_nats::{HeaderMap, HeaderName};
use opentelemetry::{propagation::TextMapPropagator, trace::TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use prism_observability::{propagation, sampling};
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::headers::{HeaderExtractor, HeaderInjector};

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The PRODUCER span of one publish; a child of the current span (disabled
/// when the current call is not sampled).
pub fn producer_span(topic: &str, message_id: &str) -> Span {
    if sampling::current_is_unsampled() {
        return Span::none();
    }
    tracing::info_span!(
        target: "prism::nats",
        "nats.publish",
        otel.name = %format_args!("{topic} publish"),
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = "nats",
        messaging.destination.name = topic,
        messaging.operation.type = "publish",
        messaging.message.id = message_id,
    )
}

/// The PRODUCER span of a whole PublishBatch, a child of the current span;
/// every message of the batch carries its context. It names the topic when
/// all the messages share one.
pub fn batch_producer_span(topic: Option<&str>, count: usize) -> Span {
    if sampling::current_is_unsampled() {
        return Span::none();
    }
    tracing::info_span!(
        target: "prism::nats",
        "nats.publish",
        otel.name = %topic.map_or_else(|| "publish".to_string(), |t| format!("{t} publish")),
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = "nats",
        messaging.destination.name = topic,
        messaging.operation.type = "publish",
        messaging.batch.message_count = count,
    )
}

/// The CONSUMER span of one delivery, continuing the trace whose context
/// `headers` carry (a new trace when they carry none). The run it opens
/// records its message id or message count (see
/// [`propagation::ConsumerRuns`]).
pub fn consumer_span(topic: &str, headers: Option<&HeaderMap>) -> Span {
    let span = tracing::info_span!(
        target: "prism::nats",
        parent: None,
        "nats.receive",
        otel.name = %format_args!("{topic} receive"),
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.destination.name = topic,
        messaging.operation.type = "receive",
        messaging.message.id = Empty,
        messaging.batch.message_count = Empty,
    );
    if let Some(headers) = headers {
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        if cx.span().span_context().is_valid() {
            let _ = span.set_parent(cx);
        }
    }
    span
}

/// The trace of one delivery: its CONSUMER span (disabled when the
/// delivery is not sampled; shared with the messages before it that carried
/// the same context and were read in one go, see
/// [`propagation::ConsumerRuns`]) and the `traceparent` the subscriber gets
/// (empty without tracing). Unsampled, or joining a run, the one
/// allocation is that string.
pub fn delivery(
    runs: &mut propagation::ConsumerRuns,
    topic: &str,
    message_id: &str,
    headers: Option<&HeaderMap>,
) -> (Span, String) {
    let sent = headers.and_then(|headers| {
        headers
            .iter()
            .find(|(name, _)| AsRef::<str>::as_ref(*name).eq_ignore_ascii_case("traceparent"))
            .and_then(|(_, values)| values.last())
            .map(async_nats::HeaderValue::as_str)
    });
    let (span, traceparent) =
        runs.continue_message(sent, message_id, || consumer_span(topic, None));
    (span, traceparent.unwrap_or_default())
}

/// Marks a span as failed.
pub fn record_error(span: &Span) {
    span.record("otel.status_code", "ERROR");
}

/// Writes `span`'s W3C context (the current call's, unsampled, when `span`
/// is disabled) into outgoing NATS headers.
pub fn inject(span: &Span, headers: &mut HeaderMap) {
    Carrier::of(span).write(headers);
}

/// The trace context every message of one publish carries, worked out once.
#[derive(Debug)]
pub enum Carrier {
    /// Not sampled: this `traceparent`, as it is.
    Unsampled(String),
    /// The span's own context.
    Traced(Span),
}

impl Carrier {
    pub fn of(span: &Span) -> Self {
        match sampling::unsampled_of(span) {
            Some(context) => Self::Unsampled(context.traceparent()),
            None => Self::Traced(span.clone()),
        }
    }

    pub fn write(&self, headers: &mut HeaderMap) {
        match self {
            Self::Unsampled(traceparent) => headers.insert(TRACEPARENT, traceparent.as_str()),
            Self::Traced(span) => TraceContextPropagator::new()
                .inject_context(&span.context(), &mut HeaderInjector(headers)),
        }
    }
}

/// `span`'s W3C `traceparent`, or empty when tracing is off.
pub fn traceparent(span: &Span) -> String {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove("traceparent").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{TraceId, TracerProvider};
    use tracing_subscriber::layer::SubscriberExt;

    /// The trace id of `span`, when it has a valid one.
    fn trace_id(span: &Span) -> Option<TraceId> {
        let id = span.context().span().span_context().trace_id();
        (id != TraceId::INVALID).then_some(id)
    }

    fn traced<T>(f: impl FnOnce() -> T) -> T {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, f)
    }

    #[test]
    fn the_consumer_continues_the_producers_trace() {
        traced(|| {
            let producer = producer_span("orders.eu", "id-1");
            let mut headers = HeaderMap::new();
            inject(&producer, &mut headers);
            let sent = HeaderExtractor(&headers);
            let producer_parent = opentelemetry::propagation::Extractor::get(&sent, "traceparent")
                .expect("traceparent in the headers")
                .to_string();

            let consumer = consumer_span("orders.eu", Some(&headers));
            assert_eq!(trace_id(&consumer), trace_id(&producer));
            assert!(trace_id(&producer).is_some());

            let delivered = traceparent(&consumer);
            let parts: Vec<&str> = delivered.split('-').collect();
            assert_eq!(parts.len(), 4, "{delivered}");
            assert_eq!(parts[1], trace_id(&producer).unwrap().to_string());
            assert_ne!(
                delivered, producer_parent,
                "the delivery has its own span id"
            );
        });
    }

    #[test]
    fn every_message_of_a_batch_continues_the_batch_span() {
        traced(|| {
            let batch = batch_producer_span(None, 2);
            let consumers: Vec<Span> = (0..2)
                .map(|_| {
                    let mut headers = HeaderMap::new();
                    inject(&batch, &mut headers);
                    consumer_span("orders.eu", Some(&headers))
                })
                .collect();
            assert!(trace_id(&batch).is_some());
            for consumer in &consumers {
                assert_eq!(trace_id(consumer), trace_id(&batch));
            }
        });
    }

    #[test]
    fn a_message_without_context_starts_a_trace() {
        traced(|| {
            let outer = producer_span("t", "unrelated");
            let _entered = outer.enter();
            let consumer = consumer_span("t", None);
            assert!(trace_id(&consumer).is_some());
            assert_ne!(
                trace_id(&consumer),
                trace_id(&outer),
                "never the current span's trace"
            );
        });
    }

    #[test]
    fn without_tracing_there_is_no_traceparent() {
        let span = producer_span("t", "id");
        assert_eq!(traceparent(&span), "");
        let mut headers = HeaderMap::new();
        inject(&span, &mut headers);
        assert!(headers.is_empty());
    }
}
