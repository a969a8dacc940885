//! Over a real HTTP/2 connection (hyper client and server on an in-memory
//! pipe): a gRPC-shaped response (HEADERS, 1 KiB of DATA, trailers) leaves
//! the server in one write when the connection is corked, where plain h2
//! needs two.

use std::{
    convert::Infallible,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prism_net::Corked;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// Counts the writes that reach the pipe.
struct Counting {
    inner: DuplexStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Reply = StreamBody<tokio_stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// Answers like a unary gRPC call: 1 KiB of data, then `grpc-status: 0`.
async fn answer(request: Request<Incoming>) -> Result<Response<Reply>, Infallible> {
    let _ = request.into_body().collect().await;
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = vec![
        Ok(Frame::data(Bytes::from(vec![b'x'; 1024]))),
        Ok(Frame::trailers(trailers)),
    ];
    Ok(Response::new(StreamBody::new(tokio_stream::iter(frames))))
}

/// Writes the server makes for one call, after a first call has settled
/// the connection.
async fn server_writes_per_call(corked: bool) -> usize {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let writes = Arc::new(AtomicUsize::new(0));
    let counting = Counting {
        inner: server_io,
        writes: writes.clone(),
    };
    let service = hyper::service::service_fn(answer);
    let server = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    if corked {
        let conn = server.serve_connection(TokioIo::new(Corked::new(counting)), service);
        tokio::spawn(conn);
    } else {
        let conn = server.serve_connection(TokioIo::new(counting), service);
        tokio::spawn(conn);
    }
    let (mut sender, conn) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(client_io),
    )
    .await
    .expect("handshake");
    tokio::spawn(conn);

    let mut call = async || {
        let request = Request::post("http://peer/svc/Method")
            .body(Full::new(Bytes::from_static(b"request")))
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let body = response.into_body().collect().await.expect("body");
        let trailers = body.trailers().cloned();
        assert_eq!(body.to_bytes().len(), 1024);
        assert_eq!(
            trailers.and_then(|t| t.get("grpc-status").cloned()),
            Some(HeaderValue::from_static("0"))
        );
    };
    call().await;
    let before = writes.load(Ordering::SeqCst);
    call().await;
    writes.load(Ordering::SeqCst) - before
}

#[tokio::test]
async fn a_corked_response_leaves_in_one_write() {
    assert_eq!(server_writes_per_call(true).await, 1);
}

/// The baseline the cork is for: if plain h2 ever sends the same response
/// in one write, the cork no longer earns its copy.
#[tokio::test]
async fn plain_h2_sends_the_same_response_in_more_writes() {
    assert!(server_writes_per_call(false).await >= 2);
}
