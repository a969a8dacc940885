//! The console's trace exemplars and proxy-wide events in a real terminal:
//! `y` puts the selected trace id on the clipboard through OSC 52 (tmux
//! with `set-clipboard on` turns it into a paste buffer), `o` prints its
//! link from `--trace-url`, and a rejected config reload shows with its
//! reason.

use prism_proto::{
    admin::v1::ReloadConfigRequest,
    keyvalue::v1::{GetRequest, SetRequest},
};
use prism_tests::{Proxy, eventually, otlp::trace_id_header};
use tonic::Code;

use super::{Console, SCREEN_TIMEOUT, row};

impl Console {
    /// The newest tmux paste buffer, if any.
    fn buffer(&self) -> Option<String> {
        let out = self.tmux(&["show-buffer"]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn y_copies_the_selected_trace_id_and_o_prints_its_link() {
    let proxy = Proxy::start_default().await;
    proxy.wait_healthy("default").await;
    let mut kv = proxy.kv("default").await;
    // Two slow calls: a 2 MiB value written and read back. Whichever is
    // slower heads the list; both ids are the caller's.
    let set = kv
        .set(SetRequest {
            key: "big".into(),
            value: vec![1u8; 2 * 1024 * 1024],
            ttl_seconds: 0,
        })
        .await
        .unwrap();
    let get = kv.get(GetRequest { key: "big".into() }).await.unwrap();
    let ids = [
        trace_id_header(set.metadata()),
        trace_id_header(get.metadata()),
    ];

    let console = Console::start(
        proxy.admin_addr,
        &["--trace-url", "'https://signoz.example/trace/{trace_id}'"],
        120,
        40,
    );
    let out = console.tmux(&["set-option", "-s", "set-clipboard", "on"]);
    assert!(out.status.success(), "{out:?}");
    console
        .wait_screen("the default row", |screen| {
            row(screen, "default").is_some_and(|r| r.contains("HEALTHY"))
        })
        .await;
    console.keys(&["Enter"]);
    let screen = console
        .wait_screen("both traces listed in the detail view", |screen| {
            ids.iter().all(|id| screen.contains(id.as_str()))
        })
        .await;
    // The selected (first) row is marked; its id is what `y` copies.
    let selected = screen
        .lines()
        .find(|l| l.contains('›'))
        .unwrap_or_else(|| panic!("no selected trace:\n{screen}"));
    let id = ids
        .iter()
        .find(|id| selected.contains(id.as_str()))
        .unwrap_or_else(|| panic!("the selected row is not one of {ids:?}:\n{screen}"))
        .clone();

    console.keys(&["y"]);
    console
        .wait_screen("the copied id in full in the status line", |screen| {
            screen.contains(&format!("copied trace {id}"))
        })
        .await;
    let copied = eventually(SCREEN_TIMEOUT, "the OSC 52 copy in tmux's buffer", || {
        let buffer = console.buffer();
        async move { buffer.filter(|b| !b.is_empty()) }
    })
    .await;
    assert_eq!(copied, id);

    console.keys(&["o"]);
    console
        .wait_screen("the trace link in the status line", |screen| {
            screen.contains(&format!("https://signoz.example/trace/{id}"))
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_config_reload_shows_with_its_reason() {
    let proxy = Proxy::start_with_config(
        "watch_config: false\nnamespaces:\n  - {name: default, pattern: keyvalue, backend: memstore}\n",
    )
    .await;
    proxy.wait_healthy("default").await;
    // Wide enough for the whole reason on one line.
    let console = Console::start(proxy.admin_addr, &[], 220, 30);
    console
        .wait_screen("the default row", |screen| {
            row(screen, "default").is_some_and(|r| r.contains("HEALTHY"))
        })
        .await;

    std::fs::write(
        proxy.config_path(),
        "watch_config: false\nnamespaces:\n  - {name: default, pattern: keyvalue, backend: mongo}\n",
    )
    .unwrap();
    let err = proxy
        .admin()
        .await
        .reload_config(ReloadConfigRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    console
        .wait_screen(
            "the rejected reload and its reason on the table",
            |screen| {
                screen
                    .lines()
                    .any(|l| l.contains("CONFIG_RELOAD_FAILED") && l.contains("mongo"))
            },
        )
        .await;
    // The detail view lists it among the namespace's events too.
    console.keys(&["Enter"]);
    console
        .wait_screen(
            "the rejected reload in the detail view's events",
            |screen| {
                !screen.contains("patterns (")
                    && screen
                        .lines()
                        .any(|l| l.contains("CONFIG_RELOAD_FAILED") && !l.contains('─'))
            },
        )
        .await;
}
