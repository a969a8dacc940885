//! The Redis Pub/Sub messaging slot: at most once, nothing stored.
//!
//! - `deliver`: `PUBLISH prism:registry:{<namespace>}:inbox:<hex(identity)>`
//!   with the envelope as one [`frame`]. Redis answers how many
//!   subscribers took it: at least one → [`Outcome::Delivered`] (a receiver
//!   in some process holds it), none → [`Outcome::Failed`]: Redis Pub/Sub
//!   keeps nothing, so this slot never reports PENDING.
//! - `attach`: a receiver is a SUBSCRIBE to the identity's channel on a
//!   connection of its own. A task moves messages from it into the
//!   receiver's queue of [`RECEIVER_QUEUE`]; a receiver that falls that far
//!   behind is detached (its stream ends with RESOURCE_EXHAUSTED) rather
//!   than buffering without bound; the message that found its queue full
//!   was counted by PUBLISH (DELIVERED) and is lost with the receiver,
//!   which learns it from that error. Dropping the [`Inbox`] closes the
//!   connection, which ends the subscription; losing Redis ends the stream
//!   with UNAVAILABLE (the caller may attach again).
//! - `forget`: publishes a forget frame, which ends that identity's
//!   receivers in every process.
//!
//! Options are prism-redis's, read under `messaging.`.

mod frame;
#[cfg(test)]
mod tests;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use futures_util::StreamExt;
use prism_pattern_sdk::ConfigError;
use prism_redis::client::{Backend, Retry};
use redis::aio::PubSubStream;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::{Envelope, Inbox, Incoming, Outcome, SlotHealth, redis_backend};
use crate::error::Error;
use frame::Frame;

/// Messages queued for one receiver before it counts as fallen behind.
const RECEIVER_QUEUE: usize = 1024;

pub(crate) struct RedisMessaging {
    backend: Arc<Backend>,
    /// `prism:registry:{<namespace>}:inbox:`, followed by the hex identity.
    channel_prefix: String,
    /// Receivers attached in this process.
    receivers: Arc<AtomicUsize>,
    /// True once stopped: every receiver ends.
    stopped: watch::Sender<bool>,
}

impl RedisMessaging {
    /// Reads the options (errors name `messaging.<option>`); connects on
    /// first use.
    pub(crate) fn open(namespace: &str, options: &Value) -> Result<Self, ConfigError> {
        Ok(Self {
            backend: redis_backend::open("messaging", options)?,
            channel_prefix: format!("{}inbox:", redis_backend::key_prefix(namespace)),
            receivers: Arc::new(AtomicUsize::new(0)),
            stopped: watch::Sender::new(false),
        })
    }

    fn channel(&self, identity: &str) -> String {
        format!("{}{}", self.channel_prefix, redis_backend::hex(identity))
    }

    /// Nothing to connect ahead of use: a Redis that is down now makes
    /// health UNHEALTHY rather than failing Start.
    pub(crate) async fn start(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Ends every receiver and closes the pool (a stopped pattern is never
    /// started again: Initialize builds new slots).
    pub(crate) async fn stop(&self) {
        self.stopped.send_replace(true);
        self.backend.close().await;
    }

    pub(crate) async fn deliver(
        &self,
        identity: &str,
        envelope: &Envelope,
    ) -> Result<Outcome, Error> {
        let receivers = self.publish(identity, frame::encode(envelope)).await?;
        Ok(if receivers > 0 {
            Outcome::Delivered
        } else {
            Outcome::Failed("no receiver attached; Redis Pub/Sub keeps nothing".into())
        })
    }

    /// PUBLISH; how many subscribers took it.
    async fn publish(&self, identity: &str, frame: Vec<u8>) -> Result<u64, Error> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.channel(identity)).arg(frame);
        self.backend
            .run("PUBLISH", &cmd, Retry::Never)
            .await
            .map_err(redis_backend::error)
    }

    pub(crate) async fn attach(&self, identity: &str) -> Result<Inbox, Error> {
        if *self.stopped.borrow() {
            return Err(Error::Unreachable {
                backend: "redis",
                reason: "the messaging slot is stopped".into(),
            });
        }
        let mut pubsub = self.backend.pubsub().await.map_err(redis_backend::error)?;
        let timeout = self.backend.config().command_timeout();
        match tokio::time::timeout(timeout, pubsub.subscribe(self.channel(identity))).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(redis_backend::error(err.into())),
            Err(_) => {
                return Err(Error::Unreachable {
                    backend: "redis",
                    reason: format!(
                        "SUBSCRIBE got no answer within {} ms (command_timeout_ms)",
                        timeout.as_millis()
                    ),
                });
            }
        }
        let (tx, rx) = mpsc::channel(RECEIVER_QUEUE);
        let attached = Attached::new(self.receivers.clone());
        tokio::spawn(pump(
            pubsub.into_on_message(),
            tx,
            self.stopped.subscribe(),
            attached,
        ));
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    /// Ends the identity's receivers wherever they are attached; nothing is
    /// stored to drop.
    pub(crate) async fn forget(&self, identity: &str) -> Result<(), Error> {
        self.publish(identity, frame::forget()).await.map(|_| ())
    }

    /// PING, and `receivers` attached in this process.
    pub(crate) async fn health(&self) -> SlotHealth {
        let mut health = redis_backend::health(&self.backend).await;
        health.details.push((
            "receivers".to_string(),
            self.receivers.load(Ordering::Relaxed).to_string(),
        ));
        health
    }
}

/// Counts a receiver for as long as its pump runs.
struct Attached(Arc<AtomicUsize>);

impl Attached {
    fn new(count: Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Moves one subscription's messages into its receiver's queue until the
/// receiver is dropped, the identity is forgotten, the slot stops, the
/// receiver falls [`RECEIVER_QUEUE`] behind or the connection is lost (the
/// last two end the stream with an error).
async fn pump(
    mut messages: PubSubStream,
    tx: mpsc::Sender<Result<Incoming, Error>>,
    mut stopped: watch::Receiver<bool>,
    attached: Attached,
) {
    let end = loop {
        tokio::select! {
            () = tx.closed() => break None,
            () = until_stopped(&mut stopped) => break None,
            message = messages.next() => {
                let Some(message) = message else {
                    break Some(Error::Unreachable {
                        backend: "redis",
                        reason: "the receiver's connection to redis closed".into(),
                    });
                };
                match frame::decode(message.get_payload_bytes()) {
                    Ok(Frame::Forget) => break None,
                    Ok(Frame::Message(envelope)) => {
                        match tx.try_send(Ok(Incoming { envelope, ack: None })) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Closed(_)) => break None,
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                break Some(Error::Exhausted(format!(
                                    "receiver fell {RECEIVER_QUEUE} messages behind and was detached"
                                )));
                            }
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%err, "dropping a pub/sub message this pattern did not encode");
                    }
                }
            }
        }
    };
    // Unsubscribe (close the connection) before anything else, so no
    // later PUBLISH counts this receiver.
    drop(messages);
    drop(attached);
    if let Some(err) = end {
        tokio::select! {
            _ = tx.send(Err(err)) => {}
            () = until_stopped(&mut stopped) => {}
        }
    }
}

/// Resolves once the slot stops (or is dropped).
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    while !*stopped.borrow_and_update() {
        if stopped.changed().await.is_err() {
            return;
        }
    }
}
