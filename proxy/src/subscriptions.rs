//! Live subscriptions: one bounded [`Buffer`] per subscriber between the
//! pattern's stream and the client's, and the registry that `Unsubscribe`
//! and shutdown use to end them. A multicast registry's `Receive` streams
//! live here too (their buffers never drop: see [`crate::registry`]), so a
//! removed namespace or a proxy shutdown ends them the same way.
//!
//! Slow-consumer policy, per subscriber, so one slow client never delays
//! another: for at-most-once backends a full buffer first waits up to
//! [`DROP_GRACE`] for the client to make room — a burst (a `PublishBatch`
//! arrives all at once) must not cost a subscriber that keeps up — and, if
//! the client does not, drops its *oldest* message and counts it (the next
//! delivered message carries the count in `dropped_before`). A subscriber
//! that let the grace run out is *lagging*: further drops happen at once,
//! without waiting, until it has emptied half its buffer, so the pattern's
//! stream is always read and never holds up the connection the other
//! subscriptions share. For at-least-once backends the proxy stops reading the
//! pattern's stream until the client catches up, so the backend stops
//! handing out messages rather than losing them.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use prism_proto::registry::v1::InboxMessage;
use tokio::sync::Notify;
use tonic::Status;

use crate::{config::PatternKind, error::ProxyError};

/// How long a full at-most-once buffer waits for the client before dropping.
pub(crate) const DROP_GRACE: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    DropOldest,
    Backpressure,
}

/// What a buffer holds: it tells the client how many were dropped before it.
pub(crate) trait Queued: Send + 'static {
    fn count_dropped(&mut self, dropped: u64);
}

/// Receive buffers apply backpressure, so there is never a drop to count.
impl Queued for InboxMessage {
    fn count_dropped(&mut self, _dropped: u64) {}
}

/// A live stream as the registry sees it: something to end.
pub(crate) trait Stream: Send + Sync {
    fn fail(&self, status: Status);
    fn close(&self);
    fn dropped(&self) -> u64;
}

impl<T: Queued> Stream for Buffer<T> {
    fn fail(&self, status: Status) {
        Buffer::fail(self, status);
    }
    fn close(&self) {
        Buffer::close(self);
    }
    fn dropped(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }
}

pub(crate) struct Buffer<T> {
    state: Mutex<Queue<T>>,
    capacity: usize,
    policy: Policy,
    /// Woken when an item arrives or the buffer closes.
    items: Notify,
    /// Woken when room frees up or the buffer closes.
    room: Notify,
    /// Dropped over the buffer's life, for metrics.
    pub dropped_total: AtomicU64,
}

struct Queue<T> {
    items: VecDeque<Result<T, Status>>,
    /// Dropped since the last message handed to the client.
    dropped: u64,
    /// The client let [`DROP_GRACE`] pass with a full buffer and has not
    /// caught up since: drop without waiting.
    lagging: bool,
    closed: bool,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            dropped: 0,
            lagging: false,
            closed: false,
        }
    }
}

impl<T: Queued> Buffer<T> {
    pub(crate) fn new(capacity: usize, policy: Policy) -> Self {
        Self {
            state: Mutex::new(Queue::default()),
            capacity: capacity.max(1),
            policy,
            items: Notify::new(),
            room: Notify::new(),
            dropped_total: AtomicU64::new(0),
        }
    }

