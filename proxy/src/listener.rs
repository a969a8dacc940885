//! Every listener the proxy owns (data plane, admin, metrics) is served by
//! [`serve`]: an accept loop with a cap on connections, a clear refusal past
//! it, and a back-off when `accept` fails (out of file descriptors). Per
//! connection ([`conn`]): an HTTP/2 stream cap, and a handshake and an idle
//! timeout decided by [`activity`]; per listener, a cap on open requests
//! ([`streams`]); per data-plane request body, the namespace's limits on
//! what it may make the proxy buffer ([`message`]). A listener under TLS
//! ([`tls`]) runs the handshake in the connection's task first.

pub(crate) mod activity;
pub(crate) mod conn;
pub(crate) mod message;
pub(crate) mod streams;
pub(crate) mod tls;

use std::{convert::Infallible, sync::Arc, time::Duration};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
    task::JoinSet,
};

use crate::{config::ListenersConfig, error::ProxyError};

/// What a listener speaks: gRPC over HTTP/2, or HTTP/1 for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// First wait after a failed `accept`; doubles up to [`ACCEPT_BACKOFF_MAX`].
pub(crate) const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
pub(crate) const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Refusals being written at once; past that a connection is closed unanswered,
/// so a flood of refused peers cannot hold many descriptors.
const MAX_REFUSALS: usize = 64;
/// How long a refused peer has to send its calls and take their answers.
const REFUSAL_LINGER: Duration = Duration::from_millis(500);
/// How long connections get to finish after shutdown before they are dropped.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// The wait after the `failures`-th consecutive failed `accept` (1-based):
/// 5 ms doubling to 1 s, so a listener out of descriptors sleeps instead of
/// spinning a core, and resumes within a second of one freeing up.
pub(crate) fn accept_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (ACCEPT_BACKOFF_MIN * 2u32.pow(doublings)).min(ACCEPT_BACKOFF_MAX)
}

/// Why a connection past `max_connections` is refused.
pub(crate) fn refusal_reason(max_connections: usize) -> String {
    ProxyError::TooManyConnections(max_connections).to_string()
}

/// What an HTTP/1 peer past `max_connections` is told: a `503`.
pub(crate) fn http1_refusal(max_connections: usize) -> Vec<u8> {
    let why = refusal_reason(max_connections);
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{why}\n",
        why.len() + 1
    )
    .into_bytes()
}

/// Serves `service` on `listener` (under TLS when `tls` is given) until
/// `shutdown` resolves, then asks every connection to finish (GOAWAY) and
/// waits for them, at most 10 s.
pub(crate) async fn serve<S, B>(
    name: &'static str,
    listener: TcpListener,
    bounds: ListenersConfig,
    protocol: Protocol,
    tls: Option<tls::Acceptor>,
    service: S,
    shutdown: impl Future<Output = ()>,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let permits = Arc::new(Semaphore::new(bounds.max_connections));
    let open_streams = streams::OpenStreams::new(bounds.max_open_streams);
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut failures = 0u32;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => {
                if failures > 0 {
                    tracing::info!(listener = name, failures, "accept works again");
                }
                failures = 0;
                stream
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = accept_backoff(failures);
                // Once, then about once a minute while it lasts.
                if failures % 64 == 1 {
                    tracing::warn!(listener = name, error = %e, backoff_ms = wait.as_millis() as u64, "accept failed; backing off");
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(
                name,
                stream,
                protocol,
                tls.as_ref(),
                bounds.max_connections,
                &refusals,
            );
            continue;
        };
        let service = service.clone();
        let bounds = bounds.clone();
        let mut stop = stop_rx.clone();
        let open_streams = open_streams.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                None => conn::serve(stream, protocol, &bounds, service, open_streams, stop).await,
                Some(tls) => {
                    let handshake = tls.handshake(stream, bounds.handshake_timeout(), &mut stop);
                    if let Some((stream, peer)) = handshake.await {
                        let service = tls::WithPeer {
                            inner: service,
                            peer,
                        };
                        conn::serve(stream, protocol, &bounds, service, open_streams, stop).await;
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let all_done = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_WAIT, all_done).await.is_err() {
        tracing::warn!(
            listener = name,
            open = connections.len(),
            "connections still open after shutdown; dropping them"
        );
    }
}

/// Tells a connection past the limit why, without letting it hold a slot:
/// an HTTP/2 peer gets its calls (those sent with the handshake) answered
/// UNAVAILABLE naming the limit, then GOAWAY; an HTTP/1 peer a `503` (under
/// TLS after the handshake, all within [`REFUSAL_LINGER`]). Past
/// [`MAX_REFUSALS`] at once, the connection is closed unanswered.
fn refuse(
    name: &'static str,
    stream: TcpStream,
    protocol: Protocol,
    tls: Option<&tls::Acceptor>,
    max_connections: usize,
    refusals: &Arc<Semaphore>,
) {
    tracing::debug!(
        listener = name,
        max_connections,
        "connection refused: at the limit"
    );
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    let tls = tls.cloned();
    tokio::spawn(async move {
        match tls {
            None => answer_refusal(stream, protocol, max_connections).await,
            Some(tls) => {
                if let Ok(Ok(stream)) =
                    tokio::time::timeout(REFUSAL_LINGER, tls.accept(stream)).await
                {
                    answer_refusal(stream, protocol, max_connections).await;
                }
            }
        }
        drop(permit);
    });
}

/// The refusal itself, on a plain or TLS stream.
async fn answer_refusal<IO>(mut stream: IO, protocol: Protocol, max_connections: usize)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match protocol {
        Protocol::Http1 => {
            let bytes = http1_refusal(max_connections);
            let _ = tokio::time::timeout(REFUSAL_LINGER, async {
                stream.write_all(&bytes).await?;
                stream.shutdown().await
            })
            .await;
        }
        Protocol::Http2 => {
            let answer = hyper::service::service_fn(move |_: Request<Incoming>| {
                let status = tonic::Status::from(ProxyError::TooManyConnections(max_connections));
                async move { Ok::<_, Infallible>(status.into_http::<tonic::body::Body>()) }
            });
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder.timer(TokioTimer::new()).max_concurrent_streams(8);
            let conn = builder.serve_connection(TokioIo::new(stream), answer);
            tokio::pin!(conn);
            if tokio::time::timeout(REFUSAL_LINGER, conn.as_mut())
                .await
                .is_err()
            {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(REFUSAL_LINGER, conn).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_backoff_doubles_from_5ms_to_1s() {
        assert_eq!(accept_backoff(1), Duration::from_millis(5));
        assert_eq!(accept_backoff(2), Duration::from_millis(10));
        assert_eq!(accept_backoff(3), Duration::from_millis(20));
        assert_eq!(accept_backoff(8), Duration::from_millis(640));
        assert_eq!(accept_backoff(9), ACCEPT_BACKOFF_MAX);
        assert_eq!(accept_backoff(u32::MAX), ACCEPT_BACKOFF_MAX);
    }

    #[test]
    fn an_http1_refusal_is_a_503() {
        let text = String::from_utf8(http1_refusal(3)).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(text.contains(&format!("content-length: {}", body.len())));
        assert!(body.contains("max_connections = 3"));
    }
}
