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
    // Unknown fields are left out rather than shown blank or as a dash.
    let mut process = vec![
        label("state "),
        Cell::new(p.state.as_str(), state_tone(p.state)),
        label("  health "),
        Cell::new(p.health.status.as_str(), health_tone(p.health.status)),
    ];
    if p.pid != 0 {
        process.extend([
            label("  pid "),
            Cell::new(p.pid.to_string(), Tone::Normal),
            label("  uptime "),
            Cell::new(format::uptime(p.uptime_ms), Tone::Normal),
        ]);
    }
    process.extend([
        label("  restarts "),
        Cell::new(p.restart_count.to_string(), Tone::Normal),
    ]);
    let mut summary = vec![process];
    let known: Vec<(&str, &str)> = [("endpoint ", &p.endpoint), ("version ", &p.version)]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (name, value.as_str()))
        .collect();
    if !known.is_empty() {
        let mut line = Vec::new();
        for (i, (name, value)) in known.into_iter().enumerate() {
            let name = if i == 0 {
                name.to_string()
            } else {
                format!("  {name}")
            };
            line.extend([label(&name), Cell::new(value, Tone::Normal)]);
        }
        summary.push(line);
    }
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
        title: if p.binary.is_empty() {
            format!("{} · {} on {}", p.namespace, p.pattern, p.backend)
        } else {
            format!(
                "{} · {} on {} · {}",
                p.namespace, p.pattern, p.backend, p.binary
            )
        },
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

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::KeyCode;

    use crate::{
        model::Pattern,
        update::{
            tests::{connected, key, options, pattern, snapshot},
            update,
        },
        view::{Body, DetailView, View},
    };

    /// `cache` opened, drawn from this version of it.
    fn detail_of(cache: Pattern) -> DetailView {
        let mut app = connected(options());
        update(&mut app, key(KeyCode::Enter));
        update(&mut app, snapshot(vec![cache]));
        match View::build(&app).body {
            Body::Detail(detail) => *detail,
            Body::Table(_) => panic!("the detail view is open"),
        }
    }

    fn text(cells: &[super::Cell]) -> String {
        cells.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn unknown_fields_are_left_out_not_shown_blank() {
        let mut cache = pattern("cache", 0, 1.0);
        cache.uptime_ms = 0;
        let detail = detail_of(cache);
        assert_eq!(detail.title, "cache · keyvalue on memstore");
        assert_eq!(detail.summary.len(), 1, "{:?}", detail.summary);
        assert_eq!(
            text(&detail.summary[0]),
            "state RUNNING  health HEALTHY  restarts 0"
        );
    }

    #[test]
    fn known_fields_are_shown() {
        let mut cache = pattern("cache", 200, 1.0);
        cache.binary = "prism-memstore".to_string();
        cache.endpoint = "unix:/tmp/cache.sock".to_string();
        let detail = detail_of(cache.clone());
        assert_eq!(
            detail.title,
            "cache · keyvalue on memstore · prism-memstore"
        );
        assert_eq!(
            text(&detail.summary[0]),
            "state RUNNING  health HEALTHY  pid 200  uptime 1m05s  restarts 0"
        );
        assert_eq!(text(&detail.summary[1]), "endpoint unix:/tmp/cache.sock");

        cache.version = "0.1.0".to_string();
        let detail = detail_of(cache.clone());
        assert_eq!(
            text(&detail.summary[1]),
            "endpoint unix:/tmp/cache.sock  version 0.1.0"
        );

        cache.endpoint.clear();
        let detail = detail_of(cache);
        assert_eq!(text(&detail.summary[1]), "version 0.1.0");
    }
}
