//! The detail view's trace exemplars: fetched with the histogram, selected
//! with j/k, `y` copies the selected trace id (the loop writes it to the
//! terminal as OSC 52), `o` prints its link from `--trace-url`.

use crate::{
    app::{App, ExemplarState, Status},
    event::Command,
    model::{Exemplar, Exemplars, RpcError},
};

/// What `--trace-url` is filled in with.
pub(crate) const TRACE_ID_PLACEHOLDER: &str = "{trace_id}";

pub(crate) fn open(app: &mut App, namespace: &str) {
    app.exemplars = Some(ExemplarState {
        namespace: namespace.to_string(),
        data: None,
        in_flight: false,
        cursor: 0,
        selected: None,
    });
}

/// Asks for the exemplars unless a request is out or the proxy does not
/// serve `GetExemplars`.
pub(crate) fn fetch(app: &mut App) -> Vec<Command> {
    if !app.is_connected() {
        return Vec::new();
    }
    let Some(state) = app.exemplars.as_mut() else {
        return Vec::new();
    };
    if state.in_flight || state.data == Some(Err(RpcError::Unimplemented)) {
        return Vec::new();
    }
    state.in_flight = true;
    vec![Command::FetchExemplars {
        namespace: state.namespace.clone(),
    }]
}

pub(crate) fn on_answer(app: &mut App, namespace: &str, result: Result<Exemplars, RpcError>) {
    let Some(state) = app.exemplars.as_mut().filter(|s| s.namespace == namespace) else {
        return;
    };
    state.in_flight = false;
    state.data = Some(result);
    // The selection follows its trace id; else it stays at the same row.
    let calls = calls(state);
    let position = state
        .selected
        .as_ref()
        .and_then(|id| calls.iter().position(|c| c.trace_id == *id));
    let cursor = position.unwrap_or(state.cursor.min(calls.len().saturating_sub(1)));
    let selected = calls.get(cursor).map(|c| c.trace_id.clone());
    state.cursor = cursor;
    state.selected = selected;
}

/// A reconnection: whatever was out died with the old connection.
pub(crate) fn on_reconnect(app: &mut App) {
    if let Some(state) = app.exemplars.as_mut() {
        state.in_flight = false;
        if state.data == Some(Err(RpcError::Unimplemented)) {
            state.data = None;
        }
    }
}

fn calls(state: &ExemplarState) -> &[Exemplar] {
    match &state.data {
        Some(Ok(e)) => &e.calls,
        _ => &[],
    }
}

/// j/k in the detail view.
pub(crate) fn move_selection(app: &mut App, delta: isize) {
    let Some(state) = app.exemplars.as_mut() else {
        return;
    };
    let Some(last) = calls(state).len().checked_sub(1) else {
        return;
    };
    state.cursor = (state.cursor as isize)
        .saturating_add(delta)
        .clamp(0, last as isize) as usize;
    state.selected = calls(state).get(state.cursor).map(|c| c.trace_id.clone());
}

fn selected(app: &App) -> Option<&Exemplar> {
    let state = app.exemplars.as_ref()?;
    calls(state).get(state.cursor)
}

/// `y`: the selected trace id to the clipboard, and in full in the status line.
pub(crate) fn copy(app: &mut App) {
    let Some(trace_id) = selected(app).map(|e| e.trace_id.clone()) else {
        app.status = Some(Status::NoExemplar);
        return;
    };
    app.clipboard = Some(trace_id.clone());
    app.status = Some(Status::Copied { trace_id });
}

/// `o`: the selected trace's link in the status line (and the clipboard,
/// so it can be pasted into a browser).
pub(crate) fn link(app: &mut App) {
    let Some(trace_id) = selected(app).map(|e| e.trace_id.clone()) else {
        app.status = Some(Status::NoExemplar);
        return;
    };
    app.status = Some(match &app.options.trace_url {
        Some(template) => {
            let url = trace_link(template, &trace_id);
            app.clipboard = Some(url.clone());
            Status::TraceLink { url }
        }
        None => Status::NoTraceUrl { trace_id },
    });
}

