//! `prismctl`'s human output: aligned tables and one line per event, in the
//! console's units ([`crate::view::format`]). Pure functions of the replies.

use prism_proto::{
    admin::v1::{
        AdminRole, Event, EventKind, Exemplar, GetExemplarsResponse, LatencyHistogram,
        ListPatternsResponse, LogStream, PatternLogLine, PatternState, WhoAmIResponse,
    },
    lifecycle::v1::HealthStatus,
};

use time::OffsetDateTime;

use crate::view::format;

/// `rows` under `headers`, columns padded to their widest cell.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub(crate) fn status(reply: &ListPatternsResponse) -> String {
    let rows: Vec<Vec<String>> = reply
        .patterns
        .iter()
        .map(|p| {
            let traffic = p.traffic.unwrap_or_default();
            let health = p.health.as_ref().map_or(0, |h| h.status);
            vec![
                p.namespace.clone(),
                p.pattern.clone(),
                p.backend.clone(),
                PatternState::try_from(p.state)
                    .map_or("?", |s| s.as_str_name())
                    .to_string(),
                HealthStatus::try_from(health)
                    .map_or("?", |h| h.as_str_name())
                    .to_string(),
                if p.pid == 0 {
                    "-".into()
                } else {
                    p.pid.to_string()
                },
                if p.pid == 0 {
                    "-".into()
                } else {
                    format::uptime(p.uptime_ms)
                },
                p.restart_count.to_string(),
                format::rps(traffic.rps),
                format::percent(traffic.error_rate),
                format::micros(traffic.p99_us),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "NAMESPACE",
            "PATTERN",
            "BACKEND",
            "STATE",
            "HEALTH",
            "PID",
            "UPTIME",
            "RESTARTS",
            "RPS",
            "ERR%",
            "P99",
        ],
        &rows,
    );
    if let Some(proxy) = &reply.proxy {
        let config = if proxy.config_path.is_empty() {
            "none".to_string()
        } else {
            proxy.config_path.clone()
        };
        out.push_str(&format!(
            "\nproxy {} up {}, data {}, admin {}, config {}, {} in flight\n",
            proxy.version,
            format::uptime(proxy.uptime_ms),
            proxy.listen,
            proxy.admin_listen,
            config,
            reply.in_flight
        ));
    }
    out
}

/// `2026-11-30T02:00:00.123Z  KIND  namespace  reason  (actor)`
pub(crate) fn event(e: &Event) -> String {
    let kind = EventKind::try_from(e.kind).map_or("?", |k| k.as_str_name());
    let namespace = if e.namespace.is_empty() {
        "-"
    } else {
        &e.namespace
    };
    let mut line = format!(
        "{}  {kind:<20}  {namespace:<12}  {}",
        utc(e.timestamp_ms),
        e.reason
    );
    if e.pid != 0 {
        line.push_str(&format!("  pid={}", e.pid));
    }
    line
}

/// `2026-11-30T02:00:00.123Z  namespace  pid 4242  stderr  text`
pub(crate) fn log_line(l: &PatternLogLine) -> String {
    let stream = match LogStream::try_from(l.stream) {
        Ok(LogStream::Stdout) => "stdout",
        Ok(LogStream::Stderr) => "stderr",
        _ => "?",
    };
    let cut = if l.truncated { " …(cut)" } else { "" };
    format!(
        "{}  {}  pid {}  {stream}  {}{cut}",
        utc(l.timestamp_ms),
        l.namespace,
        l.pid,
        l.text
    )
}

/// The slowest calls, then the failures, one row each with its trace id.
pub(crate) fn exemplars(reply: &GetExemplarsResponse) -> String {
    let row = |kind: &str, e: &Exemplar| {
        let outcome = if e.code == 0 {
            "OK".to_string()
        } else {
            format!("{}: {}", e.code_name, e.message)
        };
        vec![
            kind.to_string(),
            e.operation.clone(),
            utc(e.timestamp_ms),
            format!("{}µs", e.latency_us),
            outcome,
            e.trace_id.clone(),
        ]
    };
    let rows: Vec<Vec<String>> = reply
        .slowest
        .iter()
        .map(|e| row("slowest", e))
        .chain(reply.failures.iter().map(|e| row("failure", e)))
        .collect();
    if rows.is_empty() {
        return "no calls recorded in the window\n".to_string();
    }
    table(
        &[
            "KIND",
            "OPERATION",
            "WHEN",
            "LATENCY",
            "OUTCOME",
            "TRACE ID",
        ],
        &rows,
    )
}

