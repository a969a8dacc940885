//! Whole-screen snapshots: each main view drawn from a fixed, fake state at
//! 80×24 and 120×40 and compared cell by cell with the expected screen, so a
//! layout regression (a column shifted, a border lost, a line cut) fails even
//! where every substring is still somewhere on screen. Colours are compared
//! by the tests in `ui/tests.rs`; here styles are cleared before comparing.
//!
//! The expected screens live in `screens/*.txt`; after an intended layout
//! change, `PRISM_SNAPSHOTS=write cargo test -p prism-console screens`
//! rewrites them, and the diff is reviewed like code.

use std::path::PathBuf;

use ratatui::{buffer::Buffer, crossterm::event::KeyCode, style::Style};

use super::tests::{self, cache_detail, sick_and_failed};
use crate::{
    app::App,
    event::{Action, ActionOutcome, Connection, Event, Feed, Pids},
    model::{Exemplar, Exemplars, LogEvent, ProxyInfo, Role, Snapshot},
    update::{
        logs::tests::log_line,
        tests::{connected, disconnect, identity, key, options, pattern, press, snapshot},
        update,
    },
};

/// The screen's characters, every style reset.
fn draw(app: &App, width: u16, height: u16) -> Buffer {
    let mut buffer = tests::draw(app, width, height);
    buffer.set_style(buffer.area, Style::reset());
    buffer
}

fn text_of(buffer: &Buffer) -> String {
    let mut text = String::new();
    for y in 0..buffer.area.height {
        let mut skip = 0;
        for x in 0..buffer.area.width {
            // A wide character covers the cell after it.
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let symbol = buffer[(x, y)].symbol();
            skip = unicode_width(symbol).saturating_sub(1);
            text.push_str(symbol);
        }
        text.push('\n');
    }
    text
}

fn unicode_width(symbol: &str) -> usize {
    use ratatui::text::Span;
    Span::raw(symbol).width()
}

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/ui/screens")
        .join(format!("{name}.txt"))
}

/// Compares `app` drawn at `width`×`height` with `screens/<name>.txt`.
fn assert_screen(name: &str, app: &App, width: u16, height: u16) {
    let actual = draw(app, width, height);
    let path = snapshot_path(name);
    if std::env::var("PRISM_SNAPSHOTS").as_deref() == Ok("write") {
        std::fs::write(&path, text_of(&actual)).expect("write the snapshot");
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        usize::from(height),
        "{name}: the snapshot has the wrong height"
    );
    let expected = Buffer::with_lines(lines);
    assert_eq!(actual, expected, "{name} differs from {}", path.display());
}

/// The table with every state a row can be in, and a finished action.
fn table() -> App {
    let mut app = connected(options());
    let (sick, mut failed) = sick_and_failed(0.5);
    failed.traffic = None;
    failed.restart_count = 5;
    let mut cache = pattern("cache", 200, 1234.5);
    cache.backend = "redis".to_string();
    let mut events = pattern("events", 400, 12.0);
    events.pattern = "pubsub".to_string();
    events.backend = "nats".to_string();
    update(
        &mut app,
        Event::Snapshot(Snapshot {
            patterns: vec![pattern("default", 100, 5.0), cache, sick, failed, events],
            in_flight: 7,
            proxy: Some(ProxyInfo {
                version: "0.1.0".to_string(),
                listen: "127.0.0.1:8980".to_string(),
                admin_listen: "127.0.0.1:8981".to_string(),
                uptime_ms: 3_600_000,
                config_path: "prism.yaml".to_string(),
            }),
        }),
    );
    update(
        &mut app,
        Event::Action(ActionOutcome {
            action: Action::Restart,
            namespace: "cache".to_string(),
            result: Ok(Pids { old: 200, new: 201 }),
        }),
    );
    app
}