/// `template` with `{trace_id}` filled in; a template without the
/// placeholder gets the id appended.
pub(crate) fn trace_link(template: &str, trace_id: &str) -> String {
    if template.contains(TRACE_ID_PLACEHOLDER) {
        template.replace(TRACE_ID_PLACEHOLDER, trace_id)
    } else {
        format!("{template}{trace_id}")
    }
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::KeyCode;

    use super::*;
    use crate::{
        app::Options,
        event::Event,
        model::Exemplar,
        update::{
            tests::{connected, key, options, press},
            update,
        },
    };

    fn call(trace_id: &str, failed: bool) -> Exemplar {
        Exemplar {
            operation: "Get".to_string(),
            trace_id: trace_id.to_string(),
            timestamp_ms: 999_000,
            latency_us: 1_500_000,
            code: if failed { "UNAVAILABLE" } else { "OK" }.to_string(),
            message: String::new(),
            failed,
        }
    }

    fn answer(app: &mut App, ids: &[&str]) {
        update(
            app,
            Event::Exemplars {
                namespace: "cache".to_string(),
                result: Ok(Exemplars {
                    namespace: "cache".to_string(),
                    calls: ids.iter().map(|id| call(id, false)).collect(),
                }),
            },
        );
    }

    fn detail(options: Options) -> App {
        let mut app = connected(options);
        let commands = update(&mut app, key(KeyCode::Enter));
        assert!(
            commands.contains(&Command::FetchExemplars {
                namespace: "cache".to_string()
            }),
            "{commands:?}"
        );
        app
    }

    #[test]
    fn y_copies_the_selected_trace_id_and_shows_it() {
        let mut app = detail(options());
        press(&mut app, "y");
        assert_eq!(app.status, Some(Status::NoExemplar));
        assert_eq!(app.clipboard, None);
        answer(&mut app, &["aaa", "bbb", "ccc"]);
        press(&mut app, "jjjj");
        press(&mut app, "k");
        press(&mut app, "y");
        assert_eq!(app.clipboard.as_deref(), Some("bbb"));
        assert_eq!(
            app.status,
            Some(Status::Copied {
                trace_id: "bbb".to_string()
            })
        );
        // A refreshed list keeps the selection on the same trace.
        answer(&mut app, &["zzz", "aaa", "bbb"]);
        assert_eq!(app.exemplars.as_ref().unwrap().cursor, 2);
        // No second request while one is out.
        let state = app.exemplars.as_mut().unwrap();
        state.in_flight = true;
        assert!(fetch(&mut app).is_empty());
    }

    #[test]
    fn o_prints_the_link_only_with_a_trace_url() {
        let mut app = detail(options());
        answer(&mut app, &["abc"]);
        press(&mut app, "o");
        assert_eq!(
            app.status,
            Some(Status::NoTraceUrl {
                trace_id: "abc".to_string()
            })
        );
        let mut app = detail(Options {
            trace_url: Some("https://signoz.example/trace/{trace_id}".to_string()),
            ..options()
        });
        answer(&mut app, &["abc"]);
        press(&mut app, "o");
        assert_eq!(
            app.status,
            Some(Status::TraceLink {
                url: "https://signoz.example/trace/abc".to_string()
            })
        );
    }

    #[test]
    fn an_answer_for_another_namespace_is_ignored() {
        let mut app = detail(options());
        update(
            &mut app,
            Event::Exemplars {
                namespace: "orders".to_string(),
                result: Ok(Exemplars::default()),
            },
        );
        assert_eq!(app.exemplars.as_ref().unwrap().data, None);
    }

    #[test]
    fn links_fill_in_the_trace_id() {
        assert_eq!(
            trace_link("https://signoz.example/trace/{trace_id}", "abc"),
            "https://signoz.example/trace/abc"
        );
        assert_eq!(
            trace_link("https://x/?id={trace_id}&a={trace_id}", "1"),
            "https://x/?id=1&a=1"
        );
        assert_eq!(trace_link("https://x/trace/", "abc"), "https://x/trace/abc");
    }
}
