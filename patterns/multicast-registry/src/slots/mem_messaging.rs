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
            // Side by side, so one full queue does not hold up the others.
            let sent = futures_util::future::join_all(
                senders.iter().map(|(_, tx)| tx.send(envelope.clone())),
            )
            .await;
            if sent.iter().any(Result::is_ok) {
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
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn slot(inbox_capacity: usize) -> MemMessaging {
        MemMessaging::open(&json!({ "inbox_capacity": inbox_capacity })).unwrap()
    }

    fn envelope(n: u32) -> Envelope {
        Envelope {
            message_id: format!("m-{n}"),
            multicast_id: "mc".into(),
            payload: n.to_be_bytes().to_vec().into(),
            metadata: Arc::default(),
            sent_at_ms: 0,
            traceparent: String::new(),
        }
    }

    async fn next_id(inbox: &mut Inbox) -> String {
        let incoming = tokio::time::timeout(Duration::from_secs(10), inbox.next())
            .await
            .expect("a message within the deadline")
            .expect("an open inbox")
            .unwrap();
        incoming.envelope.message_id
    }

    async fn receivers(m: &MemMessaging) -> Vec<(String, String)> {
        m.health().await.details
    }

    #[tokio::test]
    async fn pending_messages_come_first_then_live_ones() {
        let m = slot(8);
        for n in 0..3 {
            assert_eq!(
                m.deliver("a", &envelope(n)).await.unwrap(),
                Outcome::Pending
            );
        }
        let mut inbox = m.attach("a").await.unwrap();
        assert_eq!(
            m.deliver("a", &envelope(3)).await.unwrap(),
            Outcome::Delivered
        );
        for n in 0..4 {
            assert_eq!(next_id(&mut inbox).await, format!("m-{n}"));
        }
        // Another identity's messages are not this one's.
        assert_eq!(
            m.deliver("b", &envelope(9)).await.unwrap(),
            Outcome::Pending
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(50), inbox.next())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_full_inbox_fails_and_says_why() {
        let m = slot(2);
        m.deliver("a", &envelope(0)).await.unwrap();
        m.deliver("a", &envelope(1)).await.unwrap();
        assert_eq!(
            m.deliver("a", &envelope(2)).await.unwrap(),
            Outcome::Failed("inbox full: 2 messages pending (inbox_capacity)".into())
        );
        // Draining it by attaching makes room again.
        let mut inbox = m.attach("a").await.unwrap();
        assert_eq!(next_id(&mut inbox).await, "m-0");
        drop(inbox);
        assert_eq!(
            m.deliver("a", &envelope(3)).await.unwrap(),
            Outcome::Pending
        );
    }

    #[tokio::test]
    async fn every_receiver_of_an_identity_gets_every_message() {
        let m = slot(8);
        let mut one = m.attach("a").await.unwrap();
        let mut two = m.attach("a").await.unwrap();
        assert_eq!(receivers(&m).await, vec![("receivers".into(), "2".into())]);
        assert_eq!(
            m.deliver("a", &envelope(0)).await.unwrap(),
            Outcome::Delivered
        );
        assert_eq!(next_id(&mut one).await, "m-0");
        assert_eq!(next_id(&mut two).await, "m-0");
        drop(one);
        assert_eq!(receivers(&m).await, vec![("receivers".into(), "1".into())]);
        drop(two);
        assert_eq!(receivers(&m).await, vec![("receivers".into(), "0".into())]);
        // With nobody attached the next message waits in the inbox.
        assert_eq!(
            m.deliver("a", &envelope(1)).await.unwrap(),
            Outcome::Pending
        );
    }

    #[tokio::test]
    async fn forget_ends_receivers_and_drops_pending_messages() {
        let m = slot(8);
        m.deliver("a", &envelope(0)).await.unwrap();
        m.forget("a").await.unwrap();
        let mut inbox = m.attach("a").await.unwrap();
        m.forget("a").await.unwrap();
        let end = tokio::time::timeout(Duration::from_secs(10), inbox.next()).await;
        assert!(matches!(end, Ok(None)), "the stream ended");
        assert_eq!(
            m.deliver("a", &envelope(1)).await.unwrap(),
            Outcome::Pending
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_receiver_queue_makes_the_delivery_wait() {
        let m = slot(8);
        let mut inbox = m.attach("a").await.unwrap();
        for n in 0..RECEIVER_QUEUE as u32 {
            assert_eq!(
                m.deliver("a", &envelope(n)).await.unwrap(),
                Outcome::Delivered
            );
        }
        let late = envelope(999);
        let waiting = tokio::time::timeout(Duration::from_secs(1), m.deliver("a", &late));
        assert!(waiting.await.is_err(), "no room: the delivery waits");
        assert_eq!(next_id(&mut inbox).await, "m-0");
        assert_eq!(
            m.deliver("a", &envelope(1000)).await.unwrap(),
            Outcome::Delivered
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_full_receiver_does_not_hold_up_another_of_the_same_identity() {
        let m = slot(8);
        let _full = m.attach("a").await.unwrap();
        for n in 0..RECEIVER_QUEUE as u32 {
            m.deliver("a", &envelope(n)).await.unwrap();
        }
        let mut fresh = m.attach("a").await.unwrap();
        let late = envelope(999);
        let waiting = tokio::time::timeout(Duration::from_secs(1), m.deliver("a", &late));
        assert!(waiting.await.is_err(), "the full receiver makes it wait");
        assert_eq!(next_id(&mut fresh).await, "m-999");
    }

    #[test]
    fn options_are_checked() {
        assert_eq!(
            MemMessaging::open(&json!({"inbox_capacity": 0}))
                .err()
                .unwrap()
                .field,
            "messaging.inbox_capacity"
        );
        let err = MemMessaging::open(&json!({"capacity": 1})).err().unwrap();
        assert!(err.to_string().contains("capacity"), "{err}");
    }
}
