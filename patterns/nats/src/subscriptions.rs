//! The live Subscribe streams, by (topic, subscriber id): what Unsubscribe
//! ends, where Ack finds a delivered message, and what health counts.
//!
//! A [`Handle`] belongs to one stream. Its delivery task owns the NATS side;
//! the handle is how others reach that task: a stop signal, the JetStream
//! messages delivered on the stream and not yet acknowledged, and whether
//! its channel is full right now.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use async_nats::jetstream;
use tokio::sync::{Notify, watch};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub topic: String,
    pub subscriber_id: String,
}

pub(crate) struct Handle {
    id: u64,
    pub key: Key,
    stop: watch::Sender<bool>,
    full: AtomicBool,
    /// Delivered and unacknowledged JetStream messages, by message id.
    /// Bounded by the consumer's `max_ack_pending`.
    pending: Mutex<HashMap<String, jetstream::Message>>,
}

impl Handle {
    /// Asks the delivery task to end the stream.
    pub(crate) fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub(crate) fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    pub(crate) fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::Relaxed);
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, jetstream::Message>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `message` until it is acknowledged; a redelivery replaces the
    /// earlier delivery of the same id.
    pub(crate) fn hold(&self, message_id: String, message: jetstream::Message) {
        self.pending().insert(message_id, message);
    }

    /// Takes the pending message `message_id`, if this stream holds it.
    pub(crate) fn release(&self, message_id: &str) -> Option<jetstream::Message> {
        self.pending().remove(message_id)
    }

    /// Takes every pending message (to give them back when the stream ends).
    pub(crate) fn release_all(&self) -> Vec<jetstream::Message> {
        self.pending().drain().map(|(_, m)| m).collect()
    }

    pub(crate) fn pending_count(&self) -> usize {
        self.pending().len()
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    next_id: AtomicU64,
    streams: Mutex<HashMap<Key, Vec<Arc<Handle>>>>,
    /// Woken whenever a stream is removed.
    removed: Notify,
}

impl Registry {
    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Vec<Arc<Handle>>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new stream; its task watches the returned receiver.
    pub(crate) fn add(&self, key: Key) -> (Arc<Handle>, watch::Receiver<bool>) {
        let (stop, stopped) = watch::channel(false);
        let handle = Arc::new(Handle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            key: key.clone(),
            stop,
            full: AtomicBool::new(false),
            pending: Mutex::new(HashMap::new()),
        });
        self.streams().entry(key).or_default().push(handle.clone());
        (handle, stopped)
    }

    /// Forgets a stream that ended.
    pub(crate) fn remove(&self, handle: &Handle) {
        {
            let mut streams = self.streams();
            if let Some(list) = streams.get_mut(&handle.key) {
                list.retain(|h| h.id != handle.id);
                if list.is_empty() {
                    streams.remove(&handle.key);
                }
            }
        }
        self.removed.notify_waiters();
    }

    /// Stops every stream and waits (up to `timeout`) for their tasks to
    /// end, so pending JetStream messages are given back first.
    pub(crate) async fn stop_all(&self, timeout: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        for handle in self.all() {
            handle.stop();
        }
        loop {
            let removed = self.removed.notified();
            tokio::pin!(removed);
            removed.as_mut().enable();
            if self.streams().is_empty() {
                return;
            }
            if tokio::time::timeout_at(deadline, removed).await.is_err() {
                return;
            }
        }
    }

    /// Removes and returns every stream of `key` (for Unsubscribe).
    pub(crate) fn take(&self, key: &Key) -> Vec<Arc<Handle>> {
        self.streams().remove(key).unwrap_or_default()
    }

    /// The streams of `key`.
    pub(crate) fn find(&self, key: &Key) -> Vec<Arc<Handle>> {
        self.streams().get(key).cloned().unwrap_or_default()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Handle>> {
        self.streams().values().flatten().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(topic: &str, id: &str) -> Key {
        Key {
            topic: topic.into(),
            subscriber_id: id.into(),
        }
    }

    #[test]
    fn streams_are_found_taken_and_removed_by_key() {
        let registry = Registry::default();
        let (a1, _) = registry.add(key("t", "a"));
        let (_a2, _) = registry.add(key("t", "a"));
        let (b, _) = registry.add(key("t", "b"));
        assert_eq!(registry.find(&key("t", "a")).len(), 2);
        assert_eq!(registry.all().len(), 3);

        registry.remove(&a1);
        assert_eq!(registry.find(&key("t", "a")).len(), 1);
        assert_eq!(registry.take(&key("t", "a")).len(), 1);
        assert!(registry.find(&key("t", "a")).is_empty());
        assert!(registry.find(&key("u", "b")).is_empty());

        registry.remove(&b);
        assert!(registry.all().is_empty());
    }

    #[tokio::test]
    async fn stop_all_waits_for_the_tasks_to_end() {
        let registry = Arc::new(Registry::default());
        for id in ["a", "b"] {
            let (handle, mut stopped) = registry.add(key("t", id));
            let registry = registry.clone();
            tokio::spawn(async move {
                let _ = stopped.wait_for(|s| *s).await;
                registry.remove(&handle);
            });
        }
        registry.stop_all(std::time::Duration::from_secs(10)).await;
        assert!(registry.all().is_empty());
    }

    #[tokio::test]
    async fn stop_all_gives_up_at_the_deadline() {
        let registry = Registry::default();
        let (_handle, _stopped) = registry.add(key("t", "stuck"));
        registry
            .stop_all(std::time::Duration::from_millis(10))
            .await;
        assert_eq!(registry.all().len(), 1);
    }

    #[test]
    fn stop_reaches_the_task() {
        let registry = Registry::default();
        let (handle, stopped) = registry.add(key("t", "a"));
        assert!(!*stopped.borrow());
        handle.stop();
        assert!(*stopped.borrow());
        handle.set_full(true);
        assert!(handle.is_full());
    }
}
