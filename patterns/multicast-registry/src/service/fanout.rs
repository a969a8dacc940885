//! The fan-out of one Multicast: every target gets its delivery, at most
//! `concurrency` at once, and the whole call ends at its deadline. A
//! delivery still unfinished then (running or not yet begun) is TIMEOUT, so
//! a slow or dead receiver costs the others nothing beyond its own slot in
//! the concurrency bound. Results come back in target order.

use std::{future::Future, time::Duration};

use futures_util::StreamExt;

use crate::{error::Error, slots::Outcome};

/// What became of one target, as the response reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Delivered,
    Pending,
    Failed(String),
    Timeout(String),
}

/// The results of one fan-out, in target order, with their counts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    pub results: Vec<Status>,
    pub delivered: u32,
    pub pending: u32,
    /// FAILED and TIMEOUT together.
    pub failed: u32,
}

impl Report {
    fn new(results: Vec<Status>) -> Self {
        let mut report = Self::default();
        for status in &results {
            let count = match status {
                Status::Delivered => &mut report.delivered,
                Status::Pending => &mut report.pending,
                Status::Failed(_) | Status::Timeout(_) => &mut report.failed,
            };
            *count = count.saturating_add(1);
        }
        report.results = results;
        report
    }
}

/// The id of the message for target number `index` of multicast
/// `multicast_id`: unique per identity and multicast, and the same on a
/// redelivery (slots that dedupe use it).
pub(crate) fn message_id(multicast_id: &str, index: usize) -> String {
    format!("{multicast_id}-{index:x}")
}

/// Runs `deliver(index)` for every target index below `targets`, at most
/// `concurrency` at once, until all are done or `timeout` has passed.
pub(crate) async fn fan_out<F, Fut>(
    targets: usize,
    concurrency: usize,
    timeout: Duration,
    deliver: F,
) -> Report
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<Outcome, Error>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut results: Vec<Option<Status>> = vec![None; targets];
    let mut running = futures_util::stream::iter(0..targets)
        .map(|index| {
            let delivery = deliver(index);
            async move { (index, delivery.await) }
        })
        .buffer_unordered(concurrency.max(1));
    while let Ok(Some((index, outcome))) = tokio::time::timeout_at(deadline, running.next()).await {
        results[index] = Some(match outcome {
            Ok(Outcome::Delivered) => Status::Delivered,
            Ok(Outcome::Pending) => Status::Pending,
            Ok(Outcome::Failed(why)) => Status::Failed(why),
            Err(err) => Status::Failed(err.to_string()),
        });
    }
    // Dropping the stream cancels the deliveries still running.
    drop(running);
    let late = format!("no answer within {} ms (timeout_ms)", timeout.as_millis());
    Report::new(
        results
            .into_iter()
            .map(|status| status.unwrap_or_else(|| Status::Timeout(late.clone())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {}
