//! The data-plane connection to one pattern process: HTTP/2 over its Unix
//! socket, spoken with h2's client directly.
//!
//! tonic's `Channel` puts a `tower` buffer (a queue and a worker task) and a
//! reconnect layer in front of the connection, and hyper's client hands each
//! request to a dispatch task and spawns a task for its response and one
//! for its body. The proxy needs none of them: a pattern process has exactly
//! one socket for its whole life (when the connection breaks the process is
//! gone and the supervisor starts a new one with a new [`PatternChannel`]),
//! and every request the proxy sends a pattern is one message, whole before
//! it leaves. So a call opens its stream, writes its message with the end of
//! the stream, and reads the reply, all in the caller's task; only the
//! connection itself runs in a task of its own. Lifecycle calls keep using a
//! tonic `Channel` of their own.

use std::{
    future::Future,
    path::Path,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use h2::{
    RecvStream, SendStream,
    client::{self, SendRequest},
};
use http::{Request, Response, Uri, uri::PathAndQuery};
use http_body::{Body as _, Frame};
use prism_net::Corked;
use tokio::net::UnixStream;
use tonic::body::Body;

/// Many subscription streams share one connection; a generous connection
/// window keeps one the proxy is not reading (a slow at-least-once
/// subscriber) from stalling the others.
const CONNECTION_WINDOW: u32 = 64 * 1024 * 1024;
const STREAM_WINDOW: u32 = 1024 * 1024;
/// The authority sent on every call; the socket, not the name, picks the peer.
const AUTHORITY: &str = "pattern.local";

/// What a call to the pattern fails with: the connection's or the stream's
/// HTTP/2 error, or the request body's own. tonic keeps it as the status's
/// source, which the proxy maps to UNAVAILABLE.
pub(crate) type CallError = Box<dyn std::error::Error + Send + Sync>;

/// A cheap-to-clone handle for sending gRPC calls to one pattern process.
/// Dropping the last clone closes the connection.
#[derive(Clone, Debug)]
pub(crate) struct PatternChannel {
    sender: SendRequest<Bytes>,
}

/// Why the channel could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("cannot connect to {socket}: {source}")]
    Socket {
        socket: String,
        source: std::io::Error,
    },
    #[error("HTTP/2 handshake failed: {0}")]
    Handshake(#[from] h2::Error),
}

impl PatternChannel {
    /// Dials the pattern's Unix socket and completes the HTTP/2 handshake.
    /// The connection is driven by a task of its own until every clone of
    /// the channel is dropped or the peer goes away.
    pub(crate) async fn connect(socket: &Path) -> Result<Self, ConnectError> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|source| ConnectError::Socket {
                socket: socket.display().to_string(),
                source,
            })?;
        let (sender, connection) = client::Builder::new()
            .enable_push(false)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .initial_window_size(STREAM_WINDOW)
            .handshake(Corked::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "pattern connection ended");
            }
        });
        Ok(Self { sender })
    }
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Reply>, CallError>> + Send>>;

impl tower::Service<Request<Body>> for PatternChannel {
    type Response = Response<Reply>;
    type Error = CallError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness (a free stream under the peer's limit) is awaited in
        // `call`: tonic turns a readiness error into UNKNOWN "Service was not
        // ready" without its cause, while a `call` error keeps the transport
        // error as its source, which the proxy maps to UNAVAILABLE.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let sender = self.sender.clone();
        Box::pin(send(sender, request))
    }
}

/// One call: opens the stream, sends the request's message with the end of
/// the stream, and waits for the response head.
async fn send(
    sender: SendRequest<Bytes>,
    request: Request<Body>,
) -> Result<Response<Reply>, CallError> {
    let mut sender = sender.ready().await?;
    let (mut head, body) = request.into_parts();
    // Generated clients send an origin-less path; HTTP/2 needs a scheme and
    // an authority.
    let path = head
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    if let Ok(uri) = Uri::builder()
        .scheme("http")
        .authority(AUTHORITY)
        .path_and_query(path)
        .build()
    {
        head.uri = uri;
    }
    let end = body.is_end_stream();
    let (response, mut stream) = sender.send_request(Request::from_parts(head, ()), end)?;
    if !end {
        send_body(body, &mut stream).await?;
    }
    let response = response.await?;
    Ok(response.map(|recv| Reply {
        recv,
        data_done: false,
    }))
}

