//! The messages of the console loop. Every producer — terminal input, the
//! redraw tick, signals and the admin client — sends an [`Event`] into one
//! tokio channel; [`crate::update::update`] turns each into state changes and
//! [`Command`]s, which the admin client executes.
//!
//! The producers that are not the admin client live here too:
//! [`spawn_input`], [`spawn_ticker`] and [`spawn_signals`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ratatui::crossterm::event::{self as term, KeyEvent, KeyEventKind};
use tokio::sync::mpsc;

use crate::model::{Exemplars, Identity, Latency, LogEvent, LogLine, Role, RpcError, Snapshot};

/// Everything that can change what the console shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    Key(KeyEvent),
    Resize {
        width: u16,
        height: u16,
    },
    /// Wall clock, for relative times and the reconnect countdown.
    Tick {
        now_ms: i64,
    },
    Connection(Connection),
    Snapshot(Snapshot),
    /// `ListEvents` answered: the log as the proxy keeps it.
    Log(Vec<LogEvent>),
    /// One event from `WatchEvents`.
    LogEvent(LogEvent),
    /// Neither `WatchEvents` nor `ListEvents` is served by this proxy.
    LogUnavailable,
    /// Lines of a pattern's output from `WatchPatternLogs`.
    PatternLogs {
        namespace: String,
        lines: Vec<LogLine>,
    },
    /// The proxy does not serve pattern logs.
    PatternLogsUnavailable {
        namespace: String,
    },
    Latency {
        namespace: String,
        operation: String,
        result: Result<Latency, RpcError>,
    },
    Action(ActionOutcome),
    /// `GetExemplars` answered for the detail view's namespace.
    Exemplars {
        namespace: String,
        result: Result<Exemplars, RpcError>,
    },
    /// `WhoAmI` answered, after each (re)connection.
    Identity(Identity),
    /// SIGTERM, SIGHUP or SIGINT: leave like `q`.
    Shutdown,
}

/// The admin client's link to the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Connection {
    Connecting,
    Connected(Feed),
    /// Lost or refused; the next attempt is at `retry_at_ms` (wall clock).
    Disconnected {
        error: String,
        retry_at_ms: i64,
    },
}

/// How pattern snapshots arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feed {
    /// `WatchPatterns`: pushed on every change.
    Stream,
    /// `WatchPatterns` is not served: `ListPatterns` once a second.
    Polling,
}

/// What the admin client is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Restart {
        namespace: String,
        old_pid: u32,
    },
    Reload {
        namespace: String,
        old_pid: u32,
    },
    /// `operation` empty: every operation of the namespace together.
    FetchLatency {
        namespace: String,
        operation: String,
    },
    /// Follow one namespace's pattern output (the log view), after line
    /// `since_seq` (0: the recent lines first); replaces any other follow.
    FollowLogs {
        namespace: String,
        since_seq: u64,
    },
    /// The log view closed.
    StopLogs,
    /// The trace exemplars of the detail view's namespace.
    FetchExemplars {
        namespace: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Restart,
    Reload,
}

impl Action {
    /// The admin role the proxy asks of it.
    pub(crate) fn required_role(self) -> Role {
        match self {
            Action::Restart | Action::Reload => Role::Operator,
        }
    }

    /// The key that asks for it.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Action::Restart => "r",
            Action::Reload => "R",
        }
    }
}

/// How a restart or reload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActionOutcome {
    pub action: Action,
    pub namespace: String,
    pub result: Result<Pids, RpcError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pids {
    pub old: u32,
    pub new: u32,
}

/// Milliseconds since the Unix epoch, as the admin API counts time.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Reads terminal input on its own thread (crossterm's `read` blocks) and
/// forwards key presses and resizes. The thread ends when the loop is gone;
/// at exit it may still sit in `read`, which is harmless.
pub(crate) fn spawn_input(events: mpsc::Sender<Event>) {
    std::thread::spawn(move || {
        loop {
            let event = match term::read() {
                Ok(term::Event::Key(key)) if key.kind != KeyEventKind::Release => Event::Key(key),
                Ok(term::Event::Resize(width, height)) => Event::Resize { width, height },
                Ok(_) => continue,
                // The terminal is gone: nothing more will come.
                Err(_) => {
                    let _ = events.blocking_send(Event::Shutdown);
                    return;
                }
            };
            if events.blocking_send(event).is_err() {
                return;
            }
        }
    });
}

/// A tick every `period`, so relative times and countdowns move while
/// nothing else happens. Missed ticks are skipped, never bunched.
pub(crate) fn spawn_ticker(events: mpsc::Sender<Event>, period: Duration) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            if events.send(Event::Tick { now_ms: now_ms() }).await.is_err() {
                return;
            }
        }
    });
}

/// Turns SIGTERM, SIGHUP and SIGINT into [`Event::Shutdown`] so the terminal
/// is restored on the way out.
pub(crate) fn spawn_signals(events: mpsc::Sender<Event>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
            _ = int.recv() => {}
        }
        let _ = events.send(Event::Shutdown).await;
    });
    Ok(())
}
