//! The soak's report: the faults with what callers saw, the end checks, the
//! proxy's PID and memory, and the verdict; as text or JSON.

use std::{collections::BTreeMap, fmt::Write};

use serde::Serialize;

use super::{calls::Observed, inject::Injected, ledger::LostWrite, plan::FaultKind};

/// Lost writes listed in full at most; the count is always exact.
pub const LIST_AT_MOST: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    pub seed: u64,
    pub duration_s: f64,
    pub rate: u32,
    pub fault_interval_s: f64,
    pub outage_s: f64,
    pub faults_enabled: Vec<FaultKind>,
    pub faults: Vec<FaultRecord>,
    /// Calls and errors by code, per namespace kind, over the whole run.
    pub calls: BTreeMap<&'static str, Totals>,
    pub redis: KvCheck,
    /// MemStore keeps data in its pattern process: a pattern killed or
    /// reloaded (a new process) loses it by design, so these losses are
    /// reported, never failed on.
    pub memstore: KvCheck,
    pub jetstream: StreamCheck,
    pub proxy: ProxyCheck,
    /// Why the run failed; empty when it passed.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    /// When it was injected, ms after load began.
    pub at_ms: u64,
    #[serde(flatten)]
    pub injected: Injected,
    pub observed: Observed,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub calls: u64,
    pub errors: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct KvCheck {
    pub acknowledged_writes: u64,
    pub keys_checked: u64,
    /// Acknowledged values not read back (directly from the server for
    /// Redis; through the proxy for MemStore).
    pub lost: u64,
    pub lost_examples: Vec<LostWrite>,
    /// Keys the proxy could not read at the end (the namespace had not
    /// healed), or read with another value.
    pub unreadable_through_proxy: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamCheck {
    pub acknowledged_publishes: u64,
    pub failed_publishes: u64,
    /// Acknowledged but never delivered to the durable subscriber.
    pub lost: u64,
    pub lost_examples: Vec<String>,
    /// Redeliveries of messages already delivered (allowed).
    pub duplicates: u64,
    /// Delivered although their publish call failed (allowed).
    pub delivered_unacknowledged: u64,
    pub drain_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProxyCheck {
    pub pid: u32,
    /// Alive with the same PID at every sample and at the end.
    pub same_pid_throughout: bool,
    pub rss_samples: u64,
    pub max_rss_kb: u64,
    pub rss_bound_kb: u64,
}

impl ChaosReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// Fills `problems` from the checks.
    pub fn judge(&mut self) {
        let mut problems = Vec::new();
        if self.redis.lost > 0 {
            problems.push(format!(
                "{} acknowledged Redis writes lost",
                self.redis.lost
            ));
        }
        if self.redis.unreadable_through_proxy > 0 {
            problems.push(format!(
                "{} Redis keys not readable through the proxy at the end",
                self.redis.unreadable_through_proxy
            ));
        }
        if self.jetstream.lost > 0 {
            problems.push(format!(
                "{} acknowledged JetStream publishes never delivered",
                self.jetstream.lost
            ));
        }
        if !self.proxy.same_pid_throughout {
            problems.push(format!(
                "the proxy (pid {}) did not stay up",
                self.proxy.pid
            ));
        }
        if self.proxy.max_rss_kb > self.proxy.rss_bound_kb {
            problems.push(format!(
                "proxy RSS reached {} KiB, above the bound of {} KiB",
                self.proxy.max_rss_kb, self.proxy.rss_bound_kb
            ));
        }
        for fault in &self.faults {
            if let Some(error) = &fault.injected.error {
                problems.push(format!(
                    "{} at {:.1}s could not be injected: {error}",
                    fault.injected.kind,
                    fault.at_ms as f64 / 1000.0
                ));
            }
        }
        self.problems = problems;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let faults: Vec<&str> = self.faults_enabled.iter().map(|k| k.name()).collect();
        let _ = writeln!(
            out,
            "prism-bench chaos: seed {} · {:.0}s at {} calls/s · a fault every ~{:.1}s ({}) · outages {:.1}s",
            self.seed,
            self.duration_s,
            self.rate,
            self.fault_interval_s,
            faults.join(", "),
            self.outage_s
        );
        let _ = writeln!(out, "\nfaults ({}):", self.faults.len());
        let _ = writeln!(
            out,
            "  {:>8}  {:<15} {:<16} {:<22} {:>7}  {:<30} detail",
            "at", "fault", "target", "heal", "calls", "errors"
        );
        for fault in &self.faults {
            let seen = &fault.observed;
            let heal = match (seen.heal_ms, fault.injected.back_after_ms) {
                (None, _) => "never".into(),
                (Some(ms), Some(back)) if ms >= back => format!("{ms} ms (back+{})", ms - back),
                (Some(ms), _) => format!("{ms} ms"),
            };
            let errors = if seen.errors.is_empty() {
                "-".to_string()
            } else {
                codes(&seen.errors)
            };
            let detail = match &fault.injected.error {
                Some(e) => format!("FAILED: {e}"),
                None => fault.injected.detail.clone(),
            };
            let _ = writeln!(
                out,
                "  {:>7.1}s  {:<15} {:<16} {:<22} {:>7}  {:<30} {detail}",
                fault.at_ms as f64 / 1000.0,
                fault.injected.kind.name(),
                fault.injected.target,
                heal,
                seen.calls,
                errors,
            );
        }
        let _ = writeln!(out, "\ncalls:");
        for (surface, totals) in &self.calls {
            let _ = writeln!(
                out,
                "  {surface:<10} {:>8} calls, errors: {}",
                totals.calls,
                if totals.errors.is_empty() {
                    "none".to_string()
                } else {
                    codes(&totals.errors)
                }
            );
        }
        let _ = writeln!(out, "\nend checks:");
        for (name, check) in [("redis", &self.redis), ("memstore", &self.memstore)] {
            let _ = writeln!(
                out,
                "  {name:<10} {} acknowledged writes, {} keys checked, {} lost, {} unreadable through the proxy",
                check.acknowledged_writes,
                check.keys_checked,
                check.lost,
                check.unreadable_through_proxy
            );
        }
        let _ = writeln!(
            out,
            "  {:<10} (MemStore keeps data in its process: a pattern killed or reloaded loses it by design, not failed on)",
            ""
        );
        let js = &self.jetstream;
        let _ = writeln!(
            out,
            "  jetstream  {} acknowledged publishes, {} lost, {} redelivered duplicates, {} failed publishes ({} delivered anyway), drained in {} ms",
            js.acknowledged_publishes,
            js.lost,
            js.duplicates,
            js.failed_publishes,
            js.delivered_unacknowledged,
            js.drain_ms
        );
        let p = &self.proxy;
        let _ = writeln!(
            out,
            "  proxy      pid {} {}, max RSS {:.1} MiB (bound {:.0} MiB, {} samples)",
            p.pid,
            if p.same_pid_throughout {
                "up throughout"
            } else {
                "DID NOT STAY UP"
            },
            p.max_rss_kb as f64 / 1024.0,
            p.rss_bound_kb as f64 / 1024.0,
            p.rss_samples
        );
        for lost in self.redis.lost_examples.iter().take(LIST_AT_MOST) {
            let _ = writeln!(
                out,
                "  lost redis write: {} = {} (found {:?})",
                lost.key, lost.expected, lost.found
            );
        }
        if self.passed() {
            let _ = writeln!(
                out,
                "\nPASSED: nothing acknowledged was lost; the proxy stayed up"
            );
        } else {
            let _ = writeln!(out, "\nFAILED:");
            for problem in &self.problems {
                let _ = writeln!(out, "  - {problem}");
            }
        }
        out
    }
}

fn codes(errors: &BTreeMap<&'static str, u64>) -> String {
    errors
        .iter()
        .map(|(code, n)| format!("{code}×{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ChaosReport {
        ChaosReport {
            seed: 1,
            duration_s: 60.0,
            rate: 100,
            fault_interval_s: 5.0,
            outage_s: 3.0,
            faults_enabled: FaultKind::ALL.to_vec(),
            faults: Vec::new(),
            calls: BTreeMap::new(),
            redis: KvCheck::default(),
            memstore: KvCheck {
                lost: 7,
                ..KvCheck::default()
            },
            jetstream: StreamCheck::default(),
            proxy: ProxyCheck {
                pid: 10,
                same_pid_throughout: true,
                rss_samples: 3,
                max_rss_kb: 1000,
                rss_bound_kb: 2000,
            },
            problems: Vec::new(),
        }
    }

    #[test]
    fn memstore_losses_alone_pass() {
        let mut r = report();
        r.judge();
        assert!(r.passed(), "{:?}", r.problems);
        assert!(r.render().contains("PASSED"));
    }

    #[test]
    fn every_loss_restart_and_excess_fails_with_a_reason() {
        let mut r = report();
        r.redis.lost = 1;
        r.jetstream.lost = 2;
        r.proxy.same_pid_throughout = false;
        r.proxy.max_rss_kb = 3000;
        r.judge();
        assert_eq!(r.problems.len(), 4, "{:?}", r.problems);
        let text = r.render();
        assert!(text.contains("FAILED") && text.contains("1 acknowledged Redis writes lost"));
        assert!(text.contains("2 acknowledged JetStream publishes never delivered"));
    }
}
