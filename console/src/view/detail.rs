//! The detail view of one namespace: process summary, health, latency and
//! its own slice of the event log.

use super::{
    Cell, DetailView, EventRow, LatencyView, Tone, format, health_tone, histogram, state_tone,
};
use crate::{
    app::{App, LatencyData},
    model::{LogEvent, RpcError},
};

fn event_tone(kind: &str) -> Tone {
    if kind.contains("FAILED") || kind.contains("EXITED") {
        Tone::Bad
    } else if kind.contains("RESTART") || kind == "RELOAD_STARTED" {
        Tone::Warn
    } else if kind.contains("STARTED") || kind.contains("SUCCEEDED") || kind.contains("ADDED") {
        Tone::Good
    } else {
        Tone::Normal
    }
}

pub(crate) fn detail(app: &App, namespace: &str) -> DetailView {
    let Some(p) = app.pattern(namespace) else {
        return DetailView {
            title: namespace.to_string(),
            summary: vec![vec![Cell::new(
                "this namespace is no longer served by the proxy",
                Tone::Warn,
            )]],
            health: Vec::new(),
            latency: LatencyView::NotAvailable(String::new()),
            events: events(app, namespace),
            events_note: None,
        };
    };
    let label = |text: &str| Cell::new(text, Tone::Dim);
    let mut summary = vec![
        vec![
            label("state "),
            Cell::new(p.state.as_str(), state_tone(p.state)),
            label("  health "),
            Cell::new(p.health.status.as_str(), health_tone(p.health.status)),
            label("  pid "),
            Cell::new(
                if p.pid == 0 {
                    "-".to_string()
                } else {
                    p.pid.to_string()
                },
                Tone::Normal,
            ),
            label("  uptime "),
            Cell::new(format::uptime(p.uptime_ms), Tone::Normal),
            label("  restarts "),
            Cell::new(p.restart_count.to_string(), Tone::Normal),
        ],
        vec![
            label("endpoint "),
            Cell::new(&p.endpoint, Tone::Normal),
            label("  version "),
            Cell::new(&p.version, Tone::Normal),
        ],
    ];
    if !p.last_error.is_empty() {
        summary.push(vec![
            label("last error "),
            Cell::new(&p.last_error, Tone::Bad),
        ]);
    }
    let mut health = vec![("message".to_string(), p.health.message.clone())];
    health.extend(p.health.details.iter().map(|(k, v)| (k.clone(), v.clone())));

    let latency = match app.latency.as_ref().map(|l| &l.data) {
        None | Some(LatencyData::Loading) => LatencyView::Loading,
        Some(LatencyData::Failed(RpcError::Unimplemented)) => {
            LatencyView::NotAvailable("n/a (this proxy does not serve GetLatency)".to_string())
        }
        Some(LatencyData::Failed(error)) => LatencyView::NotAvailable(format!("n/a ({error})")),
        Some(LatencyData::Ready(data)) => LatencyView::Ready {
            histogram: histogram::histogram(data),
            throughput: histogram::throughput(data),
        },
    };
    let events_note = match app.events_available {
        Some(false) => Some("n/a (this proxy does not serve the event log)".to_string()),
        _ => None,
    };
    DetailView {
        title: format!(
            "{} · {} on {} · {}",
            p.namespace,
            p.pattern,
            p.backend,
            if p.binary.is_empty() { "-" } else { &p.binary }
        ),
        summary,
        health,
        latency,
        events: events(app, namespace),
        events_note,
    }
}

fn events(app: &App, namespace: &str) -> Vec<EventRow> {
    app.events
        .iter()
        .rev()
        .filter(|e| e.namespace == namespace)
        .map(|e: &LogEvent| EventRow {
            age: format::ago(app.now_ms, e.timestamp_ms),
            kind: Cell::new(&e.kind, event_tone(&e.kind)),
            pid: if e.pid == 0 {
                String::new()
            } else {
                format!("pid {}", e.pid)
            },
            reason: e.reason.clone(),
        })
        .collect()
}
