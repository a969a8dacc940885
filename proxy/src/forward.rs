//! Forwarding without re-encoding. A forwarded call's request arrives as the
//! bytes the client sent ([`RawCodec`] hands them over without copying),
//! is checked by reading only the fields its rules need straight from the
//! encoding ([`prism_proto::wire::requests`]), and leaves for the pattern as
//! those same bytes; the pattern's reply comes back the same way. Nothing is
//! decoded into messages, nothing re-encoded, and a value is copied only
//! where HTTP/2 framing needs it.
//!
//! [`Forward`] serves one gRPC service from a table of [`Method`]s; calls it
//! has no entry for (streams) go to the service's typed server.

use std::{
    convert::Infallible,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use prism_proto::{limits::Limits, wire::Refusal};
use tonic::{
    Request, Response, Status,
    body::Body,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    server::{NamedService, UnaryService},
};
use tower::Service;

use crate::{channel::PatternChannel, config::PatternKind, dataplane, state::ProxyState};

const MAX_MESSAGE_BYTES: usize = prism_proto::limits::MAX_MESSAGE_BYTES;

/// One forwarded method: where it is served, which pattern kind answers it,
/// and the rules its request must pass.
#[derive(Debug)]
pub(crate) struct Method {
    /// `/package.Service/Method`.
    pub(crate) path: &'static str,
    pub(crate) service: &'static str,
    pub(crate) name: &'static str,
    pub(crate) kind: PatternKind,
    pub(crate) check: fn(&Limits, &[u8]) -> Result<(), Refusal>,
}

/// A [`Method`] of `service`, with its path built at compile time.
macro_rules! method {
    ($service:literal, $name:literal, $kind:expr, $check:expr) => {
        $crate::forward::Method {
            path: concat!("/", $service, "/", $name),
            service: $service,
            name: $name,
            kind: $kind,
            check: $check,
        }
    };
}
pub(crate) use method;

/// The forwarded methods of one gRPC service.
pub(crate) trait Table: Send + Sync + 'static {
    const SERVICE: &'static str;
    const METHODS: &'static [Method];
}

/// A request or reply as encoded.
#[derive(Debug, Clone)]
pub(crate) struct Raw(pub(crate) Bytes);

impl dataplane::Weighed for Raw {
    fn weight(&self) -> usize {
        self.0.len()
    }
}

/// Passes encoded messages through: decoding takes the received bytes as
/// they are (no copy), encoding writes them into the outgoing frame.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawCodec;

impl Codec for RawCodec {
    type Encode = Raw;
    type Decode = Raw;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Raw;
    type Error = Status;

    fn encode(&mut self, item: Raw, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item.0);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Raw;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Raw>, Status> {
        Ok(Some(Raw(src.copy_to_bytes(src.remaining()))))
    }
}

/// Serves `T`'s methods by forwarding; any other call of the service goes to
/// `typed`.
pub(crate) struct Forward<T, F> {
    state: Arc<ProxyState>,
    typed: F,
    _table: PhantomData<T>,
}

impl<T, F: Clone> Clone for Forward<T, F> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            typed: self.typed.clone(),
            _table: PhantomData,
        }
    }
}

impl<T: Table, F> Forward<T, F> {
    pub(crate) fn new(state: Arc<ProxyState>, typed: F) -> Self {
        Self {
            state,
            typed,
            _table: PhantomData,
        }
    }
}

impl<T: Table, F> NamedService for Forward<T, F> {
    const NAME: &'static str = T::SERVICE;
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<T, F> Service<http::Request<Body>> for Forward<T, F>
where
    T: Table,
    F: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    F::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path();
        let Some(method) = T::METHODS.iter().find(|m| m.path == path) else {
            // The typed servers tonic generates are always ready.
            let mut typed = self.typed.clone();
            return Box::pin(async move { typed.call(request).await });
        };
        let unary = Unary {
            state: self.state.clone(),
            method,
        };
        Box::pin(async move { Ok(serve_unary(RawCodec, unary, request).await) })
    }
}

/// One forwarded unary call, run by [`dataplane::unary`].
struct Unary {
    state: Arc<ProxyState>,
    method: &'static Method,
}

impl UnaryService<Raw> for Unary {
    type Response = Raw;
    type Future = BoxFuture<Response<Raw>, Status>;

    fn call(&mut self, request: Request<Raw>) -> Self::Future {
        let (state, method) = (self.state.clone(), self.method);
        Box::pin(async move {
            dataplane::unary(
                &state,
                method.kind,
                (method.service, method.name),
                request,
                |limits, raw: &Raw| (method.check)(limits, &raw.0),
                |channel, request| send(channel, method.path, request),
            )
            .await
        })
    }
}

