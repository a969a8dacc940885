//! A multicast registry namespace's recent multicasts, from the running
//! totals its health details carry (`multicasts`, `delivered`, `pending`,
//! `failed`): each snapshot adds a timestamped sample, and the rate and the
//! delivered/pending/failed split are differences between samples. Pure:
//! [`crate::update`] feeds it and stores the figures; nothing here draws.

use std::collections::{BTreeMap, VecDeque};

/// The multicast rate is measured over this much of the recent past.
pub(crate) const RATE_WINDOW_MS: i64 = 10_000;
/// The delivered/pending/failed split covers this much of the recent past.
pub(crate) const SPLIT_WINDOW_MS: i64 = 60_000;

/// The pattern's totals since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub multicasts: u64,
    pub delivered: u64,
    pub pending: u64,
    pub failed: u64,
}

impl Totals {
    /// The totals in a registry's health details; `None` when it reports no
    /// multicast count (not a registry, or a pattern too old to count).
    pub(crate) fn from_details(details: &BTreeMap<String, String>) -> Option<Self> {
        let count = |key: &str| details.get(key).and_then(|v| v.trim().parse::<u64>().ok());
        Some(Self {
            multicasts: count("multicasts")?,
            delivered: count("delivered").unwrap_or(0),
            pending: count("pending").unwrap_or(0),
            failed: count("failed").unwrap_or(0),
        })
    }

    /// Whether any total went down: the counting process was replaced.
    fn fell_below(&self, earlier: &Self) -> bool {
        self.multicasts < earlier.multicasts
            || self.delivered < earlier.delivered
            || self.pending < earlier.pending
            || self.failed < earlier.failed
    }
}

/// Per-identity results of the multicasts sent over `span_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Split {
    pub delivered: u64,
    pub pending: u64,
    pub failed: u64,
    /// How far back the split reaches (up to [`SPLIT_WINDOW_MS`]: less
    /// while the console has watched for a shorter time).
    pub span_ms: i64,
}

/// What the detail view shows; `None` until two samples allow a difference.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Figures {
    pub per_second: Option<f64>,
    pub recent: Option<Split>,
}

/// The samples of one namespace, oldest first, spanning at most
/// [`SPLIT_WINDOW_MS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Trend {
    /// The process that counted them: a new one starts from zero.
    pid: u32,
    samples: VecDeque<(i64, Totals)>,
    /// Worked out from the samples by [`Trend::observe`].
    figures: Figures,
}

