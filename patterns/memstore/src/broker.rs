//! The in-memory message broker behind MemStore's PubSub: subscriptions by
//! topic pattern, each with its own bounded queue, so a slow subscriber only
//! ever loses its own messages (counted) and never delays the others.
//! At-most-once: a message nobody can take right now is dropped.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::mpsc;

/// One published message as subscribers receive it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Delivery {
    pub topic: String,
    pub payload: Vec<u8>,
    pub metadata: BTreeMap<String, String>,
    pub message_id: String,
    pub timestamp_ms: i64,
    /// The publisher's trace context (`traceparent`), if any.
    pub traceparent: Option<String>,
    /// Messages this subscriber lost (queue full) since its previous delivery.
    pub dropped_before: u64,
}

struct Subscriber {
    id: u64,
    pattern: String,
    subscriber_id: String,
    queue: mpsc::Sender<Delivery>,
    /// Drops since the last message that got through.
    dropped: AtomicU64,
}

#[derive(Default)]
pub(crate) struct Stats {
    pub published: AtomicU64,
    pub delivered: AtomicU64,
    pub dropped: AtomicU64,
}

#[derive(Default)]
pub(crate) struct Broker {
    subscribers: RwLock<Vec<Arc<Subscriber>>>,
    next_id: AtomicU64,
    pub stats: Stats,
}

/// Removes its subscription when dropped.
pub(crate) struct SubscriptionGuard {
    broker: Arc<Broker>,
    id: u64,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.broker
            .subscribers
            .write()
            .expect("subscribers")
            .retain(|s| s.id != self.id);
    }
}

impl Broker {
    /// Subscribes `subscriber_id` to `pattern` with a queue of `capacity`.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        pattern: &str,
        subscriber_id: &str,
        capacity: usize,
    ) -> (SubscriptionGuard, mpsc::Receiver<Delivery>) {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.subscribers
            .write()
            .expect("subscribers")
            .push(Arc::new(Subscriber {
                id,
                pattern: pattern.to_string(),
                subscriber_id: subscriber_id.to_string(),
                queue,
                dropped: AtomicU64::new(0),
            }));
        (
            SubscriptionGuard {
                broker: self.clone(),
                id,
            },
            receiver,
        )
    }

    /// Fans `message` out to every matching subscriber, in publish order per
    /// subscriber. Returns how many queues took it.
    pub(crate) fn publish(&self, message: &Delivery) -> usize {
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        let subscribers = self.subscribers.read().expect("subscribers");
        let mut taken = 0;
        for sub in subscribers
            .iter()
            .filter(|s| prism_proto::topic::matches(&s.pattern, &message.topic))
        {
            let mut copy = message.clone();
            copy.dropped_before = sub.dropped.swap(0, Ordering::Relaxed);
            match sub.queue.try_send(copy) {
                Ok(()) => {
                    taken += 1;
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Full(lost)) => {
                    // Keep the count that was about to travel with it.
                    sub.dropped
                        .fetch_add(lost.dropped_before + 1, Ordering::Relaxed);
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        taken
    }

    /// Ends every subscription of `subscriber_id` on `pattern`; true if any.
    pub(crate) fn unsubscribe(&self, pattern: &str, subscriber_id: &str) -> bool {
        let mut subscribers = self.subscribers.write().expect("subscribers");
        let before = subscribers.len();
        subscribers.retain(|s| !(s.pattern == pattern && s.subscriber_id == subscriber_id));
        before != subscribers.len()
    }

    pub(crate) fn subscriptions(&self) -> usize {
        self.subscribers.read().expect("subscribers").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, n: u8) -> Delivery {
        Delivery {
            topic: topic.into(),
            payload: vec![n],
            metadata: BTreeMap::new(),
            message_id: format!("m{n}"),
            timestamp_ms: 0,
            traceparent: None,
            dropped_before: 0,
        }
    }

    #[tokio::test]
    async fn fans_out_by_pattern_in_order() {
        let broker = Arc::new(Broker::default());
        let (_a, mut a) = broker.subscribe("orders.*", "a", 8);
        let (_b, mut b) = broker.subscribe("orders.eu", "b", 8);
        let (_c, mut c) = broker.subscribe("payments.>", "c", 8);
        assert_eq!(broker.publish(&message("orders.eu", 1)), 2);
        assert_eq!(broker.publish(&message("orders.us", 2)), 1);
        assert_eq!(a.recv().await.unwrap().payload, [1]);
        assert_eq!(a.recv().await.unwrap().payload, [2]);
        assert_eq!(b.recv().await.unwrap().payload, [1]);
        assert!(c.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_full_queue_drops_for_that_subscriber_only_and_counts() {
        let broker = Arc::new(Broker::default());
        let (_slow, mut slow) = broker.subscribe("t", "slow", 2);
        let (_fast, mut fast) = broker.subscribe("t", "fast", 100);
        for n in 0..5 {
            broker.publish(&message("t", n));
        }
        for n in 0..5 {
            assert_eq!(fast.recv().await.unwrap().payload, [n]);
        }
        assert_eq!(slow.recv().await.unwrap().payload, [0]);
        assert_eq!(slow.recv().await.unwrap().payload, [1]);
        broker.publish(&message("t", 9));
        let next = slow.recv().await.unwrap();
        assert_eq!(next.payload, [9]);
        assert_eq!(next.dropped_before, 3, "messages 2, 3 and 4 were dropped");
        assert_eq!(broker.stats.dropped.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn dropping_the_guard_or_unsubscribing_ends_delivery() {
        let broker = Arc::new(Broker::default());
        let (guard, mut rx) = broker.subscribe("t", "x", 4);
        drop(guard);
        assert_eq!(broker.publish(&message("t", 1)), 0);
        assert!(
            rx.recv().await.is_none(),
            "the queue closes with its subscription"
        );

        let (_guard, mut rx) = broker.subscribe("t", "y", 4);
        assert!(broker.unsubscribe("t", "y"));
        assert!(!broker.unsubscribe("t", "y"));
        assert!(rx.recv().await.is_none());
        assert_eq!(broker.subscriptions(), 0);
    }
}
