//! The human-readable report: a header, a latency table per path (for
//! PubSub: of the publish calls, then publish→deliver and what the
//! subscribers received), the resources of the processes, and the
//! comparisons. Pure: a `Report` in, a `String` out.

use std::fmt::Write;

use crate::{
    Report,
    config::{Mode, TargetSettings},
    procstat::ProcessReport,
    report::{Comparison, PathReport, PubsubReport},
};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", header(report));
    out.push('\n');
    let pubsub = report.paths.iter().any(|p| p.pubsub.is_some());
    if pubsub {
        out.push_str("publish calls\n");
    }
    out.push_str(&latency_table(report));
    if pubsub {
        out.push_str("\npublish → deliver (all subscribers)\n");
        out.push_str(&delivery_table(&report.paths));
    }
    for (path, reason) in &report.skipped {
        let _ = writeln!(out, "skipped {path}: {reason}");
    }
    let resources = resources_table(&report.paths);
    if !resources.is_empty() {
        out.push_str("\nresources over the measured window (CPU as % of one core)\n");
        out.push_str(&resources);
    }
    if !report.comparisons.is_empty() {
        out.push('\n');
        out.push_str(&comparison_table(&report.comparisons));
    }
    out
}

fn header(report: &Report) -> String {
    let load = &report.load;
    let mode = match (&report.settings, load.mode) {
        (TargetSettings::Pubsub(p), Mode::OpenLoop { rate }) if p.batch > 1 => format!(
            "open loop at {} msg/s ({rate} calls/s)",
            rate * p.batch as u64
        ),
        (TargetSettings::Pubsub(_), Mode::OpenLoop { rate }) => {
            format!("open loop at {rate} msg/s")
        }
        (TargetSettings::Pubsub(_), Mode::ClosedLoop { concurrency }) => {
            format!("closed loop, {concurrency} publish calls in flight")
        }
        (_, Mode::OpenLoop { rate }) => format!("open loop at {rate} rps"),
        (_, Mode::ClosedLoop { concurrency }) => format!("closed loop, {concurrency} in flight"),
    };
    let plural = if load.connections == 1 { "" } else { "s" };
    format!(
        "prism-bench {}: {mode} for {} (+{} warm-up) per path, {} connection{plural}\n{}; namespace {:?}",
        report.target,
        duration(load.duration.as_secs_f64()),
        duration(load.warmup.as_secs_f64()),
        load.connections,
        report.workload,
        report.namespace,
    )
}

fn latency_table(report: &Report) -> String {
    let open_loop = matches!(report.load.mode, Mode::OpenLoop { .. });
    let mut head = vec![
        "path", "requests", "ok/s", "p50", "p90", "p99", "p99.9", "max", "errors",
    ];
    if open_loop {
        head.push("max send lag");
    }
    let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    for p in &report.paths {
        let l = &p.latency_us;
        let mut row = vec![
            p.path.to_string(),
            p.requests.to_string(),
            format!("{:.1}", p.throughput_rps),
            micros(l.p50_us),
            micros(l.p90_us),
            micros(l.p99_us),
            micros(l.p999_us),
            micros(l.max_us),
            errors(p),
        ];
        if open_loop {
            row.push(p.max_send_lag_us.map(micros).unwrap_or_default());
        }
        rows.push(row);
    }
    columns(&rows)
}

fn errors(p: &PathReport) -> String {
    by_code(&p.errors)
}