    /// Adds a message by the buffer's policy; false once the buffer is closed.
    pub(crate) async fn push(&self, message: T) -> bool {
        let mut message = Some(message);
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let mut queue = self.state.lock().expect("buffer");
                if queue.closed {
                    return false;
                }
                let full = queue.items.len() >= self.capacity;
                if full && self.policy == Policy::DropOldest && queue.lagging {
                    queue.items.pop_front();
                    queue.dropped += 1;
                    self.dropped_total.fetch_add(1, Ordering::Relaxed);
                }
                if queue.items.len() < self.capacity {
                    queue
                        .items
                        .push_back(Ok(message.take().expect("pushed once")));
                    drop(queue);
                    self.items.notify_one();
                    return true;
                }
            }
            match self.policy {
                Policy::Backpressure => room.await,
                Policy::DropOldest => {
                    if tokio::time::timeout(DROP_GRACE, room).await.is_err() {
                        self.state.lock().expect("buffer").lagging = true;
                    }
                }
            }
        }
    }

    /// Ends the stream with `status` after what is already buffered.
    pub(crate) fn fail(&self, status: Status) {
        let mut queue = self.state.lock().expect("buffer");
        if !queue.closed {
            queue.items.push_back(Err(status));
            queue.closed = true;
        }
        drop(queue);
        self.wake_all();
    }

    /// Ends the stream after what is already buffered.
    pub(crate) fn close(&self) {
        self.state.lock().expect("buffer").closed = true;
        self.wake_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.lock().expect("buffer").closed
    }

    /// Resolves once the buffer is closed.
    pub(crate) async fn closed(&self) {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.is_closed() {
                return;
            }
            room.await;
        }
    }

    /// The next item, stamped with the drops before it; `None` once closed
    /// and empty.
    pub(crate) async fn pop(&self) -> Option<Result<T, Status>> {
        loop {
            let items = self.items.notified();
            tokio::pin!(items);
            items.as_mut().enable();
            {
                let mut queue = self.state.lock().expect("buffer");
                if let Some(mut item) = queue.items.pop_front() {
                    if queue.items.len() <= self.capacity / 2 {
                        queue.lagging = false;
                    }
                    if let Ok(message) = &mut item {
                        message.count_dropped(std::mem::take(&mut queue.dropped));
                    }
                    drop(queue);
                    self.room.notify_waiters();
                    return Some(item);
                }
                if queue.closed {
                    return None;
                }
            }
            items.await;
        }
    }

    fn wake_all(&self) {
        self.items.notify_waiters();
        self.items.notify_one();
        self.room.notify_waiters();
    }
}

struct Entry {
    namespace: String,
    kind: PatternKind,
    /// The topic, or for `Receive` the identity.
    topic: String,
    subscriber_id: String,
    buffer: Arc<dyn Stream>,
}

/// Every live subscription of this proxy.
#[derive(Default)]
pub(crate) struct Subscriptions {
    next: AtomicU64,
    live: Mutex<HashMap<u64, Entry>>,
    /// Drops of subscriptions that have ended, per namespace, for metrics.
    dropped_ended: Mutex<HashMap<String, u64>>,
}

