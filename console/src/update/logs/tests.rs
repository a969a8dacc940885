//! The log view's transitions: opening, lines in, follow, scroll, search.

use ratatui::crossterm::event::KeyCode;

use crate::{
    app::{App, LOG_VIEW_CAPACITY, Mode, Screen},
    event::{Command, Connection, Event, Feed},
    model::LogLine,
    update::{
        tests::{connected, disconnect, key, options, press},
        update,
    },
};

pub(crate) fn log_line(seq: u64, text: &str) -> LogLine {
    LogLine {
        seq,
        namespace: "cache".into(),
        pid: 200,
        stderr: true,
        timestamp_ms: 1_796_004_904_000 + seq as i64,
        text: text.into(),
        truncated: false,
    }
}

/// `count` lines into the open view of `cache`, numbered after `from`.
pub(crate) fn feed(app: &mut App, from: u64, count: u64) {
    let lines = (from + 1..=from + count)
        .map(|seq| log_line(seq, &format!("line {seq}")))
        .collect();
    update(
        app,
        Event::PatternLogs {
            namespace: "cache".into(),
            lines,
        },
    );
}

/// A 24-row console with the log view of `cache` open.
pub(crate) fn open_logs() -> App {
    let mut app = connected(options());
    update(
        &mut app,
        Event::Resize {
            width: 80,
            height: 24,
        },
    );
    let commands = press(&mut app, "l");
    assert_eq!(
        commands,
        [Command::FollowLogs {
            namespace: "cache".into(),
            since_seq: 0
        }]
    );
    app
}

fn texts(app: &App) -> Vec<String> {
    app.logs
        .as_ref()
        .unwrap()
        .lines
        .iter()
        .map(|l| l.text.clone())
        .collect()
}

#[test]
fn l_opens_the_selected_namespaces_logs_and_esc_goes_back() {
    let mut app = open_logs();
    assert_eq!(
        app.screen,
        Screen::Logs {
            namespace: "cache".into()
        }
    );
    assert!(app.logs.as_ref().unwrap().follow, "follows by default");
    assert_eq!(update(&mut app, key(KeyCode::Esc)), [Command::StopLogs]);
    assert_eq!(app.screen, Screen::Table);
    assert!(app.logs.is_none());
}

#[test]
fn from_the_detail_view_esc_returns_there() {
    let mut app = connected(options());
    update(&mut app, key(KeyCode::Enter));
    let commands = press(&mut app, "l");
    assert!(commands.contains(&Command::FollowLogs {
        namespace: "cache".into(),
        since_seq: 0
    }));
    update(&mut app, key(KeyCode::Esc));
    assert_eq!(
        app.screen,
        Screen::Detail {
            namespace: "cache".into()
        }
    );
}

#[test]
fn repeated_lines_after_a_resume_are_dropped() {
    let mut app = open_logs();
    feed(&mut app, 0, 3);
    feed(&mut app, 1, 3);
    assert_eq!(texts(&app), ["line 1", "line 2", "line 3", "line 4"]);
    assert_eq!(app.logs.as_ref().unwrap().last_seq, 4);
}

#[test]
fn a_reconnect_resumes_after_the_last_line() {
    let mut app = open_logs();
    feed(&mut app, 0, 5);
    disconnect(&mut app, "gone", 0);
    let commands = update(
        &mut app,
        Event::Connection(Connection::Connected(Feed::Stream)),
    );
    assert!(
        commands.contains(&Command::FollowLogs {
            namespace: "cache".into(),
            since_seq: 5
        }),
        "{commands:?}"
    );
}

#[test]
fn lines_of_another_namespace_are_ignored() {
    let mut app = open_logs();
    update(
        &mut app,
        Event::PatternLogs {
            namespace: "orders".into(),
            lines: vec![log_line(1, "other")],
        },
    );
    assert!(texts(&app).is_empty());
}

#[test]
fn the_view_keeps_a_bounded_number_of_lines() {
    let mut app = open_logs();
    feed(&mut app, 0, LOG_VIEW_CAPACITY as u64 + 10);
    let logs = app.logs.as_ref().unwrap();
    assert_eq!(logs.lines.len(), LOG_VIEW_CAPACITY);
    assert_eq!(logs.lines[0].text, "line 11");
}

#[test]
fn scrolling_up_pauses_and_f_follows_again() {
    let mut app = open_logs();
    feed(&mut app, 0, 100);
    // 24 rows less header, status and borders.
    let page = 19;
    update(&mut app, key(KeyCode::Up));
    let logs = app.logs.as_ref().unwrap();
    assert!(!logs.follow);
    assert_eq!(logs.top, 100 - page - 1);
    press(&mut app, "f");
    assert!(app.logs.as_ref().unwrap().follow);
    press(&mut app, "f");
    let logs = app.logs.as_ref().unwrap();
    assert!(!logs.follow);
    assert_eq!(logs.top, 100 - page, "pausing keeps the same lines in view");
    // New lines do not move a paused view.
    feed(&mut app, 100, 10);
    assert_eq!(app.logs.as_ref().unwrap().top, 100 - page);
    press(&mut app, "g");
    assert_eq!(app.logs.as_ref().unwrap().top, 0);
    press(&mut app, "G");
    assert!(app.logs.as_ref().unwrap().follow);
}

#[test]
fn search_jumps_between_matching_lines_and_wraps() {
    let mut app = open_logs();
    feed(&mut app, 0, 100);
    press(&mut app, "/");
    assert_eq!(app.mode, Mode::LogSearch);
    press(&mut app, "LINE 7");
    update(&mut app, key(KeyCode::Enter));
    assert_eq!(app.mode, Mode::Normal);
    // Backwards from the bottom: "line 79" is the nearest match above.
    let logs = app.logs.as_ref().unwrap();
    assert_eq!(logs.search, "LINE 7");
    assert!(!logs.follow);
    let current = |app: &App| {
        let logs = app.logs.as_ref().unwrap();
        logs.lines[logs.current.unwrap()].text.clone()
    };
    assert_eq!(current(&app), "line 79");
    press(&mut app, "N");
    assert_eq!(current(&app), "line 78");
    press(&mut app, "n");
    press(&mut app, "n");
    assert_eq!(current(&app), "line 7");
    press(&mut app, "N");
    assert_eq!(current(&app), "line 79", "wraps around");
    // Esc while typing clears the search.
    press(&mut app, "/x");
    update(&mut app, key(KeyCode::Esc));
    assert!(app.logs.as_ref().unwrap().search.is_empty());
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn keys_typed_into_the_search_are_not_commands() {
    let mut app = open_logs();
    press(&mut app, "/");
    assert!(press(&mut app, "rRqf").is_empty());
    assert!(!app.should_quit);
    assert_eq!(app.logs.as_ref().unwrap().search, "rRqf");
}

#[test]
fn an_older_proxy_says_it_serves_no_logs_and_is_not_asked_again() {
    let mut app = open_logs();
    update(
        &mut app,
        Event::PatternLogsUnavailable {
            namespace: "cache".into(),
        },
    );
    assert_eq!(app.logs.as_ref().unwrap().available, Some(false));
    disconnect(&mut app, "gone", 0);
    let commands = update(
        &mut app,
        Event::Connection(Connection::Connected(Feed::Stream)),
    );
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::FollowLogs { .. }))
    );
}
