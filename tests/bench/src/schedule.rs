//! The open-loop send schedule: a fixed grid of intended send times, and
//! latency measured from them.
//!
//! Request `i` is due at `start + i / rate`, computed from `i` rather than
//! by adding intervals, so the grid never drifts. A request sent late (the
//! generator fell behind, or too many were outstanding) still counts from its
//! intended time, so a stalled server cannot hide its stall by slowing the
//! sender down — no coordinated omission.

use std::time::{Duration, Instant};

const NANOS_PER_SEC: u128 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grid {
    rate: u64,
}

impl Grid {
    /// A grid of `rate` sends per second; `rate` must be at least 1.
    pub(crate) fn new(rate: u64) -> Self {
        assert!(rate > 0, "a send grid needs a rate of at least 1");
        Self { rate }
    }

    /// When request `i` is due, relative to the start.
    pub(crate) fn offset(&self, i: u64) -> Duration {
        let nanos = i as u128 * NANOS_PER_SEC / self.rate as u128;
        Duration::from_nanos(nanos.min(u64::MAX as u128) as u64)
    }

    /// How many requests are due strictly before `elapsed`.
    pub(crate) fn count_before(&self, elapsed: Duration) -> u64 {
        // offset(i) < T  ⟺  i·1e9 < T·rate  ⟺  i < ⌈T·rate / 1e9⌉
        let scaled = elapsed.as_nanos() * self.rate as u128;
        scaled.div_ceil(NANOS_PER_SEC).min(u64::MAX as u128) as u64
    }
}

/// Which requests of an open-loop run are warm-up and which are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    pub grid: Grid,
    /// Requests `0..warmup` warm up; they are sent but not recorded.
    pub warmup: u64,
    /// Requests `warmup..total` are measured.
    pub total: u64,
}

impl Plan {
    pub(crate) fn new(rate: u64, warmup: Duration, duration: Duration) -> Self {
        let grid = Grid::new(rate);
        Self {
            grid,
            warmup: grid.count_before(warmup),
            total: grid.count_before(warmup + duration),
        }
    }

    pub(crate) fn is_measured(&self, i: u64) -> bool {
        i >= self.warmup
    }

    #[cfg(test)]
    pub(crate) fn measured(&self) -> u64 {
        self.total - self.warmup
    }
}

/// A request's latency: from when it was meant to be sent to when its reply
/// arrived. Time spent waiting to be sent is included.
pub(crate) fn latency_from_intended(intended: Instant, completed: Instant) -> Duration {
    completed.saturating_duration_since(intended)
}

/// How late a send was against its slot on the grid.
pub(crate) fn send_lag(intended: Instant, sent: Instant) -> Duration {
    sent.saturating_duration_since(intended)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_is_exact_and_does_not_drift() {
        let grid = Grid::new(3);
        assert_eq!(grid.offset(0), Duration::ZERO);
        assert_eq!(grid.offset(1), Duration::from_nanos(333_333_333));
        assert_eq!(grid.offset(3), Duration::from_secs(1));
        assert_eq!(grid.offset(3_000_000), Duration::from_secs(1_000_000));
    }

    #[test]
    fn counts_requests_due_before_a_time() {
        let grid = Grid::new(1000);
        assert_eq!(grid.count_before(Duration::ZERO), 0);
        // Request 0 is due at 0, so it is due before 1 ns.
        assert_eq!(grid.count_before(Duration::from_nanos(1)), 1);
        // Requests 0..=9 are due before 10 ms; request 10 is due at 10 ms.
        assert_eq!(grid.count_before(Duration::from_millis(10)), 10);
        assert_eq!(grid.count_before(Duration::from_nanos(10_000_001)), 11);
        let odd = Grid::new(7);
        for t in [
            0u64,
            1,
            142_857_142,
            142_857_143,
            999_999_999,
            1_000_000_000,
        ] {
            let t = Duration::from_nanos(t);
            let brute = (0..100).filter(|&i| odd.offset(i) < t).count() as u64;
            assert_eq!(odd.count_before(t), brute, "at {t:?}");
        }
    }

    #[test]
    fn warmup_and_measured_split_the_grid() {
        let plan = Plan::new(200, Duration::from_millis(200), Duration::from_secs(1));
        assert_eq!(plan.warmup, 40);
        assert_eq!(plan.total, 240);
        assert_eq!(plan.measured(), 200);
        assert!(!plan.is_measured(39));
        assert!(plan.is_measured(40));
    }

    #[test]
    fn lateness_in_sending_counts_in_latency() {
        let start = Instant::now();
        let grid = Grid::new(1000);
        let intended = start + grid.offset(5);
        // The generator stalled for 3 ms, then the server took 1 ms.
        let sent = intended + Duration::from_millis(3);
        let completed = sent + Duration::from_millis(1);
        assert_eq!(send_lag(intended, sent), Duration::from_millis(3));
        assert_eq!(
            latency_from_intended(intended, completed),
            Duration::from_millis(4)
        );
        // A reply can never be earlier than its slot.
        assert_eq!(latency_from_intended(completed, intended), Duration::ZERO);
    }
}
