//! Waiting for asynchronous states: poll with backoff until a deadline,
//! never a fixed sleep.

use std::{future::Future, time::Duration};

use tokio::time::Instant;

/// Polls `probe` until it returns `Some`, or panics naming `what` once
/// `timeout` has passed.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(5);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(delay.min(deadline - Instant::now())).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}
