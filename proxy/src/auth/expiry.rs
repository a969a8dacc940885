//! A server stream outlives no token: the response body of a streaming call
//! ends with `UNAUTHENTICATED` when its caller's token expires. The client
//! keeps its stream by calling again, with a fresh token, before then.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::SystemTime,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tonic::Status;

pub(crate) struct ExpiringBody {
    inner: tonic::body::Body,
    expires: Pin<Box<Sleep>>,
    done: bool,
}

impl ExpiringBody {
    pub(crate) fn new(inner: tonic::body::Body, expires_at: SystemTime) -> Self {
        let left = expires_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        Self {
            inner,
            expires: Box::pin(tokio::time::sleep_until(Instant::now() + left)),
            done: false,
        }
    }
}

/// The trailers that end an expired stream.
fn expired() -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    let status =
        Status::unauthenticated("token expired during the stream; call again with a fresh token");
    let _ = status.add_header(&mut trailers);
    trailers
}

impl Body for ExpiringBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.expires.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Ok(Frame::trailers(expired()))));
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.done = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_quiet_stream_ends_unauthenticated_when_the_token_expires() {
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Status>>(1);
        let inner = tonic::body::Body::new(http_body_util::StreamBody::new(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ));
        let mut body = ExpiringBody::new(inner, SystemTime::now() + Duration::from_secs(5));
        let frame = body.frame().await.unwrap().unwrap();
        let trailers = frame.into_trailers().unwrap();
        assert_eq!(trailers["grpc-status"], "16");
        assert!(body.frame().await.is_none());
        assert!(body.is_end_stream());
    }

    #[tokio::test(start_paused = true)]
    async fn frames_pass_through_until_then() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Status>>(1);
        let inner = tonic::body::Body::new(http_body_util::StreamBody::new(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ));
        let mut body = ExpiringBody::new(inner, SystemTime::now() + Duration::from_secs(60));
        tx.send(Ok(Frame::data(Bytes::from_static(b"hi"))))
            .await
            .unwrap();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "hi");
        drop(tx);
        assert!(body.frame().await.is_none(), "the stream ended by itself");
    }
}
