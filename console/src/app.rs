//! The console's state, and nothing else: no I/O, no drawing. It changes only
//! in [`crate::update::update`]; [`crate::view`] derives what to draw from it.

use std::collections::BTreeMap;

use crate::{
    event::{Action, Connection, Pids},
    model::{Exemplars, Identity, Latency, LogEvent, LogLine, Pattern, Role, RpcError, Snapshot},
    multicast::Trend,
};

/// Events kept for the detail view, like the proxy's own log.
pub(crate) const EVENT_LOG_CAPACITY: usize = 1000;

/// Pattern log lines kept by the log view (the oldest go first).
pub(crate) const LOG_VIEW_CAPACITY: usize = 2000;

/// Every key binding, in the order the help overlay and the README list them.
pub(crate) const KEY_BINDINGS: &[(&str, &str)] = &[
    ("?", "show or hide this help"),
    ("q, Ctrl-C", "quit"),
    (
        "j / k, ↓ / ↑",
        "move down / up (detail view: the trace selection)",
    ),
    ("g / G, Home / End", "first / last row"),
    ("PgDn / PgUp", "a page down / up"),
    ("/", "filter by namespace (Enter keeps it, Esc clears it)"),
    ("Esc", "clear the filter (table)"),
    ("s", "sort by the next column"),
    ("S", "reverse the sort order"),
    ("Enter", "detail view of the selected pattern"),
    ("Esc, ←, Backspace", "back to the table (detail view)"),
    (
        "Tab",
        "next operation in the latency histogram (detail view)",
    ),
    ("y / o", "copy trace id / print trace link (detail view)"),
    ("l", "log view: the pattern's output"),
    (
        "f, /, n/N",
        "log view: follow on/off, search, next/previous match",
    ),
    ("r", "restart the pattern process (asks y/n)"),
    ("R", "hot-reload the pattern process (asks y/n)"),
    ("y / n, Esc", "confirm / cancel the dialog"),
];

/// How the console was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The proxy's admin address as given on the command line.
    pub admin: String,
    /// Restart and reload are refused.
    pub readonly: bool,
    /// Restart and reload ask y/n first.
    pub confirm: bool,
    /// `https://…/{trace_id}`: where `o` points for the selected exemplar.
    pub trace_url: Option<String>,
}

/// A table column; also what the table can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Namespace,
    Pattern,
    Backend,
    State,
    Health,
    Pid,
    Uptime,
    Restarts,
    Rps,
    ErrorRate,
    /// Caller outcomes (NOT_FOUND, INVALID_ARGUMENT, …), apart from ERR%.
    ClientErrorRate,
    P50,
    P99,
}

impl Column {
    pub(crate) const ALL: [Column; 13] = [
        Column::Namespace,
        Column::Pattern,
        Column::Backend,
        Column::State,
        Column::Health,
        Column::Pid,
        Column::Uptime,
        Column::Restarts,
        Column::Rps,
        Column::ErrorRate,
        Column::ClientErrorRate,
        Column::P50,
        Column::P99,
    ];

    pub(crate) fn title(self) -> &'static str {
        match self {
            Column::Namespace => "NAMESPACE",
            Column::Pattern => "PATTERN",
            Column::Backend => "BACKEND",
            Column::State => "STATE",
            Column::Health => "HEALTH",
            Column::Pid => "PID",
            Column::Uptime => "UPTIME",
            Column::Restarts => "RESTARTS",
            Column::Rps => "RPS",
            Column::ErrorRate => "ERR%",
            Column::ClientErrorRate => "CLI%",
            Column::P50 => "P50",
            Column::P99 => "P99",
        }
    }

    pub(crate) fn index(self) -> usize {
        Column::ALL.iter().position(|c| *c == self).unwrap_or(0)
    }

    /// The column after this one, wrapping around (the `s` key).
    pub(crate) fn next(self) -> Column {
        Column::ALL[(self.index() + 1) % Column::ALL.len()]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sort {
    pub column: Column,
    pub descending: bool,
}

/// Which screen fills the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Screen {
    Table,
    Detail {
        namespace: String,
    },
    /// One namespace's pattern output.
    Logs {
        namespace: String,
    },
}

/// Who gets the next key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    Normal,
    /// Typing into the filter.
    Filter,
    Help,
    Confirm(Confirm),
    /// Typing the log view's search.
    LogSearch,
}

/// A restart or reload waiting for y/n.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Confirm {
    pub action: Action,
    pub namespace: String,
    pub pid: u32,
}

/// The status line: the outcome of the last thing the operator did, as
/// facts; [`crate::view`] words and colours it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// The confirm dialog was answered no.
    Cancelled {
        action: Action,
        namespace: String,
    },
    /// `--readonly` forbids the action.
    ReadOnly(Action),
    /// The caller's admin role is below what the action needs.
    NeedsRole {
        action: Action,
        needs: Role,
        has: Role,
    },
    NothingSelected,
    /// The action needs the proxy, which is not connected.
    NotConnected {
        action: Action,
        namespace: String,
    },
    /// The request is out.
    Started {
        action: Action,
        namespace: String,
        pid: u32,
    },
    Done {
        action: Action,
        namespace: String,
        pids: Pids,
    },
    Failed {
        action: Action,
        namespace: String,
        error: RpcError,
    },
    /// `y`: the trace id went to the clipboard.
    Copied {
        trace_id: String,
    },
    /// `o`: the selected trace's link.
    TraceLink {
        url: String,
    },
    /// `o` without `--trace-url`.
    NoTraceUrl {
        trace_id: String,
    },
    /// `y` or `o` with no exemplar selected.
    NoExemplar,
}

