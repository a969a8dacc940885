//! Latency and outcome recording for the proxy's data plane: one HDR
//! histogram series per namespace × operation, split by outcome (ok /
//! client_error / error, see [`crate::outcome`]), over a sliding window (six
//! 10-second slots, so the window covers the last 50–60 s) and since start,
//! with the trace exemplars of each series ([`exemplars`]). The admin API and
//! the console read [`LatencyRecorder::window`] and
//! [`LatencyRecorder::exemplars`]; Prometheus scrapes
//! [`LatencyRecorder::prometheus`] (OpenMetrics adds the exemplars).
//!
//! Labels are bounded: callers pass only configured namespaces and the fixed
//! operation names of the gRPC services — never keys or payloads.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use opentelemetry::trace::TraceId;
use tonic::Code;

use crate::outcome::{Outcome, code_name};

pub mod exemplars;

pub use exemplars::Exemplar;
use exemplars::{Call, Exemplars};

const SLOT_SECONDS: u64 = 10;
const SLOTS: usize = 6;
/// What the sliding window covers at most.
const WINDOW_SECONDS: u64 = SLOT_SECONDS * SLOTS as u64;
/// Per-second request counts kept for the throughput history.
const HISTORY_SECONDS: usize = 60;
/// Seconds averaged for the live requests-per-second figure.
const RPS_SECONDS: u64 = 5;
/// Highest latency tracked: 60 s, in microseconds; slower calls are clamped.
const MAX_MICROS: u64 = 60_000_000;
/// Bucket bounds of `prism_request_duration_seconds`, sub-millisecond first.
pub const PROMETHEUS_BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("valid histogram bounds")
}

/// One namespace × operation.
struct Series {
    slots: [Slot; SLOTS],
    /// (second, requests) ring for the throughput history.
    per_second: [(u64, u64); HISTORY_SECONDS],
    total: Histogram<u64>,
    total_sum_us: u64,
    by_code: BTreeMap<i32, u64>,
    exemplars: Exemplars,
}

#[derive(Default)]
struct Slot {
    /// Which 10-second period the slot holds.
    epoch: u64,
    ok: Option<Histogram<u64>>,
    client_error: Option<Histogram<u64>>,
    error: Option<Histogram<u64>>,
}

/// The window's histograms of every outcome, merged.
struct Merged {
    ok: Histogram<u64>,
    client_error: Histogram<u64>,
    error: Histogram<u64>,
}

impl Series {
    fn new() -> Self {
        Self {
            slots: Default::default(),
            per_second: [(u64::MAX, 0); HISTORY_SECONDS],
            total: histogram(),
            total_sum_us: 0,
            by_code: BTreeMap::new(),
            exemplars: Exemplars::default(),
        }
    }

    fn record(&mut self, now_s: u64, code: Code, micros: u64) {
        let epoch = now_s / SLOT_SECONDS;
        let slot = &mut self.slots[(epoch as usize) % SLOTS];
        if slot.epoch != epoch {
            *slot = Slot {
                epoch,
                ..Default::default()
            };
        }
        let hist = match Outcome::of(code) {
            Outcome::Ok => &mut slot.ok,
            Outcome::ClientError => &mut slot.client_error,
            Outcome::Error => &mut slot.error,
        }
        .get_or_insert_with(histogram);
        hist.saturating_record(micros);
        self.total.saturating_record(micros);
        self.total_sum_us = self.total_sum_us.saturating_add(micros);
        *self.by_code.entry(code as i32).or_default() += 1;
        let second = &mut self.per_second[(now_s as usize) % HISTORY_SECONDS];
        if second.0 != now_s {
            *second = (now_s, 0);
        }
        second.1 += 1;
    }

    /// Adds the live slots to `into`.
    fn merge_window(&self, now_s: u64, into: &mut Merged) {
        let current = now_s / SLOT_SECONDS;
        for slot in &self.slots {
            if current.saturating_sub(slot.epoch) < SLOTS as u64 {
                for (from, to) in [
                    (&slot.ok, &mut into.ok),
                    (&slot.client_error, &mut into.client_error),
                    (&slot.error, &mut into.error),
                ] {
                    if let Some(h) = from {
                        let _ = to.add(h);
                    }
                }
            }
        }
    }

    fn requests_in_second(&self, second: u64) -> u64 {
        let (at, count) = self.per_second[(second as usize) % HISTORY_SECONDS];
        if at == second { count } else { 0 }
    }
}

