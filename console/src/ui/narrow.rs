//! What a short line keeps: the header's proxy wording and the status
//! line's key hints, chosen by width from the view's variants.

use super::{
    fitting,
    status::hints_for,
    tests::{draw, screen},
};
use crate::{
    app::App,
    event::Event,
    model::{ProxyInfo, Snapshot},
    update::{
        tests::{connected, disconnect, options, pattern},
        update,
    },
    view::{Cell, StatusView, Tone, status::shrinking},
};

fn variants(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

#[test]
fn the_fullest_variant_that_fits_wins() {
    let v = variants(&["abcdef", "abc", "a"]);
    assert_eq!(fitting(&v, 80), "abcdef");
    assert_eq!(fitting(&v, 6), "abcdef");
    assert_eq!(fitting(&v, 5), "abc");
    assert_eq!(fitting(&v, 2), "a");
    // Nothing fits: the shortest, to be cut by the renderer.
    assert_eq!(fitting(&v, 0), "a");
    assert_eq!(fitting(&[], 10), "");
    // Width is counted in cells, not bytes.
    assert_eq!(fitting(&variants(&["µs · µs", "µs"]), 7), "µs · µs");
}

/// A connected console whose proxy reports its version and data address.
fn with_proxy_info() -> App {
    let mut app = connected(options());
    update(
        &mut app,
        Event::Snapshot(Snapshot {
            patterns: vec![pattern("default", 100, 5.0)],
            in_flight: 0,
            proxy: Some(ProxyInfo {
                version: "0.1.0".to_string(),
                listen: "127.0.0.1:8980".to_string(),
                admin_listen: "127.0.0.1:8981".to_string(),
                uptime_ms: 1_000,
                config_path: "prism.yaml".to_string(),
            }),
        }),
    );
    app
}

fn first_line(app: &App, width: u16) -> String {
    let text = screen(&draw(app, width, 24));
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

#[test]
fn the_header_drops_the_product_name_then_the_version_before_the_addresses() {
    let app = with_proxy_info();
    assert_eq!(
        first_line(&app, 120),
        " PRISM  ● connected  prism-proxy 0.1.0 · admin 127.0.0.1:8981 · data 127.0.0.1:8980"
    );
    assert_eq!(
        first_line(&app, 80),
        " PRISM  ● connected  proxy 0.1.0 · admin 127.0.0.1:8981 · data 127.0.0.1:8980"
    );
    assert_eq!(
        first_line(&app, 70),
        " PRISM  ● connected  admin 127.0.0.1:8981 · data 127.0.0.1:8980"
    );

    // The countdown is longer: at 80 columns only the admin address stays.
    let mut app = app;
    let retry_at_ms = app.now_ms + 3_000;
    disconnect(&mut app, "refused", retry_at_ms);
    assert_eq!(
        first_line(&app, 80),
        " PRISM  ○ disconnected, reconnecting in 3s  admin 127.0.0.1:8981"
    );
}

fn table_status(message: Option<&str>) -> StatusView {
    StatusView {
        message: message.map(|m| Cell::new(m, Tone::Good)),
        hints: shrinking(&[
            ("? help", 0),
            ("/ filter", 2),
            ("s sort", 3),
            ("Enter detail", 1),
            ("q quit", 0),
        ]),
    }
}

#[test]
fn the_hints_that_fit_beside_the_message_at_80_columns() {
    let all = "? help · / filter · s sort · Enter detail · q quit";
    assert_eq!(hints_for(&table_status(None), 80), all);
    assert_eq!(
        hints_for(&table_status(Some("restarted cache: pid 200 → 201")), 120),
        all
    );
    assert_eq!(
        hints_for(&table_status(Some("restarted cache: pid 200 → 201")), 80),
        "? help · / filter · Enter detail · q quit"
    );
    assert_eq!(
        hints_for(
            &table_status(Some("hot-reload default failed: Unavailable: gone")),
            80
        ),
        "? help · Enter detail · q quit"
    );
    let long = "hot-reload default failed: Unavailable: new process never HEALTHY";
    assert_eq!(hints_for(&table_status(Some(long)), 80), "? help · q quit");
}

#[test]
fn no_hint_is_cut_on_the_80_column_table() {
    let mut app = connected(options());
    let retry_at_ms = app.now_ms + 3_000;
    disconnect(&mut app, "refused", retry_at_ms);
    crate::update::tests::press(&mut app, "r");
    let text = screen(&draw(&app, 80, 24));
    let last = text.lines().last().unwrap_or_default();
    assert!(last.trim_end().ends_with("Enter detail · q quit"), "{last}");
    assert!(
        last.contains("not connected: cannot restart cache"),
        "{last}"
    );
}

#[test]
fn a_message_too_long_for_the_line_ends_in_an_ellipsis_before_the_hints() {
    let mut app = connected(options());
    let reason = "x".repeat(50);
    update(
        &mut app,
        Event::Action(crate::event::ActionOutcome {
            action: crate::event::Action::Reload,
            namespace: "cache".to_string(),
            result: Err(crate::model::RpcError::Failed(format!(
                "Unavailable: new process never HEALTHY: {reason}"
            ))),
        }),
    );
    let text = screen(&draw(&app, 80, 24));
    let last = text.lines().last().unwrap_or_default().to_string();
    let (message, hints) = last.split_once("… ").expect("an ellipsis then a gap");
    assert!(message.starts_with(" hot-reload cache failed"), "{last}");
    assert_eq!(hints.trim(), "? help · q quit", "{last}");
}
