//! The log view in words: which lines are on screen (following: the newest;
//! else from the scroll position), each with its time, pid and stream, the
//! text split into plain and matching pieces for the highlight, and a title
//! that says whether the view follows and what the search found.

use super::{Cell, Tone};
use crate::{
    app::{App, LogsState, Mode},
    model::LogLine,
    update::logs::page,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogsView {
    pub title: String,
    pub rows: Vec<LogRow>,
    /// Shown instead of rows when there are none.
    pub empty: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogRow {
    /// `HH:MM:SS.mmm` (UTC), the pid, and the stream when it is stdout.
    pub prefix: Cell,
    /// The text, matches of the search apart (tone `Accent`).
    pub text: Vec<Cell>,
    /// The line `n`/`N` moved to.
    pub current: bool,
}

pub(crate) fn logs(app: &App, logs: &LogsState) -> LogsView {
    let page = page(app);
    let len = logs.lines.len();
    let top = if logs.follow {
        len.saturating_sub(page)
    } else {
        logs.top.min(len.saturating_sub(page))
    };
    let rows = logs
        .lines
        .iter()
        .enumerate()
        .skip(top)
        .take(page)
        .map(|(i, line)| row(logs, line, logs.current == Some(i)))
        .collect();
    let mut title = format!("logs · {}", logs.namespace);
    title.push_str(if logs.follow {
        " · following"
    } else {
        " · paused (f follows)"
    });
    if !logs.search.is_empty() && app.mode != Mode::LogSearch {
        let hits = logs.lines.iter().filter(|l| logs.matches(&l.text)).count();
        title.push_str(&format!(" · \"{}\" {hits} lines", logs.search));
    }
    if len > 0 && !logs.follow {
        let last = (top + page).min(len);
        title.push_str(&format!(" · {}-{last}/{len}", top + 1));
    }
    let empty = match logs.available {
        Some(false) => Some("this proxy does not serve pattern logs".to_string()),
        _ if len > 0 => None,
        None if !app.is_connected() => Some("not connected to the proxy".to_string()),
        None => Some("waiting for lines…".to_string()),
        Some(true) => Some("no lines yet".to_string()),
    };
    LogsView { title, rows, empty }
}

fn row(logs: &LogsState, line: &LogLine, current: bool) -> LogRow {
    let mut prefix = format!("{} {:>7}", clock(line.timestamp_ms), line.pid);
    if !line.stderr {
        prefix.push_str(" out");
    }
    let mut text = highlight(&line.text, &logs.search);
    if line.truncated {
        text.push(Cell::new(" …(cut)", Tone::Dim));
    }
    LogRow {
        prefix: Cell::new(prefix, if current { Tone::Warn } else { Tone::Dim }),
        text,
        current,
    }
}

/// `text` in pieces: what matches `search` (ignoring case) as `Accent`.
fn highlight(text: &str, search: &str) -> Vec<Cell> {
    let lower = text.to_lowercase();
    let needle = search.to_lowercase();
    // Lower-casing can change byte lengths; highlight only where it did not.
    if needle.is_empty() || lower.len() != text.len() {
        return vec![Cell::new(text, Tone::Normal)];
    }
    let mut cells = Vec::new();
    let mut at = 0;
    while let Some(found) = lower[at..].find(&needle) {
        let start = at + found;
        let end = start + needle.len();
        if start > at {
            cells.push(Cell::new(&text[at..start], Tone::Normal));
        }
        cells.push(Cell::new(&text[start..end], Tone::Accent));
        at = end;
    }
    if at < text.len() || cells.is_empty() {
        cells.push(Cell::new(&text[at..], Tone::Normal));
    }
    cells
}

/// `HH:MM:SS.mmm` of a Unix time in milliseconds, UTC.
fn clock(ms: i64) -> String {
    let ms = ms.rem_euclid(86_400_000);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_are_highlighted_ignoring_case() {
        assert_eq!(
            highlight("GET key, get again", "get"),
            vec![
                Cell::new("GET", Tone::Accent),
                Cell::new(" key, ", Tone::Normal),
                Cell::new("get", Tone::Accent),
                Cell::new(" again", Tone::Normal),
            ]
        );
        assert_eq!(
            highlight("plain", ""),
            vec![Cell::new("plain", Tone::Normal)]
        );
        assert_eq!(highlight("", "x"), vec![Cell::new("", Tone::Normal)]);
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(1_796_004_904_123), "02:15:04.123");
        assert_eq!(clock(0), "00:00:00.000");
    }
}
