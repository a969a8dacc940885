//! The human-readable report: a header, a latency table per path, the
//! resources of the processes, and the comparisons. Pure: a `Report` in, a
//! `String` out.

use std::fmt::Write;

use crate::{
    Report,
    config::Mode,
    procstat::ProcessReport,
    report::{Comparison, PathReport},
};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", header(report));
    out.push('\n');
    out.push_str(&latency_table(report));
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
    let mode = match load.mode {
        Mode::OpenLoop { rate } => format!("open loop at {rate} rps"),
        Mode::ClosedLoop { concurrency } => format!("closed loop, {concurrency} in flight"),
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
    if p.errors.is_empty() {
        return "0".into();
    }
    p.errors
        .iter()
        .map(|(code, n)| format!("{code}={n}"))
        .collect::<Vec<_>>()
        .join(",")
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
    let mut rows = vec![
        ["comparison", "added p50", "added p99", "throughput"]
            .map(String::from)
            .to_vec(),
    ];
    for c in comparisons {
        rows.push(vec![
            format!("{} vs {}", c.path, c.baseline),
            signed_micros(c.added_p50_us),
            signed_micros(c.added_p99_us),
            c.throughput_ratio
                .map(|r| format!("{r:.2}×"))
                .unwrap_or_else(|| "-".into()),
        ]);
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
        let report = Report {
            target: "kv",
            workload: "Get 100% / Set 0%".into(),
            namespace: "default".into(),
            settings: TargetSettings::Kv(KvSettings {
                get_ratio: 1.0,
                value_size: 1024,
                keys: 10,
                backend: crate::config::Backend::Memstore,
            }),
            load: LoadSettings {
                mode: Mode::OpenLoop { rate: 1000 },
                duration: Duration::from_secs(10),
                warmup: Duration::from_millis(500),
                connections: 1,
                timeout: Duration::from_secs(5),
                max_in_flight: 10,
            },
            comparisons: compare(&paths),
            paths,
            skipped: BTreeMap::from([("pattern".into(), "not built".into())]),
        };
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
}
