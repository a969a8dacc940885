//! Drives load at a path: open loop on the send grid of [`schedule`], or a
//! closed loop of workers. Both warm up first (sent, not recorded), then
//! record every request that completes into [`Live`].
//!
//! The open loop's sender is a plain OS thread sleeping to each slot: tokio's
//! timer has millisecond granularity, too coarse for sub-millisecond gaps,
//! while a thread sleep lands within tens of microseconds. Each request runs
//! as its own task on the runtime; its latency counts from its slot.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    runtime::Handle,
    sync::{Semaphore, oneshot},
    task::JoinSet,
};

use crate::{
    BenchError,
    config::{LoadSettings, Mode},
    live::{Live, Measured},
    schedule::{self, Plan},
};

/// One request to send: its sequence number (which picks the operation), the
/// connection to send it on, and the time its latency counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Req {
    pub seq: u64,
    pub conn: usize,
    /// Open loop: its slot on the grid; closed loop: when it was sent. It is
    /// measured when this is at or after the end of the warm-up.
    pub at: Instant,
}

/// What the measured window of a load run produced.
#[derive(Debug, Clone)]
pub(crate) struct LoadOutcome {
    pub measured: Measured,
    /// From the start of the measured window to the last measured completion.
    pub elapsed: Duration,
    /// Open loop: the latest a measured request left after its slot. Large
    /// values mean the generator (not the server) could not keep up.
    pub max_send_lag: Option<Duration>,
}

/// How long to wait for stragglers beyond the per-request timeout.
const DRAIN_MARGIN: Duration = Duration::from_secs(5);

/// Applies `settings.mode` from `start` (warm-up first) until the measured
/// window ends and every request has returned. `call` issues one request;
/// an `Err` is the name of its failure code.
pub(crate) async fn drive<F, Fut>(
    settings: &LoadSettings,
    start: Instant,
    live: Arc<Live>,
    call: F,
) -> Result<LoadOutcome, BenchError>
where
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), &'static str>> + Send + 'static,
{
    let measure_start = start + settings.warmup;
    let max_send_lag = match settings.mode {
        Mode::OpenLoop { rate } => {
            Some(open_loop(rate, settings, start, live.clone(), call).await?)
        }
        Mode::ClosedLoop { concurrency } => {
            closed_loop(concurrency, settings, start, live.clone(), call).await?;
            None
        }
    };
    let measured = live.measured();
    let elapsed = measured.last_completion.map_or(settings.duration, |last| {
        last.saturating_duration_since(measure_start)
    });
    Ok(LoadOutcome {
        measured,
        elapsed,
        max_send_lag,
    })
}

/// Sets a flag when dropped, so a sender thread stops with its run.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn open_loop<F, Fut>(
    rate: u64,
    settings: &LoadSettings,
    start: Instant,
    live: Arc<Live>,
    call: F,
) -> Result<Duration, BenchError>
where
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), &'static str>> + Send + 'static,
{
    let plan = Plan::new(rate, settings.warmup, settings.duration);
    let max_in_flight = settings.max_in_flight.min(u32::MAX as usize);
    let permits = Arc::new(Semaphore::new(max_in_flight));
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel = CancelOnDrop(cancelled.clone());
    let connections = settings.connections as u64;
    let handle = Handle::current();
    let call = Arc::new(call);
    let (sent_all, sender_done) = oneshot::channel();
    let sender_permits = permits.clone();
    std::thread::Builder::new()
        .name("bench-sender".into())
        .spawn(move || {
            let mut max_lag = Duration::ZERO;
            for i in 0..plan.total {
                if cancelled.load(Ordering::Relaxed) {
                    return;
                }
                let intended = start + plan.grid.offset(i);
                let now = Instant::now();
                if intended > now {
                    std::thread::sleep(intended - now);
                }
                // At the in-flight cap the sender waits; the wait counts in
                // the latency of every request it delays.
                let permit = match sender_permits.clone().try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => match handle.block_on(sender_permits.clone().acquire_owned()) {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                };
                let measured = plan.is_measured(i);
                if measured {
                    max_lag = max_lag.max(schedule::send_lag(intended, Instant::now()));
                }
                let (call, live) = (call.clone(), live.clone());
                handle.spawn(async move {
                    let req = Req {
                        seq: i,
                        conn: (i % connections) as usize,
                        at: intended,
                    };
                    let outcome = call(req).await;
                    let done = Instant::now();
                    let latency = schedule::latency_from_intended(intended, done);
                    live.complete(measured, outcome, latency, done);
                    drop(permit);
                });
            }
            let _ = sent_all.send(max_lag);
        })
        .map_err(|e| BenchError::Load(format!("cannot start the sender thread: {e}")))?;
    let max_lag = sender_done
        .await
        .map_err(|_| BenchError::Load("the sender thread stopped early".into()))?;
    // Every permit back means every request has returned.
    tokio::time::timeout(
        settings.timeout + DRAIN_MARGIN,
        permits.acquire_many(max_in_flight as u32),
    )
    .await
    .map_err(|_| BenchError::Load("requests still outstanding after their timeout".into()))?
    .map_err(|e| BenchError::Load(e.to_string()))?
    .forget();
    Ok(max_lag)
}

