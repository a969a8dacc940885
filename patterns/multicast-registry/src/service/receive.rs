//! A Receive stream: the identity's inbox, written to the client one message
//! at a time. Each message gets a CONSUMER span in the multicast's trace
//! (its parent is the envelope's traceparent) and is acknowledged to the
//! slot as the stream takes it, so an at-least-once slot keeps what was
//! never handed to a client that went away. The stream ends when the client
//! goes away (the receiver detaches) or the slot ends the inbox.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use futures_util::{Stream, StreamExt};
use prism_observability::propagation;
use prism_proto::registry::v1::InboxMessage;
use tonic::Status;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::slots::{Envelope, Inbox};

/// `inbox` as the `InboxMessage`s of a Receive response. tonic drops it when
/// the client goes away, which drops the inbox and so detaches the receiver;
/// no task of its own outlives the call.
pub(crate) struct InboxMessages {
    /// `None` once the inbox has ended or failed.
    inbox: Option<Inbox>,
    /// The messaging slot's backend, named on the spans.
    system: &'static str,
}

impl InboxMessages {
    pub(crate) fn new(inbox: Inbox, system: &'static str) -> Self {
        Self {
            inbox: Some(inbox),
            system,
        }
    }
}

impl Stream for InboxMessages {
    type Item = Result<InboxMessage, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inbox) = self.inbox.as_mut() else {
            return Poll::Ready(None);
        };
        match ready!(inbox.poll_next_unpin(cx)) {
            None => {
                self.inbox = None;
                Poll::Ready(None)
            }
            Some(Err(err)) => {
                self.inbox = None;
                Poll::Ready(Some(Err(err.into())))
            }
            Some(Ok(incoming)) => {
                let span = consumer_span(self.system, &incoming.envelope);
                let message = message(incoming.envelope, &span);
                // The stream takes the message as it is returned: the ack
                // follows, before the next message is asked for.
                if let Some(ack) = incoming.ack {
                    span.in_scope(ack);
                }
                Poll::Ready(Some(Ok(message)))
            }
        }
    }
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
