//! Trace exemplars of one namespace × operation: the slowest calls of the
//! sliding window and the most recent failures, each with the trace id the
//! caller got in `x-prism-trace-id`.
//!
//! Fixed memory per series: [`SLOWEST`] slots and a ring of [`FAILURES`]
//! failures whose messages are cut to [`MESSAGE_BYTES`]. On the hot path a
//! call that is neither slower than the fastest kept slot nor a failure
//! costs a scan of [`SLOWEST`] integers: no allocation, no clock read, no
//! trace id lookup (the caller passes the id lazily).

use std::{
    collections::VecDeque,
    time::{Duration, SystemTime},
};

use opentelemetry::trace::TraceId;
use tonic::Code;

/// Slowest calls kept per series.
pub const SLOWEST: usize = 5;
/// Most recent failures kept per series.
pub const FAILURES: usize = 5;
/// Longest failure message kept, in bytes (cut at a character boundary).
pub const MESSAGE_BYTES: usize = 200;

/// One call an operator may want to open in the trace viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exemplar {
    pub operation: String,
    pub trace_id: TraceId,
    pub at: SystemTime,
    pub latency_us: u64,
    pub code: Code,
    /// The failure's message, cut to [`MESSAGE_BYTES`]; empty for OK calls.
    pub message: String,
}

#[derive(Debug, Clone, Copy)]
struct Slow {
    /// Recorder second, for leaving the window.
    second: u64,
    at: SystemTime,
    latency_us: u64,
    trace_id: TraceId,
    code: Code,
}

#[derive(Debug, Clone)]
struct Failure {
    at: SystemTime,
    latency_us: u64,
    trace_id: TraceId,
    code: Code,
    message: Box<str>,
}

#[derive(Debug, Default)]
pub(crate) struct Exemplars {
    slowest: [Option<Slow>; SLOWEST],
    failures: VecDeque<Failure>,
}

/// What [`Exemplars::record`] needs of a finished call.
pub(crate) struct Call<F, M> {
    pub(crate) second: u64,
    pub(crate) window_s: u64,
    pub(crate) latency_us: u64,
    pub(crate) code: Code,
    pub(crate) is_error: bool,
    pub(crate) trace_id: F,
    pub(crate) message: M,
}

impl Exemplars {
    /// Keeps the call if it is among the window's slowest or a failure.
    /// `trace_id` and `message` are asked only then; a call without a trace
    /// id is not kept (there would be nothing to open).
    pub(crate) fn record<F, M>(&mut self, call: Call<F, M>)
    where
        F: FnOnce() -> Option<TraceId>,
        M: FnOnce() -> String,
    {
        let slot = self.slot_for(call.second, call.window_s, call.latency_us);
        if slot.is_none() && !call.is_error {
            return;
        }
        let Some(trace_id) = (call.trace_id)() else {
            return;
        };
        let at = SystemTime::now();
        if let Some(i) = slot {
            self.slowest[i] = Some(Slow {
                second: call.second,
                at,
                latency_us: call.latency_us,
                trace_id,
                code: call.code,
            });
        }
        if call.is_error {
            if self.failures.len() == FAILURES {
                self.failures.pop_front();
            }
            self.failures.push_back(Failure {
                at,
                latency_us: call.latency_us,
                trace_id,
                code: call.code,
                message: cut((call.message)()).into_boxed_str(),
            });
        }
    }

    /// The slot a call of `latency_us` takes: an empty or expired one, else
    /// the fastest kept one when this call is slower.
    fn slot_for(&self, second: u64, window_s: u64, latency_us: u64) -> Option<usize> {
        let mut fastest: Option<(usize, u64)> = None;
        for (i, slot) in self.slowest.iter().enumerate() {
            match slot {
                Some(s) if second.saturating_sub(s.second) < window_s => {
                    if fastest.is_none_or(|(_, l)| s.latency_us < l) {
                        fastest = Some((i, s.latency_us));
                    }
                }
                _ => return Some(i),
            }
        }
        fastest.and_then(|(i, l)| (latency_us > l).then_some(i))
    }

    /// The window's slowest calls, slowest first.
    pub(crate) fn slowest(&self, operation: &str, second: u64, window_s: u64) -> Vec<Exemplar> {
        let mut out: Vec<Exemplar> = self
            .slowest
            .iter()
            .flatten()
            .filter(|s| second.saturating_sub(s.second) < window_s)
            .map(|s| Exemplar {
                operation: operation.to_string(),
                trace_id: s.trace_id,
                at: s.at,
                latency_us: s.latency_us,
                code: s.code,
                message: String::new(),
            })
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.latency_us));
        out
    }

    /// The most recent failures, newest first.
    pub(crate) fn failures(&self, operation: &str) -> Vec<Exemplar> {
        self.failures
            .iter()
            .rev()
            .map(|f| Exemplar {
                operation: operation.to_string(),
                trace_id: f.trace_id,
                at: f.at,
                latency_us: f.latency_us,
                code: f.code,
                message: f.message.to_string(),
            })
            .collect()
    }
}

