//! The figures of a run: per path (latency quantiles, throughput, errors by
//! code, the resources of the processes the bench started; for PubSub also
//! what the subscribers received) and comparisons of each path with its
//! baselines. Serialized as is for `--json`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    config::{LoadSettings, TargetSettings},
    paths::PathKind,
    procstat::ProcessReport,
    stats::LatencySummary,
};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `kv` or `pubsub`
    pub target: &'static str,
    /// What was sent, in words.
    pub workload: String,
    pub namespace: String,
    pub settings: TargetSettings,
    pub load: LoadSettings,
    pub paths: Vec<PathReport>,
    /// Default paths that could not run, and why.
    pub skipped: BTreeMap<String, String>,
    pub comparisons: Vec<Comparison>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathReport {
    pub path: PathKind,
    pub address: String,
    /// Measured requests that completed (successes and errors).
    pub requests: u64,
    pub ok: u64,
    pub error_count: u64,
    /// Failed requests by gRPC code name.
    pub errors: BTreeMap<String, u64>,
    /// From the start of the measured window to the last measured reply.
    pub elapsed_s: f64,
    /// Successful requests per second over `elapsed_s`.
    pub throughput_rps: f64,
    /// Of successful requests; open loop: from each request's intended send time.
    pub latency_us: LatencySummary,
    /// Open loop: the latest a measured request was sent after its slot.
    pub max_send_lag_us: Option<f64>,
    pub processes: Vec<ProcessReport>,
    /// PubSub: what was published and what the subscribers received. The
    /// figures above are then those of the publish calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pubsub: Option<PubsubReport>,
}

/// What the subscribers of one path received, over the measured window: the
/// messages of publish calls sent in it (open loop: due in it), however late
/// they arrived.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PubsubReport {
    /// Messages in the publish calls that succeeded.
    pub published: u64,
    /// `published` over the publish calls' `elapsed_s`.
    pub published_per_s: f64,
    /// Distinct messages received, summed over subscribers.
    pub delivered: u64,
    /// `delivered` over `deliver_elapsed_s`.
    pub delivered_per_s: f64,
    /// From the start of the window to the last delivery.
    pub deliver_elapsed_s: f64,
    /// `published` × subscribers: every subscriber receiving every message.
    pub expected: u64,
    /// Published messages a subscriber never received, summed over subscribers.
    pub lost: u64,
    /// Messages a subscriber received more than once (extra copies).
    pub duplicates: u64,
    /// Messages received whose publish call failed.
    pub unexpected: u64,
    /// Drops the server reported (`dropped_before`) on measured deliveries.
    pub dropped_before: u64,
    /// Messages of the warm-up received (not measured).
    pub warmup: u64,
    /// Payloads without this run's stamp (another publisher on the topic).
    pub foreign: u64,
    /// From each message's send time (open loop: its slot) to its arrival,
    /// over every subscriber.
    pub deliver_latency_us: LatencySummary,
    /// Subscriber streams that ended before the end, by gRPC code.
    pub subscriber_errors: BTreeMap<String, u64>,
    pub subscribers: Vec<SubscriberReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriberReport {
    pub delivered: u64,
    /// From the start of the window to this subscriber's last delivery.
    pub delivered_per_s: f64,
    pub lost: u64,
    pub duplicates: u64,
    pub unexpected: u64,
    pub dropped_before: u64,
    /// How its stream ended, if it ended early.
    pub error: Option<String>,
}

/// One path against one of its baselines. Latencies and throughput are the
/// calls' for KeyValue; for PubSub, publish→deliver latency and published
/// messages per second, plus the ratio of delivered messages per second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub path: PathKind,
    pub baseline: PathKind,
    /// `path` p50 minus `baseline` p50 (negative when `path` was faster).
    pub added_p50_us: f64,
    pub added_p99_us: f64,
    /// `path` throughput over `baseline` throughput; `None` when the
    /// baseline completed nothing.
    pub throughput_ratio: Option<f64>,
    /// PubSub: delivered messages per second, `path` over `baseline`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_ratio: Option<f64>,
    /// CPU per call of the processes serving each path (see
    /// [`PathReport::server_cpu_us_per_call`]), `path` over `baseline`:
    /// what a path costs the machine whatever else shares it. `None`
    /// unless both paths had their processes watched.
    pub server_cpu_ratio: Option<f64>,
}

