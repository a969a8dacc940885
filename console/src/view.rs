//! What to draw, derived from [`App`] by one pure function, [`View::build`]:
//! every string is formatted and every colour decided here, so the render
//! functions in [`crate::ui`] only lay out. [`detail`] builds the detail
//! view, [`histogram`] its latency histogram and throughput figures,
//! [`format`] the number formats, [`status`] the status line, [`logs`] the
//! log view, [`exemplars`] the detail view's trace exemplars.

pub(crate) mod detail;
pub(crate) mod exemplars;
pub(crate) mod format;
pub(crate) mod histogram;
pub(crate) mod logs;
pub(crate) mod status;

use crate::{
    app::{App, Column, KEY_BINDINGS, Mode, Screen},
    event::{Action, Connection, Feed},
    model::{HealthStatus, Identity, Pattern, Role, State},
};

pub(crate) use histogram::{HistogramView, ThroughputView};

/// A colour role; [`crate::ui::theme`] maps it to a style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    Normal,
    Dim,
    Good,
    Warn,
    Bad,
    Accent,
    /// Histogram bars that hold no quantile.
    Bar,
}

/// A piece of text with its colour role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cell {
    pub text: String,
    pub tone: Tone,
}

impl Cell {
    pub(crate) fn new(text: impl Into<String>, tone: Tone) -> Self {
        Self {
            text: text.into(),
            tone,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct View {
    pub header: HeaderView,
    pub body: Body,
    pub status: StatusView,
    pub overlay: Option<Overlay>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeaderView {
    /// Where the console is attached, fullest wording first: the renderer
    /// shows the first that fits beside the connection state.
    pub proxy: Vec<String>,
    pub connection: Cell,
    pub totals: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    Table(TableView),
    Detail(Box<DetailView>),
    Logs(logs::LogsView),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TableView {
    pub title: String,
    /// One per [`Column::ALL`], the sort column marked ▲ or ▼.
    pub headers: Vec<String>,
    /// Cells in [`Column::ALL`] order.
    pub rows: Vec<Vec<Cell>>,
    pub selected: Option<usize>,
    /// Shown instead of rows when there are none.
    pub empty: Option<String>,
    /// The latest proxy-wide event (config reload applied or rejected,
    /// namespace added or removed), on the table's bottom border.
    pub proxy_event: Option<Cell>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DetailView {
    pub title: String,
    /// State, health and process figures, a line each.
    pub summary: Vec<Vec<Cell>>,
    /// The health message, then the details map, as label/value pairs.
    pub health: Vec<(String, String)>,
    pub latency: LatencyView,
    pub exemplars: exemplars::ExemplarsView,
    /// Newest first.
    pub events: Vec<EventRow>,
    pub events_note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LatencyView {
    Loading,
    /// Why there is no histogram (e.g. the proxy does not serve `GetLatency`).
    NotAvailable(String),
    Ready {
        histogram: HistogramView,
        throughput: ThroughputView,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventRow {
    pub age: String,
    pub kind: Cell,
    pub pid: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusView {
    /// The outcome of the last action, or the filter being typed.
    pub message: Option<Cell>,
    /// The key hints, every hint first, then with the least useful ones
    /// dropped: the renderer shows the first that fits beside the message.
    pub hints: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Overlay {
    Help(Vec<(String, String)>),
    Confirm { title: String, lines: Vec<String> },
}

impl View {
    pub(crate) fn build(app: &App) -> View {
        View {
            header: header(app),
            body: match &app.screen {
                Screen::Table => Body::Table(table(app)),
                Screen::Detail { namespace } => {
                    Body::Detail(Box::new(detail::detail(app, namespace)))
                }
                Screen::Logs { namespace } => match &app.logs {
                    Some(state) => Body::Logs(logs::logs(app, state)),
                    None => Body::Logs(logs::LogsView {
                        title: format!("logs · {namespace}"),
                        rows: Vec::new(),
                        empty: None,
                    }),
                },
            },
            status: status::status(app),
            overlay: overlay(app),
        }
    }
}

fn header(app: &App) -> HeaderView {
    let admin = format!("admin {}", app.options.admin);
    // The admin address the console is attached to matters most, then the
    // data address clients use; the version and the product name least.
    let proxy = match app.snapshot.as_ref().and_then(|s| s.proxy.as_ref()) {
        Some(p) if !p.version.is_empty() => {
            let data = format!("data {}", p.listen);
            vec![
                format!("prism-proxy {} · {admin} · {data}", p.version),
                format!("proxy {} · {admin} · {data}", p.version),
                format!("{admin} · {data}"),
                admin,
            ]
        }
        _ => vec![format!("prism-proxy · {admin}"), admin],
    };
    let connection = match &app.connection {
        Connection::Connecting => Cell::new("◌ connecting…", Tone::Warn),
        Connection::Connected(Feed::Stream) => Cell::new("● connected", Tone::Good),
        Connection::Connected(Feed::Polling) => Cell::new("● connected (polling)", Tone::Good),
        Connection::Disconnected { retry_at_ms, .. } => {
            let secs = ((retry_at_ms - app.now_ms).max(0) + 999) / 1000;
            Cell::new(
                format!("○ disconnected, reconnecting in {secs}s"),
                Tone::Bad,
            )
        }
    };
    let patterns = app
        .snapshot
        .as_ref()
        .map(|s| s.patterns.as_slice())
        .unwrap_or_default();
    let healthy = patterns
        .iter()
        .filter(|p| p.health.status == HealthStatus::Healthy)
        .count();
    let healthy_tone = if patterns.is_empty() {
        Tone::Dim
    } else if healthy == patterns.len() {
        Tone::Good
    } else {
        Tone::Warn
    };
    let total_rps: f64 = patterns
        .iter()
        .filter_map(|p| p.traffic.map(|t| t.rps))
        .sum();
    let in_flight = app.snapshot.as_ref().map_or(0, |s| s.in_flight);
    let mut totals = vec![
        Cell::new(format!("namespaces {}", patterns.len()), Tone::Normal),
        Cell::new(
            format!("healthy {healthy}/{}", patterns.len()),
            healthy_tone,
        ),
        Cell::new(format!("rps {}", format::rps(total_rps)), Tone::Normal),
        Cell::new(format!("in-flight {in_flight}"), Tone::Normal),
    ];
    totals.extend(app.identity.as_ref().map(identity));
    HeaderView {
        proxy,
        connection,
        totals,
    }
}

/// Who the console acts as: the email (else the principal) and the role.
fn identity(identity: &Identity) -> Cell {
    if !identity.auth_enabled {
        return Cell::new("auth off", Tone::Dim);
    }
    let who = if identity.email.is_empty() {
        identity.principal.as_str()
    } else {
        identity.email.as_str()
    };
    let tone = if identity.role == Role::None {
        Tone::Bad
    } else {
        Tone::Accent
    };
    Cell::new(format!("{who} ({})", identity.role.name()), tone)
}

fn table(app: &App) -> TableView {
    let headers = Column::ALL
        .iter()
        .map(|&c| {
            if c == app.sort.column {
                let arrow = if app.sort.descending { "▼" } else { "▲" };
                format!("{}{arrow}", c.title())
            } else {
                c.title().to_string()
            }
        })
        .collect();
    let rows: Vec<Vec<Cell>> = app.visible().map(row).collect();
    let total = app.snapshot.as_ref().map_or(0, |s| s.patterns.len());
    let mut title = format!("patterns ({}/{total})", rows.len());
    if !app.filter.is_empty() {
        title.push_str(&format!(" · filter \"{}\"", app.filter));
    }
    if app.snapshot.is_some() && !app.is_connected() {
        title.push_str(" · last known");
    }
    let disconnected = match &app.connection {
        Connection::Disconnected { error, .. } => Some(error.as_str()),
        _ => None,
    };
    if let (Some(why), Some(_)) = (disconnected, &app.snapshot) {
        title.push_str(&format!(" · {why}"));
    }
    let empty = if let (Some(why), None) = (disconnected, &app.snapshot) {
        Some(format!("disconnected — {why}"))
    } else if app.snapshot.is_none() {
        Some("waiting for the proxy…".to_string())
    } else if rows.is_empty() && !app.filter.is_empty() {
        Some(format!("no namespace matches \"{}\"", app.filter))
    } else if rows.is_empty() {
        Some("the proxy serves no namespace".to_string())
    } else {
        None
    };
    TableView {
        title,
        headers,
        selected: (!rows.is_empty()).then_some(app.cursor),
        rows,
        empty,
        proxy_event: detail::proxy_event(app),
    }
}

/// One table row, cells in [`Column::ALL`] order.
pub(crate) fn row(p: &Pattern) -> Vec<Cell> {
    let traffic = p.traffic.as_ref();
    let figure = |f: &dyn Fn(&crate::model::Traffic) -> String| {
        traffic.map_or_else(
            || Cell::new("-", Tone::Dim),
            |t| Cell::new(f(t), Tone::Normal),
        )
    };
    let error_rate = match traffic {
        Some(t) if t.error_rate >= 0.05 => Cell::new(format::percent(t.error_rate), Tone::Bad),
        Some(t) if t.error_rate > 0.0 => Cell::new(format::percent(t.error_rate), Tone::Warn),
        Some(t) => Cell::new(format::percent(t.error_rate), Tone::Normal),
        None => Cell::new("-", Tone::Dim),
    };
    // Caller outcomes are no alarm: shown apart, never red.
    let client_error_rate = match traffic {
        Some(t) if t.client_error_rate > 0.0 => {
            Cell::new(format::percent(t.client_error_rate), Tone::Normal)
        }
        Some(t) => Cell::new(format::percent(t.client_error_rate), Tone::Dim),
        None => Cell::new("-", Tone::Dim),
    };
    // A quantile of nothing is no figure.
    let latency = |figure: Option<(u64, u64)>| match figure {
        Some((count, us)) if count > 0 => Cell::new(format::micros(us), Tone::Normal),
        _ => Cell::new("-", Tone::Dim),
    };
    let running = p.pid != 0;
    vec![
        Cell::new(&p.namespace, Tone::Normal),
        Cell::new(&p.pattern, Tone::Normal),
        Cell::new(&p.backend, Tone::Normal),
        Cell::new(p.state.as_str(), state_tone(p.state)),
        Cell::new(p.health.status.as_str(), health_tone(p.health.status)),
        if running {
            Cell::new(p.pid.to_string(), Tone::Normal)
        } else {
            Cell::new("-", Tone::Dim)
        },
        if running && p.state.has_uptime() {
            Cell::new(format::uptime(p.uptime_ms), Tone::Normal)
        } else {
            Cell::new("-", Tone::Dim)
        },
        Cell::new(
            p.restart_count.to_string(),
            if p.restart_count > 0 {
                Tone::Warn
            } else {
                Tone::Normal
            },
        ),
        figure(&|t| format::rps(t.rps)),
        error_rate,
        client_error_rate,
        latency(traffic.map(|t| (t.count, t.p50_us))),
        latency(traffic.map(|t| (t.count, t.p99_us))),
    ]
}

pub(crate) fn state_tone(state: State) -> Tone {
    match state {
        State::Running => Tone::Good,
        State::Starting | State::Restarting | State::Draining => Tone::Warn,
        State::Failed => Tone::Bad,
        State::Stopped | State::Unknown => Tone::Dim,
    }
}

pub(crate) fn health_tone(status: HealthStatus) -> Tone {
    match status {
        HealthStatus::Healthy => Tone::Good,
        HealthStatus::Degraded => Tone::Warn,
        HealthStatus::Unhealthy => Tone::Bad,
        HealthStatus::Unknown => Tone::Dim,
    }
}

/// A key's help, saying which role it needs when the caller lacks it.
fn help_line(app: &App, key: &str, description: &str) -> String {
    let denied = [Action::Restart, Action::Reload].into_iter().find(|a| {
        a.key() == key
            && app
                .identity
                .as_ref()
                .is_some_and(|i| !i.allows(a.required_role()))
    });
    match denied {
        Some(action) => format!(
            "{description} — needs the {} role",
            action.required_role().name()
        ),
        None => description.to_string(),
    }
}

fn overlay(app: &App) -> Option<Overlay> {
    match &app.mode {
        Mode::Help => Some(Overlay::Help(
            KEY_BINDINGS
                .iter()
                .map(|(k, d)| (k.to_string(), help_line(app, k, d)))
                .collect(),
        )),
        Mode::Confirm(c) => {
            let pid = if c.pid == 0 {
                "no process".to_string()
            } else {
                format!("pid {}", c.pid)
            };
            let (title, what) = match c.action {
                Action::Restart => (
                    format!("Restart {}?", c.namespace),
                    "The process is stopped and started again; calls fail UNAVAILABLE meanwhile.",
                ),
                Action::Reload => (
                    format!("Hot-reload {}?", c.namespace),
                    "A new process starts; routing moves once it is HEALTHY.",
                ),
            };
            Some(Overlay::Confirm {
                title,
                lines: vec![
                    format!("{} ({pid})", c.namespace),
                    what.to_string(),
                    String::new(),
                    "y: yes    n: no".to_string(),
                ],
            })
        }
        Mode::Normal | Mode::Filter | Mode::LogSearch => None,
    }
}