/// The trace exemplars of the detail view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExemplarState {
    pub namespace: String,
    /// `None` until the first answer.
    pub data: Option<Result<Exemplars, RpcError>>,
    /// A `GetExemplars` call is out; no second one is sent meanwhile.
    pub in_flight: bool,
    /// Index into the list; kept on the same trace id when the list changes.
    pub cursor: usize,
    pub selected: Option<String>,
}

/// The latency histogram of the detail view.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LatencyState {
    pub namespace: String,
    /// Empty: every operation together.
    pub operation: String,
    pub data: LatencyData,
    /// A `GetLatency` call is out; no second one is sent meanwhile.
    pub in_flight: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LatencyData {
    Loading,
    Ready(Latency),
    Failed(RpcError),
}

/// The log view of one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogsState {
    pub namespace: String,
    /// Where `Esc` goes back to.
    pub back: Box<Screen>,
    /// Oldest first, at most [`LOG_VIEW_CAPACITY`].
    pub lines: std::collections::VecDeque<LogLine>,
    /// The last line received; a watch after a reconnect resumes after it.
    pub last_seq: u64,
    /// The newest lines stay in view as they arrive.
    pub follow: bool,
    /// Index of the first line shown while not following.
    pub top: usize,
    /// The search (case-insensitive); matches are highlighted.
    pub search: String,
    /// The line `n`/`N` last moved to.
    pub current: Option<usize>,
    /// `None` until the proxy answered; `Some(false)`: it serves no logs.
    pub available: Option<bool>,
}

impl LogsState {
    pub(crate) fn new(namespace: String, back: Screen) -> Self {
        Self {
            namespace,
            back: Box::new(back),
            lines: std::collections::VecDeque::new(),
            last_seq: 0,
            follow: true,
            top: 0,
            search: String::new(),
            current: None,
            available: None,
        }
    }

    /// Whether line `text` matches the search.
    pub(crate) fn matches(&self, text: &str) -> bool {
        !self.search.is_empty() && text.to_lowercase().contains(&self.search.to_lowercase())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct App {
    pub options: Options,
    /// Wall clock of the last tick, Unix epoch milliseconds.
    pub now_ms: i64,
    /// Terminal (width, height), for paging.
    pub size: (u16, u16),
    pub connection: Connection,
    /// The last snapshot received; kept while disconnected so the operator
    /// still sees the last known state.
    pub snapshot: Option<Snapshot>,
    /// Indices into `snapshot.patterns` that pass the filter, in sort order.
    pub rows: Vec<usize>,
    /// Position of the selection in `rows`.
    pub cursor: usize,
    /// Namespace under the cursor, so the selection follows the row when
    /// snapshots reorder or the filter changes.
    pub selected: Option<String>,
    pub filter: String,
    pub sort: Sort,
    pub screen: Screen,
    pub mode: Mode,
    pub status: Option<Status>,
    /// Oldest first, at most [`EVENT_LOG_CAPACITY`].
    pub events: Vec<LogEvent>,
    /// `None` until the proxy answered `ListEvents`/`WatchEvents` either way.
    pub events_available: Option<bool>,
    pub latency: Option<LatencyState>,
    /// The log view's lines and position, while it is open.
    pub logs: Option<LogsState>,
    pub exemplars: Option<ExemplarState>,
    /// Text for the terminal's clipboard (OSC 52), written by the loop
    /// before the next draw.
    pub clipboard: Option<String>,
    /// Who the proxy says the caller is; `None` until it answered `WhoAmI`
    /// (or when it does not serve it).
    pub identity: Option<Identity>,
    /// Recent multicasts of each registry namespace, from its health totals.
    pub multicasts: BTreeMap<String, Trend>,
    pub should_quit: bool,
}

impl App {
    pub(crate) fn new(options: Options, now_ms: i64) -> Self {
        Self {
            options,
            now_ms,
            size: (0, 0),
            connection: Connection::Connecting,
            snapshot: None,
            rows: Vec::new(),
            cursor: 0,
            selected: None,
            filter: String::new(),
            sort: Sort {
                column: Column::Namespace,
                descending: false,
            },
            screen: Screen::Table,
            mode: Mode::Normal,
            status: None,
            events: Vec::new(),
            events_available: None,
            latency: None,
            logs: None,
            exemplars: None,
            clipboard: None,
            identity: None,
            multicasts: BTreeMap::new(),
            should_quit: false,
        }
    }

    pub(crate) fn is_connected(&self) -> bool {
        matches!(self.connection, Connection::Connected(_))
    }

    pub(crate) fn pattern(&self, namespace: &str) -> Option<&Pattern> {
        self.snapshot
            .as_ref()?
            .patterns
            .iter()
            .find(|p| p.namespace == namespace)
    }

    /// The visible rows, in order.
    pub(crate) fn visible(&self) -> impl Iterator<Item = &Pattern> {
        let patterns = self
            .snapshot
            .as_ref()
            .map(|s| s.patterns.as_slice())
            .unwrap_or_default();
        self.rows.iter().filter_map(move |&i| patterns.get(i))
    }

    /// The namespace an action applies to: the detail view's, else the
    /// selected row's.
    pub(crate) fn target(&self) -> Option<&Pattern> {
        match &self.screen {
            Screen::Detail { namespace } | Screen::Logs { namespace } => self.pattern(namespace),
            Screen::Table => self.pattern(self.selected.as_deref()?),
        }
    }
}
