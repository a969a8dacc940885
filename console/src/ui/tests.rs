//! Widgets rendered into a `Buffer` and read back: text, position, colour.

use ratatui::{
    Terminal,
    backend::TestBackend,
    buffer::Buffer,
    crossterm::event::KeyCode,
    style::{Color, Modifier},
};

use super::{render, table::columns_for};
use crate::{
    app::{App, Column, KEY_BINDINGS, Options},
    event::{Action, ActionOutcome, Event, Pids},
    model::{Bucket, HealthStatus, Latency, LogEvent, Pattern, RpcError, State},
    update::{
        tests::{connected, disconnect, key, options, pattern, press, snapshot},
        update,
    },
    view::View,
};

pub(super) fn draw(app: &App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    let view = View::build(app);
    terminal
        .draw(|frame| render(frame, &view))
        .expect("draw into the test backend");
    terminal.backend().buffer().clone()
}

fn lines(buf: &Buffer) -> Vec<String> {
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

pub(super) fn screen(buf: &Buffer) -> String {
    lines(buf).join("\n")
}

/// Where `needle` starts, in cells (every character of it one cell wide).
fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    let chars: Vec<String> = needle.chars().map(String::from).collect();
    let width = chars.len() as u16;
    for y in 0..buf.area.height {
        for x in 0..buf.area.width.saturating_sub(width - 1) {
            if chars
                .iter()
                .enumerate()
                .all(|(i, c)| buf[(x + i as u16, y)].symbol() == c)
            {
                return Some((x, y));
            }
        }
    }
    None
}

/// Where `needle` starts on the line that holds `row_key` too.
fn find_in_row(buf: &Buffer, row_key: &str, needle: &str) -> (u16, u16) {
    let (_, y) = find(buf, row_key).unwrap_or_else(|| panic!("{row_key} not on screen"));
    let line = &lines(buf)[y as usize];
    let prefix = line
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in row {line}"));
    (line[..prefix].chars().count() as u16, y)
}

/// `orders` UNHEALTHY at `orders_rps`, and `zeta` FAILED and DEGRADED.
pub(super) fn sick_and_failed(orders_rps: f64) -> (Pattern, Pattern) {
    let mut sick = pattern("orders", 300, orders_rps);
    sick.health.status = HealthStatus::Unhealthy;
    let mut failed = pattern("zeta", 0, 0.0);
    failed.state = State::Failed;
    failed.health.status = HealthStatus::Degraded;
    (sick, failed)
}

fn mixed_health() -> App {
    let mut app = connected(options());
    let (sick, failed) = sick_and_failed(0.0);
    update(
        &mut app,
        snapshot(vec![pattern("default", 100, 5.0), sick, failed]),
    );
    app
}

#[test]
fn the_table_shows_health_and_state_in_colour() {
    let buf = draw(&mixed_health(), 120, 30);
    let at = find_in_row(&buf, "default", "HEALTHY");
    assert_eq!(buf[at].fg, Color::Green);
    let at = find_in_row(&buf, "orders", "UNHEALTHY");
    assert_eq!(buf[at].fg, Color::Red);
    let at = find_in_row(&buf, "zeta", "DEGRADED");
    assert_eq!(buf[at].fg, Color::Yellow);
    let at = find_in_row(&buf, "zeta", "FAILED");
    assert_eq!(buf[at].fg, Color::Red);
    let at = find_in_row(&buf, "default", "RUNNING");
    assert_eq!(buf[at].fg, Color::Green);
}

#[test]
fn the_table_shows_every_column_when_wide_and_marks_the_selection() {
    let buf = draw(&mixed_health(), 120, 30);
    let text = screen(&buf);
    for column in Column::ALL {
        assert!(
            text.contains(column.title()),
            "{} missing:\n{text}",
            column.title()
        );
    }
    assert!(text.contains("NAMESPACE▲"), "sort marker:\n{text}");
    let (x, y) = find(&buf, "default").unwrap();
    assert!(buf[(x, y)].modifier.contains(Modifier::REVERSED));
    let row = &lines(&buf)[y as usize];
    for figure in [
        "keyvalue", "memstore", "100", "1m05s", "5.0", "0.0%", "800µs", "2.5ms",
    ] {
        assert!(row.contains(figure), "{figure} missing from {row}");
    }
}

