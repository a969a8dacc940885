//! One accepted connection: served by hyper (HTTP/2 for gRPC, HTTP/1 for
//! metrics) under a watchdog that closes it when it never finishes its
//! handshake ([`ListenersConfig::handshake_timeout_ms`]) or has had no open
//! request for [`ListenersConfig::idle_timeout_ms`]. A long-lived stream
//! (Subscribe, WatchPatterns) keeps its connection open however quiet it is.
//! The decision is the pure [`verdict`]; [`serve`] only carries it out.

use std::{
    convert::Infallible,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{Notify, watch},
    time::Instant,
};

use crate::config::ListenersConfig;

/// An HTTP/2 client's first bytes: the 24-byte preface and a SETTINGS frame
/// header. A connection that has sent fewer has not finished its handshake.
const HTTP2_HANDSHAKE_BYTES: usize = 24 + 9;
/// How long a connection told to close (idle, or shutting down) may take to
/// say goodbye before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

/// What the watchdog knows about a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    pub opened: Instant,
    /// HTTP/2: the preface and first frame arrived; HTTP/1: a request did.
    pub handshaken: bool,
    /// Requests (streams) not finished yet.
    pub open: usize,
    /// When `open` last fell to zero (or the connection opened).
    pub idle_since: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do before this instant unless the activity changes.
    WaitUntil(Instant),
    /// Streams are open: nothing to do until one ends.
    WaitForChange,
    Close(Reason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Handshake,
    Idle,
}

/// Whether a connection in state `a` at `now` stays open, and until when.
pub fn verdict(now: Instant, a: &Activity, handshake: Duration, idle: Duration) -> Verdict {
    let (deadline, reason) = if !a.handshaken {
        (a.opened + handshake, Reason::Handshake)
    } else if a.open > 0 {
        return Verdict::WaitForChange;
    } else {
        (a.idle_since + idle, Reason::Idle)
    };
    if now >= deadline {
        Verdict::Close(reason)
    } else {
        Verdict::WaitUntil(deadline)
    }
}

/// A connection's [`Activity`], updated by its service and its socket.
struct Tracker {
    activity: Mutex<Activity>,
    changed: Notify,
}

impl Tracker {
    fn new(now: Instant) -> Self {
        Self {
            activity: Mutex::new(Activity {
                opened: now,
                handshaken: false,
                open: 0,
                idle_since: now,
            }),
            changed: Notify::new(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Activity)) {
        f(&mut self.activity.lock().expect("activity lock"));
        self.changed.notify_one();
    }

    fn snapshot(&self) -> Activity {
        *self.activity.lock().expect("activity lock")
    }
}

/// A request in progress; dropping it (response body finished or reset)
/// ends the stream for the watchdog.
struct StreamGuard(Arc<Tracker>);

impl StreamGuard {
    fn open(tracker: &Arc<Tracker>) -> Self {
        tracker.update(|a| {
            a.handshaken = true;
            a.open += 1;
        });
        Self(tracker.clone())
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.update(|a| {
            a.open -= 1;
            if a.open == 0 {
                a.idle_since = Instant::now();
            }
        });
    }
}

/// Requests open at once on one listener, across its connections: the cap
/// that bounds memory when many connections each open their share of streams.
pub struct OpenStreams {
    open: AtomicUsize,
    max: usize,
}

impl OpenStreams {
    pub fn new(max: usize) -> Arc<Self> {
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
    let why =
        format!("too many open requests on this listener (listeners.max_open_streams = {max})");
    match protocol {
        Protocol::Http2 => tonic::Status::resource_exhausted(why)
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
pub struct TrackedBody<B> {
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
struct Tracked<S> {
    inner: S,
    tracker: Arc<Tracker>,
    open_streams: Arc<OpenStreams>,
    protocol: Protocol,
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

/// The socket, marking the handshake done once an HTTP/2 client has sent
/// its preface and first frame header.
struct Watched {
    inner: TcpStream,
    read: usize,
    tracker: Option<Arc<Tracker>>,
}

impl AsyncRead for Watched {
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

impl AsyncWrite for Watched {
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
pub async fn serve<S, B>(
    stream: TcpStream,
    protocol: Protocol,
    bounds: &ListenersConfig,
    service: S,
    open_streams: Arc<OpenStreams>,
    stop: watch::Receiver<bool>,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = bytes::Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tracker = Arc::new(Tracker::new(Instant::now()));
    let io = TokioIo::new(Watched {
        inner: stream,
        read: 0,
        tracker: (protocol == Protocol::Http2).then(|| tracker.clone()),
    });
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
            let conn = builder.serve_connection(io, service);
            watchdog(conn, |c| c.graceful_shutdown(), &tracker, bounds, stop).await;
        }
        Protocol::Http1 => {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(bounds.handshake_timeout());
            let conn = builder.serve_connection(io, service);
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

#[cfg(test)]
mod tests {
    use super::*;

    const HANDSHAKE: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);

    fn fresh(now: Instant) -> Activity {
        Activity {
            opened: now,
            handshaken: false,
            open: 0,
            idle_since: now,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_never_handshakes_is_closed_after_the_timeout() {
        let opened = Instant::now();
        let a = fresh(opened);
        assert_eq!(
            verdict(Instant::now(), &a, HANDSHAKE, IDLE),
            Verdict::WaitUntil(opened + HANDSHAKE)
        );
        tokio::time::advance(HANDSHAKE).await;
        assert_eq!(
            verdict(Instant::now(), &a, HANDSHAKE, IDLE),
            Verdict::Close(Reason::Handshake)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_handshaken_connection_without_streams_is_closed_when_idle() {
        let opened = Instant::now();
        let mut a = fresh(opened);
        a.handshaken = true;
        tokio::time::advance(HANDSHAKE * 2).await;
        assert_eq!(
            verdict(Instant::now(), &a, HANDSHAKE, IDLE),
            Verdict::WaitUntil(opened + IDLE),
            "past the handshake timeout, only the idle timeout counts"
        );
        tokio::time::advance(IDLE).await;
        assert_eq!(
            verdict(Instant::now(), &a, HANDSHAKE, IDLE),
            Verdict::Close(Reason::Idle)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_stream_keeps_the_connection_however_long() {
        let mut a = fresh(Instant::now());
        a.handshaken = true;
        a.open = 1;
        tokio::time::advance(IDLE * 100).await;
        assert_eq!(
            verdict(Instant::now(), &a, HANDSHAKE, IDLE),
            Verdict::WaitForChange
        );
        a.open = 0;
        a.idle_since = Instant::now();
        assert_eq!(
            verdict(Instant::now(), &a, HANDSHAKE, IDLE),
            Verdict::WaitUntil(Instant::now() + IDLE),
            "the idle clock starts when the last stream ends"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_tracker_counts_streams_and_restarts_the_idle_clock() {
        let tracker = Arc::new(Tracker::new(Instant::now()));
        let first = StreamGuard::open(&tracker);
        let second = StreamGuard::open(&tracker);
        assert_eq!(tracker.snapshot().open, 2);
        assert!(tracker.snapshot().handshaken);
        tokio::time::advance(IDLE).await;
        drop(first);
        assert_eq!(tracker.snapshot().open, 1);
        drop(second);
        let a = tracker.snapshot();
        assert_eq!(a.open, 0);
        assert_eq!(a.idle_since, Instant::now());
    }

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
