//! The detail view of one namespace: process summary, health, latency and
//! its own slice of the event log.

use super::{
    Cell, DetailView, EventRow, LatencyView, Tone, format, health_tone, histogram, state_tone,
};
use crate::{
    app::{App, LatencyData},
    model::{LogEvent, Pattern, RpcError},
    multicast::{Figures, Trend},
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
            exemplars: super::exemplars::exemplars(app),
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
        process.extend([label("  pid "), Cell::new(p.pid.to_string(), Tone::Normal)]);
        if p.state.has_uptime() {
            process.extend([
                label("  uptime "),
                Cell::new(format::uptime(p.uptime_ms), Tone::Normal),
            ]);
        }
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
    if p.pattern == REGISTRY {
        summary.extend(registry(
            p,
            app.multicasts.get(namespace).map(Trend::figures),
        ));
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
        exemplars: super::exemplars::exemplars(app),
        events: events(app, namespace),
        events_note,
    }
}

/// The pattern name of a multicast registry, as the admin API reports it.
const REGISTRY: &str = "multicast-registry";

/// A registry's own lines: its identities, receivers and slots, then the
/// multicast rate and what became of the recent multicasts' deliveries.
fn registry(p: &Pattern, figures: Option<Figures>) -> Vec<Vec<Cell>> {
    let detail = |key: &str| p.health.details.get(key).map(String::as_str);
    let mut slots = Vec::new();
    for (name, key) in [
        ("identities", "registry.identities"),
        ("receivers", "messaging.receivers"),
    ] {
        if let Some(value) = detail(key) {
            pair(&mut slots, name, Cell::new(value, Tone::Normal));
        }
    }
    let backends = match (detail("registry.backend"), detail("messaging.backend")) {
        (Some(registry), Some(messaging)) => format!("{registry}/{messaging}"),
        _ => p.backend.clone(),
    };
    pair(&mut slots, "slots", Cell::new(backends, Tone::Normal));

    let figures = figures.unwrap_or_default();
    let rate = match figures.per_second {
        Some(rate) => Cell::new(format!("{}/s", format::rps(rate)), Tone::Normal),
        None => Cell::new("measuring…", Tone::Dim),
    };
    let mut traffic = Vec::new();
    pair(&mut traffic, "multicasts", rate);
    if let Some(split) = figures.recent {
        let span = format::uptime(u64::try_from(split.span_ms).unwrap_or(0));
        let count =
            |n: u64, busy: Tone| Cell::new(n.to_string(), if n == 0 { Tone::Normal } else { busy });
        pair(
            &mut traffic,
            &format!("last {span}: delivered"),
            count(split.delivered, Tone::Good),
        );
        pair(&mut traffic, "pending", count(split.pending, Tone::Warn));
        pair(&mut traffic, "failed", count(split.failed, Tone::Bad));
    }
    vec![slots, traffic]
}

/// Appends `name value` to a summary line, two spaces after what is there.
fn pair(line: &mut Vec<Cell>, name: &str, value: Cell) {
    let gap = if line.is_empty() { "" } else { "  " };
    line.push(Cell::new(format!("{gap}{name} "), Tone::Dim));
    line.push(value);
}

/// Events about the whole proxy rather than one pattern process: config
/// reloads applied or rejected and namespaces coming and going (the audit
/// record of the admin call that asked for a reload says less).
pub(crate) fn is_proxy_wide(e: &LogEvent) -> bool {
    matches!(
        e.kind.as_str(),
        "CONFIG_RELOADED" | "CONFIG_RELOAD_FAILED" | "NAMESPACE_ADDED" | "NAMESPACE_REMOVED"
    )
}

/// The latest proxy-wide event in one line: age, kind, namespace, reason.
pub(crate) fn proxy_event(app: &App) -> Option<Cell> {
    let e = app.events.iter().rev().find(|e| is_proxy_wide(e))?;
    let mut text = format!("{} {}", format::ago(app.now_ms, e.timestamp_ms), e.kind);
    if !e.namespace.is_empty() {
        text.push_str(&format!(" {}", e.namespace));
    }
    if !e.reason.is_empty() {
        text.push_str(&format!(": {}", e.reason));
    }
    Some(Cell::new(text, event_tone(&e.kind)))
}

/// The namespace's own events and the proxy-wide ones, newest first.
fn events(app: &App, namespace: &str) -> Vec<EventRow> {
    app.events
        .iter()
        .rev()
        .filter(|e| e.namespace == namespace || e.namespace.is_empty())
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
            _ => panic!("the detail view is open"),
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

    #[test]
    fn a_failed_namespace_shows_no_uptime() {
        // A FAILED namespace being retried has a pid but never served.
        let mut cache = pattern("cache", 300, 1.0);
        cache.state = crate::model::State::Failed;
        cache.uptime_ms = 0;
        let detail = detail_of(cache.clone());
        assert_eq!(
            text(&detail.summary[0]),
            "state FAILED  health HEALTHY  pid 300  restarts 0"
        );
        let row = super::super::row(&cache);
        assert_eq!(row[6].text, "-");
    }

    /// `fleet`, a registry on Redis and NATS, with the totals given.
    fn fleet(totals: [u64; 4]) -> Pattern {
        let mut fleet = crate::update::tests::pattern("fleet", 500, 3.0);
        fleet.pattern = "multicast-registry".to_string();
        fleet.backend = "redis/nats".to_string();
        let [multicasts, delivered, pending, failed] = totals.map(|n| n.to_string());
        fleet.health.details = [
            ("registry.backend", "redis".to_string()),
            ("messaging.backend", "nats".to_string()),
            ("registry.identities", "1200".to_string()),
            ("messaging.receivers", "950".to_string()),
            ("multicasts", multicasts),
            ("delivered", delivered),
            ("pending", pending),
            ("failed", failed),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        fleet
    }

    #[test]
    fn a_registry_shows_its_slots_then_its_multicast_rate_and_recent_split() {
        use crate::event::Event;

        let mut app = crate::app::App::new(options(), 1_000_000);
        update(&mut app, snapshot(vec![fleet([100, 180, 10, 5])]));
        update(&mut app, key(KeyCode::Enter));
        let first = match View::build(&app).body {
            Body::Detail(detail) => *detail,
            _ => panic!("the detail view is open"),
        };
        assert_eq!(
            text(&first.summary[1]),
            "identities 1200  receivers 950  slots redis/nats"
        );
        assert_eq!(text(&first.summary[2]), "multicasts measuring…");

        update(&mut app, Event::Tick { now_ms: 1_010_000 });
        update(&mut app, snapshot(vec![fleet([125, 230, 12, 6])]));
        let second = match View::build(&app).body {
            Body::Detail(detail) => *detail,
            _ => panic!("the detail view is open"),
        };
        assert_eq!(
            text(&second.summary[2]),
            "multicasts 2.5/s  last 10s: delivered 50  pending 2  failed 1"
        );
        let tones: Vec<_> = second.summary[2].iter().map(|c| c.tone).collect();
        assert_eq!(
            tones[tones.len() - 1],
            super::Tone::Bad,
            "failures stand out"
        );

        // A namespace that is gone takes its figures with it.
        update(&mut app, snapshot(vec![pattern("cache", 200, 1.0)]));
        assert!(app.multicasts.is_empty());
    }

    #[test]
    fn other_patterns_have_no_registry_lines() {
        let detail = detail_of(pattern("cache", 200, 1.0));
        assert!(
            detail
                .summary
                .iter()
                .all(|line| !text(line).contains("multicasts")),
            "{:?}",
            detail.summary
        );
    }
}