#[test]
fn column_choice_follows_the_width() {
    assert_eq!(columns_for(200), Column::ALL.to_vec());
    let narrow = columns_for(78);
    assert!(!narrow.contains(&Column::Pattern));
    assert!(narrow.contains(&Column::Health) && narrow.contains(&Column::P99));
    let tiny = columns_for(10);
    assert_eq!(tiny, [Column::Namespace, Column::Health]);
}

/// `cache` opened in the detail view, with its latency over the last
/// minute: p50 200µs, p99 900µs, four buckets up to 1 ms.
pub(super) fn cache_detail() -> App {
    let mut app = connected(options());
    update(&mut app, key(KeyCode::Enter));
    let latency = Latency {
        namespace: "cache".to_string(),
        window_seconds: 60,
        count: 64,
        mean_us: 300.0,
        p50_us: 200,
        p90_us: 300,
        p99_us: 900,
        max_us: 1000,
        buckets: [(128, 10), (256, 50), (512, 3), (1024, 1)]
            .map(|(upper_bound_us, count)| Bucket {
                upper_bound_us,
                count,
            })
            .to_vec(),
        rps: 1.1,
        rps_history: vec![0, 1, 2, 3, 2, 1],
        ..Default::default()
    };
    update(
        &mut app,
        Event::Latency {
            namespace: "cache".to_string(),
            operation: String::new(),
            result: Ok(latency),
        },
    );
    app
}

fn detail_with_latency() -> App {
    let mut app = cache_detail();
    update(
        &mut app,
        Event::LogEvent(LogEvent {
            seq: 0,
            timestamp_ms: 990_000,
            namespace: "cache".to_string(),
            kind: "PATTERN_STARTED".to_string(),
            reason: "pid 200 serving".to_string(),
            pid: 200,
        }),
    );
    update(
        &mut app,
        Event::LogEvent(LogEvent {
            namespace: "default".to_string(),
            kind: "SOMEONE_ELSES".to_string(),
            ..Default::default()
        }),
    );
    app
}

#[test]
fn the_detail_histogram_marks_the_quantiles() {
    let buf = draw(&detail_with_latency(), 120, 30);
    let text = screen(&buf);
    assert!(text.contains("p50 200µs"), "{text}");
    assert!(text.contains("p99 900µs"), "{text}");
    let p99 = find(&buf, "▲p99/max").unwrap_or_else(|| panic!("no p99 marker:\n{text}"));
    assert_eq!(buf[p99].fg, Color::Red);
    let p50 = find(&buf, "▲p50").unwrap();
    assert_eq!(buf[p50].fg, Color::Green);
    assert!(p50.0 < p99.0, "markers follow the buckets left to right");
    // The bar above the p99 marker is drawn in the marker's colour.
    let bar = (p99.0, p99.1 - 1);
    assert_eq!(buf[bar].fg, Color::Red, "{text}");
    assert!(text.contains("≤128µs") && text.contains("≤1.0ms"), "{text}");
}

#[test]
fn a_proxy_without_get_latency_shows_n_a() {
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
    update(&mut app, Event::LogUnavailable);
    let text = screen(&draw(&app, 80, 24));
    assert!(
        text.contains("n/a (this proxy does not serve GetLatency)"),
        "{text}"
    );
    assert!(
        text.contains("n/a (this proxy does not serve the event log)"),
        "{text}"
    );
}

#[test]
fn every_screen_renders_at_any_size() {
    let mut states = vec![
        App::new(options(), 0),
        mixed_health(),
        detail_with_latency(),
    ];
    let mut help = mixed_health();
    press(&mut help, "?");
    states.push(help);
    let mut confirm = mixed_health();
    press(&mut confirm, "r");
    states.push(confirm);
    for app in &states {
        for (w, h) in [
            (1, 1),
            (10, 3),
            (20, 6),
            (40, 10),
            (80, 24),
            (120, 30),
            (250, 70),
        ] {
            draw(app, w, h);
        }
    }
}

#[test]
fn help_lists_every_binding() {
    let mut app = mixed_health();
    press(&mut app, "?");
    let text = screen(&draw(&app, 80, 24));
    for (keys, what) in KEY_BINDINGS {
        assert!(text.contains(keys), "{keys} missing:\n{text}");
        let start: String = what.chars().take(20).collect();
        assert!(text.contains(&start), "{what} missing:\n{text}");
    }
}

