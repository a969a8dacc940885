//! What a connection's watchdog knows ([`Activity`], kept by a [`Tracker`]
//! that its requests and socket update) and the pure policy that decides
//! when it closes ([`verdict`]): a connection that never finishes its
//! handshake within `handshake_timeout_ms`, or has no open request for
//! `idle_timeout_ms`. A long-lived stream (Subscribe, WatchPatterns) keeps
//! its connection open however quiet it is.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

/// What the watchdog knows about a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Activity {
    pub opened: Instant,
    /// HTTP/2: the preface and first frame arrived; HTTP/1: a request did.
    pub handshaken: bool,
    /// Requests (streams) not finished yet.
    pub open: usize,
    /// When `open` last fell to zero (or the connection opened).
    pub idle_since: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing to do before this instant unless the activity changes.
    WaitUntil(Instant),
    /// Streams are open: nothing to do until one ends.
    WaitForChange,
    Close(Reason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Handshake,
    Idle,
}

/// Whether a connection in state `a` at `now` stays open, and until when.
pub(crate) fn verdict(now: Instant, a: &Activity, handshake: Duration, idle: Duration) -> Verdict {
    let (deadline, reason) = if !a.handshaken {
        (a.opened + handshake, Reason::Handshake)
    } else if a.open > 0 {
        return Verdict::WaitForChange;
    } else {
        (a.idle_since + idle, Reason::Idle)
    };
    if now >= deadline {
        Verdict::Close(reason)
    } else {
        Verdict::WaitUntil(deadline)
    }
}

/// A connection's [`Activity`], updated by its service and its socket.
pub(crate) struct Tracker {
    activity: Mutex<Activity>,
    pub changed: Notify,
}

impl Tracker {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            activity: Mutex::new(Activity {
                opened: now,
                handshaken: false,
                open: 0,
                idle_since: now,
            }),
            changed: Notify::new(),
        }
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Activity)) {
        f(&mut self.activity.lock().expect("activity lock"));
        self.changed.notify_one();
    }

    pub(crate) fn snapshot(&self) -> Activity {
        *self.activity.lock().expect("activity lock")
    }
}

/// A request in progress; dropping it (response body finished or reset)
/// ends the stream for the watchdog.
pub(crate) struct StreamGuard(Arc<Tracker>);

impl StreamGuard {
    pub(crate) fn open(tracker: &Arc<Tracker>) -> Self {
        tracker.update(|a| {
            a.handshaken = true;
            a.open += 1;
        });
        Self(tracker.clone())
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.update(|a| {
            a.open -= 1;
            if a.open == 0 {
                a.idle_since = Instant::now();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const HANDSHAKE: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    fn fresh(now: Instant) -> Activity {
        Activity {
            opened: now,
            handshaken: false,
            open: 0,
            idle_since: now,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_never_handshakes_is_closed_after_the_timeout() {
        let opened = Instant::now();
        let a = fresh(opened);
        assert_eq!(
            verdict(Instant::now(), &a, HANDSHAKE, IDLE),
            Verdict::WaitUntil(opened + HANDSHAKE)
        );
        tokio::time::advance(HANDSHAKE).await;
        assert_eq!(
            verdict(Instant::now(), &a, HANDSHAKE, IDLE),
            Verdict::Close(Reason::Handshake)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_handshaken_connection_without_streams_is_closed_when_idle() {
        let opened = Instant::now();
        let mut a = fresh(opened);
        a.handshaken = true;
        tokio::time::advance(HANDSHAKE * 2).await;
        assert_eq!(
            verdict(Instant::now(), &a, HANDSHAKE, IDLE),
            Verdict::WaitUntil(opened + IDLE),
            "past the handshake timeout, only the idle timeout counts"
        );
        tokio::time::advance(IDLE).await;
        assert_eq!(
            verdict(Instant::now(), &a, HANDSHAKE, IDLE),
            Verdict::Close(Reason::Idle)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_stream_keeps_the_connection_however_long() {
        let mut a = fresh(Instant::now());
        a.handshaken = true;
        a.open = 1;
        tokio::time::advance(IDLE * 100).await;
        assert_eq!(
            verdict(Instant::now(), &a, HANDSHAKE, IDLE),
            Verdict::WaitForChange
        );
        a.open = 0;
        a.idle_since = Instant::now();
        assert_eq!(
            verdict(Instant::now(), &a, HANDSHAKE, IDLE),
            Verdict::WaitUntil(Instant::now() + IDLE),
            "the idle clock starts when the last stream ends"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_tracker_counts_streams_and_restarts_the_idle_clock() {
        let tracker = Arc::new(Tracker::new(Instant::now()));
        let first = StreamGuard::open(&tracker);
        let second = StreamGuard::open(&tracker);
        assert_eq!(tracker.snapshot().open, 2);
        assert!(tracker.snapshot().handshaken);
        tokio::time::advance(IDLE).await;
        drop(first);
        assert_eq!(tracker.snapshot().open, 1);
        drop(second);
        let a = tracker.snapshot();
        assert_eq!(a.open, 0);
        assert_eq!(a.idle_since, Instant::now());
    }
}
