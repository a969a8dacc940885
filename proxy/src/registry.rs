//! The multicast registry data plane. Register, Unregister, Get, Enumerate
//! and Multicast are unary calls checked with `prism_proto::registry`'s rules
//! (the filter parsed, the Multicast payload held to the namespace's
//! `max_value_bytes`) and forwarded as encoded ([`crate::forward`]). Receive opens
//! the pattern's inbox stream and pumps it through a one-message [`Buffer`]
//! that never drops (a message the pattern reported DELIVERED must reach the
//! client, so a slow client holds the pattern's stream back instead). Unlike a
//! Subscribe, a Receive is not taken up again when its pattern goes away:
//! the stream ends with UNAVAILABLE and the client calls Receive again,
//! finding what is PENDING for it on slots that keep messages.

use std::{convert::Infallible, pin::Pin, sync::Arc};

use prism_proto::{
    codec::PrismCodec,
    field::FieldError,
    registry::{
        EnumerateQuery, MulticastOrder, Registration, check_identity,
        v1::{
            EnumerateRequest, GetRequest, InboxMessage, MulticastRequest, ReceiveRequest,
            RegisterRequest, UnregisterRequest, multicast_registry_client::MulticastRegistryClient,
        },
    },
    wire::requests::decoded,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming, body::Body};
use tower::service_fn;

use crate::{
    channel::PatternChannel,
    config::PatternKind::{self, MulticastRegistry},
    dataplane,
    error::{self, ProxyError},
    forward::{self, Method, Table, method},
    namespace::Namespace,
    state::ProxyState,
    subscriptions::{Buffer, Policy},
};

const SERVICE: &str = "prism.registry.v1.MulticastRegistry";
pub(crate) const RECEIVE_PATH: &str = "/prism.registry.v1.MulticastRegistry/Receive";
const KIND: PatternKind = MulticastRegistry;
/// Messages the proxy holds per Receive stream. The pattern acknowledges a
/// message to an at-least-once slot once its stream has taken it, so what
/// the proxy holds is lost if the client goes away: one message, no more.
const RECEIVE_BUFFER: usize = 1;

struct RegistryProxy {
    state: Arc<ProxyState>,
}

fn client(channel: PatternChannel) -> MulticastRegistryClient<PatternChannel> {
    MulticastRegistryClient::new(channel)
        .max_decoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
}

/// The Multicast rules, with the payload held to `max_value_bytes`.
fn check_multicast(request: &MulticastRequest, max_value_bytes: usize) -> Result<(), FieldError> {
    MulticastOrder::from_request(request, max_value_bytes).map(drop)
}

/// Every call but Receive is forwarded as encoded; the registry's rules
/// read most of a request (metadata, filters), so they run on it decoded.
pub(crate) struct RegistryTable;

impl Table for RegistryTable {
    const SERVICE: &'static str = SERVICE;
    const METHODS: &'static [Method] = &[
        method!(
            "prism.registry.v1.MulticastRegistry",
            "Register",
            MulticastRegistry,
            |_, buf| Ok(Registration::from_request(&decoded::<RegisterRequest>(buf)?).map(drop)?)
        ),
        method!(
            "prism.registry.v1.MulticastRegistry",
            "Unregister",
            MulticastRegistry,
            |_, buf| Ok(check_identity(
                &decoded::<UnregisterRequest>(buf)?.identity
            )?)
        ),
        method!(
            "prism.registry.v1.MulticastRegistry",
            "Get",
            MulticastRegistry,
            |_, buf| Ok(check_identity(&decoded::<GetRequest>(buf)?.identity)?)
        ),
        method!(
            "prism.registry.v1.MulticastRegistry",
            "Enumerate",
            MulticastRegistry,
            |_, buf| Ok(
                EnumerateQuery::from_request(&decoded::<EnumerateRequest>(buf)?).map(drop)?
            )
        ),
        method!(
            "prism.registry.v1.MulticastRegistry",
            "Multicast",
            MulticastRegistry,
            |limits, buf| Ok(check_multicast(&decoded(buf)?, limits.max_value_bytes)?)
        ),
    ];
}

/// Receive, the one registry call the proxy handles as messages (its
/// stream goes through a buffer that never drops).
pub(crate) fn inbox(state: Arc<ProxyState>) -> impl forward::Typed {
    let proxy = Arc::new(RegistryProxy { state });
    service_fn(move |request: http::Request<Body>| {
        let proxy = proxy.clone();
        async move {
            if request.uri().path() != RECEIVE_PATH {
                return Ok(forward::unimplemented());
            }
            let receive = service_fn(move |r| {
                let proxy = proxy.clone();
                async move { proxy.receive(r).await }
            });
            let codec = PrismCodec::<InboxMessage, ReceiveRequest>::default();
            Ok::<_, Infallible>(forward::serve_stream(codec, receive, request).await)
        }
    })
}