#[test]
fn the_confirm_dialog_names_the_namespace_and_pid() {
    let mut app = mixed_health();
    press(&mut app, "R");
    let text = screen(&draw(&app, 80, 24));
    assert!(text.contains("Hot-reload default?"), "{text}");
    assert!(text.contains("default (pid 100)"), "{text}");
    assert!(text.contains("y: yes"), "{text}");
}

#[test]
fn the_header_counts_down_to_the_next_attempt() {
    let mut app = connected(options());
    let retry_at_ms = app.now_ms + 2_500;
    disconnect(&mut app, "refused", retry_at_ms);
    let buf = draw(&app, 80, 24);
    let at = find(&buf, "○ disconnected, reconnecting in 3s")
        .unwrap_or_else(|| panic!("{}", screen(&buf)));
    assert_eq!(buf[at].fg, Color::Red);
    assert!(screen(&buf).contains("last known"));
}

#[test]
fn the_status_line_shows_outcomes_and_read_only() {
    let mut app = connected(options());
    update(
        &mut app,
        Event::Action(ActionOutcome {
            action: Action::Restart,
            namespace: "default".to_string(),
            result: Ok(Pids { old: 100, new: 101 }),
        }),
    );
    let buf = draw(&app, 80, 24);
    let at = find(&buf, "restarted default: pid 100 → 101").expect("outcome shown");
    assert_eq!(at.1, 23, "on the last line");
    assert_eq!(buf[at].fg, Color::Green);

    let mut app = connected(Options {
        readonly: true,
        ..options()
    });
    press(&mut app, "r");
    let text = screen(&draw(&app, 80, 24));
    assert!(text.contains("read-only: restart is disabled"), "{text}");
}

#[test]
fn the_filter_prompt_replaces_the_status_while_typing() {
    let mut app = mixed_health();
    press(&mut app, "/ord");
    let text = screen(&draw(&app, 80, 24));
    assert!(text.contains("/ord"), "{text}");
    assert!(text.contains("patterns (1/3) · filter \"ord\""), "{text}");
    assert!(!text.contains("zeta"), "{text}");
}

#[test]
fn the_help_says_which_keys_need_a_role_the_caller_lacks() {
    use crate::{model::Role, update::tests::identity, view::Overlay};

    let help_of = |who: Option<Role>| {
        let mut app = connected(options());
        update(&mut app, Event::Identity(identity(who)));
        press(&mut app, "?");
        let Some(Overlay::Help(lines)) = View::build(&app).overlay else {
            panic!("the help is open");
        };
        lines
            .into_iter()
            .filter(|(k, _)| k == "r" || k == "R")
            .map(|(_, d)| d)
            .collect::<Vec<_>>()
    };
    let viewer = help_of(Some(Role::Viewer));
    assert_eq!(viewer.len(), 2);
    assert!(
        viewer
            .iter()
            .all(|d| d.ends_with("— needs the operator role")),
        "{viewer:?}"
    );
    for who in [Some(Role::Operator), None] {
        let lines = help_of(who);
        assert!(
            lines.iter().all(|d| !d.contains("needs")),
            "{who:?}: {lines:?}"
        );
    }
}

/// More details than even a full-width band can hold on a small screen:
/// the box says how many lines are hidden, and the histogram and event log
/// keep their room.
#[test]
fn a_health_list_too_long_for_the_screen_says_what_is_hidden() {
    let mut app = cache_detail();
    let mut cache = pattern("cache", 200, 50.0);
    cache.health.details = (0..40)
        .map(|i| {
            (
                format!("detail.number.{i:02}"),
                "a value long enough".to_string(),
            )
        })
        .collect();
    update(&mut app, snapshot(vec![cache]));
    let text = lines(&draw(&app, 80, 24));
    assert!(
        text.iter()
            .any(|l| l.contains("more lines: enlarge the terminal")),
        "{text:#?}"
    );
    assert!(text.iter().any(|l| l.contains("┌ latency")), "{text:#?}");
    assert!(text.iter().any(|l| l.contains("┌ events")), "{text:#?}");
    // The tall screen shows every one.
    let tall = lines(&draw(&app, 120, 80)).concat();
    for i in 0..40 {
        assert!(tall.contains(&format!("detail.number.{i:02}")), "{i}");
    }
}
