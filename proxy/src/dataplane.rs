//! What every data-plane service shares: reading the namespace and deadline
//! from the call, routing to the namespace's pattern, the CLIENT span and
//! trace context on the way to the pattern, mapping the pattern's answer, and
//! recording latency and exemplars. [`unary`] runs one whole unary call as named steps:
//! admit → check → route → take its bytes of the in-flight budget → forward
//! → record.

use std::{future::Future, sync::Arc, time::Duration};

use prism_observability::grpc::{self as tracing_grpc, Side};
use prism_proto::limits::Limits;
use tokio::time::Instant;
use tonic::{
    Request, Response, Status,
    metadata::{MetadataMap, MetadataValue},
};
use tracing::{Instrument, Span};

use crate::{
    auth::Caller,
    channel::PatternChannel,
    config::PatternKind,
    error::{self, ProxyError},
    state::ProxyState,
};

pub(crate) const NAMESPACE_HEADER: &str = tracing_grpc::NAMESPACE_HEADER;
pub(crate) const DEFAULT_NAMESPACE: &str = "default";

/// How many bytes a request holds, for the namespace's in-flight budget.
pub(crate) trait Weighed {
    fn weight(&self) -> usize;
}

impl<T: prost::Message> Weighed for T {
    fn weight(&self) -> usize {
        self.encoded_len()
    }
}

/// One unary call of `service/operation` on a namespace serving `kind`:
/// a typed request, or an encoded one ([`crate::forward`]).
pub(crate) async fn unary<Req, Resp, Fut, E>(
    state: &ProxyState,
    kind: PatternKind,
    (service, operation): (&'static str, &'static str),
    request: Request<Req>,
    check: impl FnOnce(&Limits, &Req) -> Result<(), E>,
    send: impl FnOnce(PatternChannel, Request<Req>) -> Fut,
) -> Result<Response<Resp>, Status>
where
    Req: Weighed,
    E: Into<ProxyError>,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    let started = Instant::now();
    let _in_flight = state.drain.enter()?;
    let namespace = state
        .namespaces
        .get(namespace_of(request.metadata().as_ref())?)?;
    let deadline = grpc_timeout(request.metadata());
    let subject = subject_of(&request);
    let result = async {
        let body = request.into_inner();
        // Checked before routing: bad input is refused the same way whatever
        // state the namespace's pattern is in.
        check(&namespace.spec().limits, &body).map_err(Into::into)?;
        let routed = namespace.route(kind)?;
        Span::current().record("prism.pattern", kind.as_str());
        let _budget =
            namespace.admit(body.weight(), routed.spec.config.limits.max_in_flight_bytes)?;
        let mut outgoing = Request::new(body);
        let span = client_span(
            (service, operation),
            namespace.name(),
            kind,
            subject.as_deref(),
            &mut outgoing,
        );
        if let Some(deadline) = deadline {
            outgoing.set_timeout(deadline);
        }
        let reply = send(routed.channel, outgoing).instrument(span.clone());
        let response = match deadline {
            Some(deadline) => tokio::time::timeout(deadline, reply)
                .await
                .unwrap_or_else(|_| Err(ProxyError::DeadlineExceeded(deadline).into())),
            None => reply.await,
        };
        let code = response.as_ref().map_or_else(|s| s.code() as i32, |_| 0);
        tracing_grpc::record_status(&span, code, Side::Client);
        response
            .map(|r| Response::new(r.into_inner()))
            .map_err(|status| error::from_pattern(namespace.name(), status))
    }
    .await;
    let code = result
        .as_ref()
        .map_or_else(Status::code, |_| tonic::Code::Ok);
    let elapsed = started.elapsed();
    // Asked only when the call becomes an exemplar: the server span the
    // trace layer opened is current here, and its trace id is the caller's
    // `x-prism-trace-id`.
    state.latency.record_traced(
        namespace.name(),
        operation,
        code,
        elapsed,
        || tracing_grpc::trace_id_of(&Span::current()),
        || {
            result
                .as_ref()
                .err()
                .map(|status| status.message().to_string())
                .unwrap_or_default()
        },
    );
    tracing::debug!(
        namespace = namespace.name(),
        operation,
        code = ?code,
        elapsed_us = elapsed.as_micros() as u64,
        "call finished"
    );
    result
}