fn by_code(counts: &std::collections::BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "0".into();
    }
    counts
        .iter()
        .map(|(code, n)| format!("{code}={n}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn delivery_table(paths: &[PathReport]) -> String {
    let head = [
        "path",
        "published/s",
        "delivered/s",
        "per subscriber/s",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "lost",
        "dup",
        "dropped",
        "stream errors",
    ];
    let mut rows = vec![head.map(String::from).to_vec()];
    for p in paths {
        let Some(s) = &p.pubsub else { continue };
        let l = &s.deliver_latency_us;
        rows.push(vec![
            p.path.to_string(),
            format!("{:.1}", s.published_per_s),
            format!("{:.1}", s.delivered_per_s),
            per_subscriber(s),
            micros(l.p50_us),
            micros(l.p90_us),
            micros(l.p99_us),
            micros(l.p999_us),
            micros(l.max_us),
            s.lost.to_string(),
            s.duplicates.to_string(),
            s.dropped_before.to_string(),
            by_code(&s.subscriber_errors),
        ]);
    }
    columns(&rows)
}

/// One subscriber's rate, or the lowest and highest of several.
fn per_subscriber(s: &PubsubReport) -> String {
    let rates = s.subscribers.iter().map(|sub| sub.delivered_per_s);
    let min = rates.clone().fold(f64::INFINITY, f64::min);
    let max = rates.fold(0.0, f64::max);
    match s.subscribers.len() {
        0 => "-".into(),
        1 => format!("{max:.1}"),
        _ => format!("{min:.1}–{max:.1}"),
    }
}

fn resources_table(paths: &[PathReport]) -> String {
    let mut rows = vec![
        [
            "path", "process", "pid", "cpu", "idle RSS", "peak RSS", "end RSS",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for p in paths {
        for proc in &p.processes {
            rows.push(process_row(p, proc));
        }
    }
    if rows.len() == 1 {
        return String::new();
    }
    columns(&rows)
}

fn process_row(p: &PathReport, proc: &ProcessReport) -> Vec<String> {
    let mib = |kb: Option<u64>| kb.map(|kb| format!("{:.1} MiB", kb as f64 / 1024.0));
    vec![
        p.path.to_string(),
        proc.role.clone(),
        proc.pid.to_string(),
        proc.cpu_percent
            .map(|c| format!("{c:.1}%"))
            .unwrap_or_else(|| "-".into()),
        mib(proc.idle_rss_kb).unwrap_or_else(|| "-".into()),
        mib(proc.peak_rss_kb).unwrap_or_else(|| "-".into()),
        mib(proc.end_rss_kb).unwrap_or_else(|| "-".into()),
    ]
}

fn comparison_table(comparisons: &[Comparison]) -> String {
    let pubsub = comparisons.iter().any(|c| c.delivered_ratio.is_some());
    let ratio = |r: Option<f64>| r.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "-".into());
    let mut head = vec!["comparison", "added p50", "added p99", "throughput"];
    if pubsub {
        head = vec![
            "comparison",
            "added p50 (publish→deliver)",
            "added p99",
            "published/s",
            "delivered/s",
        ];
    }
    head.push("server CPU/call");
    let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    for c in comparisons {
        let mut row = vec![
            format!("{} vs {}", c.path, c.baseline),
            signed_micros(c.added_p50_us),
            signed_micros(c.added_p99_us),
            ratio(c.throughput_ratio),
        ];
        if pubsub {
            row.push(ratio(c.delivered_ratio));
        }
        row.push(ratio(c.server_cpu_ratio));
        rows.push(row);
    }
    columns(&rows)
}

/// Lays rows out in columns: the first left-aligned, the rest right-aligned.
fn columns(rows: &[Vec<String>]) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i == 0 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str("  ");
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `85.3µs`, `412µs`, `1.25ms`, `2.50s`.
pub fn micros(us: f64) -> String {
    if us < 100.0 {
        format!("{us:.1}µs")
    } else if us < 1_000.0 {
        format!("{us:.0}µs")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

fn signed_micros(us: f64) -> String {
    if us < 0.0 {
        format!("-{}", micros(-us))
    } else {
        format!("+{}", micros(us))
    }
}

fn duration(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0}ms", secs * 1e3)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, time::Duration};

    use super::*;
    use crate::{
        config::{KvSettings, LoadSettings, TargetSettings},
        paths::PathKind,
        report::{compare, tests::path},
    };

    #[test]
    fn formats_latencies_by_magnitude() {
        assert_eq!(micros(85.34), "85.3µs");
        assert_eq!(micros(412.4), "412µs");
        assert_eq!(micros(1250.0), "1.25ms");
        assert_eq!(micros(2_500_000.0), "2.50s");
        assert_eq!(signed_micros(-12.0), "-12.0µs");
        assert_eq!(signed_micros(150.0), "+150µs");
    }

    #[test]
    fn aligns_columns() {
        let rows = vec![
            vec!["a".to_string(), "1".to_string()],
            vec!["long".to_string(), "1000".to_string()],
        ];
        assert_eq!(columns(&rows), "a        1\nlong  1000\n");
    }

    /// A report of `paths` under `settings`, 1 s per path, no warm-up.
    fn report(settings: TargetSettings, mode: Mode, paths: Vec<PathReport>) -> Report {
        Report {
            target: match settings {
                TargetSettings::Kv(_) => "kv",
                TargetSettings::Pubsub(_) => "pubsub",
            },
            workload: "the workload".into(),
            namespace: "default".into(),
            settings,
            load: LoadSettings {
                mode,
                duration: Duration::from_secs(1),
                warmup: Duration::ZERO,
                connections: 1,
                timeout: Duration::from_secs(5),
                max_in_flight: 10,
            },
            comparisons: compare(&paths),
            paths,
            skipped: BTreeMap::new(),
        }
    }

    #[test]
    fn renders_every_section() {
        let mut paths = vec![
            path(PathKind::Proxy, 300.0, 900.0, 999.0),
            path(PathKind::Floor, 100.0, 200.0, 1000.0),
        ];
        paths[0].errors.insert("UNAVAILABLE".into(), 2);
        paths[0].processes.push(ProcessReport {
            role: "proxy".into(),
            pid: 42,
            cpu_percent: Some(12.5),
            idle_rss_kb: Some(8192),
            peak_rss_kb: Some(10240),
            end_rss_kb: Some(10000),
        });
        let settings = TargetSettings::Kv(KvSettings {
            get_ratio: 1.0,
            value_size: 1024,
            keys: 10,
            backend: crate::config::Backend::Memstore,
        });
        let mut report = report(settings, Mode::OpenLoop { rate: 1000 }, paths);
        report.load.duration = Duration::from_secs(10);
        report.load.warmup = Duration::from_millis(500);
        report.skipped = BTreeMap::from([("pattern".into(), "not built".into())]);
        let text = render(&report);
        for needle in [
            "open loop at 1000 rps for 10s (+500ms warm-up) per path, 1 connection",
            "UNAVAILABLE=2",
            "skipped pattern: not built",
            "12.5%",
            "8.0 MiB",
            "proxy vs floor",
            "+200µs",
            "1.00×",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
    }

    #[test]
    fn renders_pubsub_deliveries_and_their_comparisons() {
        use crate::{
            config::{Backend, PubsubSettings},
            report::SubscriberReport,
            stats::LatencySummary,
        };
        let pubsub = |p50: f64, per_s: [f64; 2]| PubsubReport {
            published: 1000,
            published_per_s: 1000.0,
            delivered: 2000,
            delivered_per_s: per_s.iter().sum(),
            deliver_elapsed_s: 1.0,
            expected: 2000,
            lost: 3,
            duplicates: 0,
            unexpected: 0,
            dropped_before: 2,
            warmup: 10,
            foreign: 0,
            deliver_latency_us: LatencySummary {
                p50_us: p50,
                p99_us: p50 * 2.0,
                ..Default::default()
            },
            subscriber_errors: BTreeMap::from([("UNAVAILABLE".into(), 1)]),
            subscribers: per_s
                .iter()
                .map(|&r| SubscriberReport {
                    delivered: 1000,
                    delivered_per_s: r,
                    lost: 0,
                    duplicates: 0,
                    unexpected: 0,
                    dropped_before: 0,
                    error: None,
                })
                .collect(),
        };
        let mut paths = vec![
            path(PathKind::Proxy, 300.0, 900.0, 10.0),
            path(PathKind::Nats, 100.0, 200.0, 10.0),
        ];
        paths[0].pubsub = Some(pubsub(800.0, [990.0, 1000.0]));
        paths[1].pubsub = Some(pubsub(200.0, [1000.0, 1000.0]));
        let settings = TargetSettings::Pubsub(PubsubSettings {
            subscribers: 2,
            payload_size: 1024,
            batch: 10,
            topic: "t".into(),
            backend: Backend::Nats,
        });
        let report = report(settings, Mode::OpenLoop { rate: 100 }, paths);
        let text = render(&report);
        for needle in [
            "open loop at 1000 msg/s (100 calls/s)",
            "publish calls",
            "publish → deliver",
            "990.0–1000.0",
            "UNAVAILABLE=1",
            "proxy vs nats",
            "+600µs",
            "0.99×",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
    }
}