/// Sends the encoded request to the pattern and returns its encoded reply.
async fn send(
    channel: PatternChannel,
    path: &'static str,
    request: Request<Raw>,
) -> Result<Response<Raw>, Status> {
    client(channel)
        .await?
        .unary(request, PathAndQuery::from_static(path), RawCodec)
        .await
}

/// A gRPC client on the pattern's channel, within the transport's size
/// limits, ready for one call.
async fn client(channel: PatternChannel) -> Result<tonic::client::Grpc<PatternChannel>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    grpc.ready()
        .await
        .map_err(|e| Status::unknown(format!("the pattern connection is not ready: {e}")))?;
    Ok(grpc)
}

/// What handles the calls of a service that a [`Table`] does not forward.
pub(crate) trait Typed:
    Service<
        http::Request<Body>,
        Response = http::Response<Body>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> Typed for S where
    S: Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// Serves a server-streaming call with a typed handler, within the
/// transport's size limits.
pub(crate) async fn serve_stream<C, S>(
    codec: C,
    handler: S,
    request: http::Request<Body>,
) -> http::Response<Body>
where
    C: Codec,
    S: tonic::server::ServerStreamingService<C::Decode, Response = C::Encode>,
    S::ResponseStream: Send + 'static,
{
    let limit = Some(MAX_MESSAGE_BYTES);
    tonic::server::Grpc::new(codec)
        .apply_max_message_size_config(limit, limit)
        .server_streaming(handler, request)
        .await
}

/// Serves a unary call with a typed handler, within the transport's size
/// limits.
pub(crate) async fn serve_unary<C, S>(
    codec: C,
    handler: S,
    request: http::Request<Body>,
) -> http::Response<Body>
where
    C: Codec,
    S: UnaryService<C::Decode, Response = C::Encode>,
{
    let limit = Some(MAX_MESSAGE_BYTES);
    tonic::server::Grpc::new(codec)
        .apply_max_message_size_config(limit, limit)
        .unary(handler, request)
        .await
}

/// Opens a server stream on the pattern; its messages arrive as encoded.
pub(crate) async fn open_stream(
    channel: PatternChannel,
    path: &'static str,
    request: Request<Raw>,
) -> Result<tonic::Streaming<Raw>, Status> {
    client(channel)
        .await?
        .server_streaming(request, PathAndQuery::from_static(path), RawCodec)
        .await
        .map(Response::into_inner)
}

/// The typed server of a service whose every method is forwarded: answers
/// any other path as tonic's generated servers do, `UNIMPLEMENTED`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoOtherMethods;

impl Service<http::Request<Body>> for NoOtherMethods {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: http::Request<Body>) -> Self::Future {
        std::future::ready(Ok(unimplemented()))
    }
}

/// The answer to a method a service does not have, as tonic's generated
/// servers give it.
pub(crate) fn unimplemented() -> http::Response<Body> {
    Status::unimplemented("").into_http()
}

#[cfg(test)]
mod tests {
    use prism_proto::FILE_DESCRIPTOR_SET;
    use prost::Message;

    use super::*;
    use crate::{keyvalue::KeyValueTable, pubsub::PubSubTable, registry::RegistryTable};

    /// The methods the `.proto` defines for `service`, as paths.
    fn defined(service: &str) -> Vec<String> {
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let (_, found) = set
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
            .find(|(package, s)| format!("{package}.{}", s.name()) == service)
            .unwrap();
        let mut paths: Vec<String> = found
            .method
            .iter()
            .map(|m| format!("/{service}/{}", m.name()))
            .collect();
        paths.sort();
        paths
    }

    fn served<T: Table>(typed: &[&str]) -> Vec<String> {
        let mut paths: Vec<String> = T::METHODS
            .iter()
            .map(|m| {
                assert_eq!(m.service, T::SERVICE);
                assert_eq!(m.path, format!("/{}/{}", m.service, m.name));
                m.path.to_string()
            })
            .chain(typed.iter().map(|p| p.to_string()))
            .collect();
        paths.sort();
        paths
    }

    /// Every method the `.proto` files define is served, forwarded or typed,
    /// and nothing else.
    #[test]
    fn every_data_plane_method_is_served_once() {
        assert_eq!(
            served::<KeyValueTable>(&[]),
            defined(KeyValueTable::SERVICE)
        );
        assert_eq!(
            served::<PubSubTable>(&[
                crate::pubsub::SUBSCRIBE_PATH,
                crate::pubsub::UNSUBSCRIBE_PATH
            ]),
            defined(PubSubTable::SERVICE)
        );
        assert_eq!(
            served::<RegistryTable>(&[crate::registry::RECEIVE_PATH]),
            defined(RegistryTable::SERVICE)
        );
    }
}