impl Trend {
    /// Adds the totals seen at `now_ms` from process `pid`.
    pub(crate) fn observe(&mut self, now_ms: i64, pid: u32, totals: Totals) {
        let restarted = pid != self.pid
            || self
                .samples
                .back()
                .is_some_and(|(_, last)| totals.fell_below(last));
        if restarted {
            self.samples.clear();
            self.pid = pid;
        }
        // Two snapshots between clock ticks: the newer totals win.
        if let Some((at, last)) = self.samples.back_mut()
            && *at >= now_ms
        {
            *last = totals;
        } else {
            self.samples.push_back((now_ms, totals));
        }
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| *at < now_ms - SPLIT_WINDOW_MS)
        {
            self.samples.pop_front();
        }
        self.figures = Figures {
            per_second: self.per_second(),
            recent: self.recent(),
        };
    }

    pub(crate) fn figures(&self) -> Figures {
        self.figures
    }

    /// Multicasts per second over the last [`RATE_WINDOW_MS`].
    fn per_second(&self) -> Option<f64> {
        let (now, newest) = *self.samples.back()?;
        let (then, base) = self.oldest_since(now - RATE_WINDOW_MS)?;
        let seconds = (now - then) as f64 / 1000.0;
        Some((newest.multicasts - base.multicasts) as f64 / seconds)
    }

    fn recent(&self) -> Option<Split> {
        let (now, newest) = *self.samples.back()?;
        let (then, base) = self.oldest_since(now - SPLIT_WINDOW_MS)?;
        Some(Split {
            delivered: newest.delivered - base.delivered,
            pending: newest.pending - base.pending,
            failed: newest.failed - base.failed,
            span_ms: now - then,
        })
    }

    /// The oldest sample at or after `since`, if it is older than the newest.
    fn oldest_since(&self, since: i64) -> Option<(i64, Totals)> {
        let (now, _) = *self.samples.back()?;
        self.samples
            .iter()
            .find(|(at, _)| *at >= since)
            .filter(|(at, _)| *at < now)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(multicasts: u64, delivered: u64, pending: u64, failed: u64) -> Totals {
        Totals {
            multicasts,
            delivered,
            pending,
            failed,
        }
    }

    #[test]
    fn totals_come_from_the_registry_health_details() {
        let details: BTreeMap<String, String> = [
            ("multicasts", "12"),
            ("delivered", "30"),
            ("pending", "4"),
            ("failed", "2"),
            ("registry.identities", "9"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(Totals::from_details(&details), Some(totals(12, 30, 4, 2)));
        let keyvalue = BTreeMap::from([("keys".to_string(), "3".to_string())]);
        assert_eq!(Totals::from_details(&keyvalue), None);
        let garbled = BTreeMap::from([("multicasts".to_string(), "lots".to_string())]);
        assert_eq!(Totals::from_details(&garbled), None);
    }

    #[test]
    fn one_sample_gives_no_figures() {
        let mut trend = Trend::default();
        trend.observe(1_000, 7, totals(100, 90, 5, 5));
        assert_eq!(trend.figures(), Figures::default());
    }

    #[test]
    fn the_rate_is_the_multicast_difference_over_the_last_ten_seconds() {
        let mut trend = Trend::default();
        // 2 per second for 20 s, then 10 per second for 10 s.
        for s in 0..=20 {
            trend.observe(s * 1000, 7, totals(2 * s as u64, 0, 0, 0));
        }
        assert_eq!(trend.figures().per_second, Some(2.0));
        for s in 21..=30 {
            trend.observe(s * 1000, 7, totals(40 + 10 * (s as u64 - 20), 0, 0, 0));
        }
        assert_eq!(trend.figures().per_second, Some(10.0));
        // Idle: the rate falls to zero within the window.
        for s in 31..=41 {
            trend.observe(s * 1000, 7, totals(140, 0, 0, 0));
        }
        assert_eq!(trend.figures().per_second, Some(0.0));
    }

    #[test]
    fn the_split_covers_the_last_minute_only() {
        let mut trend = Trend::default();
        trend.observe(0, 7, totals(0, 0, 0, 0));
        trend.observe(30_000, 7, totals(10, 100, 0, 0));
        let early = trend.figures().recent.unwrap();
        assert_eq!(
            early,
            Split {
                delivered: 100,
                pending: 0,
                failed: 0,
                span_ms: 30_000
            },
            "the split covers what has been watched so far"
        );
        trend.observe(70_000, 7, totals(20, 150, 7, 3));
        // The sample at 0 s is over a minute old: the split starts at 30 s.
        assert_eq!(
            trend.figures().recent.unwrap(),
            Split {
                delivered: 50,
                pending: 7,
                failed: 3,
                span_ms: 40_000
            }
        );
    }

    #[test]
    fn a_restarted_pattern_starts_counting_afresh() {
        let mut trend = Trend::default();
        trend.observe(0, 7, totals(100, 100, 0, 0));
        trend.observe(1_000, 7, totals(110, 110, 0, 0));
        // Totals fell: a new process, whatever its pid says.
        trend.observe(2_000, 7, totals(3, 3, 0, 0));
        assert_eq!(trend.figures(), Figures::default(), "no negative rate");
        trend.observe(3_000, 7, totals(5, 4, 1, 0));
        assert_eq!(trend.figures().per_second, Some(2.0));
        // A new pid with totals that happen to be higher is a restart too.
        trend.observe(4_000, 8, totals(50, 50, 0, 0));
        assert_eq!(trend.figures(), Figures::default());
    }

    #[test]
    fn snapshots_between_ticks_replace_the_sample() {
        let mut trend = Trend::default();
        trend.observe(0, 7, totals(0, 0, 0, 0));
        trend.observe(1_000, 7, totals(5, 5, 0, 0));
        trend.observe(1_000, 7, totals(8, 8, 0, 0));
        assert_eq!(trend.figures().per_second, Some(8.0));
        assert_eq!(trend.samples.len(), 2);
    }
}
