//! Requests as streams: each one counts for its connection's [`Tracker`]
//! until its response body ends, and takes a slot of the listener-wide cap
//! ([`OpenStreams`], `listeners.max_open_streams`), which bounds memory when
//! many connections each open their share of streams.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::{
    Protocol,
    activity::{StreamGuard, Tracker},
};
use crate::error::ProxyError;

/// Requests open at once on one listener, across its connections.
pub(crate) struct OpenStreams {
    open: AtomicUsize,
    max: usize,
}

impl OpenStreams {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            max,
        })
    }

    /// A slot for one more request, or `None` at the cap.
    fn try_open(self: &Arc<Self>) -> Option<StreamSlot> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(StreamSlot(self.clone()))
    }
}

struct StreamSlot(Arc<OpenStreams>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The answer to a request past [`OpenStreams`]'s cap: gRPC
/// RESOURCE_EXHAUSTED naming the limit, or an HTTP 503.
fn over_the_stream_cap<B>(protocol: Protocol, max: usize) -> Response<Option<B>> {
    match protocol {
        Protocol::Http2 => tonic::Status::from(ProxyError::TooManyOpenRequests(max))
            .into_http::<()>()
            .map(|()| None),
        Protocol::Http1 => {
            let mut response = Response::new(None);
            *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            response
        }
    }
}

/// The response body, holding its stream open until it ends; `None` for a
/// refusal, which has none.
pub(crate) struct TrackedBody<B> {
    inner: Option<B>,
    _slot: Option<StreamSlot>,
    _stream: StreamGuard,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// The service hyper calls: counts each request as an open stream.
pub(crate) struct Tracked<S> {
    pub inner: S,
    pub tracker: Arc<Tracker>,
    pub open_streams: Arc<OpenStreams>,
    pub protocol: Protocol,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Unpin + Send + 'static,
{
    type Response = Response<TrackedBody<B>>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let stream = StreamGuard::open(&self.tracker);
        let Some(slot) = self.open_streams.try_open() else {
            let refused = over_the_stream_cap(self.protocol, self.open_streams.max);
            return Box::pin(std::future::ready(Ok(refused.map(|inner| TrackedBody {
                inner,
                _slot: None,
                _stream: stream,
            }))));
        };
        let mut inner = self.inner.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
            let response = inner.call(request).await?;
            Ok(response.map(|inner| TrackedBody {
                inner: Some(inner),
                _slot: Some(slot),
                _stream: stream,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_wide_cap_refuses_past_it_and_frees_on_drop() {
        let streams = OpenStreams::new(2);
        let a = streams.try_open().expect("first");
        let _b = streams.try_open().expect("second");
        assert!(streams.try_open().is_none(), "at the cap");
        drop(a);
        assert!(streams.try_open().is_some(), "a slot was freed");
        let refused = over_the_stream_cap::<()>(Protocol::Http2, 2);
        assert_eq!(refused.headers()["grpc-status"], "8");
        let message = refused.headers()["grpc-message"].to_str().unwrap();
        assert!(message.contains("max_open_streams"), "{message}");
        assert_eq!(
            over_the_stream_cap::<()>(Protocol::Http1, 2).status(),
            http::StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
