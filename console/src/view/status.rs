//! The status line: the last outcome ([`Status`], recorded as facts by
//! `update`) in words and colour, and the key hints of the current mode.

use super::{Cell, StatusView, Tone};
use crate::{
    app::{App, Mode, Screen, Status},
    event::Action,
};

pub(crate) fn status(app: &App) -> StatusView {
    // Each hint with its rank: 0 always stays, higher ranks go first when
    // the line is short (the help lists every key anyway).
    let hints: &[(&str, u8)] = match (&app.mode, &app.screen) {
        (Mode::Filter, _) => &[("Enter keep", 0), ("Esc clear", 0)],
        (Mode::LogSearch, _) => &[("Enter search", 0), ("Esc clear", 0)],
        (Mode::Confirm(_), _) => &[("y confirm", 0), ("n cancel", 0)],
        (Mode::Help, _) => &[("any key closes the help", 0)],
        (Mode::Normal, Screen::Table) => &[
            ("? help", 0),
            ("/ filter", 2),
            ("s sort", 3),
            ("Enter detail", 1),
            ("q quit", 0),
        ],
        (Mode::Normal, Screen::Detail { .. }) => &[
            ("? help", 0),
            ("Esc back", 1),
            ("y copy trace", 2),
            ("o link", 3),
            ("Tab operation", 4),
            ("q quit", 0),
        ],
        (Mode::Normal, Screen::Logs { .. }) => &[
            ("? help", 0),
            ("Esc back", 1),
            ("f follow", 1),
            ("/ search", 2),
            ("n/N next/prev", 3),
            ("q quit", 0),
        ],
    };
    let hints = shrinking(hints);
    let message = if app.mode == Mode::Filter {
        Some(Cell::new(format!("/{}▏", app.filter), Tone::Accent))
    } else if app.mode == Mode::LogSearch {
        let search = app.logs.as_ref().map_or("", |l| l.search.as_str());
        Some(Cell::new(format!("/{search}▏"), Tone::Accent))
    } else {
        app.status.as_ref().map(message)
    };
    StatusView { message, hints }
}

/// The hints joined, then again each time the highest remaining rank is
/// dropped, down to the rank-0 hints alone.
pub(crate) fn shrinking(hints: &[(&str, u8)]) -> Vec<String> {
    let join = |max_rank: u8| {
        hints
            .iter()
            .filter(|(_, rank)| *rank <= max_rank)
            .map(|(hint, _)| *hint)
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let mut ranks: Vec<u8> = hints.iter().map(|(_, rank)| *rank).collect();
    ranks.sort_unstable_by(|a, b| b.cmp(a));
    ranks.dedup();
    if ranks.last() != Some(&0) {
        ranks.push(0);
    }
    ranks.into_iter().map(join).collect()
}

/// "restart", "hot-reload".
fn verb(action: Action) -> &'static str {
    match action {
        Action::Restart => "restart",
        Action::Reload => "hot-reload",
    }
}