/// Figures over the sliding window, latencies in microseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowSnapshot {
    pub window: Duration,
    pub count: u64,
    /// Server-side failures ([`Outcome::Error`]).
    pub errors: u64,
    /// Caller mistakes and negative answers ([`Outcome::ClientError`]).
    pub client_errors: u64,
    pub rps: f64,
    /// `errors / count`: what ERR% shows.
    pub error_rate: f64,
    /// `client_errors / count`, shown apart.
    pub client_error_rate: f64,
    pub min_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    /// (inclusive upper bound in µs, count), powers of two, from the first to
    /// the last non-empty bucket.
    pub buckets: Vec<(u64, u64)>,
    /// Requests in each of the last 60 complete seconds, oldest first.
    pub rps_history: Vec<u64>,
    /// Requests since start.
    pub total: u64,
}

type Key = (String, String);
type ByOperation = HashMap<String, Arc<Mutex<Series>>>;

/// Thread-safe recorder shared by the data plane (writers) and the admin
/// API and metrics endpoint (readers).
pub struct LatencyRecorder {
    /// namespace → operation → series.
    series: RwLock<HashMap<String, ByOperation>>,
    start: Instant,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    pub fn new() -> Self {
        Self {
            series: RwLock::new(HashMap::new()),
            start: Instant::now(),
        }
    }

    fn now_s(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_secs()
    }

    /// Records one finished call.
    pub fn record(&self, namespace: &str, operation: &str, code: Code, elapsed: Duration) {
        self.record_at(namespace, operation, code, elapsed, Instant::now());
    }

    /// Records one finished call and keeps it as an exemplar when it is
    /// among the window's slowest or a failure. `trace_id` and `message`
    /// (the failure's) are called only for a call that is kept, so a fast
    /// OK call costs no lookup and no allocation.
    pub fn record_traced(
        &self,
        namespace: &str,
        operation: &str,
        code: Code,
        elapsed: Duration,
        trace_id: impl FnOnce() -> Option<TraceId>,
        message: impl FnOnce() -> String,
    ) {
        self.record_traced_at(
            namespace,
            operation,
            (code, elapsed),
            (trace_id, message),
            Instant::now(),
        );
    }

    /// [`record_traced`](Self::record_traced) at an explicit time (for tests).
    pub fn record_traced_at(
        &self,
        namespace: &str,
        operation: &str,
        (code, elapsed): (Code, Duration),
        (trace_id, message): (impl FnOnce() -> Option<TraceId>, impl FnOnce() -> String),
        now: Instant,
    ) {
        let micros = (elapsed.as_micros() as u64).clamp(1, MAX_MICROS);
        let second = self.now_s(now);
        let series = self.series_for(namespace, operation);
        let mut series = series.lock().expect("series lock");
        series.record(second, code, micros);
        series.exemplars.record(Call {
            second,
            window_s: WINDOW_SECONDS,
            latency_us: micros,
            code,
            is_error: Outcome::of(code) == Outcome::Error,
            trace_id,
            message,
        });
    }

    /// The exemplars of `namespace` (one operation, or all when `None`):
    /// the window's slowest calls, slowest first, and the most recent
    /// failures, newest first.
    pub fn exemplars(
        &self,
        namespace: &str,
        operation: Option<&str>,
    ) -> (Vec<Exemplar>, Vec<Exemplar>) {
        self.exemplars_at(namespace, operation, Instant::now())
    }

    pub fn exemplars_at(
        &self,
        namespace: &str,
        operation: Option<&str>,
        now: Instant,
    ) -> (Vec<Exemplar>, Vec<Exemplar>) {
        let second = self.now_s(now);
        let mut slowest = Vec::new();
        let mut failures = Vec::new();
        for (op, series) in self.matching_named(namespace, operation) {
            let series = series.lock().expect("series lock");
            slowest.extend(series.exemplars.slowest(&op, second, WINDOW_SECONDS));
            failures.extend(series.exemplars.failures(&op));
        }
        slowest.sort_by_key(|e| std::cmp::Reverse(e.latency_us));
        failures.sort_by_key(|e| std::cmp::Reverse(e.at));
        (slowest, failures)
    }

