//! `update(app, event) -> commands`: every state transition of the console,
//! pure (no I/O, no clock), so each is a plain test. Filtering, sorting and
//! the selection are settled here, not in the draw code. The log view's
//! transitions are in [`logs`].

pub(crate) mod logs;

mod exemplars;

use std::cmp::Ordering;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::{
    app::{
        App, Column, Confirm, EVENT_LOG_CAPACITY, LatencyData, LatencyState, Mode, Screen, Status,
    },
    event::{Action, ActionOutcome, Command, Connection, Event},
    model::{LogEvent, Pattern, RpcError, Snapshot, Traffic},
    multicast::Totals,
};

/// Applies one event; returns what the admin client should do.
pub(crate) fn update(app: &mut App, event: Event) -> Vec<Command> {
    let commands = match event {
        Event::Key(key) => on_key(app, key),
        Event::Resize { width, height } => {
            app.size = (width, height);
            Vec::new()
        }
        Event::Tick { now_ms } => {
            app.now_ms = now_ms;
            Vec::new()
        }
        Event::Connection(connection) => on_connection(app, connection),
        Event::Snapshot(snapshot) => on_snapshot(app, snapshot),
        Event::Log(events) => {
            merge_event_log(app, events);
            Vec::new()
        }
        Event::LogEvent(event) => {
            app.events_available = Some(true);
            push_event(app, event);
            Vec::new()
        }
        Event::LogUnavailable => {
            app.events_available = Some(false);
            Vec::new()
        }
        Event::PatternLogs { namespace, lines } => {
            logs::on_lines(app, &namespace, lines);
            Vec::new()
        }
        Event::PatternLogsUnavailable { namespace } => {
            logs::on_unavailable(app, &namespace);
            Vec::new()
        }
        Event::Latency {
            namespace,
            operation,
            result,
        } => {
            on_latency(app, &namespace, &operation, result);
            Vec::new()
        }
        Event::Action(outcome) => {
            on_action(app, outcome);
            Vec::new()
        }
        Event::Exemplars { namespace, result } => {
            exemplars::on_answer(app, &namespace, result);
            Vec::new()
        }
        Event::Identity(identity) => {
            app.identity = Some(identity);
            Vec::new()
        }
        Event::Shutdown => {
            app.should_quit = true;
            Vec::new()
        }
    };
    refresh_rows(app);
    commands
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        app.should_quit = true;
        return Vec::new();
    }
    match app.mode.clone() {
        Mode::Help => {
            // Any key closes the help.
            app.mode = Mode::Normal;
            Vec::new()
        }
        Mode::Confirm(confirm) => on_confirm_key(app, confirm, key),
        Mode::Filter => {
            on_filter_key(app, key);
            Vec::new()
        }
        Mode::LogSearch => {
            logs::on_search_key(app, key);
            Vec::new()
        }
        Mode::Normal => on_normal_key(app, key),
    }
}

fn on_normal_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    let in_detail = matches!(app.screen, Screen::Detail { .. });
    match key.code {
        KeyCode::Char('q') => app.should_quit = true,
        KeyCode::Char('?') => app.mode = Mode::Help,
        KeyCode::Char('r') => return request(app, Action::Restart),
        KeyCode::Char('R') => return request(app, Action::Reload),
        _ if matches!(app.screen, Screen::Logs { .. }) => return logs::on_key(app, key),
        KeyCode::Char('l') => return logs::open(app),
        KeyCode::Esc | KeyCode::Backspace | KeyCode::Left if in_detail => {
            app.screen = Screen::Table;
            app.latency = None;
            app.exemplars = None;
        }
        KeyCode::Tab if in_detail => return next_operation(app),
        KeyCode::Char('j') | KeyCode::Down if in_detail => exemplars::move_selection(app, 1),
        KeyCode::Char('k') | KeyCode::Up if in_detail => exemplars::move_selection(app, -1),
        KeyCode::Char('y') if in_detail => exemplars::copy(app),
        KeyCode::Char('o') if in_detail => exemplars::link(app),
        _ if in_detail => {}
        KeyCode::Char('j') | KeyCode::Down => move_cursor(app, 1),
        KeyCode::Char('k') | KeyCode::Up => move_cursor(app, -1),
        KeyCode::PageDown => move_cursor(app, page(app)),
        KeyCode::PageUp => move_cursor(app, -page(app)),
        KeyCode::Char('g') | KeyCode::Home => move_cursor(app, isize::MIN),
        KeyCode::Char('G') | KeyCode::End => move_cursor(app, isize::MAX),
        KeyCode::Char('/') => app.mode = Mode::Filter,
        KeyCode::Esc => app.filter.clear(),
        KeyCode::Char('s') => app.sort.column = app.sort.column.next(),
        KeyCode::Char('S') => app.sort.descending = !app.sort.descending,
        KeyCode::Enter => return open_detail(app),
        _ => {}
    }
    Vec::new()
}

