//! Trace exemplars as the console uses them (`GetExemplars`): calls an
//! operator may want to open in the trace viewer.

use prism_proto::admin::v1 as pb;

/// One call with its trace id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Exemplar {
    pub operation: String,
    /// 32 hex digits.
    pub trace_id: String,
    pub timestamp_ms: i64,
    pub latency_us: u64,
    /// e.g. `OK`, `UNAVAILABLE`.
    pub code: String,
    /// A failure's message; empty for OK calls.
    pub message: String,
    /// From the failure list rather than the slowest calls.
    pub failed: bool,
}

/// A namespace's exemplars: the slowest calls first, then the failures,
/// in one list the detail view selects from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Exemplars {
    pub namespace: String,
    pub calls: Vec<Exemplar>,
}

impl Exemplars {
    pub(crate) fn from_response(namespace: String, r: pb::GetExemplarsResponse) -> Self {
        let convert = |e: pb::Exemplar, failed| Exemplar {
            operation: e.operation,
            trace_id: e.trace_id,
            timestamp_ms: e.timestamp_ms,
            latency_us: e.latency_us,
            code: e.code_name,
            message: e.message,
            failed,
        };
        let mut calls: Vec<Exemplar> = r.slowest.into_iter().map(|e| convert(e, false)).collect();
        calls.extend(r.failures.into_iter().map(|e| convert(e, true)));
        Self { namespace, calls }
    }
}
