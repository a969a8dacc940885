//! The in-memory messaging slot: inboxes in this process. A message for an
//! identity with a receiver attached here goes to each receiver's bounded
//! queue (DELIVERED; a full queue makes the delivery wait, and the fan-out's
//! deadline bounds the wait); one for an identity with none is kept in its
//! bounded pending inbox (PENDING) until a receiver attaches, which gets the
//! pending messages first, in order. Nothing survives the process.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use futures_util::StreamExt;
use prism_pattern_sdk::ConfigError;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{Envelope, Inbox, Incoming, Outcome, SlotHealth, SlotState};
use crate::error::Error;

/// Messages each receiver may have queued before a delivery waits for room.
const RECEIVER_QUEUE: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Options {
    /// Messages kept per identity while no receiver is attached.
    inbox_capacity: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            inbox_capacity: 1024,
        }
    }
}

pub(crate) struct MemMessaging {
    inboxes: Arc<Mutex<HashMap<String, InboxState>>>,
    inbox_capacity: usize,
    next_receiver: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct InboxState {
    pending: VecDeque<Envelope>,
    receivers: Vec<(u64, mpsc::Sender<Envelope>)>,
}

impl MemMessaging {
    pub(crate) fn open(options: &Value) -> Result<Self, ConfigError> {
        let options: Options = prism_pattern_sdk::parse_config(options.clone())
            .map_err(|e| ConfigError::new(format!("messaging.{}", e.field), e.reason))?;
        if options.inbox_capacity == 0 {
            return Err(ConfigError::new(
                "messaging.inbox_capacity",
                "must be at least 1",
            ));
        }
        Ok(Self {
            inboxes: Arc::default(),
            inbox_capacity: options.inbox_capacity,
            next_receiver: 0.into(),
        })
    }

    pub(crate) async fn start(&self) -> Result<(), Error> {
        Ok(())
    }

    pub(crate) async fn stop(&self) {
        // Dropping the senders ends every receiver's stream.
        self.inboxes.lock().expect("inbox lock").clear();
    }

    pub(crate) async fn deliver(
        &self,
        identity: &str,
        envelope: &Envelope,
    ) -> Result<Outcome, Error> {
        // A receiver may detach between the lookup and the send; then the
        // message is stored as if none had been attached.
        loop {
            let senders: Vec<(u64, mpsc::Sender<Envelope>)> = {
                let mut inboxes = self.inboxes.lock().expect("inbox lock");
                let inbox = inboxes.entry(identity.to_string()).or_default();
                inbox.receivers.retain(|(_, tx)| !tx.is_closed());
                if inbox.receivers.is_empty() {
                    if inbox.pending.len() >= self.inbox_capacity {
                        return Ok(Outcome::Failed(format!(
                            "inbox full: {} messages pending (inbox_capacity)",
                            self.inbox_capacity
                        )));
                    }
                    inbox.pending.push_back(envelope.clone());
                    return Ok(Outcome::Pending);
                }
                inbox.receivers.clone()
            };
            let mut delivered = false;
            for (_, tx) in &senders {
                delivered |= tx.send(envelope.clone()).await.is_ok();
            }
            if delivered {
                return Ok(Outcome::Delivered);
            }
        }
    }

    pub(crate) async fn attach(&self, identity: &str) -> Result<Inbox, Error> {
        let (tx, rx) = mpsc::channel(RECEIVER_QUEUE);
        let id = self
            .next_receiver
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Taking the pending messages and joining the receivers under one
        // lock keeps them ahead of every later message.
        let pending: Vec<Envelope> = {
            let mut inboxes = self.inboxes.lock().expect("inbox lock");
            let inbox = inboxes.entry(identity.to_string()).or_default();
            inbox.receivers.push((id, tx));
            inbox.pending.drain(..).collect()
        };
        let guard = Detach {
            inboxes: self.inboxes.clone(),
            identity: identity.to_string(),
            id,
        };
        let stream = futures_util::stream::iter(pending)
            .chain(ReceiverStream::new(rx))
            .map(move |envelope| {
                let _attached = &guard;
                Ok(Incoming {
                    envelope,
                    ack: None,
                })
            });
        Ok(Box::pin(stream))
    }

    pub(crate) async fn forget(&self, identity: &str) -> Result<(), Error> {
        // Dropping the inbox drops its senders, which ends its receivers.
        self.inboxes.lock().expect("inbox lock").remove(identity);
        Ok(())
    }

    pub(crate) async fn health(&self) -> SlotHealth {
        let receivers: usize = self
            .inboxes
            .lock()
            .expect("inbox lock")
            .values()
            .map(|inbox| {
                inbox
                    .receivers
                    .iter()
                    .filter(|(_, tx)| !tx.is_closed())
                    .count()
            })
            .sum();
        SlotHealth {
            state: SlotState::Ready,
            details: vec![("receivers".into(), receivers.to_string())],
        }
    }
}

/// Removes a receiver from its inbox when its stream is dropped, and the
/// inbox itself once nothing is left in it.
struct Detach {
    inboxes: Arc<Mutex<HashMap<String, InboxState>>>,
    identity: String,
    id: u64,
}

impl Drop for Detach {
    fn drop(&mut self) {
        let mut inboxes = self.inboxes.lock().expect("inbox lock");
        if let Some(inbox) = inboxes.get_mut(&self.identity) {
            inbox.receivers.retain(|(id, _)| *id != self.id);
            if inbox.receivers.is_empty() && inbox.pending.is_empty() {
                inboxes.remove(&self.identity);
            }
        }
    }
}

#[cfg(test)]
mod tests {}
