//! State transitions, one behaviour per test: feed events, check the state
//! and the commands.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::update;
use crate::{
    app::{App, Column, LatencyData, Mode, Options, Screen, Status},
    event::{Action, ActionOutcome, Command, Connection, Event, Feed, Pids},
    model::{
        Health, HealthStatus, Identity, Latency, LogEvent, Pattern, Role, RpcError, Snapshot,
        State, Traffic,
    },
};

/// What `WhoAmI` says with auth on (`Some(role)`) or off (`None`).
pub(crate) fn identity(role: Option<Role>) -> Identity {
    Identity {
        auth_enabled: role.is_some(),
        principal: if role.is_some() {
            "sub:dev".into()
        } else {
            String::new()
        },
        email: if role.is_some() {
            "dev@local.prism".into()
        } else {
            String::new()
        },
        role: role.unwrap_or(Role::Admin),
        expires_at: 0,
    }
}

pub(crate) fn options() -> Options {
    Options {
        admin: "127.0.0.1:8981".to_string(),
        readonly: false,
        confirm: true,
        trace_url: None,
    }
}

pub(crate) fn pattern(namespace: &str, pid: u32, rps: f64) -> Pattern {
    Pattern {
        namespace: namespace.to_string(),
        pattern: "keyvalue".to_string(),
        backend: "memstore".to_string(),
        state: State::Running,
        health: Health {
            status: HealthStatus::Healthy,
            message: "ok".to_string(),
            details: Default::default(),
        },
        pid,
        uptime_ms: 65_000,
        traffic: Some(Traffic {
            rps,
            count: 10,
            p50_us: 800,
            p99_us: 2_500,
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn snapshot(patterns: Vec<Pattern>) -> Event {
    Event::Snapshot(Snapshot {
        patterns,
        in_flight: 2,
        proxy: None,
    })
}

/// A connected console showing `default`, `cache` and `orders`.
pub(crate) fn connected(options: Options) -> App {
    let mut app = App::new(options, 1_000_000);
    update(
        &mut app,
        Event::Connection(Connection::Connected(Feed::Stream)),
    );
    update(
        &mut app,
        snapshot(vec![
            pattern("default", 100, 5.0),
            pattern("cache", 200, 50.0),
            pattern("orders", 300, 0.5),
        ]),
    );
    app
}

/// The connection lost with `error`; the next attempt at `retry_at_ms`.
pub(crate) fn disconnect(app: &mut App, error: &str, retry_at_ms: i64) -> Vec<Command> {
    update(
        app,
        Event::Connection(Connection::Disconnected {
            error: error.to_string(),
            retry_at_ms,
        }),
    )
}

pub(crate) fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub(crate) fn press(app: &mut App, keys: &str) -> Vec<Command> {
    keys.chars()
        .flat_map(|c| update(app, key(KeyCode::Char(c))))
        .collect()
}

fn names(app: &App) -> Vec<&str> {
    app.visible().map(|p| p.namespace.as_str()).collect()
}

#[test]
fn rows_are_sorted_by_namespace_and_the_first_is_selected() {
    let app = connected(options());
    assert_eq!(names(&app), ["cache", "default", "orders"]);
    assert_eq!(app.selected.as_deref(), Some("cache"));
}

#[test]
fn filter_keeps_matching_namespaces_while_typing() {
    let mut app = connected(options());
    press(&mut app, "/");
    assert_eq!(app.mode, Mode::Filter);
    press(&mut app, "DE");
    assert_eq!(
        names(&app),
        ["default", "orders"],
        "case-insensitive substring"
    );
    update(&mut app, key(KeyCode::Backspace));
    press(&mut app, "ef");
    assert_eq!(names(&app), ["default"]);
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.filter, "Def");
    assert_eq!(app.selected.as_deref(), Some("default"));

    // Esc in the table clears it again.
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(names(&app).len(), 3);
}

#[test]
fn esc_while_typing_clears_the_filter_and_letters_are_text() {
    let mut app = connected(options());
    press(&mut app, "/q");
    assert!(!app.should_quit, "q is text in the filter");
    assert_eq!(app.filter, "q");
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.filter.is_empty());
}

#[test]
fn s_cycles_the_sort_column_and_shift_s_reverses() {
    let mut app = connected(options());
    press(&mut app, "s");
    assert_eq!(app.sort.column, Column::Pattern);
    // Cycle on to RPS.
    while app.sort.column != Column::Rps {
        press(&mut app, "s");
    }
    assert_eq!(names(&app), ["orders", "default", "cache"]);
    press(&mut app, "S");
    assert!(app.sort.descending);
    assert_eq!(names(&app), ["cache", "default", "orders"]);
    for _ in 0..Column::ALL.len() {
        press(&mut app, "s");
    }
    assert_eq!(app.sort.column, Column::Rps, "wraps around");
}

#[test]
fn j_and_k_move_within_bounds() {
    let mut app = connected(options());
    press(&mut app, "j");
    assert_eq!(app.selected.as_deref(), Some("default"));
    update(&mut app, key(KeyCode::Down));
    press(&mut app, "j");
    assert_eq!(app.selected.as_deref(), Some("orders"), "stops at the end");
    press(&mut app, "k");
    update(&mut app, key(KeyCode::Up));
    press(&mut app, "k");
    assert_eq!(app.selected.as_deref(), Some("cache"), "stops at the top");
    press(&mut app, "G");
    assert_eq!(app.cursor, 2);
    press(&mut app, "g");
    assert_eq!(app.cursor, 0);
}

#[test]
fn page_keys_move_by_the_visible_height() {
    let mut app = connected(options());
    let many = (0..40)
        .map(|i| pattern(&format!("ns{i:02}"), i, 0.0))
        .collect();
    update(&mut app, snapshot(many));
    update(
        &mut app,
        Event::Resize {
            width: 80,
            height: 16,
        },
    );
    update(&mut app, key(KeyCode::PageDown));
    assert_eq!(app.cursor, 10, "16 rows less 6 of chrome");
    assert_eq!(app.selected.as_deref(), Some("ns10"));
    update(&mut app, key(KeyCode::PageUp));
    assert_eq!(app.cursor, 0);
}

#[test]
fn selection_follows_its_namespace_across_snapshots() {
    let mut app = connected(options());
    press(&mut app, "j");
    assert_eq!(app.selected.as_deref(), Some("default"));
    // A new namespace sorts in front: the cursor moves, the selection stays.
    update(
        &mut app,
        snapshot(vec![
            pattern("aaa", 1, 0.0),
            pattern("default", 100, 5.0),
            pattern("cache", 200, 50.0),
        ]),
    );
    assert_eq!(app.selected.as_deref(), Some("default"));
    assert_eq!(app.cursor, 2);
    // The selected namespace goes away: the cursor stays in range.
    update(&mut app, snapshot(vec![pattern("aaa", 1, 0.0)]));
    assert_eq!(app.selected.as_deref(), Some("aaa"));
    assert_eq!(app.cursor, 0);
}

#[test]
fn restart_asks_first_and_runs_on_y() {
    let mut app = connected(options());
    press(&mut app, "j");
    assert!(press(&mut app, "r").is_empty());
    let Mode::Confirm(confirm) = &app.mode else {
        panic!("expected a confirm dialog, got {:?}", app.mode);
    };
    assert_eq!(confirm.action, Action::Restart);
    assert_eq!(confirm.namespace, "default");
    assert!(press(&mut app, "x").is_empty(), "other keys do nothing");

    let commands = press(&mut app, "y");
    assert_eq!(
        commands,
        [Command::Restart {
            namespace: "default".to_string(),
            old_pid: 100
        }]
    );
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(
        app.status,
        Some(Status::Started {
            action: Action::Restart,
            namespace: "default".to_string(),
            pid: 100
        })
    );
}

#[test]
fn n_or_esc_cancels_the_dialog() {
    let mut app = connected(options());
    press(&mut app, "R");
    assert!(matches!(app.mode, Mode::Confirm(_)));
    assert!(press(&mut app, "n").is_empty());
    assert_eq!(app.mode, Mode::Normal);
    assert!(
        matches!(&app.status, Some(Status::Cancelled { namespace, .. }) if namespace == "cache"),
        "{:?}",
        app.status
    );

    press(&mut app, "R");
    assert!(update(&mut app, key(KeyCode::Esc)).is_empty());
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn no_confirm_runs_at_once() {
    let mut app = connected(Options {
        confirm: false,
        ..options()
    });
    let commands = press(&mut app, "R");
    assert_eq!(
        commands,
        [Command::Reload {
            namespace: "cache".to_string(),
            old_pid: 200
        }]
    );
}

#[test]
fn readonly_refuses_restart_and_reload() {
    let mut app = connected(Options {
        readonly: true,
        ..options()
    });
    for k in ["r", "R"] {
        assert!(press(&mut app, k).is_empty());
        assert_eq!(app.mode, Mode::Normal);
        assert!(
            matches!(app.status, Some(Status::ReadOnly(_))),
            "{:?}",
            app.status
        );
    }
}

#[test]
fn a_role_below_operator_is_told_why_restart_and_reload_are_refused() {
    let mut app = connected(options());
    for role in [Role::None, Role::Viewer] {
        update(&mut app, Event::Identity(identity(Some(role))));
        assert_eq!(app.identity, Some(identity(Some(role))));
        for (k, action) in [("r", Action::Restart), ("R", Action::Reload)] {
            assert!(press(&mut app, k).is_empty());
            assert_eq!(app.mode, Mode::Normal, "no dialog");
            assert_eq!(
                app.status,
                Some(Status::NeedsRole {
                    action,
                    needs: Role::Operator,
                    has: role,
                })
            );
        }
    }
    // An operator, an admin, or anyone with auth off gets the dialog.
    for who in [Some(Role::Operator), Some(Role::Admin), None] {
        let mut app = connected(options());
        update(&mut app, Event::Identity(identity(who)));
        press(&mut app, "r");
        assert!(
            matches!(app.mode, Mode::Confirm(_)),
            "{who:?}: {:?}",
            app.status
        );
    }
}

#[test]
fn outcomes_land_in_the_status_line() {
    let mut app = connected(options());
    update(
        &mut app,
        Event::Action(ActionOutcome {
            action: Action::Restart,
            namespace: "default".to_string(),
            result: Ok(Pids { old: 100, new: 101 }),
        }),
    );
    assert_eq!(
        app.status,
        Some(Status::Done {
            action: Action::Restart,
            namespace: "default".to_string(),
            pids: Pids { old: 100, new: 101 }
        })
    );

    update(
        &mut app,
        Event::Action(ActionOutcome {
            action: Action::Reload,
            namespace: "default".to_string(),
            result: Err(RpcError::Failed(
                "Unavailable: new process never HEALTHY".into(),
            )),
        }),
    );
    assert_eq!(
        app.status,
        Some(Status::Failed {
            action: Action::Reload,
            namespace: "default".to_string(),
            error: RpcError::Failed("Unavailable: new process never HEALTHY".into())
        })
    );
}

#[test]
fn disconnect_keeps_the_last_snapshot_and_refuses_actions() {
    let mut app = connected(options());
    disconnect(&mut app, "connection refused", 1_003_000);
    assert!(!app.is_connected());
    assert_eq!(names(&app).len(), 3, "last known state stays on screen");
    assert!(press(&mut app, "r").is_empty());
    assert_eq!(app.mode, Mode::Normal, "no dialog for an impossible action");
    assert!(
        matches!(app.status, Some(Status::NotConnected { .. })),
        "{:?}",
        app.status
    );

    update(&mut app, Event::Connection(Connection::Connecting));
    update(
        &mut app,
        Event::Connection(Connection::Connected(Feed::Polling)),
    );
    assert!(app.is_connected());
    press(&mut app, "r");
    assert!(matches!(app.mode, Mode::Confirm(_)));
}

fn latency(namespace: &str) -> Latency {
    Latency {
        namespace: namespace.to_string(),
        operations: vec!["Get".to_string(), "Set".to_string()],
        ..Default::default()
    }
}

#[test]
fn detail_view_fetches_latency_once_at_a_time() {
    let mut app = connected(options());
    let commands = update(&mut app, key(KeyCode::Enter));
    assert_eq!(
        app.screen,
        Screen::Detail {
            namespace: "cache".to_string()
        }
    );
    assert_eq!(
        commands,
        [
            Command::FetchLatency {
                namespace: "cache".to_string(),
                operation: String::new()
            },
            Command::FetchExemplars {
                namespace: "cache".to_string()
            }
        ]
    );
    // A snapshot while the calls are out asks nothing more.
    assert!(update(&mut app, snapshot(vec![pattern("cache", 200, 1.0)])).is_empty());
    update(
        &mut app,
        Event::Latency {
            namespace: "cache".to_string(),
            operation: String::new(),
            result: Ok(latency("cache")),
        },
    );
    assert!(matches!(
        app.latency.as_ref().unwrap().data,
        LatencyData::Ready(_)
    ));
    // The next snapshot refreshes it.
    assert_eq!(
        update(&mut app, snapshot(vec![pattern("cache", 200, 1.0)])).len(),
        1
    );
}

#[test]
fn tab_cycles_operations_and_esc_goes_back() {
    let mut app = connected(options());
    update(&mut app, key(KeyCode::Enter));
    update(
        &mut app,
        Event::Latency {
            namespace: "cache".to_string(),
            operation: String::new(),
            result: Ok(latency("cache")),
        },
    );
    let commands = update(&mut app, key(KeyCode::Tab));
    assert_eq!(
        commands,
        [Command::FetchLatency {
            namespace: "cache".to_string(),
            operation: "Get".to_string()
        }]
    );
    // A late answer for "all operations" is ignored.
    update(
        &mut app,
        Event::Latency {
            namespace: "cache".to_string(),
            operation: String::new(),
            result: Ok(latency("cache")),
        },
    );
    assert!(app.latency.as_ref().unwrap().in_flight);

    update(&mut app, key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Table);
    assert!(app.latency.is_none());
}

#[test]
fn unimplemented_latency_is_not_asked_again_until_reconnect() {
    let mut app = connected(options());
    update(&mut app, key(KeyCode::Enter));
    update(
        &mut app,
        Event::Latency {
            namespace: "cache".to_string(),
            operation: String::new(),
            result: Err(RpcError::Unimplemented),
        },
    );
    assert!(update(&mut app, snapshot(vec![pattern("cache", 200, 1.0)])).is_empty());

    disconnect(&mut app, "gone", 0);
    let commands = update(
        &mut app,
        Event::Connection(Connection::Connected(Feed::Stream)),
    );
    assert!(
        commands
            .iter()
            .any(|c| matches!(c, Command::FetchLatency { .. })),
        "a new proxy may serve GetLatency: {commands:?}"
    );
}

#[test]
fn actions_in_the_detail_view_target_its_namespace() {
    let mut app = connected(Options {
        confirm: false,
        ..options()
    });
    press(&mut app, "jj");
    update(&mut app, key(KeyCode::Enter));
    let commands = press(&mut app, "r");
    assert_eq!(
        commands,
        [Command::Restart {
            namespace: "orders".to_string(),
            old_pid: 300
        }]
    );
}

fn log_event(at: i64, namespace: &str, kind: &str) -> LogEvent {
    LogEvent {
        timestamp_ms: at,
        namespace: namespace.to_string(),
        kind: kind.to_string(),
        ..Default::default()
    }
}

#[test]
fn the_event_log_merges_list_and_watch_without_duplicates() {
    let mut app = connected(options());
    update(&mut app, Event::LogEvent(log_event(3, "default", "B")));
    update(
        &mut app,
        Event::Log(vec![
            log_event(1, "default", "A"),
            log_event(3, "default", "B"),
        ]),
    );
    let kinds: Vec<_> = app.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["A", "B"]);
    assert_eq!(app.events_available, Some(true));
}

#[test]
fn the_event_log_is_bounded() {
    let mut app = connected(options());
    for i in 0..(crate::app::EVENT_LOG_CAPACITY as i64 + 10) {
        update(&mut app, Event::LogEvent(log_event(i, "default", "X")));
    }
    assert_eq!(app.events.len(), crate::app::EVENT_LOG_CAPACITY);
    assert_eq!(app.events[0].timestamp_ms, 10, "the oldest go first");
}

#[test]
fn help_opens_with_question_mark_and_any_key_closes_it() {
    let mut app = connected(options());
    press(&mut app, "?");
    assert_eq!(app.mode, Mode::Help);
    press(&mut app, "q");
    assert_eq!(app.mode, Mode::Normal);
    assert!(!app.should_quit, "q closes the help first");
}

#[test]
fn q_ctrl_c_and_signals_quit() {
    let mut app = connected(options());
    press(&mut app, "q");
    assert!(app.should_quit);

    let mut app = connected(options());
    press(&mut app, "/");
    update(
        &mut app,
        Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
    );
    assert!(app.should_quit, "Ctrl-C quits even while typing");

    let mut app = connected(options());
    update(&mut app, Event::Shutdown);
    assert!(app.should_quit);
}

#[test]
fn ticks_and_resizes_only_record_time_and_size() {
    let mut app = connected(options());
    let before = app.clone();
    assert!(update(&mut app, Event::Tick { now_ms: 2_000_000 }).is_empty());
    assert!(
        update(
            &mut app,
            Event::Resize {
                width: 80,
                height: 24
            }
        )
        .is_empty()
    );
    assert_eq!(app.now_ms, 2_000_000);
    assert_eq!(app.size, (80, 24));
    assert_eq!(app.rows, before.rows);
}