impl Subscriptions {
    /// `kind` is the pattern whose stream it is; `topic` the topic, or
    /// for `Receive` the identity.
    pub(crate) fn register(
        &self,
        (namespace, kind): (&str, PatternKind),
        topic: &str,
        subscriber_id: &str,
        buffer: Arc<dyn Stream>,
    ) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.live.lock().expect("subscriptions").insert(
            id,
            Entry {
                namespace: namespace.to_string(),
                kind,
                topic: topic.to_string(),
                subscriber_id: subscriber_id.to_string(),
                buffer,
            },
        );
        id
    }

    pub(crate) fn remove(&self, id: u64) {
        let entry = self.live.lock().expect("subscriptions").remove(&id);
        if let Some(entry) = entry {
            entry.buffer.close();
            if entry.kind != PatternKind::Pubsub {
                return; // only PubSub buffers ever drop
            }
            *self
                .dropped_ended
                .lock()
                .expect("dropped")
                .entry(entry.namespace)
                .or_default() += entry.buffer.dropped();
        }
    }

    /// Closes the streams of `subscriber_id` on `topic`; returns how many.
    pub(crate) fn close(&self, namespace: &str, topic: &str, subscriber_id: &str) -> usize {
        let live = self.live.lock().expect("subscriptions");
        let mut closed = 0;
        for entry in live.values().filter(|e| {
            e.namespace == namespace && e.topic == topic && e.subscriber_id == subscriber_id
        }) {
            entry.buffer.close();
            closed += 1;
        }
        closed
    }

    /// Ends every stream of `namespace` with `error` (a retryable
    /// UNAVAILABLE tells clients to subscribe again later).
    pub(crate) fn fail_namespace(&self, namespace: &str, error: &ProxyError) {
        for entry in self.live.lock().expect("subscriptions").values() {
            if entry.namespace == namespace {
                entry.buffer.fail(error.clone().into());
            }
        }
    }

    /// Ends every stream with UNAVAILABLE (proxy shutdown): retryable, so
    /// clients subscribe again elsewhere or once the proxy is back.
    pub(crate) fn close_all(&self) {
        for entry in self.live.lock().expect("subscriptions").values() {
            entry.buffer.fail(ProxyError::Draining.into());
        }
    }

    /// (live streams, messages dropped so far) per namespace, for the
    /// streams of `kind`.
    pub(crate) fn stats(&self, kind: PatternKind) -> HashMap<String, (u64, u64)> {
        let mut stats: HashMap<String, (u64, u64)> = self
            .dropped_ended
            .lock()
            .expect("dropped")
            .iter()
            .filter(|_| kind == PatternKind::Pubsub)
            .map(|(ns, dropped)| (ns.clone(), (0, *dropped)))
            .collect();
        let live = self.live.lock().expect("subscriptions");
        for entry in live.values().filter(|e| e.kind == kind) {
            let s = stats.entry(entry.namespace.clone()).or_default();
            s.0 += 1;
            s.1 += entry.buffer.dropped();
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prism_proto::pubsub::v1::Message;
    use std::time::Duration;

    /// The policy is the same whatever a buffer holds; these tests hold
    /// typed messages so the drop count is easy to read.
    impl Queued for Message {
        fn count_dropped(&mut self, dropped: u64) {
            self.dropped_before += dropped;
        }
    }

    fn msg(n: u8) -> Message {
        Message {
            payload: vec![n],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn drop_oldest_keeps_the_newest_and_counts() {
        let b = Buffer::<Message>::new(2, Policy::DropOldest);
        for n in 0..5 {
            assert!(b.push(msg(n)).await);
        }
        let first = b.pop().await.unwrap().unwrap();
        assert_eq!(first.payload, [3]);
        assert_eq!(first.dropped_before, 3);
        let second = b.pop().await.unwrap().unwrap();
        assert_eq!((second.payload[0], second.dropped_before), (4, 0));
        assert_eq!(b.dropped_total.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_burst_waits_for_a_client_that_keeps_up() {
        let b = Arc::new(Buffer::<Message>::new(4, Policy::DropOldest));
        let reader = {
            let b = b.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(Ok(m)) = b.pop().await {
                    assert_eq!(m.dropped_before, 0);
                    got.push(m.payload[0]);
                    tokio::task::yield_now().await;
                }
                got
            })
        };
        for n in 0..100 {
            assert!(b.push(msg(n)).await);
        }
        b.close();
        assert_eq!(reader.await.unwrap(), (0..100).collect::<Vec<u8>>());
        assert_eq!(b.dropped_total.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_does_not_read_costs_one_grace_then_drops_at_once() {
        let b = Buffer::<Message>::new(2, Policy::DropOldest);
        let started = tokio::time::Instant::now();
        for n in 0..50 {
            assert!(b.push(msg(n)).await);
        }
        assert_eq!(started.elapsed(), DROP_GRACE, "one wait, not one per drop");
        assert_eq!(b.dropped_total.load(Ordering::Relaxed), 48);
        // Catching up (half the buffer emptied) ends the lagging state.
        assert_eq!(b.pop().await.unwrap().unwrap().payload, [48]);
        assert!(b.push(msg(50)).await);
        let waited = tokio::time::Instant::now();
        assert!(b.push(msg(51)).await);
        assert_eq!(waited.elapsed(), DROP_GRACE, "waits again once caught up");
    }

    #[tokio::test]
    async fn backpressure_waits_for_room() {
        let b = Arc::new(Buffer::<Message>::new(1, Policy::Backpressure));
        assert!(b.push(msg(1)).await);
        let pusher = {
            let b = b.clone();
            tokio::spawn(async move { b.push(msg(2)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!pusher.is_finished(), "a full buffer holds the producer");
        assert_eq!(b.pop().await.unwrap().unwrap().payload, [1]);
        assert!(pusher.await.unwrap());
        assert_eq!(b.pop().await.unwrap().unwrap().payload, [2]);
        assert_eq!(b.dropped_total.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn close_delivers_what_is_buffered_then_ends() {
        let b = Arc::new(Buffer::<Message>::new(4, Policy::DropOldest));
        b.push(msg(1)).await;
        b.close();
        assert!(!b.push(msg(2)).await);
        assert_eq!(b.pop().await.unwrap().unwrap().payload, [1]);
        assert!(b.pop().await.is_none());
        b.closed().await;
    }

    #[tokio::test]
    async fn a_waiting_pop_wakes_on_close_and_failures_end_the_stream() {
        let b = Arc::new(Buffer::<Message>::new(4, Policy::DropOldest));
        let popper = {
            let b = b.clone();
            tokio::spawn(async move { b.pop().await.map(|r| r.map(|_| ())) })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        b.fail(Status::invalid_argument("topic: bad"));
        let item = popper.await.unwrap().unwrap();
        assert_eq!(item.unwrap_err().code(), tonic::Code::InvalidArgument);
        assert!(b.pop().await.is_none());
    }

    #[test]
    fn registry_closes_by_subscriber_and_keeps_drop_totals() {
        let subs = Subscriptions::default();
        let a = Arc::new(Buffer::<Message>::new(1, Policy::DropOldest));
        let id = subs.register(("events", PatternKind::Pubsub), "t", "alice", a.clone());
        subs.register(
            ("events", PatternKind::Pubsub),
            "t",
            "bob",
            Arc::new(Buffer::<Message>::new(1, Policy::DropOldest)),
        );
        a.dropped_total.store(7, Ordering::Relaxed);
        assert_eq!(subs.close("events", "t", "alice"), 1);
        assert!(a.is_closed());
        subs.remove(id);
        assert_eq!(subs.stats(PatternKind::Pubsub)["events"], (1, 7));
    }

    #[tokio::test]
    async fn shutdown_and_a_lost_namespace_end_streams_with_unavailable() {
        let subs = Subscriptions::default();
        let buffer = |subs: &Subscriptions, ns: &str| {
            let b = Arc::new(Buffer::<Message>::new(4, Policy::DropOldest));
            subs.register((ns, PatternKind::Pubsub), "t", "s", b.clone());
            b
        };
        let (cache, events) = (buffer(&subs, "cache"), buffer(&subs, "events"));
        events.push(msg(1)).await;
        subs.fail_namespace(
            "cache",
            &ProxyError::NamespaceUnavailable {
                namespace: "cache".into(),
                reason: "removed from the config".into(),
            },
        );
        let ended = cache.pop().await.unwrap().unwrap_err();
        assert_eq!(ended.code(), tonic::Code::Unavailable);
        assert!(ended.message().contains("removed"), "{}", ended.message());
        assert!(!events.is_closed(), "other namespaces keep streaming");

        subs.close_all();
        assert_eq!(events.pop().await.unwrap().unwrap().payload, [1]);
        let ended = events.pop().await.unwrap().unwrap_err();
        assert_eq!(ended.code(), tonic::Code::Unavailable, "retryable, not OK");
        assert!(
            ended.message().contains("shutting down"),
            "{}",
            ended.message()
        );
        assert!(events.pop().await.is_none());
    }

    #[tokio::test]
    async fn receive_streams_end_with_their_namespace_and_are_counted_apart() {
        let subs = Subscriptions::default();
        let inbox = Arc::new(Buffer::<InboxMessage>::new(1, Policy::Backpressure));
        let id = subs.register(
            ("fleet", PatternKind::MulticastRegistry),
            "sensor-1",
            "",
            inbox.clone(),
        );
        subs.register(
            ("events", PatternKind::Pubsub),
            "t",
            "s",
            Arc::new(Buffer::<Message>::new(1, Policy::DropOldest)),
        );
        assert_eq!(subs.stats(PatternKind::MulticastRegistry)["fleet"], (1, 0));
        assert!(!subs.stats(PatternKind::Pubsub).contains_key("fleet"));
        assert!(
            !subs
                .stats(PatternKind::MulticastRegistry)
                .contains_key("events")
        );
        subs.fail_namespace(
            "fleet",
            &ProxyError::NamespaceUnavailable {
                namespace: "fleet".into(),
                reason: "removed from the config".into(),
            },
        );
        let ended = inbox.pop().await.unwrap().unwrap_err();
        assert_eq!(ended.code(), tonic::Code::Unavailable);
        subs.remove(id);
        assert!(
            !subs
                .stats(PatternKind::MulticastRegistry)
                .contains_key("fleet")
        );
    }
}
