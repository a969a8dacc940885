//! One accepted connection: served by hyper (HTTP/2 for gRPC, HTTP/1 for
//! metrics) under a watchdog that carries out [`verdict`]: a connection that
//! never finished its handshake is dropped, an idle one is told to go away.

use std::{
    convert::Infallible,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use prism_net::Corked;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::watch,
    time::Instant,
};

use super::{
    Protocol,
    activity::{Reason, Tracker, Verdict, verdict},
    streams::{OpenStreams, Tracked},
};
use crate::config::ListenersConfig;

/// An HTTP/2 client's first bytes: the 24-byte preface and a SETTINGS frame
/// header. A connection that has sent fewer has not finished its handshake.
const HTTP2_HANDSHAKE_BYTES: usize = 24 + 9;
/// How long a connection told to close (idle, or shutting down) may take to
/// say goodbye before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The socket (or its TLS stream), marking the handshake done once an
/// HTTP/2 client has sent its preface and first frame header.
struct Watched<IO> {
    inner: IO,
    read: usize,
    tracker: Option<Arc<Tracker>>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.tracker.is_some() {
            self.read += buf.filled().len() - before;
            if self.read >= HTTP2_HANDSHAKE_BYTES
                && let Some(tracker) = self.tracker.take()
            {
                tracker.update(|a| a.handshaken = true);
            }
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves one connection until it ends, the watchdog closes it, or `stop`
/// turns true (then it is asked to finish its streams and close).
pub(crate) async fn serve<IO, S, B>(
    stream: IO,
    protocol: Protocol,
    bounds: &ListenersConfig,
    service: S,
    open_streams: Arc<OpenStreams>,
    stop: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = bytes::Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tracker = Arc::new(Tracker::new(Instant::now()));
    let watched = Watched {
        inner: stream,
        read: 0,
        tracker: (protocol == Protocol::Http2).then(|| tracker.clone()),
    };
    let service = Tracked {
        inner: service,
        tracker: tracker.clone(),
        open_streams,
        protocol,
    };
    match protocol {
        Protocol::Http2 => {
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder
                .timer(TokioTimer::new())
                .max_concurrent_streams(bounds.max_concurrent_streams)
                .keep_alive_interval(bounds.keepalive_interval())
                .keep_alive_timeout(bounds.keepalive_timeout());
            let conn = builder.serve_connection(TokioIo::new(Corked::new(watched)), service);
            watchdog(conn, |c| c.graceful_shutdown(), &tracker, bounds, stop).await;
        }
        Protocol::Http1 => {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(bounds.handshake_timeout());
            let conn = builder.serve_connection(TokioIo::new(watched), service);
            watchdog(conn, |c| c.graceful_shutdown(), &tracker, bounds, stop).await;
        }
    }
}

/// Drives `conn` while applying [`verdict`]: a connection that never
/// finished its handshake is dropped; an idle one, or every one on `stop`,
/// is asked to close (GOAWAY) and dropped after [`CLOSE_GRACE`].
async fn watchdog<C>(
    conn: C,
    graceful: impl Fn(Pin<&mut C>),
    tracker: &Tracker,
    bounds: &ListenersConfig,
    mut stop: watch::Receiver<bool>,
) where
    C: Future<Output = Result<(), hyper::Error>>,
{
    tokio::pin!(conn);
    let stopped = stop.wait_for(|stop| *stop);
    tokio::pin!(stopped);
    let mut closing: Option<Instant> = None;
    loop {
        let wake = if closing.is_some() {
            closing
        } else {
            match verdict(
                Instant::now(),
                &tracker.snapshot(),
                bounds.handshake_timeout(),
                bounds.idle_timeout(),
            ) {
                Verdict::Close(Reason::Handshake) => {
                    tracing::debug!("connection closed: no handshake within the timeout");
                    return;
                }
                Verdict::Close(Reason::Idle) => {
                    tracing::debug!("connection closed: idle");
                    graceful(conn.as_mut());
                    closing = Some(Instant::now() + CLOSE_GRACE);
                    continue;
                }
                Verdict::WaitUntil(at) => Some(at),
                Verdict::WaitForChange => None,
            }
        };
        tokio::select! {
            result = &mut conn => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = sleep_until(wake) => {
                if closing.is_some() {
                    return;
                }
            }
            () = tracker.changed.notified() => {}
            _ = &mut stopped, if closing.is_none() => {
                graceful(conn.as_mut());
                closing = Some(Instant::now() + CLOSE_GRACE);
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
