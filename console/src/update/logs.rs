//! The log view's transitions: open it on a namespace (`l`), take the lines
//! the admin client streams (deduplicated by `seq`, oldest dropped past
//! [`LOG_VIEW_CAPACITY`]), follow or scroll, and search — matches are
//! highlighted and `n`/`N` move to the next/previous matching line (the
//! search does not filter: the lines around a match stay visible).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::{
    app::{App, LOG_VIEW_CAPACITY, LogsState, Mode, Screen},
    event::Command,
    model::LogLine,
};

/// Log lines on one screen: the terminal less header, status line and the
/// box's borders.
pub(crate) fn page(app: &App) -> usize {
    usize::from(app.size.1).saturating_sub(5).max(1)
}

/// `l`: the log view of the detail view's namespace or the selected row.
pub(super) fn open(app: &mut App) -> Vec<Command> {
    let namespace = match &app.screen {
        Screen::Detail { namespace } => namespace.clone(),
        Screen::Table => match &app.selected {
            Some(namespace) => namespace.clone(),
            None => return Vec::new(),
        },
        Screen::Logs { .. } => return Vec::new(),
    };
    let back = std::mem::replace(
        &mut app.screen,
        Screen::Logs {
            namespace: namespace.clone(),
        },
    );
    app.logs = Some(LogsState::new(namespace, back));
    follow(app)
}

/// The watch to (re)start for the open log view, after its last line.
pub(super) fn follow(app: &App) -> Vec<Command> {
    match &app.logs {
        Some(logs) if app.is_connected() && logs.available != Some(false) => {
            vec![Command::FollowLogs {
                namespace: logs.namespace.clone(),
                since_seq: logs.last_seq,
            }]
        }
        _ => Vec::new(),
    }
}

/// A key in the log view (normal mode).
pub(super) fn on_key(app: &mut App, key: KeyEvent) -> Vec<Command> {
    let page = page(app);
    let Some(logs) = app.logs.as_mut() else {
        return Vec::new();
    };
    match key.code {
        KeyCode::Esc | KeyCode::Backspace | KeyCode::Left => {
            app.screen = *logs.back.clone();
            app.logs = None;
            return vec![Command::StopLogs];
        }
        KeyCode::Char('f') => {
            if logs.follow {
                pause(logs, page);
            } else {
                logs.follow = true;
            }
        }
        KeyCode::Char('j') | KeyCode::Down => scroll(logs, page, 1),
        KeyCode::Char('k') | KeyCode::Up => scroll(logs, page, -1),
        KeyCode::PageDown => scroll(logs, page, page as isize),
        KeyCode::PageUp => scroll(logs, page, -(page as isize)),
        KeyCode::Char('g') | KeyCode::Home => {
            logs.follow = false;
            logs.top = 0;
        }
        KeyCode::Char('G') | KeyCode::End => logs.follow = true,
        KeyCode::Char('/') => {
            logs.search.clear();
            logs.current = None;
            app.mode = Mode::LogSearch;
        }
        KeyCode::Char('n') => jump(logs, page, true),
        KeyCode::Char('N') => jump(logs, page, false),
        _ => {}
    }
    Vec::new()
}

/// A key while typing the search.
pub(super) fn on_search_key(app: &mut App, key: KeyEvent) {
    let page = page(app);
    let Some(logs) = app.logs.as_mut() else {
        app.mode = Mode::Normal;
        return;
    };
    match key.code {
        KeyCode::Enter => {
            app.mode = Mode::Normal;
            // From the bottom of what is shown, back to the nearest match.
            jump(logs, page, false);
        }
        KeyCode::Esc => {
            logs.search.clear();
            logs.current = None;
            app.mode = Mode::Normal;
        }
        KeyCode::Backspace => {
            logs.search.pop();
        }
        KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => logs.search.clear(),
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => logs.search.push(c),
        _ => {}
    }
}

/// Lines from the watch of `namespace`.
pub(super) fn on_lines(app: &mut App, namespace: &str, lines: Vec<LogLine>) {
    let Some(logs) = app.logs.as_mut().filter(|l| l.namespace == namespace) else {
        // Lines for a view already closed.
        return;
    };
    logs.available = Some(true);
    for line in lines {
        // A resumed watch may repeat what arrived before the reconnect.
        if line.seq <= logs.last_seq {
            continue;
        }
        logs.last_seq = line.seq;
        logs.lines.push_back(line);
    }
    let excess = logs.lines.len().saturating_sub(LOG_VIEW_CAPACITY);
    if excess > 0 {
        logs.lines.drain(..excess);
        logs.top = logs.top.saturating_sub(excess);
        logs.current = logs.current.and_then(|c| c.checked_sub(excess));
    }
}

pub(super) fn on_unavailable(app: &mut App, namespace: &str) {
    if let Some(logs) = app.logs.as_mut().filter(|l| l.namespace == namespace) {
        logs.available = Some(false);
    }
}

/// The first line shown when following.
fn bottom(logs: &LogsState, page: usize) -> usize {
    logs.lines.len().saturating_sub(page)
}

/// Stops following, keeping the same lines on screen.
fn pause(logs: &mut LogsState, page: usize) {
    if logs.follow {
        logs.follow = false;
        logs.top = bottom(logs, page);
    }
}

fn scroll(logs: &mut LogsState, page: usize, delta: isize) {
    pause(logs, page);
    let top = (logs.top as isize).saturating_add(delta);
    logs.top = top.clamp(0, bottom(logs, page) as isize) as usize;
    // Scrolling down to the end follows again, like `tail -f` in a pager.
    if delta > 0 && logs.top == bottom(logs, page) {
        logs.follow = true;
    }
}

/// `n` (forward) / `N` (backward): the next matching line from the current
/// match, or from the lines on screen, wrapping around; shown mid-screen.
fn jump(logs: &mut LogsState, page: usize, forward: bool) {
    if logs.search.is_empty() || logs.lines.is_empty() {
        return;
    }
    let len = logs.lines.len();
    let shown_top = if logs.follow {
        bottom(logs, page)
    } else {
        logs.top
    };
    let from = logs.current.unwrap_or(if forward {
        shown_top.wrapping_sub(1)
    } else {
        (shown_top + page).min(len)
    });
    let found = (1..=len)
        .map(|step| {
            if forward {
                (from.wrapping_add(step)) % len
            } else {
                (from + len * 2 - step) % len
            }
        })
        .find(|&i| logs.matches(&logs.lines[i].text));
    if let Some(i) = found {
        logs.current = Some(i);
        logs.follow = false;
        logs.top = i.saturating_sub(page / 2).min(bottom(logs, page));
    }
}

#[cfg(test)]
pub(crate) mod tests;
