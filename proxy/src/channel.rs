//! The data-plane connection to one pattern process: HTTP/2 over its Unix
//! socket, driven by hyper's connection directly.
//!
//! tonic's `Channel` puts a `tower` buffer (a queue and a worker task) and a
//! reconnect layer in front of the connection. The proxy needs neither: a
//! pattern process has exactly one socket for its whole life, and when the
//! connection breaks the process is gone and the supervisor starts a new one
//! with a new [`PatternChannel`]. Skipping the buffer takes one task hand-off
//! off every call. Lifecycle calls keep using a tonic `Channel` of their own.

use std::{
    future::Future,
    path::Path,
    pin::Pin,
    task::{Context, Poll},
};

use http::{Request, Response, Uri, uri::PathAndQuery};
use hyper::{
    body::Incoming,
    client::conn::http2::{Builder, SendRequest},
};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
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

/// A cheap-to-clone handle for sending gRPC calls to one pattern process.
/// Dropping the last clone closes the connection.
#[derive(Clone, Debug)]
pub(crate) struct PatternChannel {
    sender: SendRequest<Body>,
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
    Handshake(#[from] hyper::Error),
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
        let (sender, connection) = Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .initial_connection_window_size(CONNECTION_WINDOW)
            .initial_stream_window_size(STREAM_WINDOW)
            .handshake(TokioIo::new(Corked::new(stream)))
            .await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "pattern connection ended");
            }
        });
        Ok(Self { sender })
    }
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Incoming>, hyper::Error>> + Send>>;

impl tower::Service<Request<Body>> for PatternChannel {
    type Response = Response<Incoming>;
    type Error = hyper::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // HTTP/2 sending never waits here (hyper's own poll_ready only checks
        // for a closed connection). A closed connection must fail in `call`:
        // tonic turns a readiness error into UNKNOWN "Service was not ready"
        // without its cause, while a `call` error keeps the transport error
        // as its source, which the proxy maps to UNAVAILABLE.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        // Generated clients send an origin-less path; HTTP/2 needs a scheme
        // and an authority.
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        if let Ok(uri) = Uri::builder()
            .scheme("http")
            .authority(AUTHORITY)
            .path_and_query(path)
            .build()
        {
            *request.uri_mut() = uri;
        }
        Box::pin(self.sender.send_request(request))
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

        // Once hyper knows the connection is closed, calls still fail with
        // the transport error as their source (not tonic's sourceless
        // UNKNOWN "Service was not ready").
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while !peer.channel.sender.is_closed() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the connection is seen closed");
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
    }

    #[tokio::test]
    async fn connecting_to_a_missing_socket_names_it() {
        let err = PatternChannel::connect(Path::new("/nonexistent/p.sock"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/p.sock"), "{err}");
    }
}
