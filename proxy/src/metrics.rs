//! Prometheus text exposition at `GET /metrics`: request counters and latency
//! histograms from the data plane, plus one gauge per namespace. A scraper
//! that accepts `application/openmetrics-text` gets the OpenMetrics format
//! instead, whose latency buckets carry trace exemplars
//! (`# {trace_id="…"} seconds timestamp`); the Prometheus text stays as is.
//!
//! Label scheme: `namespace` (configured names only), `operation` (the RPC
//! name), `code` (the gRPC status name) and `outcome` (`ok`,
//! `client_error`, `error`: see `prism_observability::outcome`).

use std::{fmt::Write as _, sync::Arc};

use crate::{config::PatternKind, namespace::State as NsState, state::ProxyState};
use axum::{
    Router,
    extract::State,
    http::{HeaderMap, header},
    response::IntoResponse,
    routing::get,
};

const PROMETHEUS_TYPE: &str = "text/plain; version=0.0.4";
const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `/metrics` endpoint, served by [`crate::listener::serve`].
pub(crate) fn router(state: Arc<ProxyState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(state): State<Arc<ProxyState>>, headers: HeaderMap) -> impl IntoResponse {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(header::CONTENT_TYPE, OPENMETRICS_TYPE)],
            render_openmetrics(&state),
        )
    } else {
        ([(header::CONTENT_TYPE, PROMETHEUS_TYPE)], render(&state))
    }
}

pub(crate) fn render(state: &ProxyState) -> String {
    let mut out = state.latency.prometheus();
    render_rest(state, &mut out);
    out
}

/// The OpenMetrics exposition: counter families named without `_total`,
/// exemplars on the latency buckets, `# EOF` at the end.
pub(crate) fn render_openmetrics(state: &ProxyState) -> String {
    let mut rest = String::new();
    render_rest(state, &mut rest);
    let mut out = state.latency.openmetrics();
    out.push_str(&counter_families(&rest));
    out.push_str("# EOF\n");
    out
}

/// Renames `# HELP`/`# TYPE` lines of counters named `…_total` to their
/// family name, as OpenMetrics wants; samples keep the suffix.
fn counter_families(text: &str) -> String {
    let counters: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .filter(|name| name.ends_with("_total"))
        .collect();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let name = counters
                .iter()
                .find(|c| rest.starts_with(**c) && rest[c.len()..].starts_with(' '))?;
            Some(format!(
                "{prefix}{}{}",
                name.trim_end_matches("_total"),
                &rest[name.len()..]
            ))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

fn render_rest(state: &ProxyState, out: &mut String) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_families_lose_the_total_suffix_in_openmetrics() {
        let text = "# HELP prism_pattern_restarts_total Restarts.\n# TYPE prism_pattern_restarts_total counter\nprism_pattern_restarts_total{namespace=\"a\"} 2\n# HELP prism_pattern_up Up.\n# TYPE prism_pattern_up gauge\nprism_pattern_up{namespace=\"a\"} 1\n";
        assert_eq!(
            counter_families(text),
            "# HELP prism_pattern_restarts Restarts.\n# TYPE prism_pattern_restarts counter\nprism_pattern_restarts_total{namespace=\"a\"} 2\n# HELP prism_pattern_up Up.\n# TYPE prism_pattern_up gauge\nprism_pattern_up{namespace=\"a\"} 1\n"
        );
    }
}
