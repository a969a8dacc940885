//! `GetExemplars`: the trace ids of a namespace's slowest recent calls and
//! most recent failures, from the latency recorder.

use prism_observability::{latency::Exemplar, outcome::code_name};
use prism_proto::admin::v1::{self as pb, GetExemplarsRequest, GetExemplarsResponse};

use crate::{error::ProxyError, state::ProxyState};

pub(super) fn get(
    state: &ProxyState,
    request: GetExemplarsRequest,
) -> Result<GetExemplarsResponse, ProxyError> {
    state.namespaces.get(&request.namespace)?;
    let operation = (!request.operation.is_empty()).then_some(request.operation.as_str());
    let (slowest, failures) = state.latency.exemplars(&request.namespace, operation);
    Ok(GetExemplarsResponse {
        slowest: slowest.iter().map(exemplar).collect(),
        failures: failures.iter().map(exemplar).collect(),
    })
}

fn exemplar(e: &Exemplar) -> pb::Exemplar {
    pb::Exemplar {
        operation: e.operation.clone(),
        trace_id: e.trace_id.to_string(),
        timestamp_ms: super::epoch_ms(e.at),
        latency_us: e.latency_us,
        code: e.code as i32,
        code_name: code_name(e.code).to_string(),
        message: e.message.clone(),
    }
}