impl Comparison {
    pub fn between(path: &PathReport, baseline: &PathReport) -> Self {
        let (latency, base_latency) = (path.headline_latency(), baseline.headline_latency());
        Self {
            path: path.path,
            baseline: baseline.path,
            added_p50_us: latency.p50_us - base_latency.p50_us,
            added_p99_us: latency.p99_us - base_latency.p99_us,
            throughput_ratio: ratio(path.headline_throughput(), baseline.headline_throughput()),
            delivered_ratio: path
                .pubsub
                .as_ref()
                .zip(baseline.pubsub.as_ref())
                .and_then(|(p, b)| ratio(p.delivered_per_s, b.delivered_per_s)),
            server_cpu_ratio: path
                .server_cpu_us_per_call()
                .zip(baseline.server_cpu_us_per_call())
                .and_then(|(p, b)| ratio(p, b)),
        }
    }
}

impl PathReport {
    /// The latency a path is compared by: the call's, or for PubSub the
    /// publish→deliver latency.
    pub fn headline_latency(&self) -> &LatencySummary {
        self.pubsub
            .as_ref()
            .map_or(&self.latency_us, |p| &p.deliver_latency_us)
    }

    /// Whether its headline latency was measured at all.
    pub fn has_latency(&self) -> bool {
        match &self.pubsub {
            Some(p) => p.delivered > 0,
            None => self.ok > 0,
        }
    }

    /// CPU time per call (PubSub: per published message), in µs, of the
    /// processes that serve the path: every watched process but the bench
    /// itself and the `proxy-traced` path's trace sink, which stands in for
    /// a collector elsewhere. `None` when none was watched or nothing
    /// completed.
    pub fn server_cpu_us_per_call(&self) -> Option<f64> {
        let cpu: Vec<f64> = self
            .processes
            .iter()
            .filter(|p| !matches!(p.role.as_str(), "bench" | "sink"))
            .filter_map(|p| p.cpu_percent)
            .collect();
        let rate = self.headline_throughput();
        // % of a core is 10⁴ µs of CPU per second.
        (!cpu.is_empty() && rate > 0.0).then(|| cpu.iter().sum::<f64>() * 1e4 / rate)
    }

    /// Calls per second, or for PubSub published messages per second.
    pub fn headline_throughput(&self) -> f64 {
        self.pubsub
            .as_ref()
            .map_or(self.throughput_rps, |p| p.published_per_s)
    }
}