/// Table rows on one screen: the terminal less header, status line, borders
/// and column titles.
fn page(app: &App) -> isize {
    (app.size.1 as isize - 6).max(1)
}

fn on_filter_key(app: &mut App, key: KeyEvent) {
    match key.code {
        KeyCode::Enter => app.mode = Mode::Normal,
        KeyCode::Esc => {
            app.filter.clear();
            app.mode = Mode::Normal;
        }
        KeyCode::Backspace => {
            app.filter.pop();
        }
        KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => app.filter.clear(),
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => app.filter.push(c),
        _ => {}
    }
    // Typing moves the selection to the best match, like k9s.
    app.cursor = 0;
    app.selected = None;
}

fn on_confirm_key(app: &mut App, confirm: Confirm, key: KeyEvent) -> Vec<Command> {
    match key.code {
        KeyCode::Char('y') | KeyCode::Char('Y') => {
            app.mode = Mode::Normal;
            start(app, confirm)
        }
        KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
            app.mode = Mode::Normal;
            set_status(
                app,
                Status::Cancelled {
                    action: confirm.action,
                    namespace: confirm.namespace,
                },
            );
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// `r` / `R`: refuse, ask, or go.
fn request(app: &mut App, action: Action) -> Vec<Command> {
    if app.options.readonly {
        set_status(app, Status::ReadOnly(action));
        return Vec::new();
    }
    let needs = action.required_role();
    if let Some(identity) = app.identity.as_ref().filter(|i| !i.allows(needs)) {
        let has = identity.role;
        set_status(app, Status::NeedsRole { action, needs, has });
        return Vec::new();
    }
    let Some(target) = app.target() else {
        set_status(app, Status::NothingSelected);
        return Vec::new();
    };
    let confirm = Confirm {
        action,
        namespace: target.namespace.clone(),
        pid: target.pid,
    };
    if !app.is_connected() {
        set_status(
            app,
            Status::NotConnected {
                action,
                namespace: confirm.namespace,
            },
        );
        return Vec::new();
    }
    if app.options.confirm {
        app.mode = Mode::Confirm(confirm);
        Vec::new()
    } else {
        start(app, confirm)
    }
}

fn start(app: &mut App, confirm: Confirm) -> Vec<Command> {
    let Confirm {
        action,
        namespace,
        pid,
    } = confirm;
    set_status(
        app,
        Status::Started {
            action,
            namespace: namespace.clone(),
            pid,
        },
    );
    let command = match action {
        Action::Restart => Command::Restart {
            namespace,
            old_pid: pid,
        },
        Action::Reload => Command::Reload {
            namespace,
            old_pid: pid,
        },
    };
    vec![command]
}

fn on_action(app: &mut App, outcome: ActionOutcome) {
    let ActionOutcome {
        action,
        namespace,
        result,
    } = outcome;
    let status = match result {
        Ok(pids) => Status::Done {
            action,
            namespace,
            pids,
        },
        Err(error) => Status::Failed {
            action,
            namespace,
            error,
        },
    };
    set_status(app, status);
}

fn set_status(app: &mut App, status: Status) {
    app.status = Some(status);
}

fn open_detail(app: &mut App) -> Vec<Command> {
    let Some(namespace) = app.selected.clone() else {
        return Vec::new();
    };
    app.screen = Screen::Detail {
        namespace: namespace.clone(),
    };
    exemplars::open(app, &namespace);
    app.latency = Some(LatencyState {
        namespace,
        operation: String::new(),
        data: LatencyData::Loading,
        in_flight: false,
    });
    let mut commands = fetch_latency(app);
    commands.extend(exemplars::fetch(app));
    commands
}

/// `Tab`: every operation together, then each operation the proxy has seen.
fn next_operation(app: &mut App) -> Vec<Command> {
    let Some(latency) = app.latency.as_mut() else {
        return Vec::new();
    };
    let LatencyData::Ready(data) = &latency.data else {
        return Vec::new();
    };
    let mut choices = vec![String::new()];
    choices.extend(data.operations.iter().cloned());
    let current = choices
        .iter()
        .position(|op| *op == latency.operation)
        .unwrap_or(0);
    latency.operation = choices[(current + 1) % choices.len()].clone();
    latency.in_flight = false;
    fetch_latency(app)
}

/// Asks for the detail view's histogram unless a request is out or the
/// proxy said it does not serve `GetLatency`.
fn fetch_latency(app: &mut App) -> Vec<Command> {
    if !app.is_connected() {
        return Vec::new();
    }
    let Some(latency) = app.latency.as_mut() else {
        return Vec::new();
    };
    if latency.in_flight || latency.data == LatencyData::Failed(RpcError::Unimplemented) {
        return Vec::new();
    }
    latency.in_flight = true;
    vec![Command::FetchLatency {
        namespace: latency.namespace.clone(),
        operation: latency.operation.clone(),
    }]
}

fn on_latency(
    app: &mut App,
    namespace: &str,
    operation: &str,
    result: Result<crate::model::Latency, RpcError>,
) {
    let Some(latency) = app.latency.as_mut() else {
        return;
    };
    if latency.namespace != namespace || latency.operation != operation {
        // An answer for a view the operator has already left.
        return;
    }
    latency.in_flight = false;
    latency.data = match result {
        Ok(data) => LatencyData::Ready(data),
        Err(error) => LatencyData::Failed(error),
    };
}

fn on_connection(app: &mut App, connection: Connection) -> Vec<Command> {
    let was_connected = app.is_connected();
    app.connection = connection;
    if let Some(latency) = app.latency.as_mut() {
        // Whatever was out died with the old connection; a new proxy may
        // serve what the old one did not.
        latency.in_flight = false;
        if latency.data == LatencyData::Failed(RpcError::Unimplemented) {
            latency.data = LatencyData::Loading;
        }
    }
    exemplars::on_reconnect(app);
    if app.is_connected() && !was_connected {
        app.events_available = None;
        let mut commands = fetch_latency(app);
        commands.extend(logs::follow(app));
        commands.extend(exemplars::fetch(app));
        return commands;
    }
    Vec::new()
}

fn on_snapshot(app: &mut App, snapshot: Snapshot) -> Vec<Command> {
    track_multicasts(app, &snapshot);
    app.snapshot = Some(snapshot);
    // Snapshots arrive about once a second: refresh the histogram and the
    // exemplars with them.
    let mut commands = fetch_latency(app);
    commands.extend(exemplars::fetch(app));
    commands
}

/// Adds each registry namespace's totals to its trend, at the last tick's
/// time; forgets namespaces that are gone or no longer count multicasts.
fn track_multicasts(app: &mut App, snapshot: &Snapshot) {
    let mut seen = Vec::new();
    for p in &snapshot.patterns {
        if let Some(totals) = Totals::from_details(&p.health.details) {
            app.multicasts
                .entry(p.namespace.clone())
                .or_default()
                .observe(app.now_ms, p.pid, totals);
            seen.push(p.namespace.as_str());
        }
    }
    app.multicasts
        .retain(|namespace, _| seen.contains(&namespace.as_str()));
}

/// `ListEvents` is the proxy's view of the past; keep what `WatchEvents`
/// delivered meanwhile that the list does not have yet.
fn merge_event_log(app: &mut App, events: Vec<LogEvent>) {
    app.events_available = Some(true);
    let streamed = std::mem::replace(&mut app.events, events);
    for event in streamed {
        if !app.events.contains(&event) {
            app.events.push(event);
        }
    }
    app.events.sort_by_key(|e| e.timestamp_ms);
    trim_events(app);
}

fn push_event(app: &mut App, event: LogEvent) {
    app.events.push(event);
    trim_events(app);
}

fn trim_events(app: &mut App) {
    let excess = app.events.len().saturating_sub(EVENT_LOG_CAPACITY);
    app.events.drain(..excess);
}

fn move_cursor(app: &mut App, delta: isize) {
    let Some(last) = app.rows.len().checked_sub(1) else {
        return;
    };
    app.cursor = (app.cursor as isize)
        .saturating_add(delta)
        .clamp(0, last as isize) as usize;
    let selected = app.visible().nth(app.cursor).map(|p| p.namespace.clone());
    app.selected = selected;
}

/// Recomputes the visible rows (filter, then sort) and keeps the selection
/// on the same namespace when it is still visible.
fn refresh_rows(app: &mut App) {
    let Some(snapshot) = app.snapshot.as_ref() else {
        app.rows.clear();
        return;
    };
    let filter = app.filter.to_lowercase();
    let mut rows: Vec<usize> = snapshot
        .patterns
        .iter()
        .enumerate()
        .filter(|(_, p)| p.namespace.to_lowercase().contains(&filter))
        .map(|(i, _)| i)
        .collect();
    let sort = app.sort;
    rows.sort_by(|&a, &b| {
        let (a, b) = (&snapshot.patterns[a], &snapshot.patterns[b]);
        let order = compare(sort.column, a, b).then_with(|| a.namespace.cmp(&b.namespace));
        if sort.descending {
            order.reverse()
        } else {
            order
        }
    });
    let position = app.selected.as_ref().and_then(|selected| {
        rows.iter()
            .position(|&i| snapshot.patterns[i].namespace == *selected)
    });
    app.cursor = position.unwrap_or(app.cursor.min(rows.len().saturating_sub(1)));
    app.selected = rows
        .get(app.cursor)
        .map(|&i| snapshot.patterns[i].namespace.clone());
    app.rows = rows;
}

fn compare(column: Column, a: &Pattern, b: &Pattern) -> Ordering {
    // Rows without traffic figures sort below any figure.
    let figure = |p: &Pattern, f: fn(&Traffic) -> f64| p.traffic.as_ref().map_or(f64::MIN, f);
    let by = |f: fn(&Traffic) -> f64| figure(a, f).total_cmp(&figure(b, f));
    match column {
        Column::Namespace => a.namespace.cmp(&b.namespace),
        Column::Pattern => a.pattern.cmp(&b.pattern),
        Column::Backend => a.backend.cmp(&b.backend),
        Column::State => a.state.cmp(&b.state),
        Column::Health => a.health.status.cmp(&b.health.status),
        Column::Pid => a.pid.cmp(&b.pid),
        Column::Uptime => a.uptime_ms.cmp(&b.uptime_ms),
        Column::Restarts => a.restart_count.cmp(&b.restart_count),
        Column::Rps => by(|t| t.rps),
        Column::ErrorRate => by(|t| t.error_rate),
        Column::ClientErrorRate => by(|t| t.client_error_rate),
        Column::P50 => by(|t| t.p50_us as f64),
        Column::P99 => by(|t| t.p99_us as f64),
    }
}

#[cfg(test)]
pub(crate) mod tests;
