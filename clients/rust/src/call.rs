//! One call's journey: the metadata every request carries (namespace,
//! token, traceparent, time left), the client span, the deadline, and
//! retries for the idempotent ones.

use std::future::Future;
use std::time::Duration;

use prism_observability::grpc::{self, NAMESPACE_HEADER, Side};
use prism_proto::keyvalue::v1::key_value_client::KeyValueClient;
use prism_proto::limits::MAX_MESSAGE_BYTES;
use prism_proto::pubsub::v1::pub_sub_client::PubSubClient;
use prism_proto::registry::v1::multicast_registry_client::MulticastRegistryClient;
use tokio::time::Instant;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};
use tracing::{Instrument, Span};

use crate::error::trace_id;
use crate::{Error, PrismClient, Token};

impl PrismClient {
    pub(crate) fn kv_stub(&self) -> KeyValueClient<Channel> {
        KeyValueClient::new(self.inner.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub(crate) fn pubsub_stub(&self) -> PubSubClient<Channel> {
        PubSubClient::new(self.inner.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub(crate) fn registry_stub(&self) -> MulticastRegistryClient<Channel> {
        MulticastRegistryClient::new(self.inner.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// `message` with the namespace, the token, the span's traceparent and
    /// (for unary calls) `left` as its `grpc-timeout`.
    pub(crate) async fn request<T>(
        &self,
        namespace: &str,
        message: T,
        left: Option<Duration>,
        span: &Span,
    ) -> Result<Request<T>, Error> {
        let mut request = Request::new(message);
        let namespace = MetadataValue::try_from(namespace).map_err(|e| Error::Local {
            what: "namespace",
            reason: e.to_string(),
        })?;
        request.metadata_mut().insert(NAMESPACE_HEADER, namespace);
        if let Some(token) = &self.inner.token {
            let secret = match token {
                Token::Static(secret) => secret.clone(),
                Token::Provider(provider) => provider.token().await?,
            };
            let value =
                MetadataValue::try_from(format!("Bearer {}", secret.expose())).map_err(|_| {
                    Error::Local {
                        what: "token",
                        reason: "not printable ASCII".into(),
                    }
                })?;
            request.metadata_mut().insert("authorization", value);
        }
        grpc::inject(span, request.metadata_mut());
        if let Some(left) = left {
            request.set_timeout(left);
        }
        Ok(request)
    }

    /// A unary `service/method` call with the client's deadline; retried on
    /// `UNAVAILABLE` when `idempotent`.
    pub(crate) async fn unary<Req, Resp, F, Fut>(
        &self,
        (service, method): (&str, &str),
        namespace: &str,
        idempotent: bool,
        message: Req,
        send: F,
    ) -> Result<Resp, Error>
    where
        Req: Clone,
        F: Fn(Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Resp>, Status>>,
    {
        let span = grpc::client_span(service, method);
        span.record("prism.namespace", namespace);
        let deadline = Instant::now() + self.inner.timeout;
        let attempts = crate::retry::run(&self.inner.retry, idempotent, deadline, |left| {
            let message = message.clone();
            let span = span.clone();
            let send = &send;
            async move {
                let request = self.request(namespace, message, Some(left), &span).await?;
                within(left, send(request)).await
            }
        });
        let result = attempts.instrument(span.clone()).await;
        let code = match &result {
            Ok(_) => 0,
            Err(error) => error.code().map_or(2, |c| c as i32),
        };
        grpc::record_status(&span, code, Side::Client);
        result
    }
}

impl PrismClient {
    /// Opens the server stream `service/method`, retried on `UNAVAILABLE`
    /// (opening a stream is idempotent): the stream and the call's trace
    /// id. The deadline bounds opening the stream, not its life, so the
    /// request carries no `grpc-timeout`.
    pub(crate) async fn server_stream<Req, Resp, F, Fut>(
        &self,
        (service, method): (&str, &str),
        namespace: &str,
        message: Req,
        open: F,
    ) -> Result<Incoming<Resp>, Error>
    where
        Req: Clone,
        F: Fn(Request<Req>) -> Fut,
        Fut: Future<Output = Result<Response<Streaming<Resp>>, Status>>,
    {
        let span = grpc::client_span(service, method);
        span.record("prism.namespace", namespace);
        let deadline = Instant::now() + self.inner.timeout;
        let attempts = crate::retry::run(&self.inner.retry, true, deadline, |left| {
            let message = message.clone();
            let span = &span;
            let open = &open;
            async move {
                let request = self.request(namespace, message, None, span).await?;
                let call = async {
                    let response = open(request).await?;
                    let trace_id = trace_id(response.metadata());
                    Ok(Response::new(Incoming {
                        inner: response.into_inner(),
                        trace_id,
                    }))
                };
                within(left, call).await
            }
        });
        let result = attempts.instrument(span.clone()).await;
        let code = match &result {
            Ok(_) => 0,
            Err(error) => error.code().map_or(2, |c| c as i32),
        };
        grpc::record_status(&span, code, Side::Client);
        result
    }
}

/// An open server stream whose errors carry the trace id of the call that
/// opened it (a status after the headers usually has none of its own).
#[derive(Debug)]
pub(crate) struct Incoming<T> {
    inner: Streaming<T>,
    trace_id: Option<String>,
}

impl<T> Incoming<T> {
    pub(crate) fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }

    pub(crate) fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<T, Error>>> {
        use futures_util::Stream;
        std::pin::Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|item| {
                item.map(|result| {
                    result.map_err(|status| Error::from_status(&status, self.trace_id.as_deref()))
                })
            })
    }
}

/// `call`, failing with `DEADLINE_EXCEEDED` when it is not over in `left`
/// (the `grpc-timeout` header asks the proxy; this holds the client to it
/// even when the answer never comes).
pub(crate) async fn within<T>(
    left: Duration,
    call: impl Future<Output = Result<Response<T>, Status>>,
) -> Result<T, Error> {
    match tokio::time::timeout(left, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => Err(Error::from(status)),
        Err(_) => Err(Error::DeadlineExceeded(crate::Detail {
            message: format!("no answer within {left:?}"),
            trace_id: None,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_with_no_answer_ends_deadline_exceeded_when_its_time_is_up() {
        let start = Instant::now();
        let never = std::future::pending::<Result<Response<()>, Status>>();
        let error = within(Duration::from_secs(3), never).await.unwrap_err();
        assert!(matches!(error, Error::DeadlineExceeded(_)), "{error}");
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        let status = async { Err::<Response<()>, _>(Status::not_found("gone")) };
        let error = within(Duration::from_secs(3), status).await.unwrap_err();
        assert!(matches!(error, Error::NotFound(_)), "{error}");
    }
}
