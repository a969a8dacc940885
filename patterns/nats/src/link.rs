//! The state of the NATS connection as health sees it, fed by async-nats
//! events, and [`assess`], the pure rule that turns it into a health status.
//!
//! The client reconnects by itself forever, so "down" always means
//! "reconnecting". A short outage is DEGRADED: publishes fail fast with
//! `UNAVAILABLE` but a reconnect may land before a caller's retry. Once it
//! has lasted longer than `request_timeout_ms` it is UNHEALTHY (and the
//! proxy may restart the process after its `unhealthy_threshold`). A slow
//! consumer — a subscription whose channel is full, or messages dropped in
//! the last [`SLOW_WINDOW`] — is DEGRADED, and so is a JetStream namespace
//! whose stream cannot be created (the server is reachable; publishing is
//! not).

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use async_nats::connection::State;
use prism_pattern_sdk::HealthStatus;
use tokio::sync::watch;

/// How long one slow-consumer incident keeps health DEGRADED.
pub const SLOW_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Link {
    inner: Mutex<Inner>,
    /// Messages the NATS client itself dropped because a subscription's
    /// client-side queue was full (one `SlowConsumer` event each). The
    /// client does not say which subscription, so these cannot be stamped
    /// on a stream's `dropped_before`; and its event queue is bounded, so
    /// the count is a lower bound.
    pub client_dropped: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct Inner {
    /// `None` while connected.
    down_since: Option<Instant>,
    ever_connected: bool,
    last_slow: Option<Instant>,
}

impl Link {
    /// Not connected yet, as of `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            inner: Mutex::new(Inner {
                down_since: Some(now),
                ever_connected: false,
                last_slow: None,
            }),
            client_dropped: Default::default(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn connected(&self) {
        self.with(|i| {
            i.down_since = None;
            i.ever_connected = true;
        });
    }

    pub fn disconnected(&self, now: Instant) {
        self.with(|i| {
            i.down_since.get_or_insert(now);
        });
    }

    /// A subscription could not keep up (a drop, or a full channel).
    pub fn slow_consumer(&self, now: Instant) {
        self.with(|i| i.last_slow = Some(now));
    }

    /// Applies one async-nats connection event.
    pub fn on_event(&self, event: &async_nats::Event, now: Instant) {
        match event {
            async_nats::Event::Connected => self.connected(),
            async_nats::Event::Disconnected | async_nats::Event::Closed => self.disconnected(now),
            async_nats::Event::SlowConsumer(_) => {
                self.client_dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.slow_consumer(now)
            }
            _ => {}
        }
    }

    /// What health needs, as of `now`. `connected` is the client's own view,
    /// which wins over events still in flight.
    pub fn observe(&self, connected: bool, full_subscriptions: usize, now: Instant) -> Observed {
        let inner = self.with(|i| *i);
        Observed {
            jetstream_problem: None,
            down_for: (!connected)
                .then(|| now.saturating_duration_since(inner.down_since.unwrap_or(now))),
            ever_connected: inner.ever_connected,
            slow: full_subscriptions > 0
                || inner
                    .last_slow
                    .is_some_and(|at| now.saturating_duration_since(at) < SLOW_WINDOW),
            full_subscriptions,
        }
    }
}

/// Lets a task wait until the client is connected: the client's state,
/// re-checked whenever a connect event bumps `connects`.
#[derive(Clone)]
pub struct Online {
    client: async_nats::Client,
    connects: watch::Receiver<u64>,
}

impl Online {
    pub fn new(client: async_nats::Client, connects: watch::Receiver<u64>) -> Self {
        Self { client, connects }
    }

    /// Returns once connected (at once when already connected).
    pub async fn wait(&mut self) {
        let client = &self.client;
        let _ = self
            .connects
            .wait_for(|_| client.connection_state() == State::Connected)
            .await;
    }
}

/// A snapshot of the connection for [`assess`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Why JetStream cannot serve though NATS is reachable (no JetStream on
    /// the server, no room for the stream, a conflicting stream).
    pub jetstream_problem: Option<String>,
    /// `None` while connected; how long it has been down otherwise.
    pub down_for: Option<Duration>,
    pub ever_connected: bool,
    pub slow: bool,
    pub full_subscriptions: usize,
}

