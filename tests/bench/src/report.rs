//! The figures of a run: per path (latency quantiles, throughput, errors by
//! code, the resources of the processes the bench started) and comparisons
//! of each path with its baselines. Serialized as is for `--json`.

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
    /// `kv`
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
}

/// One path against one of its baselines.
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
}

impl Comparison {
    pub fn between(path: &PathReport, baseline: &PathReport) -> Self {
        Self {
            path: path.path,
            baseline: baseline.path,
            added_p50_us: path.latency_us.p50_us - baseline.latency_us.p50_us,
            added_p99_us: path.latency_us.p99_us - baseline.latency_us.p99_us,
            throughput_ratio: ratio(path.throughput_rps, baseline.throughput_rps),
        }
    }
}

/// `a / b`, or `None` when `b` is zero.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Every path against each of its baselines that also ran, in run order.
pub fn compare(paths: &[PathReport]) -> Vec<Comparison> {
    let mut comparisons = Vec::new();
    for path in paths {
        for baseline_kind in path.path.baselines() {
            if let Some(baseline) = paths.iter().find(|p| p.path == *baseline_kind) {
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
