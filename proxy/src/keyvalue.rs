//! The KeyValue data plane: each call is admitted (not draining), routed by
//! the `x-prism-namespace` header, checked against the namespace's limits,
//! forwarded to the pattern within the caller's deadline, its reply passed
//! back, and its latency and outcome recorded.

use std::{future::Future, sync::Arc, time::Duration};

use prism_observability::grpc::{self as tracing_grpc, Side};
use prism_proto::{
    keyvalue::v1::{
        DeleteRequest, DeleteResponse, ExistsRequest, ExistsResponse, GetRequest, GetResponse,
        ScanRequest, ScanResponse, SetRequest, SetResponse, key_value_client::KeyValueClient,
        key_value_server::KeyValue,
    },
    limits::Limits,
};
use tokio::time::Instant;
use tonic::{
    Request, Response, Status,
    metadata::{MetadataMap, MetadataValue},
    transport::Channel,
};
use tracing::{Instrument, Span};

use crate::{error::ProxyError, state::ProxyState};

pub const NAMESPACE_HEADER: &str = tracing_grpc::NAMESPACE_HEADER;
pub const DEFAULT_NAMESPACE: &str = "default";
const SERVICE: &str = "prism.keyvalue.v1.KeyValue";

type Client = KeyValueClient<Channel>;

pub struct KeyValueProxy {
    state: Arc<ProxyState>,
}

impl KeyValueProxy {
    pub fn new(state: Arc<ProxyState>) -> Self {
        Self { state }
    }

    /// Admit → route → check → forward → record, for one call.
    async fn call<Req, Resp, Fut>(
        &self,
        operation: &'static str,
        request: Request<Req>,
        check: impl FnOnce(&Limits, &Req) -> Result<(), Status>,
        send: impl FnOnce(Client, Request<Req>) -> Fut,
    ) -> Result<Response<Resp>, Status>
    where
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let started = Instant::now();
        let _in_flight = self.state.drain.enter()?;
        let namespace = self
            .state
            .namespaces
            .get(namespace_of(request.metadata())?)?;
        let deadline = grpc_timeout(request.metadata());
        let result = async {
            let routed = namespace.route()?;
            let pattern = routed.spec.config.pattern.as_str();
            Span::current().record("prism.pattern", pattern);
            let body = request.into_inner();
            check(&routed.spec.limits, &body)?;
            let target = Target {
                channel: routed.channel,
                namespace: namespace.name(),
                pattern,
                operation,
            };
            forward(target, body, deadline, send)
                .await
                .map_err(|status| from_pattern(namespace.name(), status))
        }
        .await;
        let code = result
            .as_ref()
            .map_or_else(Status::code, |_| tonic::Code::Ok);
        let elapsed = started.elapsed();
        self.state
            .latency
            .record(namespace.name(), operation, code, elapsed);
        tracing::debug!(
            namespace = namespace.name(),
            operation,
            code = ?code,
            elapsed_us = elapsed.as_micros() as u64,
            "call finished"
        );
        result
    }
}

/// Where a routed call goes.
struct Target<'a> {
    channel: Channel,
    namespace: &'a str,
    pattern: &'static str,
    operation: &'static str,
}

/// Sends `body` to the pattern within the caller's deadline, in a CLIENT
/// span whose context travels in the request's metadata.
async fn forward<Req, Resp, Fut>(
    target: Target<'_>,
    body: Req,
    deadline: Option<Duration>,
    send: impl FnOnce(Client, Request<Req>) -> Fut,
) -> Result<Response<Resp>, Status>
where
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    let span = tracing_grpc::client_span(SERVICE, target.operation);
    span.record("prism.namespace", target.namespace);
    span.record("prism.pattern", target.pattern);
    let mut request = Request::new(body);
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    tracing_grpc::inject(&span, request.metadata_mut());
    let metadata = request.metadata_mut();
    if let Ok(value) = MetadataValue::try_from(target.namespace) {
        metadata.insert(tracing_grpc::NAMESPACE_HEADER, value);
    }
    metadata.insert(
        tracing_grpc::PATTERN_HEADER,
        MetadataValue::from_static(target.pattern),
    );
    let client = KeyValueClient::new(target.channel)
        .max_decoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES);
    let reply = send(client, request).instrument(span.clone());
    let response = match deadline {
        Some(deadline) => tokio::time::timeout(deadline, reply)
            .await
            .unwrap_or_else(|_| Err(ProxyError::DeadlineExceeded(deadline).into())),
        None => reply.await,
    };
    let code = response.as_ref().map_or_else(|s| s.code() as i32, |_| 0);
    tracing_grpc::record_status(&span, code, Side::Client);
    Ok(Response::new(response?.into_inner()))
}

/// A status the pattern sent passes through (code, message and details, not
/// the pattern's own headers); one the transport made up (the connection
/// broke, the process died) means the pattern is unreachable.
fn from_pattern(namespace: &str, status: Status) -> Status {
    if std::error::Error::source(&status).is_some() {
        ProxyError::PatternUnreachable {
            namespace: namespace.to_string(),
            reason: status.message().to_string(),
        }
        .into()
    } else {
        Status::with_details(
            status.code(),
            status.message(),
            status.details().to_vec().into(),
        )
    }
}

fn namespace_of(metadata: &MetadataMap) -> Result<&str, ProxyError> {
    match metadata.get(NAMESPACE_HEADER) {
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
pub fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
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

#[tonic::async_trait]
impl KeyValue for KeyValueProxy {
    async fn set(&self, request: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
        self.call(
            "Set",
            request,
            |limits, r| limits.check_set(&r.key, &r.value, r.ttl_seconds),
            |mut c, r| async move { c.set(r).await },
        )
        .await
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        self.call(
            "Get",
            request,
            |limits, r| limits.check_key(&r.key),
            |mut c, r| async move { c.get(r).await },
        )
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        self.call(
            "Delete",
            request,
            |limits, r| limits.check_key(&r.key),
            |mut c, r| async move { c.delete(r).await },
        )
        .await
    }

    async fn exists(
        &self,
        request: Request<ExistsRequest>,
    ) -> Result<Response<ExistsResponse>, Status> {
        self.call(
            "Exists",
            request,
            |limits, r| limits.check_key(&r.key),
            |mut c, r| async move { c.exists(r).await },
        )
        .await
    }

    async fn scan(&self, request: Request<ScanRequest>) -> Result<Response<ScanResponse>, Status> {
        self.call(
            "Scan",
            request,
            |_, _| Ok(()),
            |mut c, r| async move { c.scan(r).await },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn metadata(pairs: &[(&'static str, &'static str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn namespace_defaults_to_default() {
        assert_eq!(namespace_of(&metadata(&[])).unwrap(), "default");
        assert_eq!(
            namespace_of(&metadata(&[(NAMESPACE_HEADER, "")])).unwrap(),
            "default"
        );
        assert_eq!(
            namespace_of(&metadata(&[(NAMESPACE_HEADER, "cache")])).unwrap(),
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

    #[test]
    fn pattern_statuses_pass_through_but_transport_errors_are_unavailable() {
        let own = from_pattern("default", Status::not_found("key not found"));
        assert_eq!(own.code(), Code::NotFound);
        let broken = Status::from_error(Box::new(std::io::Error::other("connection reset")));
        let mapped = from_pattern("default", broken);
        assert_eq!(mapped.code(), Code::Unavailable);
        assert!(
            mapped.message().contains("`default`"),
            "{}",
            mapped.message()
        );
    }
}