/// The health status and its message. `grace` is how long an outage may
/// last before it is UNHEALTHY.
pub fn assess(o: &Observed, grace: Duration) -> (HealthStatus, String) {
    match o.down_for {
        None if o.jetstream_problem.is_some() => (
            HealthStatus::Degraded,
            o.jetstream_problem.clone().unwrap_or_default(),
        ),
        None if o.slow => (
            HealthStatus::Degraded,
            if o.full_subscriptions > 0 {
                format!(
                    "slow consumer: {} subscription(s) with a full buffer",
                    o.full_subscriptions
                )
            } else {
                "slow consumer: messages were dropped recently".into()
            },
        ),
        None => (HealthStatus::Healthy, "connected".into()),
        Some(down) => {
            let what = if o.ever_connected {
                "reconnecting to NATS"
            } else {
                "connecting to NATS"
            };
            let status = if down < grace {
                HealthStatus::Degraded
            } else {
                HealthStatus::Unhealthy
            };
            (status, format!("{what} for {} ms", down.as_millis()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(5);

    #[test]
    fn connected_is_healthy() {
        let t0 = Instant::now();
        let link = Link::new(t0);
        link.on_event(&async_nats::Event::Connected, t0);
        let (status, message) = assess(&link.observe(true, 0, t0), GRACE);
        assert_eq!(status, HealthStatus::Healthy);
        assert_eq!(message, "connected");
    }

    #[test]
    fn a_short_outage_is_degraded_then_unhealthy() {
        let t0 = Instant::now();
        let link = Link::new(t0);
        link.connected();
        let t1 = t0 + Duration::from_secs(1);
        link.on_event(&async_nats::Event::Disconnected, t1);
        let (status, message) = assess(&link.observe(false, 0, t1 + Duration::from_secs(1)), GRACE);
        assert_eq!(status, HealthStatus::Degraded);
        assert_eq!(message, "reconnecting to NATS for 1000 ms");
        let (status, _) = assess(&link.observe(false, 0, t1 + GRACE), GRACE);
        assert_eq!(status, HealthStatus::Unhealthy);

        link.on_event(&async_nats::Event::Connected, t1 + GRACE);
        let (status, _) = assess(&link.observe(true, 0, t1 + GRACE), GRACE);
        assert_eq!(status, HealthStatus::Healthy);
    }

    #[test]
    fn never_connected_counts_from_creation() {
        let t0 = Instant::now();
        let link = Link::new(t0);
        let (status, message) = assess(&link.observe(false, 0, t0), GRACE);
        assert_eq!(status, HealthStatus::Degraded);
        assert!(message.starts_with("connecting"), "{message}");
        let (status, _) = assess(&link.observe(false, 0, t0 + GRACE), GRACE);
        assert_eq!(status, HealthStatus::Unhealthy);
    }

    #[test]
    fn the_clients_view_wins_over_late_events() {
        let t0 = Instant::now();
        let link = Link::new(t0);
        link.connected();
        // Disconnected, but the event has not arrived yet.
        let o = link.observe(false, 0, t0 + Duration::from_secs(60));
        assert_eq!(o.down_for, Some(Duration::ZERO));
        assert_eq!(assess(&o, GRACE).0, HealthStatus::Degraded);
        // Reconnected, the old Disconnected event still pending.
        assert_eq!(
            assess(&Link::new(t0).observe(true, 0, t0), GRACE).0,
            HealthStatus::Healthy
        );
    }

    #[test]
    fn a_missing_stream_degrades() {
        let t0 = Instant::now();
        let link = Link::new(t0);
        link.connected();
        let mut o = link.observe(true, 0, t0);
        o.jetstream_problem = Some("stream PRISM_X: JetStream is unavailable".into());
        let (status, message) = assess(&o, GRACE);
        assert_eq!(status, HealthStatus::Degraded);
        assert!(message.contains("PRISM_X"), "{message}");
    }

    #[test]
    fn slow_consumers_degrade_for_a_window() {
        let t0 = Instant::now();
        let link = Link::new(t0);
        link.connected();
        let (status, message) = assess(&link.observe(true, 2, t0), GRACE);
        assert_eq!(status, HealthStatus::Degraded);
        assert!(message.contains("2 subscription(s)"), "{message}");

        link.on_event(&async_nats::Event::SlowConsumer(7), t0);
        assert_eq!(
            link.client_dropped
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        let (status, message) = assess(&link.observe(true, 0, t0 + Duration::from_secs(1)), GRACE);
        assert_eq!(status, HealthStatus::Degraded);
        assert!(message.contains("dropped"), "{message}");
        let later = t0 + SLOW_WINDOW;
        assert_eq!(
            assess(&link.observe(true, 0, later), GRACE).0,
            HealthStatus::Healthy
        );
    }
}
