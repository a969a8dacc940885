//! Core NATS delivery: request/reply. `deliver` sends the message as a
//! request to the identity's inbox subject; every process with a receiver
//! of that identity subscribes to the subject (a plain subscription per
//! receiver, so each receiver gets every message) and replies once the
//! message is in the receiver's queue. The first reply makes it DELIVERED;
//! no subscriber at all is NATS's "no responders": FAILED, since core NATS
//! stores nothing.

use async_nats::{Request, client::RequestErrorKind};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{Live, subscribe_confirmed, unreachable, wire};
use crate::{
    error::Error,
    slots::{Envelope, Inbox, Incoming, Outcome},
};

pub(super) async fn deliver(
    live: &Live,
    identity: &str,
    envelope: &Envelope,
) -> Result<Outcome, Error> {
    let request = Request::new()
        .headers(wire::encode(envelope, None))
        .payload(Bytes::copy_from_slice(&envelope.payload));
    match live
        .client
        .send_request(live.names.inbox(identity), request)
        .await
    {
        Ok(_) => Ok(Outcome::Delivered),
        Err(e) => Ok(Outcome::Failed(match e.kind() {
            RequestErrorKind::NoResponders => {
                "no receiver attached; core NATS keeps nothing".to_string()
            }
            RequestErrorKind::TimedOut => format!(
                "the receiver did not take the message within {} ms (request_timeout_ms)",
                live.options.nats.request_timeout_ms
            ),
            RequestErrorKind::MaxPayloadExceeded => {
                "the message with its headers exceeds the NATS server's max_payload".to_string()
            }
            RequestErrorKind::InvalidSubject | RequestErrorKind::Other => {
                return Err(unreachable(e.to_string()));
            }
        })),
    }
}

/// Subscribes to the identity's inbox subject; returns once NATS holds the
/// subscription, so a delivery from any process after this reaches it.
pub(super) async fn attach(live: &Live, identity: &str) -> Result<Inbox, Error> {
    let mut subscriber = subscribe_confirmed(live, live.names.inbox(identity)).await?;
    let (tx, rx) = mpsc::channel(live.options.receiver_buffer);
    let mut attached = live.receivers.join(identity);
    let client = live.client.clone();
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = attached.wait_ended() => break,
                _ = tx.closed() => break,
                msg = subscriber.next() => match msg {
                    Some(msg) => msg,
                    None => {
                        let _ = tx.send(Err(unreachable("the NATS connection closed"))).await;
                        break;
                    }
                },
            };
            let envelope = wire::decode(msg.headers.as_ref(), &msg.payload, new_id);
            let incoming = Incoming {
                envelope,
                ack: None,
            };
            // Waits for room: the sender's request timeout (and the
            // multicast's) bounds how long it waits for this.
            tokio::select! {
                _ = attached.wait_ended() => break,
                sent = tx.send(Ok(incoming)) => if sent.is_err() { break },
            }
            if let Some(reply) = msg.reply
                && let Err(e) = client.publish(reply, Bytes::new()).await
            {
                tracing::debug!(error = %e, "could not confirm a delivery; the sender sees a timeout");
            }
        }
        let _ = subscriber.unsubscribe().await;
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// An id for a message some other NATS client put on an inbox subject.
pub(super) fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