pub(crate) fn message(status: &Status) -> Cell {
    match status {
        Status::Cancelled { action, namespace } => Cell::new(
            format!("{} of {namespace} cancelled", verb(*action)),
            Tone::Normal,
        ),
        Status::ReadOnly(action) => Cell::new(
            format!("read-only: {} is disabled (--readonly)", verb(*action)),
            Tone::Bad,
        ),
        Status::NeedsRole { action, needs, has } => Cell::new(
            format!(
                "{} needs the {} role (you have {})",
                verb(*action),
                needs.name(),
                has.name()
            ),
            Tone::Bad,
        ),
        Status::NothingSelected => Cell::new("no pattern selected", Tone::Bad),
        Status::NotConnected { action, namespace } => Cell::new(
            format!("not connected: cannot {} {namespace}", verb(*action)),
            Tone::Bad,
        ),
        Status::Started {
            action,
            namespace,
            pid,
        } => {
            let doing = match action {
                Action::Restart => "restarting",
                Action::Reload => "hot-reloading",
            };
            Cell::new(format!("{doing} {namespace} (pid {pid})…"), Tone::Warn)
        }
        Status::Done {
            action,
            namespace,
            pids,
        } => {
            let done = match action {
                Action::Restart => "restarted",
                Action::Reload => "hot-reloaded",
            };
            // A namespace with no process (FAILED) was started, not replaced.
            let text = if pids.old == 0 {
                format!("started {namespace}: pid {}", pids.new)
            } else {
                format!("{done} {namespace}: pid {} → {}", pids.old, pids.new)
            };
            Cell::new(text, Tone::Good)
        }
        Status::Failed {
            action,
            namespace,
            error,
        } => Cell::new(
            format!("{} {namespace} failed: {error}", verb(*action)),
            Tone::Bad,
        ),
        Status::Copied { trace_id } => Cell::new(format!("copied trace {trace_id}"), Tone::Good),
        Status::TraceLink { url } => Cell::new(url.as_str(), Tone::Accent),
        Status::NoTraceUrl { trace_id } => Cell::new(
            format!("trace {trace_id} (start with --trace-url for a link)"),
            Tone::Normal,
        ),
        Status::NoExemplar => Cell::new("no trace selected", Tone::Bad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        event::Pids,
        model::{Role, RpcError},
    };

    fn ns() -> String {
        "default".to_string()
    }

    #[test]
    fn hints_shrink_by_rank_and_keep_rank_zero() {
        let table = [
            ("? help", 0),
            ("/ filter", 2),
            ("s sort", 3),
            ("Enter detail", 1),
            ("q quit", 0),
        ];
        assert_eq!(
            shrinking(&table),
            [
                "? help · / filter · s sort · Enter detail · q quit",
                "? help · / filter · Enter detail · q quit",
                "? help · Enter detail · q quit",
                "? help · q quit",
            ]
        );
        assert_eq!(
            shrinking(&[("y confirm", 0), ("n cancel", 0)]),
            ["y confirm · n cancel"]
        );
        // Without a rank-0 hint the last choice is an empty line, not a panic.
        assert_eq!(shrinking(&[("a", 1)]), ["a", ""]);
    }

    #[test]
    fn every_outcome_has_its_words_and_tone() {
        let cases = [
            (
                Status::Cancelled {
                    action: Action::Reload,
                    namespace: ns(),
                },
                "hot-reload of default cancelled",
                Tone::Normal,
            ),
            (
                Status::ReadOnly(Action::Restart),
                "read-only: restart is disabled (--readonly)",
                Tone::Bad,
            ),
            (Status::NothingSelected, "no pattern selected", Tone::Bad),
            (
                Status::NeedsRole {
                    action: Action::Reload,
                    needs: Role::Operator,
                    has: Role::Viewer,
                },
                "hot-reload needs the operator role (you have viewer)",
                Tone::Bad,
            ),
            (
                Status::NotConnected {
                    action: Action::Restart,
                    namespace: ns(),
                },
                "not connected: cannot restart default",
                Tone::Bad,
            ),
            (
                Status::Started {
                    action: Action::Restart,
                    namespace: ns(),
                    pid: 100,
                },
                "restarting default (pid 100)…",
                Tone::Warn,
            ),
            (
                Status::Started {
                    action: Action::Reload,
                    namespace: ns(),
                    pid: 100,
                },
                "hot-reloading default (pid 100)…",
                Tone::Warn,
            ),
            (
                Status::Done {
                    action: Action::Restart,
                    namespace: ns(),
                    pids: Pids { old: 100, new: 101 },
                },
                "restarted default: pid 100 → 101",
                Tone::Good,
            ),
            (
                Status::Done {
                    action: Action::Restart,
                    namespace: ns(),
                    pids: Pids { old: 0, new: 101 },
                },
                "started default: pid 101",
                Tone::Good,
            ),
            (
                Status::Done {
                    action: Action::Reload,
                    namespace: ns(),
                    pids: Pids { old: 100, new: 101 },
                },
                "hot-reloaded default: pid 100 → 101",
                Tone::Good,
            ),
            (
                Status::Failed {
                    action: Action::Reload,
                    namespace: ns(),
                    error: RpcError::Failed("Unavailable: new process never HEALTHY".into()),
                },
                "hot-reload default failed: Unavailable: new process never HEALTHY",
                Tone::Bad,
            ),
        ];
        for (status, text, tone) in cases {
            assert_eq!(message(&status), Cell::new(text, tone), "{status:?}");
        }
    }
}
