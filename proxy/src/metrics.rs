//! Prometheus text exposition at `GET /metrics`: request counters and latency
//! histograms from the data plane, plus one gauge per namespace.

use std::{fmt::Write as _, sync::Arc};

use crate::{config::PatternKind, namespace::State as NsState, state::ProxyState};
use axum::{Router, extract::State, http::header, response::IntoResponse, routing::get};

/// The `/metrics` endpoint, served by [`crate::listener::serve`].
pub(crate) fn router(state: Arc<ProxyState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(state): State<Arc<ProxyState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&state),
    )
}

pub(crate) fn render(state: &ProxyState) -> String {
    let mut out = state.latency.prometheus();
    out.push_str("# HELP prism_pattern_up 1 when the namespace's pattern process is RUNNING.\n");
    out.push_str("# TYPE prism_pattern_up gauge\n");
    let namespaces = state.namespaces.list();
    for ns in &namespaces {
        let up = u8::from(ns.status().state == NsState::Running);
        let _ = writeln!(out, "prism_pattern_up{{namespace=\"{}\"}} {up}", ns.name());
    }
    out.push_str("# HELP prism_pattern_restarts_total Pattern process restarts per namespace.\n");
    out.push_str("# TYPE prism_pattern_restarts_total counter\n");
    for ns in &namespaces {
        let _ = writeln!(
            out,
            "prism_pattern_restarts_total{{namespace=\"{}\"}} {}",
            ns.name(),
            ns.status().restart_count
        );
    }
    let receivers = state.subscriptions.stats(PatternKind::MulticastRegistry);
    let mut names: Vec<&String> = receivers.keys().collect();
    names.sort();
    out.push_str(
        "# HELP prism_registry_receive_streams Live Receive streams per registry namespace.\n",
    );
    out.push_str("# TYPE prism_registry_receive_streams gauge\n");
    for ns in &names {
        let _ = writeln!(
            out,
            "prism_registry_receive_streams{{namespace=\"{ns}\"}} {}",
            receivers[*ns].0
        );
    }
    let pubsub = state.subscriptions.stats(PatternKind::Pubsub);
    let mut names: Vec<&String> = pubsub.keys().collect();
    names.sort();
    out.push_str("# HELP prism_pubsub_subscriptions Live subscriber streams per namespace.\n");
    out.push_str("# TYPE prism_pubsub_subscriptions gauge\n");
    for ns in &names {
        let _ = writeln!(
            out,
            "prism_pubsub_subscriptions{{namespace=\"{ns}\"}} {}",
            pubsub[*ns].0
        );
    }
    out.push_str(
        "# HELP prism_pubsub_dropped_total Messages dropped for slow subscribers per namespace.\n",
    );
    out.push_str("# TYPE prism_pubsub_dropped_total counter\n");
    for ns in &names {
        let _ = writeln!(
            out,
            "prism_pubsub_dropped_total{{namespace=\"{ns}\"}} {}",
            pubsub[*ns].1
        );
    }
    let _ = writeln!(
        out,
        "# HELP prism_in_flight_requests Data-plane calls being served.\n# TYPE prism_in_flight_requests gauge\nprism_in_flight_requests {}",
        state.drain.in_flight()
    );
    out
}