/// The authenticated caller's name (`sub:…`, `cert:…`), which the pattern
/// gets for its spans; `None` with auth off. Only the proxy sets it: the
/// outgoing call is built afresh, so a client's own header never passes.
pub(crate) fn subject_of<T>(request: &Request<T>) -> Option<Arc<str>> {
    request
        .extensions()
        .get::<Caller>()
        .map(|caller| caller.name.clone())
}

/// Opens the CLIENT span for a call to the pattern and writes its trace
/// context, the namespace, the pattern and the caller into the outgoing
/// metadata.
pub(crate) fn client_span<T>(
    (service, operation): (&str, &str),
    namespace: &str,
    kind: PatternKind,
    subject: Option<&str>,
    request: &mut Request<T>,
) -> Span {
    let span = tracing_grpc::client_span(service, operation);
    span.record("prism.namespace", namespace);
    span.record("prism.pattern", kind.as_str());
    tracing_grpc::inject(&span, request.metadata_mut());
    let metadata = request.metadata_mut();
    if let Ok(value) = MetadataValue::try_from(namespace) {
        metadata.insert(tracing_grpc::NAMESPACE_HEADER, value);
    }
    metadata.insert(
        tracing_grpc::PATTERN_HEADER,
        MetadataValue::from_static(kind.as_str()),
    );
    if let Some(value) = subject.and_then(|s| MetadataValue::try_from(s).ok()) {
        span.record("enduser.id", subject);
        metadata.insert(tracing_grpc::SUBJECT_HEADER, value);
    }
    span
}

/// The namespace a call names in `x-prism-namespace` (default `default`).
/// Takes the HTTP headers so the request-body bounds, which run before tonic
/// has a `MetadataMap`, read the header by the same rule.
pub(crate) fn namespace_of(headers: &http::HeaderMap) -> Result<&str, ProxyError> {
    match headers.get(NAMESPACE_HEADER) {
        None => Ok(DEFAULT_NAMESPACE),
        Some(value) => match value.to_str() {
            Ok("") => Ok(DEFAULT_NAMESPACE),
            Ok(name) => Ok(name),
            Err(_) => Err(ProxyError::BadHeader {
                header: NAMESPACE_HEADER,
                reason: "must be ASCII".into(),
            }),
        },
    }
}

/// The caller's deadline from the `grpc-timeout` header (`<digits><unit>`).
pub(crate) fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&'static str, &'static str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn namespace_defaults_to_default() {
        assert_eq!(namespace_of(metadata(&[]).as_ref()).unwrap(), "default");
        assert_eq!(
            namespace_of(metadata(&[(NAMESPACE_HEADER, "")]).as_ref()).unwrap(),
            "default"
        );
        assert_eq!(
            namespace_of(metadata(&[(NAMESPACE_HEADER, "cache")]).as_ref()).unwrap(),
            "cache"
        );
    }

    #[test]
    fn parses_grpc_timeout_units() {
        let t = |v| grpc_timeout(&metadata(&[("grpc-timeout", v)]));
        assert_eq!(t("250m"), Some(Duration::from_millis(250)));
        assert_eq!(t("2S"), Some(Duration::from_secs(2)));
        assert_eq!(t("1M"), Some(Duration::from_secs(60)));
        assert_eq!(t("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(t("5u"), Some(Duration::from_micros(5)));
        assert_eq!(t("7n"), Some(Duration::from_nanos(7)));
        assert_eq!(t("10x"), None);
        assert_eq!(t("m"), None);
        assert_eq!(t("123456789m"), None, "more than 8 digits");
    }
}