pub(crate) fn latency(h: &LatencyHistogram) -> String {
    let operation = if h.operation.is_empty() {
        "all operations"
    } else {
        &h.operation
    };
    let mut out = format!(
        "{} / {operation}: {} calls in the last {}s, {} rps, {} errors\n",
        h.namespace,
        h.count,
        h.window_seconds,
        format::rps(h.rps),
        format::percent(h.error_rate)
    );
    out.push_str(&table(
        &["MIN", "P50", "P90", "P99", "P99.9", "MAX", "MEAN"],
        &[vec![
            format::micros(h.min_us),
            format::micros(h.p50_us),
            format::micros(h.p90_us),
            format::micros(h.p99_us),
            format::micros(h.p999_us),
            format::micros(h.max_us),
            format::micros(h.mean_us as u64),
        ]],
    ));
    if !h.buckets.is_empty() {
        let rows: Vec<Vec<String>> = h
            .buckets
            .iter()
            .map(|b| {
                vec![
                    format!("≤{}", format::micros(b.upper_bound_us)),
                    b.count.to_string(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(&["BUCKET", "CALLS"], &rows));
    }
    if !h.operations.is_empty() {
        out.push_str(&format!("\noperations: {}\n", h.operations.join(", ")));
    }
    out
}

pub(crate) fn whoami(w: &WhoAmIResponse) -> String {
    let role = AdminRole::try_from(w.role)
        .map_or("?", |r| r.as_str_name())
        .trim_start_matches("ADMIN_ROLE_");
    if !w.auth_enabled {
        return format!("auth is off: every caller is {role}\n");
    }
    let mut out = format!("{} role {role}", w.principal);
    if !w.email.is_empty() {
        out.push_str(&format!(" ({})", w.email));
    }
    if w.expires_at > 0 {
        out.push_str(&format!(", token expires {}", utc(w.expires_at * 1000)));
    }
    out + "\n"
}

/// Unix epoch milliseconds as RFC 3339 UTC, `2026-11-30T02:00:00.123Z`;
/// the bare number when it is no date (past the year 9999).
pub(crate) fn utc(ms: i64) -> String {
    let Some(at) = OffsetDateTime::UNIX_EPOCH.checked_add(time::Duration::milliseconds(ms)) else {
        return format!("{ms} ms");
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use prism_proto::admin::v1::{Health, PatternInfo, ProxyInfo, TrafficSummary};

    use super::*;

    #[test]
    fn utc_times() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_796_004_000_123), "2026-11-30T02:00:00.123Z");
    }

    #[test]
    fn status_is_an_aligned_table_with_the_proxy_line() {
        let reply = ListPatternsResponse {
            patterns: vec![
                PatternInfo {
                    namespace: "default".into(),
                    pattern: "keyvalue".into(),
                    backend: "memstore".into(),
                    state: PatternState::Running as i32,
                    health: Some(Health {
                        status: HealthStatus::Healthy as i32,
                        ..Default::default()
                    }),
                    pid: 4242,
                    uptime_ms: 192_000,
                    traffic: Some(TrafficSummary {
                        rps: 7.5,
                        error_rate: 0.125,
                        p99_us: 850,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                PatternInfo {
                    namespace: "orders-archive".into(),
                    state: PatternState::Failed as i32,
                    ..Default::default()
                },
            ],
            proxy: Some(ProxyInfo {
                version: "0.1.0".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = status(&reply);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAMESPACE       PATTERN"), "{text}");
        assert!(
            lines[1].contains("RUNNING") && lines[1].contains("HEALTHY"),
            "{text}"
        );
        assert!(
            lines[1].contains("4242") && lines[1].contains("3m12s"),
            "{text}"
        );
        assert!(
            lines[1].contains("12.5%") && lines[1].contains("850µs"),
            "{text}"
        );
        assert!(lines[2].starts_with("orders-archive") && lines[2].contains("FAILED"));
        let state_col = lines[0].find("STATE").unwrap();
        assert_eq!(lines[2].find("FAILED"), Some(state_col), "aligned:\n{text}");
        assert!(text.contains("config none"), "{text}");
    }

    #[test]
    fn whoami_says_the_role() {
        let off = WhoAmIResponse {
            role: AdminRole::Admin as i32,
            ..Default::default()
        };
        assert_eq!(whoami(&off), "auth is off: every caller is ADMIN\n");
        let on = WhoAmIResponse {
            auth_enabled: true,
            principal: "sub:alice".into(),
            role: AdminRole::Viewer as i32,
            ..Default::default()
        };
        assert_eq!(whoami(&on), "sub:alice role VIEWER\n");
    }
}