/// `cache` opened, with its latency and two of its events (and one of
/// another namespace's, which it does not show).
fn detail() -> App {
    let mut app = cache_detail();
    for (timestamp_ms, kind, reason) in [
        (950_000, "PATTERN_STARTED", "pid 199 serving"),
        (990_000, "PATTERN_RESTARTED", "pid 199 → 200: operator"),
    ] {
        update(
            &mut app,
            Event::LogEvent(LogEvent {
                seq: 0,
                timestamp_ms,
                namespace: "cache".to_string(),
                kind: kind.to_string(),
                reason: reason.to_string(),
                pid: 200,
            }),
        );
    }
    update(
        &mut app,
        Event::LogEvent(LogEvent {
            timestamp_ms: 995_000,
            namespace: "default".to_string(),
            kind: "SOMEONE_ELSES".to_string(),
            ..Default::default()
        }),
    );
    app
}

/// `cache` on Redis with a long health message and more details than the
/// box had lines: every one is shown, none cut off.
fn health_details() -> App {
    let mut app = detail();
    let mut cache = pattern("cache", 200, 50.0);
    cache.backend = "redis".to_string();
    cache.health.message = "redis 127.0.0.1:6379 answers, PING 3ms (slow_ping_ms 100)".to_string();
    cache.health.details = [
        ("pool.size", "16"),
        ("pool.busy", "3"),
        ("pool.idle", "13"),
        ("pool.waiting", "0"),
        ("ping_ms", "3"),
        ("read_retries", "1"),
        ("address", "redis://127.0.0.1:6379/0"),
        ("db", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    update(
        &mut app,
        snapshot(vec![
            pattern("default", 100, 5.0),
            cache,
            pattern("orders", 300, 0.5),
        ]),
    );
    app
}

/// `fleet`, a multicast registry, opened after two snapshots ten seconds
/// apart: identities, receivers, slots, the multicast rate and split.
fn registry() -> App {
    let fleet = |multicasts: u64, delivered: u64, pending: u64, failed: u64| {
        let mut fleet = pattern("fleet", 500, 3.0);
        fleet.pattern = "multicast-registry".to_string();
        fleet.backend = "redis/nats".to_string();
        fleet.binary = "prism-multicast-registry".to_string();
        fleet.health.details = [
            ("registry.backend", "redis".to_string()),
            ("messaging.backend", "nats".to_string()),
            ("registry.identities", "1200".to_string()),
            ("messaging.receivers", "950".to_string()),
            ("multicasts", multicasts.to_string()),
            ("delivered", delivered.to_string()),
            ("pending", pending.to_string()),
            ("failed", failed.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Snapshot {
            patterns: vec![fleet],
            in_flight: 1,
            proxy: None,
        }
    };
    let mut app = App::new(options(), 1_000_000);
    update(
        &mut app,
        Event::Connection(Connection::Connected(Feed::Stream)),
    );
    update(&mut app, Event::Snapshot(fleet(100, 180, 10, 5)));
    update(&mut app, key(KeyCode::Enter));
    update(&mut app, Event::Tick { now_ms: 1_010_000 });
    update(&mut app, Event::Snapshot(fleet(125, 230, 12, 6)));
    app
}

fn help() -> App {
    let mut app = connected(options());
    press(&mut app, "?");
    app
}

fn confirm() -> App {
    let mut app = connected(options());
    press(&mut app, "j");
    press(&mut app, "r");
    app
}

/// Logged in as a viewer: who and which role in the header; `r` says why
/// it is refused.
fn viewer() -> App {
    let mut app = table();
    update(&mut app, Event::Identity(identity(Some(Role::Viewer))));
    press(&mut app, "r");
    app
}

/// A proxy without `auth:` says so in the header.
fn auth_off() -> App {
    let mut app = table();
    update(&mut app, Event::Identity(identity(None)));
    app
}

/// The proxy went away: the last known rows stay, marked so.
fn disconnected() -> App {
    let mut app = connected(options());
    disconnect(&mut app, "connection refused", 1_003_000);
    press(&mut app, "r");
    app
}

/// `cache` opened with its trace exemplars (two slow calls, a failure),
/// the second selected and copied with `y`.
fn detail_traces() -> App {
    let mut app = detail();
    let call = |operation: &str, trace_id: &str, latency_us, failed: bool| Exemplar {
        operation: operation.to_string(),
        trace_id: trace_id.to_string(),
        timestamp_ms: 985_000,
        latency_us,
        code: if failed { "UNAVAILABLE" } else { "OK" }.to_string(),
        message: String::new(),
        failed,
    };
    update(
        &mut app,
        Event::Exemplars {
            namespace: "cache".to_string(),
            result: Ok(Exemplars {
                namespace: "cache".to_string(),
                calls: vec![
                    call("Scan", "4bf92f3577b34da6a3ce929d0e0e4736", 1_250_000, false),
                    call("Get", "0af7651916cd43dd8448eb211c80319c", 48_000, false),
                    call("Set", "b7ad6b7169203331b7ad6b7169203331", 2_000, true),
                ],
            }),
        },
    );
    press(&mut app, "j");
    press(&mut app, "y");
    app
}

/// A config reload the proxy rejected, on the table's bottom border.
fn proxy_event() -> App {
    let mut app = table();
    update(
        &mut app,
        Event::LogEvent(LogEvent {
            seq: 12,
            timestamp_ms: 990_000,
            namespace: String::new(),
            kind: "CONFIG_RELOAD_FAILED".to_string(),
            reason: "namespaces[1].backend: unknown backend `mongo`".to_string(),
            pid: 0,
        }),
    );
    app
}

/// Pointed at a gRPC port that is not the admin port: the reason instead
/// of the table.
fn wrong_port() -> App {
    let mut app = App::new(options(), 1_000_000);
    update(
        &mut app,
        Event::Connection(Connection::Disconnected {
            error: crate::client::WRONG_PORT.to_string(),
            retry_at_ms: 1_004_000,
        }),
    );
    app
}

macro_rules! screens {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn at_80x24() {
                    let name = concat!(stringify!($name), "_80x24");
                    super::assert_screen(name, &super::$name(), 80, 24);
                }

                #[test]
                fn at_120x40() {
                    let name = concat!(stringify!($name), "_120x40");
                    super::assert_screen(name, &super::$name(), 120, 40);
                }
            }
        )*
    };
}

/// The log view of `cache` at `width`×`height` (paging follows the
/// terminal's size): following, a stdout line and a cut line among them.
fn logs_following(width: u16, height: u16) -> App {
    let mut app = log_view(width, height);
    let mut stdout = log_line(41, "listening on 127.0.0.1:5001");
    stdout.stderr = false;
    let mut long = log_line(42, &format!("DEBUG prism_redis: pool {}", "x".repeat(200)));
    long.truncated = true;
    update(
        &mut app,
        Event::PatternLogs {
            namespace: "cache".into(),
            lines: vec![stdout, long],
        },
    );
    app
}

/// Searched for "error", moved to the nearest match: paused, matches
/// highlighted, the current line marked.
fn logs_search(width: u16, height: u16) -> App {
    let mut app = log_view(width, height);
    press(&mut app, "/error");
    update(&mut app, key(KeyCode::Enter));
    app
}

/// Forty lines of `cache`'s output, one in ten an error.
fn log_view(width: u16, height: u16) -> App {
    let mut app = connected(options());
    update(&mut app, Event::Resize { width, height });
    press(&mut app, "l");
    let lines = (1..=40)
        .map(|seq| {
            let text = if seq % 10 == 3 {
                format!("WARN prism_redis: command failed: Error: connection reset (attempt {seq})")
            } else {
                format!(
                    "INFO prism_redis: served GET in {}us namespace=cache pid=200",
                    100 + seq
                )
            };
            log_line(seq, &text)
        })
        .collect();
    update(
        &mut app,
        Event::PatternLogs {
            namespace: "cache".into(),
            lines,
        },
    );
    app
}

#[test]
fn logs_following_at_80x24() {
    assert_screen("logs_80x24", &logs_following(80, 24), 80, 24);
}

#[test]
fn logs_following_at_120x40() {
    assert_screen("logs_120x40", &logs_following(120, 40), 120, 40);
}

#[test]
fn logs_search_at_80x24() {
    assert_screen("logs_search_80x24", &logs_search(80, 24), 80, 24);
}

#[test]
fn logs_search_at_120x40() {
    assert_screen("logs_search_120x40", &logs_search(120, 40), 120, 40);
}

screens!(
    table,
    detail,
    health_details,
    registry,
    help,
    confirm,
    disconnected,
    viewer,
    auth_off,
    detail_traces,
    proxy_event,
    wrong_port
);
