//! A Receive stream: the identity's inbox, written to the client one message
//! at a time. Each message gets a CONSUMER span in the multicast's trace
//! (its parent is the envelope's traceparent) and is acknowledged to the
//! slot only once the stream has taken it, so an at-least-once slot keeps
//! what a client that went away never got. The stream ends when the client
//! goes away (the receiver detaches) or the slot ends the inbox.

use futures_util::StreamExt;
use prism_observability::propagation;
use prism_proto::registry::v1::InboxMessage;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::slots::{Envelope, Inbox};

/// Messages the gRPC stream may hold before the inbox waits (one: a
/// message is acknowledged only when the stream has it).
const STREAM_QUEUE: usize = 1;

/// Streams `inbox` as `InboxMessage`s; `system` names the messaging slot
/// on the spans.
pub(crate) fn stream(
    mut inbox: Inbox,
    system: &'static str,
) -> ReceiverStream<Result<InboxMessage, Status>> {
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = inbox.next() => next,
                () = tx.closed() => break,
            };
            let incoming = match next {
                None => break,
                Some(Err(err)) => {
                    let _ = tx.send(Err(Status::from(err))).await;
                    break;
                }
                Some(Ok(incoming)) => incoming,
            };
            let span = consumer_span(system, &incoming.envelope);
            let message = message(incoming.envelope, &span);
            if tx.send(Ok(message)).await.is_err() {
                break;
            }
            if let Some(ack) = incoming.ack {
                span.in_scope(ack);
            }
        }
    });
    ReceiverStream::new(rx)
}

/// The CONSUMER span of one message, in the trace its envelope carries (a
/// new trace when it carries none). No identity attribute: identities are
/// unbounded; the message id finds the delivery.
fn consumer_span(system: &'static str, envelope: &Envelope) -> Span {
    let span = tracing::info_span!(
        target: "prism::registry",
        parent: None,
        "registry.receive",
        otel.name = "inbox receive",
        otel.kind = "consumer",
        messaging.system = system,
        messaging.operation.type = "receive",
        messaging.operation = "receive",
        messaging.message.id = %envelope.message_id,
        prism.multicast.id = %envelope.multicast_id,
    );
    if !envelope.traceparent.is_empty() {
        let _ = span.set_parent(propagation::from_traceparent(&envelope.traceparent));
    }
    span
}

fn message(envelope: Envelope, span: &Span) -> InboxMessage {
    InboxMessage {
        message_id: envelope.message_id,
        multicast_id: envelope.multicast_id,
        payload: envelope.payload.to_vec(),
        metadata: envelope
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        sent_at_ms: envelope.sent_at_ms,
        traceparent: propagation::traceparent_of(span).unwrap_or(envelope.traceparent),
    }
}
