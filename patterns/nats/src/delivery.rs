//! Moving messages from NATS to one Subscribe stream: each delivery gets a
//! CONSUMER span in the publisher's trace (one span for the messages read
//! in one go that carry the same context, such as one `PublishBatch`) and
//! becomes a `Message`.
//!
//! Core NATS ([`pump_core`]) is at-most-once: a message that does not fit
//! the stream's channel is dropped and counted (`dropped_before` on the next
//! one, `dropped` in health), so a slow subscriber never holds NATS up.
//! JetStream ([`pump_jetstream`]) never pulls more than the channel has room
//! for, so the server keeps what the subscriber has not taken yet.
//! Every JetStream message stays pending on the stream's handle until an
//! `Ack` names it; when the stream ends, what is still pending is NAKed
//! (once its last pull is over, within [`PULL_EXPIRES`]) so a returning
//! subscriber gets it without waiting out `ack_wait`.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll, Waker},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use async_nats::jetstream::{
    self, AckKind,
    consumer::{Consumer, pull},
};
use prism_observability::propagation::ConsumerRuns;
use prism_proto::pubsub::v1::Message;
use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, StreamExt};
use tonic::Status;
use tracing::{Instrument, Span};

use crate::{
    headers,
    link::{Link, Online},
    subscriptions::{Handle, Registry},
    telemetry,
    topic::Subjects,
};

pub(crate) type Outbox = mpsc::Sender<Result<Message, Status>>;

/// Counters shown in health details.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub delivered: AtomicU64,
    pub dropped: AtomicU64,
}

/// Everything a delivery task needs besides its NATS source.
pub(crate) struct Outlet {
    pub tx: Outbox,
    pub handle: Arc<Handle>,
    pub registry: Arc<Registry>,
    pub subjects: Subjects,
    pub subscriber_id: String,
    pub stats: Arc<Stats>,
    pub link: Arc<Link>,
}

/// Why a delivery task stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Unsubscribe or shutdown.
    Stopped,
    /// The subscriber went away.
    Closed,
    /// The NATS side ended (consumer deleted, subscription closed).
    SourceEnded,
}

impl Outlet {
    /// The `Message` for one delivery and its CONSUMER span. `fallback_id`
    /// and `fallback_ms` serve messages from publishers that are not Prism.
    fn prepare(
        &self,
        runs: &mut ConsumerRuns,
        msg: &async_nats::Message,
        attempt: u32,
        fallback_id: impl FnOnce() -> String,
        fallback_ms: i64,
    ) -> (Message, Span) {
        let topic = self.subjects.topic(msg.subject.as_str()).to_string();
        let incoming = headers::decode(msg.headers.as_ref());
        let message_id = incoming.message_id.unwrap_or_else(fallback_id);
        let (span, traceparent) =
            telemetry::delivery(runs, &topic, &message_id, msg.headers.as_ref());
        let message = Message {
            traceparent,
            topic,
            payload: msg.payload.to_vec(),
            metadata: incoming.metadata,
            message_id,
            timestamp_ms: incoming.timestamp_ms.unwrap_or(fallback_ms),
            delivery_attempt: attempt,
            dropped_before: 0,
            subscriber_id: self.subscriber_id.clone(),
        };
        (message, span)
    }