/// Sends a request body on its h2 stream, ending the stream with its last
/// frame. One DATA frame is held back so that the last one carries
/// END_STREAM (tonic's encoder says it is done only when polled past its
/// end); trailers, if the body has them, end the stream instead.
async fn send_body(mut body: Body, stream: &mut SendStream<Bytes>) -> Result<(), CallError> {
    let mut held: Option<Bytes> = None;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.inspect_err(|_| stream.send_reset(h2::Reason::CANCEL))?;
        match frame.into_data() {
            Ok(data) => {
                if let Some(previous) = held.replace(data) {
                    stream.send_data(previous, false)?;
                }
            }
            Err(frame) => {
                if let Some(previous) = held.take() {
                    stream.send_data(previous, false)?;
                }
                stream.send_trailers(frame.into_trailers().unwrap_or_default())?;
                return Ok(());
            }
        }
    }
    stream.send_data(held.unwrap_or_default(), true)?;
    Ok(())
}

/// A response body read off its h2 stream: DATA frames (their flow-control
/// window given back as they are taken), then the trailers.
#[derive(Debug)]
pub(crate) struct Reply {
    recv: RecvStream,
    data_done: bool,
}

impl http_body::Body for Reply {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        if !self.data_done {
            match ready!(self.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => self.data_done = true,
            }
        }
        match ready!(self.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A real gRPC server (health only) on a Unix socket, to open channels to.

    use tokio::net::UnixListener;
    use tokio_stream::wrappers::UnixListenerStream;

    use super::PatternChannel;

    pub(crate) struct Peer {
        pub channel: PatternChannel,
        pub health: tonic_health::server::HealthReporter,
        stop: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
        _dir: tempfile::TempDir,
    }

    impl Peer {
        /// Stops the server and every connection it has, as a dying process
        /// would.
        pub(crate) fn kill(&self) {
            self.stop.lock().unwrap().take();
        }
    }

    /// The server runs on a runtime of its own, so that [`Peer::kill`] can
    /// drop it with all its connection tasks.
    pub(crate) async fn peer() -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("pattern.sock");
        let (health, service) = tonic_health::server::health_reporter();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (ready, bound) = tokio::sync::oneshot::channel();
        let path = socket.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.spawn(async move {
                let listener = UnixListener::bind(&path).unwrap();
                let _ = ready.send(());
                let _ = tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming(UnixListenerStream::new(listener))
                    .await;
            });
            let _ = stopped.recv();
        });
        bound.await.unwrap();
        let channel = PatternChannel::connect(&socket).await.unwrap();
        Peer {
            channel,
            health,
            stop: std::sync::Mutex::new(Some(stop)),
            _dir: dir,
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    use super::*;

    #[tokio::test]
    async fn calls_reach_the_peer_and_fail_once_it_is_gone() {
        let peer = testing::peer().await;
        peer.health
            .set_service_status("ns", tonic_health::ServingStatus::Serving)
            .await;
        let mut client = HealthClient::new(peer.channel.clone());
        let reply = client
            .check(HealthCheckRequest {
                service: "ns".into(),
            })
            .await
            .unwrap();
        assert_eq!(reply.into_inner().status, 1, "SERVING");

        peer.kill();
        let status = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                let result = client
                    .check(HealthCheckRequest {
                        service: "ns".into(),
                    })
                    .await;
                if let Err(status) = result {
                    break status;
                }
            }
        })
        .await
        .expect("calls fail once the peer is gone");
        assert!(
            std::error::Error::source(&status).is_some(),
            "a transport error, not a status the peer sent: {status:?}"
        );

        // Later calls fail the same way, however far the connection's
        // closing has got.
        for _ in 0..3 {
            let status = client
                .check(HealthCheckRequest {
                    service: "ns".into(),
                })
                .await
                .unwrap_err();
            assert!(
                std::error::Error::source(&status).is_some(),
                "a transport error: {status:?}"
            );
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn connecting_to_a_missing_socket_names_it() {
        let err = PatternChannel::connect(Path::new("/nonexistent/p.sock"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/p.sock"), "{err}");
    }
}