type ReceiveStream = Pin<Box<dyn Stream<Item = Result<InboxMessage, Status>> + Send>>;

impl RegistryProxy {
    async fn receive(
        &self,
        request: Request<ReceiveRequest>,
    ) -> Result<Response<ReceiveStream>, Status> {
        let setup = self.state.drain.enter()?;
        let namespace = self
            .state
            .namespaces
            .get(dataplane::namespace_of(request.metadata().as_ref())?)?;
        let subject = dataplane::subject_of(&request);
        let receive = request.into_inner();
        check_identity(&receive.identity).map_err(ProxyError::from)?;
        let upstream = open(&namespace, &receive, subject.as_deref()).await?;
        let buffer = Arc::new(Buffer::<InboxMessage>::new(
            RECEIVE_BUFFER,
            Policy::Backpressure,
        ));
        let id = self.state.subscriptions.register(
            (namespace.name(), KIND),
            &receive.identity,
            "",
            buffer.clone(),
        );
        tokio::spawn(pump(namespace, upstream, buffer.clone()));
        drop(setup);
        let registration = Attached {
            state: self.state.clone(),
            id,
        };
        let stream = futures_util::stream::unfold(
            (buffer, registration),
            |(buffer, registration)| async move {
                let item = buffer.pop().await?;
                Some((item, (buffer, registration)))
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Opens the pattern's Receive stream on the namespace's current process.
async fn open(
    namespace: &Namespace,
    receive: &ReceiveRequest,
    subject: Option<&str>,
) -> Result<Streaming<InboxMessage>, Status> {
    // The route's call count is for unary calls a hot reload waits for; a
    // stream must not hold it, so it is released once the stream is open.
    let channel = namespace.route(KIND)?.channel;
    let mut request = Request::new(receive.clone());
    let _span = dataplane::client_span(
        (SERVICE, "Receive"),
        namespace.name(),
        KIND,
        subject,
        &mut request,
    );
    client(channel)
        .receive(request)
        .await
        .map(Response::into_inner)
        .map_err(|status| error::from_pattern(namespace.name(), status))
}

/// Moves the pattern's messages into the buffer until the client leaves or
/// the pattern's stream ends; an end the client did not ask for ends the
/// client's stream too — UNAVAILABLE when the pattern went away, else the
/// pattern's own status.
async fn pump(
    namespace: Arc<Namespace>,
    mut upstream: Streaming<InboxMessage>,
    buffer: Arc<Buffer<InboxMessage>>,
) {
    loop {
        let next = tokio::select! {
            next = upstream.message() => next,
            _ = buffer.closed() => return,
        };
        match next {
            Ok(Some(message)) => {
                if !buffer.push(message).await {
                    return;
                }
            }
            Ok(None) => {
                buffer.fail(ProxyError::PatternEndedStream.into());
                return;
            }
            Err(status) => {
                buffer.fail(error::from_pattern(namespace.name(), status));
                return;
            }
        }
    }
}

/// Unregisters (and so stops the pump, which detaches the receiver at the
/// pattern) when the client's stream is dropped.
struct Attached {
    state: Arc<ProxyState>,
    id: u64,
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.state.subscriptions.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prism_proto::json;
    use serde_json::json;

    #[test]
    fn a_multicast_is_held_to_the_namespace_payload_limit_and_filter_rules() {
        let request = |payload: usize, filter: serde_json::Value| MulticastRequest {
            payload: vec![0; payload],
            filter: Some(json::to_struct(&filter)),
            ..Default::default()
        };
        check_multicast(&request(100, json!({"type": "sensor"})), 100).unwrap();
        let big = check_multicast(&request(101, json!({})), 100).unwrap_err();
        assert_eq!(big.field, "payload");
        assert!(big.problem.contains("max_value_bytes"), "{big}");
        let bad = check_multicast(&request(1, json!({"floor": {"$near": 1}})), 100).unwrap_err();
        assert_eq!(bad.field, "filter.floor");
        let timeout = MulticastRequest {
            timeout_ms: 60_001,
            ..Default::default()
        };
        assert_eq!(
            check_multicast(&timeout, 100).unwrap_err().field,
            "timeout_ms"
        );
    }
}
