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
mod tests {
    use std::{
        collections::HashSet,
        sync::atomic::{AtomicUsize, Ordering},
    };

    use tokio::time::{Instant, sleep};

    use super::*;

    /// A delivery that takes `delay` and then gives `outcome`.
    async fn after(delay: Duration, outcome: Outcome) -> Result<Outcome, Error> {
        sleep(delay).await;
        Ok(outcome)
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_target_times_out_without_delaying_the_others() {
        let started = Instant::now();
        let report = fan_out(4, 4, Duration::from_millis(5000), |index| async move {
            match index {
                1 => std::future::pending().await,
                2 => after(Duration::from_millis(30), Outcome::Pending).await,
                3 => Err(Error::Internal("broken pipe".into())),
                _ => after(Duration::from_millis(10), Outcome::Delivered).await,
            }
        })
        .await;
        assert_eq!(
            report.results,
            vec![
                Status::Delivered,
                Status::Timeout("no answer within 5000 ms (timeout_ms)".into()),
                Status::Pending,
                Status::Failed("broken pipe".into()),
            ]
        );
        assert_eq!((report.delivered, report.pending, report.failed), (1, 1, 2));
        // The call lasts exactly its deadline: the hung target is not awaited.
        assert_eq!(started.elapsed(), Duration::from_millis(5000));
    }

    #[tokio::test(start_paused = true)]
    async fn without_hung_targets_the_call_ends_with_the_slowest() {
        let started = Instant::now();
        let report = fan_out(3, 8, Duration::from_millis(5000), |index| {
            after(
                Duration::from_millis(10 * (index as u64 + 1)),
                Outcome::Delivered,
            )
        })
        .await;
        assert_eq!(report.delivered, 3);
        assert_eq!(started.elapsed(), Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_never_exceeds_the_bound_and_results_keep_target_order() {
        let in_flight = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let targets = 50;
        let report = fan_out(targets, 7, Duration::from_secs(60), |index| {
            let (in_flight, peak) = (&in_flight, &peak);
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // Later targets finish sooner, so completion order is scrambled.
                sleep(Duration::from_millis(((targets - index) % 13) as u64 + 1)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(if index % 2 == 0 {
                    Outcome::Delivered
                } else {
                    Outcome::Failed(format!("target {index}"))
                })
            }
        })
        .await;
        assert_eq!(peak.load(Ordering::SeqCst), 7);
        assert_eq!(report.results.len(), targets);
        for (index, status) in report.results.iter().enumerate() {
            let expected = if index % 2 == 0 {
                Status::Delivered
            } else {
                Status::Failed(format!("target {index}"))
            };
            assert_eq!(status, &expected);
        }
        assert_eq!((report.delivered, report.failed), (25, 25));
    }

    #[tokio::test(start_paused = true)]
    async fn targets_never_started_by_the_deadline_are_timeouts() {
        // One slot, each delivery 400 ms, 1000 ms deadline: two finish.
        let report = fan_out(5, 1, Duration::from_millis(1000), |_| {
            after(Duration::from_millis(400), Outcome::Delivered)
        })
        .await;
        assert_eq!((report.delivered, report.failed), (2, 3));
        assert!(matches!(report.results[2], Status::Timeout(_)));
    }

    #[tokio::test]
    async fn no_targets_is_an_empty_report() {
        let report = fan_out(0, 4, Duration::from_millis(10), |_| async {
            Ok(Outcome::Delivered)
        })
        .await;
        assert_eq!(report, Report::default());
    }

    #[test]
    fn message_ids_are_unique_per_target() {
        let ids: HashSet<String> = (0..1000).map(|i| message_id("mc", i)).collect();
        assert_eq!(ids.len(), 1000);
        assert_ne!(message_id("a", 1), message_id("b", 1));
    }
}
