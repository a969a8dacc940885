//! Waiting for asynchronous states: poll with backoff until a deadline,
//! never a fixed sleep.

use std::{future::Future, time::Duration};

use tokio::time::Instant;

/// Polls `probe` until it returns `Some`, or gives `None` once `timeout` has
/// passed. The delay between probes doubles from 5 ms up to 100 ms.
pub async fn poll<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(5);
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline_and_returns_the_first_value() {
        let mut calls = 0;
        let none: Option<()> = poll(Duration::from_secs(1), || {
            calls += 1;
            async { None }
        })
        .await;
        assert!(none.is_none());
        assert!(calls > 5, "it polled more than once: {calls}");

        let mut n = 0;
        let third = poll(Duration::from_secs(1), || {
            n += 1;
            let n = n;
            async move { (n == 3).then_some(n) }
        })
        .await;
        assert_eq!(third, Some(3));
    }
}