    /// [`record`](Self::record) at an explicit time (for tests).
    pub fn record_at(
        &self,
        namespace: &str,
        operation: &str,
        code: Code,
        elapsed: Duration,
        now: Instant,
    ) {
        let micros = (elapsed.as_micros() as u64).clamp(1, MAX_MICROS);
        let series = self.series_for(namespace, operation);
        series
            .lock()
            .expect("series lock")
            .record(self.now_s(now), code, micros);
    }

    fn series_for(&self, namespace: &str, operation: &str) -> Arc<Mutex<Series>> {
        // The hot path: look up by borrowed names, allocate only the first time.
        if let Some(series) = self
            .series
            .read()
            .expect("series map")
            .get(namespace)
            .and_then(|ops| ops.get(operation))
        {
            return series.clone();
        }
        self.series
            .write()
            .expect("series map")
            .entry(namespace.to_string())
            .or_default()
            .entry(operation.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(Series::new())))
            .clone()
    }

    /// Every series as ((namespace, operation), series), sorted.
    fn all(&self) -> Vec<(Key, Arc<Mutex<Series>>)> {
        let mut all: Vec<(Key, Arc<Mutex<Series>>)> = self
            .series
            .read()
            .expect("series map")
            .iter()
            .flat_map(|(ns, ops)| {
                ops.iter()
                    .map(move |(op, s)| ((ns.clone(), op.clone()), s.clone()))
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn matching(&self, namespace: &str, operation: Option<&str>) -> Vec<Arc<Mutex<Series>>> {
        self.matching_named(namespace, operation)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    fn matching_named(
        &self,
        namespace: &str,
        operation: Option<&str>,
    ) -> Vec<(String, Arc<Mutex<Series>>)> {
        self.series
            .read()
            .expect("series map")
            .get(namespace)
            .map(|ops| {
                ops.iter()
                    .filter(|(op, _)| operation.is_none_or(|o| o == op.as_str()))
                    .map(|(op, s)| (op.clone(), s.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Operations recorded for `namespace`, sorted.
    pub fn operations(&self, namespace: &str) -> Vec<String> {
        let mut ops: Vec<String> = self
            .series
            .read()
            .expect("series map")
            .get(namespace)
            .map(|ops| ops.keys().cloned().collect())
            .unwrap_or_default();
        ops.sort();
        ops
    }

    /// Drops every series of a namespace that no longer exists.
    pub fn forget(&self, namespace: &str) {
        self.series.write().expect("series map").remove(namespace);
    }

    /// The sliding-window figures of `namespace` (one operation, or all when `None`).
    pub fn window(&self, namespace: &str, operation: Option<&str>) -> WindowSnapshot {
        self.window_at(namespace, operation, Instant::now())
    }

    pub fn window_at(
        &self,
        namespace: &str,
        operation: Option<&str>,
        now: Instant,
    ) -> WindowSnapshot {
        let now_s = self.now_s(now);
        let mut merged = Merged {
            ok: histogram(),
            client_error: histogram(),
            error: histogram(),
        };
        let mut history = vec![0u64; HISTORY_SECONDS];
        let mut total = 0;
        for series in self.matching(namespace, operation) {
            let series = series.lock().expect("series lock");
            series.merge_window(now_s, &mut merged);
            total += series.total.len();
            for (i, slot) in history.iter_mut().enumerate() {
                // Complete seconds only: the oldest is 60 s ago, the newest 1 s ago.
                let back = (HISTORY_SECONDS - i) as u64;
                if let Some(second) = now_s.checked_sub(back) {
                    *slot += series.requests_in_second(second);
                }
            }
        }
        let errors = merged.error.len();
        let client_errors = merged.client_error.len();
        let mut all = merged.ok;
        let _ = all.add(&merged.error);
        let _ = all.add(&merged.client_error);
        let count = all.len();
        let rate = |n: u64| {
            if count == 0 {
                0.0
            } else {
                n as f64 / count as f64
            }
        };
        let elapsed = now.saturating_duration_since(self.start).as_secs_f64();
        let window_s = WINDOW_SECONDS as f64;
        let rps_span = (RPS_SECONDS as f64).min(elapsed.max(1.0));
        let recent: u64 = history[HISTORY_SECONDS - RPS_SECONDS as usize..]
            .iter()
            .sum();
        let (min_us, max_us, mean_us) = if count == 0 {
            (0, 0, 0.0)
        } else {
            (all.min(), all.max(), all.mean())
        };
        WindowSnapshot {
            window: Duration::from_secs(window_s as u64),
            count,
            errors,
            client_errors,
            rps: recent as f64 / rps_span,
            error_rate: rate(errors),
            client_error_rate: rate(client_errors),
            min_us,
            max_us,
            mean_us,
            p50_us: quantile(&all, 0.50),
            p90_us: quantile(&all, 0.90),
            p99_us: quantile(&all, 0.99),
            p999_us: quantile(&all, 0.999),
            buckets: log2_buckets(&all),
            rps_history: history,
            total,
        }
    }

    /// Prometheus text exposition of every series since start.
    pub fn prometheus(&self) -> String {
        self.exposition(false, Instant::now())
    }

    /// The same series in the OpenMetrics text format, with the window's
    /// slowest calls as exemplars (`# {trace_id="…"} seconds timestamp`) on
    /// the latency buckets they fall in. No `# EOF`: the caller appends the
    /// rest of its metrics first.
    pub fn openmetrics(&self) -> String {
        self.exposition(true, Instant::now())
    }

    fn exposition(&self, openmetrics: bool, now: Instant) -> String {
        let second = self.now_s(now);
        let entries = self.all();
        let mut out = String::new();
        // OpenMetrics names a counter's family without its `_total` sample suffix.
        let family = if openmetrics {
            "prism_requests"
        } else {
            "prism_requests_total"
        };
        let _ = writeln!(
            out,
            "# HELP {family} Data-plane requests by namespace, operation, gRPC status code and outcome (ok, client_error, error)."
        );
        let _ = writeln!(out, "# TYPE {family} counter");
        for ((ns, op), series) in &entries {
            let series = series.lock().expect("series lock");
            for (code, count) in &series.by_code {
                let code = Code::from_i32(*code);
                let _ = writeln!(
                    out,
                    "prism_requests_total{{namespace=\"{}\",operation=\"{}\",code=\"{}\",outcome=\"{}\"}} {count}",
                    escape(ns),
                    escape(op),
                    code_name(code),
                    Outcome::of(code).as_str(),
                );
            }
        }
        out.push_str("# HELP prism_request_duration_seconds Data-plane request latency as seen by the proxy.\n");
        out.push_str("# TYPE prism_request_duration_seconds histogram\n");
        for ((ns, op), series) in &entries {
            let series = series.lock().expect("series lock");
            let slowest = if openmetrics {
                series.exemplars.slowest(op, second, WINDOW_SECONDS)
            } else {
                Vec::new()
            };
            let labels = format!("namespace=\"{}\",operation=\"{}\"", escape(ns), escape(op));
            let mut below = 0;
            for bound in PROMETHEUS_BUCKETS {
                let micros = (bound * 1e6) as u64;
                let count = series.total.count_between(0, micros);
                let _ = write!(
                    out,
                    "prism_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
                write_exemplar(&mut out, &slowest, below, micros);
                out.push('\n');
                below = micros;
            }
            let count = series.total.len();
            let _ = write!(
                out,
                "prism_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            write_exemplar(&mut out, &slowest, below, u64::MAX);
            out.push('\n');
            let _ = writeln!(
                out,
                "prism_request_duration_seconds_sum{{{labels}}} {}",
                series.total_sum_us as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "prism_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out
    }
}

/// ` # {trace_id="…"} value timestamp` for the slowest exemplar in
/// `(above, upto]` µs, if any (`slowest` is slowest first).
fn write_exemplar(out: &mut String, slowest: &[Exemplar], above: u64, upto: u64) {
    if let Some(e) = slowest
        .iter()
        .find(|e| e.latency_us > above && e.latency_us <= upto)
    {
        let _ = write!(
            out,
            " # {{trace_id=\"{}\"}} {} {:.3}",
            e.trace_id,
            e.latency_us as f64 / 1e6,
            exemplars::epoch_seconds(e.at)
        );
    }
}

fn quantile(h: &Histogram<u64>, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(q)
    }
}

fn log2_buckets(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut buckets: Vec<(u64, u64)> = h
        .iter_log(1, 2.0)
        .map(|v| (v.value_iterated_to(), v.count_since_last_iteration()))
        .collect();
    while buckets.last().is_some_and(|b| b.1 == 0) {
        buckets.pop();
    }
    let first = buckets.iter().position(|b| b.1 > 0).unwrap_or(0);
    buckets.drain(..first);
    buckets
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn quantiles_and_error_rate_over_the_window() {
        let r = LatencyRecorder::new();
        let t = r.start + Duration::from_secs(1);
        for i in 1..=100 {
            r.record_at("default", "Get", Code::Ok, ms(i), t);
        }
        for _ in 0..25 {
            r.record_at("default", "Set", Code::Unavailable, ms(1), t);
        }
        let get = r.window_at("default", Some("Get"), t);
        assert_eq!(get.count, 100);
        assert_eq!(get.errors, 0);
        assert!((49_000..=51_000).contains(&get.p50_us), "{}", get.p50_us);
        assert!((98_000..=100_500).contains(&get.p99_us), "{}", get.p99_us);
        assert!(get.max_us >= 99_000);
        let all = r.window_at("default", None, t);
        assert_eq!(all.count, 125);
        assert!((all.error_rate - 0.2).abs() < 1e-9);
        assert_eq!(r.operations("default"), ["Get", "Set"]);
        assert_eq!(r.window_at("other", None, t).count, 0);
    }

    #[test]
    fn old_slots_leave_the_window_but_stay_in_totals() {
        let r = LatencyRecorder::new();
        r.record_at("ns", "Get", Code::Ok, ms(1), r.start);
        let later = r.start + Duration::from_secs(SLOT_SECONDS * SLOTS as u64 + 1);
        let w = r.window_at("ns", None, later);
        assert_eq!(w.count, 0);
        assert_eq!(w.total, 1);
        assert!(r.prometheus().contains(
            "prism_request_duration_seconds_count{namespace=\"ns\",operation=\"Get\"} 1"
        ));
    }

    #[test]
    fn rps_history_counts_complete_seconds() {
        let r = LatencyRecorder::new();
        for s in 0..3u64 {
            for _ in 0..=s {
                r.record_at(
                    "ns",
                    "Get",
                    Code::Ok,
                    ms(1),
                    r.start + Duration::from_secs(s),
                );
            }
        }
        let w = r.window_at("ns", None, r.start + Duration::from_secs(3));
        assert_eq!(&w.rps_history[HISTORY_SECONDS - 3..], &[1, 2, 3]);
        assert!((w.rps - 6.0 / 3.0).abs() < 1e-9, "{}", w.rps);
    }

    #[test]
    fn buckets_are_powers_of_two_without_empty_tails() {
        let r = LatencyRecorder::new();
        r.record_at("ns", "Get", Code::Ok, Duration::from_micros(100), r.start);
        r.record_at("ns", "Get", Code::Ok, Duration::from_micros(3000), r.start);
        let w = r.window_at("ns", None, r.start);
        assert_eq!(w.buckets.iter().map(|b| b.1).sum::<u64>(), 2);
        assert!(w.buckets.first().unwrap().1 > 0 && w.buckets.last().unwrap().1 > 0);
        for pair in w.buckets.windows(2) {
            assert_eq!(pair[1].0 + 1, (pair[0].0 + 1) * 2, "{pair:?}");
        }
    }

    #[test]
    fn prometheus_text_has_counters_and_cumulative_buckets() {
        let r = LatencyRecorder::new();
        r.record_at(
            "default",
            "Get",
            Code::Ok,
            Duration::from_micros(80),
            r.start,
        );
        r.record_at(
            "default",
            "Get",
            Code::NotFound,
            Duration::from_micros(700),
            r.start,
        );
        let text = r.prometheus();
        assert!(
            text.contains(
                "prism_requests_total{namespace=\"default\",operation=\"Get\",code=\"OK\",outcome=\"ok\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("code=\"NOT_FOUND\",outcome=\"client_error\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE prism_requests_total counter"),
            "{text}"
        );
        assert!(!text.contains(" # {"), "no exemplars in plain text: {text}");
        assert!(text.contains("le=\"0.0001\"} 1"), "{text}");
        assert!(text.contains("le=\"0.001\"} 2"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 2"), "{text}");
    }

    #[test]
    fn forget_drops_a_namespace() {
        let r = LatencyRecorder::new();
        r.record("gone", "Get", Code::Ok, ms(1));
        r.forget("gone");
        assert!(r.operations("gone").is_empty());
    }

    #[test]
    fn client_errors_are_counted_apart_from_errors() {
        let r = LatencyRecorder::new();
        for _ in 0..6 {
            r.record_at("ns", "Get", Code::Ok, ms(1), r.start);
        }
        for _ in 0..3 {
            r.record_at("ns", "Get", Code::NotFound, ms(1), r.start);
        }
        r.record_at("ns", "Get", Code::Unavailable, ms(1), r.start);
        let w = r.window_at("ns", None, r.start);
        assert_eq!((w.count, w.errors, w.client_errors), (10, 1, 3));
        assert!((w.error_rate - 0.1).abs() < 1e-9, "{}", w.error_rate);
        assert!((w.client_error_rate - 0.3).abs() < 1e-9);
    }

    fn traced(r: &LatencyRecorder, op: &str, code: Code, elapsed: Duration, trace: u128) {
        r.record_traced_at(
            "ns",
            op,
            (code, elapsed),
            (|| Some(TraceId::from(trace)), || format!("boom {trace}")),
            r.start,
        );
    }

    #[test]
    fn exemplars_merge_operations_slowest_first() {
        let r = LatencyRecorder::new();
        traced(&r, "Get", Code::Ok, ms(5), 1);
        traced(&r, "Set", Code::Ok, ms(50), 2);
        traced(&r, "Set", Code::Internal, ms(1), 3);
        traced(&r, "Get", Code::NotFound, ms(2), 4);
        let (slowest, failures) = r.exemplars_at("ns", None, r.start);
        let ids: Vec<(String, TraceId)> = slowest
            .iter()
            .map(|e| (e.operation.clone(), e.trace_id))
            .collect();
        assert_eq!(ids[0], ("Set".to_string(), TraceId::from(2u128)));
        assert_eq!(ids[1], ("Get".to_string(), TraceId::from(1u128)));
        assert_eq!(failures.len(), 1, "NOT_FOUND is no failure: {failures:?}");
        assert_eq!(failures[0].message, "boom 3");
        let (get_only, _) = r.exemplars_at("ns", Some("Get"), r.start);
        assert!(get_only.iter().all(|e| e.operation == "Get"));
    }

    #[test]
    fn openmetrics_puts_exemplars_on_their_buckets() {
        let r = LatencyRecorder::new();
        traced(&r, "Get", Code::Ok, Duration::from_micros(80), 0xabc);
        traced(&r, "Get", Code::Ok, ms(700), 0xdef);
        let text = r.exposition(true, r.start);
        assert!(text.contains("# TYPE prism_requests counter\n"), "{text}");
        let line = |le: &str| {
            text.lines()
                .find(|l| l.contains(&format!("le=\"{le}\"")))
                .unwrap_or_else(|| panic!("no bucket {le}: {text}"))
                .to_string()
        };
        let fast = line("0.0001");
        assert!(
            fast.starts_with(
                "prism_request_duration_seconds_bucket{namespace=\"ns\",operation=\"Get\",le=\"0.0001\"} 1 # {trace_id=\"00000000000000000000000000000abc\"} 0.00008 "
            ),
            "{fast}"
        );
        let slow = line("1");
        assert!(
            slow.contains("} 2 # {trace_id=\"00000000000000000000000000000def\"} 0.7 "),
            "{slow}"
        );
        // The timestamp is seconds since the epoch, in milliseconds.
        let ts: f64 = slow.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(ts > 1.6e9, "{ts}");
        // Each exemplar sits on one bucket only.
        assert!(!line("0.5").contains('#'), "{text}");
        assert!(!line("+Inf").contains('#'), "{text}");
    }

    /// What exemplar bookkeeping adds to a fast OK call, which is what
    /// nearly every call is:
    /// `cargo test -p prism-observability --release --lib -- --ignored --nocapture record_cost`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn record_cost() {
        let r = LatencyRecorder::new();
        // Five slow calls hold the slots, so the measured ones are not kept.
        for i in 0..exemplars::SLOWEST as u128 {
            traced(&r, "Get", Code::Ok, ms(100), i);
        }
        let n = 2_000_000u32;
        let fast = Duration::from_micros(50);
        for round in 0..3 {
            let t = Instant::now();
            for _ in 0..n {
                r.record("ns", "Get", Code::Ok, fast);
            }
            let plain = t.elapsed() / n;
            let t = Instant::now();
            for _ in 0..n {
                r.record_traced("ns", "Get", Code::Ok, fast, || None, String::new);
            }
            let traced = t.elapsed() / n;
            println!("round {round}: record {plain:?}/call, record_traced {traced:?}/call");
        }
    }
}