async fn closed_loop<F, Fut>(
    concurrency: usize,
    settings: &LoadSettings,
    start: Instant,
    live: Arc<Live>,
    call: F,
) -> Result<(), BenchError>
where
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), &'static str>> + Send + 'static,
{
    let measure_start = start + settings.warmup;
    let end = measure_start + settings.duration;
    let connections = settings.connections;
    let call = Arc::new(call);
    let mut workers = JoinSet::new();
    for worker in 0..concurrency {
        let (call, live) = (call.clone(), live.clone());
        workers.spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            // Worker w sends w, w + n, w + 2n, …: all workers together cover
            // the same sequence an open loop sends.
            let mut seq = worker as u64;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let req = Req {
                    seq,
                    conn: worker % connections,
                    at: sent,
                };
                let outcome = call(req).await;
                let done = Instant::now();
                live.complete(sent >= measure_start, outcome, done - sent, done);
                seq += concurrency as u64;
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.map_err(|e| BenchError::Load(format!("worker: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: Mode, warmup_ms: u64, duration_ms: u64) -> LoadSettings {
        LoadSettings {
            mode,
            duration: Duration::from_millis(duration_ms),
            warmup: Duration::from_millis(warmup_ms),
            connections: 2,
            timeout: Duration::from_secs(5),
            max_in_flight: 10_000,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_loop_sends_the_grid_and_records_only_the_measured_part() {
        let live = Arc::new(Live::default());
        let s = settings(Mode::OpenLoop { rate: 1000 }, 50, 100);
        let outcome = drive(&s, Instant::now(), live.clone(), |req: Req| async move {
            assert!(req.conn < 2);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(live.completed(), 150);
        assert_eq!(outcome.measured.recorder.ok(), 100);
        assert!(outcome.max_send_lag.is_some());
        assert!(outcome.elapsed >= Duration::from_millis(99));
    }

    /// A server that takes 20 ms per call while only one call may be out:
    /// the sender falls behind, and each request's latency includes the
    /// time it waited to be sent, as it would for a real client.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn open_loop_counts_sender_lateness_in_latency() {
        let live = Arc::new(Live::default());
        let mut s = settings(Mode::OpenLoop { rate: 200 }, 0, 100);
        s.max_in_flight = 1;
        let outcome = drive(&s, Instant::now(), live, |_| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(())
        })
        .await
        .unwrap();
        let recorder = &outcome.measured.recorder;
        assert_eq!(recorder.ok(), 20);
        let summary = recorder.summary();
        // Request k is due at 5k ms but returns at about 20(k+1) ms; the
        // last of 20 is about 305 ms late. A closed loop would claim 20 ms.
        assert!(summary.max_us > 250_000.0, "{summary:?}");
        assert!(summary.p50_us > 100_000.0, "{summary:?}");
        assert!(outcome.max_send_lag.unwrap() > Duration::from_millis(200));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closed_loop_keeps_n_in_flight_and_counts_errors() {
        let live = Arc::new(Live::default());
        let s = settings(Mode::ClosedLoop { concurrency: 4 }, 20, 100);
        let outcome = drive(&s, Instant::now(), live, |req: Req| async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            if req.seq.is_multiple_of(10) {
                Err("UNAVAILABLE")
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
        let recorder = &outcome.measured.recorder;
        // 4 workers × ~100 ms / ~2-3 ms each is 130-200; far fewer on a
        // loaded machine, but never a handful.
        assert!(recorder.total() > 20, "{}", recorder.total());
        assert!(recorder.errors()["UNAVAILABLE"] > 0);
        assert!(outcome.max_send_lag.is_none());
    }
}
