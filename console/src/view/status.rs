//! The status line: the last outcome ([`Status`], recorded as facts by
//! `update`) in words and colour, and the key hints of the current mode.

use super::{Cell, StatusView, Tone};
use crate::{
    app::{App, Mode, Screen, Status},
    event::Action,
};

pub(crate) fn status(app: &App) -> StatusView {
    let hints = match (&app.mode, &app.screen) {
        (Mode::Filter, _) => "Enter keep · Esc clear",
        (Mode::Confirm(_), _) => "y confirm · n cancel",
        (Mode::Help, _) => "any key closes the help",
        (Mode::Normal, Screen::Table) => "? help · / filter · s sort · Enter detail · q quit",
        (Mode::Normal, Screen::Detail { .. }) => "? help · Esc back · o operation · q quit",
    }
    .to_string();
    let message = if app.mode == Mode::Filter {
        Some(Cell::new(format!("/{}▏", app.filter), Tone::Accent))
    } else {
        app.status.as_ref().map(message)
    };
    StatusView { message, hints }
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
            Cell::new(
                format!("{done} {namespace}: pid {} → {}", pids.old, pids.new),
                Tone::Good,
            )
        }
        Status::Failed {
            action,
            namespace,
            error,
        } => Cell::new(
            format!("{} {namespace} failed: {error}", verb(*action)),
            Tone::Bad,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{event::Pids, model::RpcError};

    fn ns() -> String {
        "default".to_string()
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
