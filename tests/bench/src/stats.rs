//! What one path's measured requests add up to: an HDR histogram of the
//! latencies of successful calls (nanoseconds, 3 significant digits), and
//! failed calls counted by gRPC code. Pure: no clocks, no I/O.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies above this are recorded as this (a minute is far past any
/// per-request deadline the bench sets).
const MAX_TRACKABLE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Recorder {
    latency_ns: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        let latency_ns = Histogram::new_with_bounds(1, MAX_TRACKABLE.as_nanos() as u64, 3)
            .expect("static histogram bounds are valid");
        Self {
            latency_ns,
            errors: BTreeMap::new(),
        }
    }

    pub fn record_ok(&mut self, latency: Duration) {
        let nanos = latency.as_nanos().clamp(1, MAX_TRACKABLE.as_nanos()) as u64;
        self.latency_ns.saturating_record(nanos);
    }

    /// Counts a failed call under its code's name (e.g. `UNAVAILABLE`).
    pub fn record_error(&mut self, code: &str) {
        *self.errors.entry(code.to_string()).or_default() += 1;
    }

    pub fn record(&mut self, outcome: Result<(), &str>, latency: Duration) {
        match outcome {
            Ok(()) => self.record_ok(latency),
            Err(code) => self.record_error(code),
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        self.latency_ns
            .add(&other.latency_ns)
            .expect("recorders share bounds");
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += n;
        }
    }

    pub fn ok(&self) -> u64 {
        self.latency_ns.len()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn errors(&self) -> &BTreeMap<String, u64> {
        &self.errors
    }

    pub fn total(&self) -> u64 {
        self.ok() + self.error_count()
    }

    /// Quantiles of successful calls; all zero when there were none.
    pub fn summary(&self) -> LatencySummary {
        let h = &self.latency_ns;
        if h.is_empty() {
            return LatencySummary::default();
        }
        let us = |nanos: u64| nanos as f64 / 1e3;
        LatencySummary {
            min_us: us(h.min()),
            mean_us: h.mean() / 1e3,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }

    /// Counts of successful calls in powers-of-two latency buckets, from the
    /// first non-empty bucket to the last, for drawing.
    pub fn log_buckets(&self) -> Vec<Bucket> {
        let h = &self.latency_ns;
        if h.is_empty() {
            return Vec::new();
        }
        // Bucket k holds latencies in (2^(k-1), 2^k] µs; bucket 0 holds ≤ 1 µs.
        let bucket_of = |nanos: u64| -> usize {
            let us = nanos.div_ceil(1000).max(1);
            (u64::BITS - (us - 1).leading_zeros()) as usize
        };
        let mut counts = vec![0u64; bucket_of(h.max()) + 1];
        for v in h.iter_recorded() {
            counts[bucket_of(h.lowest_equivalent(v.value_iterated_to()))] += v.count_at_value();
        }
        let first = counts.iter().position(|&c| c > 0).unwrap_or(0);
        counts
            .iter()
            .enumerate()
            .skip(first)
            .map(|(k, &count)| Bucket {
                upper_us: 1u64 << k,
                count,
            })
            .collect()
    }
}

/// One bar of a latency histogram: calls that took at most `upper_us`
/// (and more than half that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub upper_us: u64,
    pub count: u64,
}

/// Latency quantiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    pub min_us: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// The canonical name of a gRPC status code, as in the gRPC spec.
pub(crate) fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut r = Recorder::new();
        for i in 1..=1000 {
            r.record_ok(us(i));
        }
        let s = r.summary();
        assert_eq!(r.ok(), 1000);
        // Three significant digits: within 0.1%.
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(s.p50_us, 500.0), "{s:?}");
        assert!(close(s.p90_us, 900.0), "{s:?}");
        assert!(close(s.p99_us, 990.0), "{s:?}");
        assert!(close(s.p999_us, 999.0), "{s:?}");
        assert!(close(s.max_us, 1000.0), "{s:?}");
        assert!(close(s.min_us, 1.0), "{s:?}");
        assert!(close(s.mean_us, 500.5), "{s:?}");
        assert!(s.p50_us <= s.p90_us && s.p90_us <= s.p99_us && s.p99_us <= s.max_us);
    }

    #[test]
    fn errors_are_counted_by_code_and_kept_out_of_latency() {
        let mut r = Recorder::new();
        r.record(Ok(()), us(100));
        r.record(Err("UNAVAILABLE"), us(5));
        r.record(Err("UNAVAILABLE"), us(5));
        r.record(Err("DEADLINE_EXCEEDED"), us(5_000_000));
        assert_eq!(r.ok(), 1);
        assert_eq!(r.error_count(), 3);
        assert_eq!(r.total(), 4);
        assert_eq!(r.errors()["UNAVAILABLE"], 2);
        assert!(r.summary().max_us < 101.0);
    }

    #[test]
    fn merging_adds_counts_and_latencies() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        a.record_ok(us(10));
        b.record_ok(us(1000));
        b.record_error("INTERNAL");
        a.merge(&b);
        assert_eq!(a.ok(), 2);
        assert_eq!(a.errors()["INTERNAL"], 1);
        assert!(a.summary().max_us >= 999.0);
    }

    #[test]
    fn empty_and_extreme_latencies() {
        assert_eq!(Recorder::new().summary(), LatencySummary::default());
        let mut r = Recorder::new();
        r.record_ok(Duration::ZERO);
        r.record_ok(Duration::from_secs(3600));
        assert_eq!(r.ok(), 2);
        assert!(r.summary().max_us <= 60.1e6);
    }

    #[test]
    fn log_buckets_cover_first_to_last() {
        let mut r = Recorder::new();
        r.record_ok(us(3)); // (2, 4]
        r.record_ok(us(4)); // (2, 4]
        r.record_ok(us(20)); // (16, 32]
        let buckets = r.log_buckets();
        let uppers: Vec<u64> = buckets.iter().map(|b| b.upper_us).collect();
        assert_eq!(uppers, vec![4, 8, 16, 32]);
        let counts: Vec<u64> = buckets.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![2, 0, 0, 1]);
        assert!(Recorder::new().log_buckets().is_empty());
    }

    #[test]
    fn code_names_follow_the_spec() {
        assert_eq!(code_name(tonic::Code::Unavailable), "UNAVAILABLE");
        assert_eq!(
            code_name(tonic::Code::DeadlineExceeded),
            "DEADLINE_EXCEEDED"
        );
        assert_eq!(code_name(tonic::Code::NotFound), "NOT_FOUND");
    }
}
