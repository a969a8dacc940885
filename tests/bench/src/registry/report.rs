//! The registry bench's figures, the targets judged against them,
//! and the text report.

use std::fmt::Write;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::args::{ConsumerStorage, Slots};

/// Enumerate with a filter over 10,000 identities, p99.
pub const ENUMERATE_P99_MS: f64 = 10.0;
/// Multicast to 1,000 live receivers until the last one has it, p99.
pub const MULTICAST_LAST_P99_MS: f64 = 50.0;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1e3;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RegistryReport {
    pub slots: Slots,
    pub consumer_storage: ConsumerStorage,
    pub identities: usize,
    pub targets: usize,
    pub register_per_sec: f64,
    pub enumerate: Latency,
    /// How many identities the measured filter selects.
    pub enumerate_matches: u64,
    /// A point Get through the proxy: the floor of one call.
    pub baseline_get: Latency,
    /// The filter evaluated once over every identity in the bench's process.
    pub filter_in_process_ms: f64,
    pub multicast_call: Latency,
    /// Send → the last receiver holding the message.
    pub multicast_last: Latency,
    pub solo_call: Latency,
    pub solo_last: Latency,
    /// Messages that reached a receiver, of targets × multicasts.
    pub delivered_pct: f64,
    /// DELIVERED in the replies, of targets × multicasts.
    pub reported_delivered_pct: f64,
    pub duplicates: u64,
}

/// Whether a figure meets its target; `None` when the run is not the
/// target's size (other identity or target counts).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Verdicts {
    pub enumerate_p99: Option<bool>,
    pub multicast_last_p99: Option<bool>,
    pub all_delivered: bool,
    pub no_duplicates: bool,
}

impl RegistryReport {
    pub fn verdicts(&self) -> Verdicts {
        Verdicts {
            enumerate_p99: (self.identities >= 10_000)
                .then_some(self.enumerate.p99_ms <= ENUMERATE_P99_MS),
            multicast_last_p99: (self.targets >= 1000)
                .then_some(self.multicast_last.p99_ms <= MULTICAST_LAST_P99_MS),
            all_delivered: self.delivered_pct >= 100.0,
            no_duplicates: self.duplicates == 0,
        }
    }

    pub fn render(&self) -> String {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let row = |name: &str, l: &Latency| {
            format!(
                "  {name:<34} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  ({} calls)\n",
                l.p50_ms, l.p99_ms, l.max_ms, l.count
            )
        };
        let verdict = |v: Option<bool>| match v {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not this size",
        };
        let v = self.verdicts();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "prism-bench registry: {:?} slots{}, {} identities, {} targets with live receivers",
            self.slots,
            match (self.slots, self.consumer_storage) {
                (Slots::RedisJetstream, ConsumerStorage::Memory) => " (consumer state in memory)",
                (Slots::RedisJetstream, ConsumerStorage::File) => " (consumer state on file)",
                _ => "",
            },
            self.identities,
            self.targets
        );
        let _ = writeln!(
            out,
            "  register                           {:>8.0} /s",
            self.register_per_sec
        );
        out.push_str(&row(
            &format!("enumerate (filter, {} match)", self.enumerate_matches),
            &self.enumerate,
        ));
        out.push_str(&row("baseline: get one identity", &self.baseline_get));
        let _ = writeln!(
            out,
            "  filter in process over all          {:>8.2} ms   enumerate p50 / get p50 = {:.1}x",
            self.filter_in_process_ms,
            ratio(self.enumerate.p50_ms, self.baseline_get.p50_ms)
        );
        out.push_str(&row(
            &format!("multicast call ({} targets)", self.targets),
            &self.multicast_call,
        ));
        out.push_str(&row(
            "multicast send -> last receiver",
            &self.multicast_last,
        ));
        out.push_str(&row("baseline: multicast call (1 target)", &self.solo_call));
        out.push_str(&row("baseline: send -> its receiver", &self.solo_last));
        let _ = writeln!(
            out,
            "  send -> last: {} targets / 1 target p50 = {:.1}x",
            self.targets,
            ratio(self.multicast_last.p50_ms, self.solo_last.p50_ms)
        );
        let _ = writeln!(
            out,
            "  delivered {:.2}% (replies said {:.2}%), duplicates {}",
            self.delivered_pct, self.reported_delivered_pct, self.duplicates
        );
        let _ = writeln!(
            out,
            "targets: enumerate p99 <= {ENUMERATE_P99_MS} ms over 10,000: {}; multicast to 1,000 p99 <= {MULTICAST_LAST_P99_MS} ms: {}; 100% delivered: {}; 0 duplicates: {}",
            verdict(v.enumerate_p99),
            verdict(v.multicast_last_p99),
            verdict(Some(v.all_delivered)),
            verdict(Some(v.no_duplicates)),
        );
        out
    }
}