/// `a / b`, or `None` when `b` is zero.
pub(crate) fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Every path against each of its baselines that also ran, in run order;
/// a pair where either side has no latency to compare (every call failed,
/// nothing was delivered) is left out.
pub(crate) fn compare(paths: &[PathReport]) -> Vec<Comparison> {
    let mut comparisons = Vec::new();
    for path in paths.iter().filter(|p| p.has_latency()) {
        for baseline_kind in path.path.baselines() {
            if let Some(baseline) = paths
                .iter()
                .find(|p| p.path == *baseline_kind && p.has_latency())
            {
                comparisons.push(Comparison::between(path, baseline));
            }
        }
    }
    comparisons
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn path(kind: PathKind, p50: f64, p99: f64, rps: f64) -> PathReport {
        PathReport {
            path: kind,
            address: "127.0.0.1:1".into(),
            requests: 100,
            ok: 100,
            error_count: 0,
            errors: BTreeMap::new(),
            elapsed_s: 1.0,
            throughput_rps: rps,
            latency_us: LatencySummary {
                p50_us: p50,
                p90_us: p50,
                p99_us: p99,
                p999_us: p99,
                max_us: p99,
                ..Default::default()
            },
            max_send_lag_us: None,
            processes: Vec::new(),
            pubsub: None,
        }
    }

    #[test]
    fn compares_each_path_with_the_baselines_that_ran() {
        let paths = [
            path(PathKind::Proxy, 300.0, 900.0, 8000.0),
            path(PathKind::Pattern, 200.0, 500.0, 16000.0),
            path(PathKind::Floor, 100.0, 200.0, 20000.0),
        ];
        let c = compare(&paths);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0],
            Comparison {
                path: PathKind::Proxy,
                baseline: PathKind::Pattern,
                added_p50_us: 100.0,
                added_p99_us: 400.0,
                throughput_ratio: Some(0.5),
                delivered_ratio: None,
                server_cpu_ratio: None,
            }
        );
        assert_eq!(
            (c[1].path, c[1].baseline),
            (PathKind::Proxy, PathKind::Floor)
        );
        assert_eq!(c[1].added_p50_us, 200.0);
        assert_eq!(c[1].throughput_ratio, Some(0.4));
        assert_eq!(
            (c[2].path, c[2].baseline),
            (PathKind::Pattern, PathKind::Floor)
        );
        assert_eq!(c[2].throughput_ratio, Some(0.8));
    }

    fn process(role: &str, cpu_percent: f64) -> ProcessReport {
        ProcessReport {
            role: role.into(),
            pid: 1,
            cpu_percent: Some(cpu_percent),
            idle_rss_kb: None,
            peak_rss_kb: None,
            end_rss_kb: None,
        }
    }

    #[test]
    fn server_cpu_counts_the_serving_processes_but_not_the_bench_or_the_sink() {
        let mut plain = path(PathKind::Proxy, 300.0, 900.0, 10_000.0);
        plain.processes = vec![
            process("proxy", 80.0),
            process("pattern", 40.0),
            process("bench", 60.0),
        ];
        // 120% of a core over 10,000 calls a second: 120 µs a call.
        assert_eq!(plain.server_cpu_us_per_call(), Some(120.0));

        let mut traced = path(PathKind::ProxyTraced, 400.0, 1000.0, 8_000.0);
        traced.processes = vec![
            process("proxy", 84.0),
            process("pattern", 36.0),
            process("bench", 50.0),
            process("sink", 30.0),
        ];
        assert_eq!(traced.server_cpu_us_per_call(), Some(150.0));
        let c = Comparison::between(&traced, &plain);
        assert_eq!(c.server_cpu_ratio, Some(1.25));
        assert_eq!(c.throughput_ratio, Some(0.8));

        // Nothing watched (a server the user gave): no figure, no ratio.
        let given = path(PathKind::Pattern, 200.0, 500.0, 16_000.0);
        assert_eq!(given.server_cpu_us_per_call(), None);
        assert_eq!(Comparison::between(&plain, &given).server_cpu_ratio, None);
    }

    #[test]
    fn paths_without_latency_are_not_compared() {
        let mut failed = path(PathKind::Pattern, 0.0, 0.0, 0.0);
        failed.ok = 0;
        let paths = [path(PathKind::Proxy, 300.0, 900.0, 10.0), failed];
        assert!(compare(&paths).is_empty());
        assert!(compare(&[paths[1].clone(), path(PathKind::Floor, 1.0, 1.0, 1.0)]).is_empty());
    }

    #[test]
    fn missing_baselines_are_skipped_and_zero_is_no_ratio() {
        let c = compare(&[
            path(PathKind::Proxy, 300.0, 900.0, 10.0),
            path(PathKind::Floor, 400.0, 1000.0, 0.0),
        ]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].baseline, PathKind::Floor);
        // Faster than the baseline reads as negative added latency.
        assert_eq!(c[0].added_p50_us, -100.0);
        assert_eq!(c[0].throughput_ratio, None);
        assert_eq!(ratio(3.0, 4.0), Some(0.75));
    }
}