fn cut(mut message: String) -> String {
    if message.len() > MESSAGE_BYTES {
        let mut end = MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// Seconds since the epoch with millisecond precision, as OpenMetrics writes
/// an exemplar's timestamp.
pub(crate) fn epoch_seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as f64
        / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Option<TraceId> {
        Some(TraceId::from(n))
    }

    fn with<F, M>(second: u64, latency_us: u64, code: Code, trace_id: F, message: M) -> Call<F, M> {
        Call {
            second,
            window_s: 60,
            latency_us,
            code,
            is_error: code != Code::Ok && code != Code::NotFound,
            trace_id,
            message,
        }
    }

    fn call(
        second: u64,
        latency_us: u64,
        code: Code,
        trace: u128,
    ) -> Call<impl FnOnce() -> Option<TraceId>, impl FnOnce() -> String> {
        with(
            second,
            latency_us,
            code,
            move || id(trace),
            move || format!("failed {trace}"),
        )
    }

    #[test]
    fn keeps_only_the_slowest_of_the_window() {
        let mut e = Exemplars::default();
        for i in 1..=100u64 {
            e.record(call(0, i * 10, Code::Ok, i as u128));
        }
        let slow = e.slowest("Get", 0, 60);
        let latencies: Vec<u64> = slow.iter().map(|x| x.latency_us).collect();
        assert_eq!(latencies, [1000, 990, 980, 970, 960]);
        assert_eq!(slow[0].trace_id, TraceId::from(100u128));
        assert_eq!(slow[0].operation, "Get");
        assert!(e.failures("Get").is_empty());
    }

    #[test]
    fn old_slow_calls_leave_the_window_and_make_room() {
        let mut e = Exemplars::default();
        for i in 0..SLOWEST as u128 {
            e.record(call(0, 1_000_000, Code::Ok, i));
        }
        // Within the window a faster call does not displace them.
        e.record(call(30, 10, Code::Ok, 99));
        assert!(
            e.slowest("Get", 30, 60)
                .iter()
                .all(|x| x.latency_us == 1_000_000)
        );
        // Past it they are gone and the fast call gets a slot.
        assert!(e.slowest("Get", 60, 60).is_empty());
        e.record(call(61, 10, Code::Ok, 7));
        let slow = e.slowest("Get", 61, 60);
        assert_eq!(slow.len(), 1);
        assert_eq!(slow[0].trace_id, TraceId::from(7u128));
    }

    #[test]
    fn the_trace_id_is_asked_only_for_kept_calls() {
        let mut e = Exemplars::default();
        for _ in 0..SLOWEST {
            e.record(call(0, 500, Code::Ok, 1));
        }
        let mut asked = false;
        e.record(with(
            0,
            100,
            Code::Ok,
            || {
                asked = true;
                id(2)
            },
            String::new,
        ));
        assert!(!asked, "a fast OK call must not look up its trace id");
    }

    #[test]
    fn failures_are_a_bounded_ring_with_cut_messages() {
        let mut e = Exemplars::default();
        for i in 0..(FAILURES as u128 + 3) {
            e.record(call(0, 5, Code::Unavailable, i));
        }
        e.record(with(0, 5, Code::Internal, || id(42), || "x".repeat(10_000)));
        let failures = e.failures("Set");
        assert_eq!(failures.len(), FAILURES);
        assert_eq!(failures[0].trace_id, TraceId::from(42u128));
        assert_eq!(failures[0].code, Code::Internal);
        assert!(failures[0].message.len() <= MESSAGE_BYTES + '…'.len_utf8());
        assert_eq!(failures[1].message, "failed 7");
        assert_eq!(failures[4].message, "failed 4");
    }

    #[test]
    fn a_call_without_a_trace_id_is_not_kept() {
        let mut e = Exemplars::default();
        e.record(with(0, 5, Code::Unavailable, || None, String::new));
        assert!(e.slowest("Get", 0, 60).is_empty());
        assert!(e.failures("Get").is_empty());
    }

    #[test]
    fn cut_keeps_character_boundaries() {
        let long = "é".repeat(MESSAGE_BYTES);
        let cut = cut(long);
        assert!(cut.ends_with('…'));
        assert!(cut.len() <= MESSAGE_BYTES + '…'.len_utf8());
    }
}
