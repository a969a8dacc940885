//! Counts in-flight data-plane calls so shutdown can refuse new calls with
//! `UNAVAILABLE` while the ones already running finish.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use tokio::{sync::Notify, time::Instant};

use crate::error::ProxyError;

#[derive(Clone, Default)]
pub(crate) struct Drain {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: Notify,
}

/// Held for the length of one call.
pub(crate) struct InFlight {
    inner: Arc<Inner>,
}

impl Drain {
    /// Admits a call, or refuses it once draining has begun.
    pub(crate) fn enter(&self) -> Result<InFlight, ProxyError> {
        // Count first, then check: a call is either refused or waited for.
        self.inner.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight {
            inner: self.inner.clone(),
        };
        if self.inner.draining.load(Ordering::SeqCst) {
            return Err(ProxyError::Draining);
        }
        Ok(guard)
    }

    pub(crate) fn start_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Waits until no call is in flight or `deadline` passes; true when idle.
    pub(crate) async fn wait_idle(&self, deadline: Instant) -> bool {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight() == 0;
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.inner.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn refuses_new_calls_and_waits_for_running_ones() {
        let drain = Drain::default();
        let running = drain.enter().unwrap();
        drain.start_draining();
        assert_eq!(drain.enter().err(), Some(ProxyError::Draining));
        assert_eq!(drain.in_flight(), 1, "a refused call is not counted");

        let waiter = {
            let drain = drain.clone();
            tokio::spawn(async move {
                drain
                    .wait_idle(Instant::now() + Duration::from_secs(5))
                    .await
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(running);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline() {
        let drain = Drain::default();
        let _stuck = drain.enter().unwrap();
        drain.start_draining();
        assert!(
            !drain
                .wait_idle(Instant::now() + Duration::from_millis(20))
                .await
        );
    }
}
