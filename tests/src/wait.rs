//! Waiting for asynchronous states: poll with backoff until a deadline,
//! never a fixed sleep.

use std::{future::Future, time::Duration};

/// Polls `probe` until it returns `Some`, or panics naming `what` once
/// `timeout` has passed.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match prism_harness::wait::poll(timeout, probe).await {
        Some(value) => value,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}