    fn delivered(&self) {
        self.stats.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Outlet {
    fn drop(&mut self) {
        self.registry.remove(&self.handle);
    }
}

/// True once `stop` says so (or its handle is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Core NATS: forwards until stopped, the subscriber leaves or NATS closes
/// the subscription.
pub(crate) async fn pump_core(
    mut subscriber: async_nats::Subscriber,
    outlet: Outlet,
    mut stop: watch::Receiver<bool>,
) -> Exit {
    let mut dropped_before = 0u64;
    let mut runs = ConsumerRuns::default();
    let exit = loop {
        let next = match waiting(&mut subscriber, &stop, &outlet) {
            Some(next) => next,
            None => {
                runs.end();
                tokio::select! {
                    _ = stopped(&mut stop) => break Exit::Stopped,
                    _ = outlet.tx.closed() => break Exit::Closed,
                    next = subscriber.next() => next,
                }
            }
        };
        let Some(msg) = next else {
            break Exit::SourceEnded;
        };
        if outlet.tx.capacity() == 0 {
            // Full: drop before spending a span and a copy on the message.
            dropped_before += 1;
            outlet.stats.dropped.fetch_add(1, Ordering::Relaxed);
            outlet.handle.set_full(true);
            outlet.link.slow_consumer(Instant::now());
            continue;
        }
        let (mut message, span) = outlet.prepare(&mut runs, &msg, 1, new_message_id, now_ms());
        message.dropped_before = dropped_before;
        let offered = {
            let _entered = span.enter();
            outlet.tx.try_send(Ok(message))
        };
        match offered {
            Ok(()) => {
                dropped_before = 0;
                outlet.handle.set_full(false);
                outlet.delivered();
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                dropped_before += 1;
                outlet.stats.dropped.fetch_add(1, Ordering::Relaxed);
                outlet.handle.set_full(true);
                outlet.link.slow_consumer(Instant::now());
                telemetry::record_error(&span);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => break Exit::Closed,
        }
    };
    let _ = subscriber.unsubscribe().await;
    exit
}

/// The next item of `source` if it is already there, without waiting: a
/// message read this way continues the current run of deliveries (one
/// CONSUMER span for a batch published in one go). `None` as well once stop
/// is asked or the subscriber has gone, so that a message is taken only
/// when it will be delivered; the caller's wait then sees why.
fn waiting<S: Stream + Unpin>(
    source: &mut S,
    stop: &watch::Receiver<bool>,
    outlet: &Outlet,
) -> Option<Option<S::Item>> {
    if *stop.borrow() || outlet.tx.is_closed() {
        return None;
    }
    match Pin::new(source).poll_next(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(item) => Some(item),
        Poll::Pending => None,
    }
}

/// How long one pull request waits on the server for messages. It bounds
/// how long a stream that ended keeps draining its last pull.
pub(crate) const PULL_EXPIRES: Duration = Duration::from_secs(3);

/// JetStream: pulls batches no larger than the room in the stream's channel
/// (none while it is full), holds each message until it is acknowledged,
/// and NAKs whatever is still held when it ends.
///
/// A pull that is outstanding when the stream ends is read to its end (at
/// most [`PULL_EXPIRES`]) and what it still brings is held too: otherwise
/// the server would deliver into an inbox nobody reads and the message would
/// wait out `ack_wait`. Only then is everything held NAKed, so none of it
/// comes back into that same pull.
pub(crate) async fn pump_jetstream(
    consumer: &Consumer<pull::Config>,
    max_batch: usize,
    outlet: &Outlet,
    stop: &mut watch::Receiver<bool>,
    online: &mut Online,
) -> Exit {
    let mut runs = ConsumerRuns::default();
    let exit = 'pulls: loop {
        runs.end();
        tokio::select! {
            _ = stopped(stop) => break Exit::Stopped,
            _ = outlet.tx.closed() => break Exit::Closed,
            _ = online.wait() => {}
        }
        let room = match room(outlet, stop).await {
            Ok(room) => room,
            Err(exit) => break exit,
        };
        let mut batch = match consumer
            .batch()
            .max_messages(room.min(max_batch))
            .expires(PULL_EXPIRES)
            .messages()
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                tracing::debug!(error = %e, "JetStream pull failed");
                break Exit::SourceEnded;
            }
        };
        loop {
            let item = match waiting(&mut batch, stop, outlet) {
                Some(item) => item,
                None => {
                    runs.end();
                    tokio::select! {
                        _ = stopped(stop) => {
                            give_back(batch, &outlet.handle).await;
                            break 'pulls Exit::Stopped;
                        }
                        _ = outlet.tx.closed() => {
                            give_back(batch, &outlet.handle).await;
                            break 'pulls Exit::Closed;
                        }
                        item = batch.next() => item,
                    }
                }
            };
            let msg = match item {
                // This pull is complete; ask again.
                None => break,
                Some(Ok(msg)) => msg,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "JetStream pull ended");
                    break 'pulls Exit::SourceEnded;
                }
            };
            let (message, span) = prepare_jetstream(outlet, &mut runs, &msg);
            outlet.handle.hold(message.message_id.clone(), msg);
            // The pull asked for no more than the channel had room for, and
            // this task is its only sender: this does not wait.
            if outlet.tx.send(Ok(message)).instrument(span).await.is_err() {
                give_back(batch, &outlet.handle).await;
                break 'pulls Exit::Closed;
            }
            outlet.delivered();
        }
    };
    nak_all(&outlet.handle).await;
    exit
}

/// Room in the channel, waiting (and showing as a slow consumer) while
/// there is none.
async fn room(outlet: &Outlet, stop: &mut watch::Receiver<bool>) -> Result<usize, Exit> {
    if outlet.tx.capacity() == 0 {
        outlet.handle.set_full(true);
        outlet.link.slow_consumer(Instant::now());
        let permit = tokio::select! {
            _ = stopped(stop) => return Err(Exit::Stopped),
            permit = outlet.tx.reserve() => permit.map_err(|_| Exit::Closed)?,
        };
        drop(permit);
        outlet.handle.set_full(false);
    }
    Ok(outlet.tx.capacity().max(1))
}

fn prepare_jetstream(
    outlet: &Outlet,
    runs: &mut ConsumerRuns,
    msg: &jetstream::Message,
) -> (Message, Span) {
    let (attempt, fallback_id, published_ms) = match msg.info() {
        Ok(info) => (
            u32::try_from(info.delivered).unwrap_or(1).max(1),
            format!("{}:{}", info.stream, info.stream_sequence),
            (info.published.unix_timestamp_nanos() / 1_000_000) as i64,
        ),
        Err(_) => (1, new_message_id(), now_ms()),
    };
    outlet.prepare(runs, &msg.message, attempt, || fallback_id, published_ms)
}

/// Reads an outstanding pull to its end, holding every message it brings
/// (for [`nak_all`] once the pull is over).
async fn give_back(mut batch: pull::Batch, handle: &Handle) {
    while let Some(item) = batch.next().await {
        if let Ok(msg) = item {
            let id = headers::decode(msg.message.headers.as_ref())
                .message_id
                .unwrap_or_else(new_message_id);
            handle.hold(id, msg);
        }
    }
}

async fn nak(msg: &jetstream::Message) {
    if let Err(e) = msg.ack_with(AckKind::Nak(None)).await {
        tracing::debug!(error = %e, "could not NAK a message; it is redelivered after ack_wait");
    }
}

/// Gives every message still held on `handle` back for redelivery now.
pub(crate) async fn nak_all(handle: &Handle) {
    for msg in handle.release_all() {
        nak(&msg).await;
    }
}

/// Acknowledges `msg`.
pub(crate) async fn ack(msg: &jetstream::Message) -> bool {
    match msg.ack().await {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "ack failed; the message is redelivered after ack_wait");
            false
        }
    }
}

/// A fresh message id: 128 random bits in hex.
pub(crate) fn new_message_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_unique_hex() {
        let a = new_message_id();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_message_id());
    }

    #[test]
    fn now_is_epoch_millis() {
        let ms = now_ms();
        assert!(ms > 1_600_000_000_000 && ms < 10_000_000_000_000, "{ms}");
    }
}
