//! The detail view's trace exemplars as rows: when, which operation, its
//! latency (slow calls) or status code (failures), and the trace id whole,
//! so it can be read off the screen as well as copied.

use super::{Cell, Tone, format};
use crate::{
    app::App,
    model::{Exemplar, RpcError},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExemplarsView {
    pub rows: Vec<ExemplarRow>,
    pub selected: Option<usize>,
    /// Shown instead of rows when there are none, or why there are none.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExemplarRow {
    pub age: String,
    pub operation: String,
    /// Latency for a slow call, the code for a failure.
    pub outcome: Cell,
    pub trace_id: String,
}

pub(crate) fn exemplars(app: &App) -> ExemplarsView {
    let state = app.exemplars.as_ref();
    let (calls, note): (&[Exemplar], Option<String>) = match state.and_then(|s| s.data.as_ref()) {
        None => (&[], Some("loading…".to_string())),
        Some(Err(RpcError::Unimplemented)) => (
            &[],
            Some("n/a (this proxy does not serve GetExemplars)".to_string()),
        ),
        Some(Err(error)) => (&[], Some(format!("n/a ({error})"))),
        Some(Ok(e)) if e.calls.is_empty() => {
            (&[], Some("no traced calls in the window yet".to_string()))
        }
        Some(Ok(e)) => (&e.calls, None),
    };
    let rows = calls
        .iter()
        .map(|e| ExemplarRow {
            age: format::ago(app.now_ms, e.timestamp_ms),
            operation: e.operation.clone(),
            outcome: if e.failed {
                Cell::new(e.code.clone(), Tone::Bad)
            } else {
                Cell::new(format::micros(e.latency_us), Tone::Warn)
            },
            trace_id: e.trace_id.clone(),
        })
        .collect::<Vec<_>>();
    let selected = state
        .filter(|_| !rows.is_empty())
        .map(|s| s.cursor.min(rows.len() - 1));
    ExemplarsView {
        rows,
        selected,
        note,
    }
}
