//! Every listener the proxy owns (data plane, admin, metrics) is served by
//! [`serve`]: an accept loop with a cap on connections, a clear refusal past
//! it, a back-off when `accept` fails (out of file descriptors), and per
//! connection an HTTP/2 stream cap, a handshake timeout and an idle timeout
//! ([`conn`]). [`message`] bounds what a data-plane request body may make
//! the proxy buffer.

pub mod conn;
pub mod message;

use std::{convert::Infallible, sync::Arc, time::Duration};

use http::{Request, Response};
use hyper::body::Incoming;
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
    task::JoinSet,
};

use crate::config::ListenersConfig;
use conn::Protocol;

/// First wait after a failed `accept`; doubles up to [`ACCEPT_BACKOFF_MAX`].
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Refusals being written at once; past that a connection is closed unanswered,
/// so a flood of refused peers cannot hold many descriptors.
const MAX_REFUSALS: usize = 64;
/// How long a refused peer gets to take its refusal.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long connections get to finish after shutdown before they are dropped.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// The wait after the `failures`-th consecutive failed `accept` (1-based):
/// 5 ms doubling to 1 s, so a listener out of descriptors sleeps instead of
/// spinning a core, and resumes within a second of one freeing up.
pub fn accept_backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (ACCEPT_BACKOFF_MIN * 2u32.pow(doublings)).min(ACCEPT_BACKOFF_MAX)
}

/// What a connection past `max_connections` is told before it is closed:
/// for HTTP/2 a SETTINGS frame then GOAWAY (last stream 0, ENHANCE_YOUR_CALM)
/// whose debug data says why; for HTTP/1 a `503`.
pub fn refusal(protocol: Protocol, max_connections: usize) -> Vec<u8> {
    let why = format!("connection limit reached (listeners.max_connections = {max_connections})");
    match protocol {
        Protocol::Http2 => {
            let mut out = vec![0, 0, 0, 0x4, 0, 0, 0, 0, 0];
            let len = 8 + why.len();
            out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
            out.extend_from_slice(&[0x7, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&0u32.to_be_bytes());
            out.extend_from_slice(&0xbu32.to_be_bytes());
            out.extend_from_slice(why.as_bytes());
            out
        }
        Protocol::Http1 => format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{why}\n",
            why.len() + 1
        )
        .into_bytes(),
    }
}

/// Serves `service` on `listener` until `shutdown` resolves, then asks every
/// connection to finish (GOAWAY) and waits for them, at most [`SHUTDOWN_WAIT`].
pub async fn serve<S, B>(
    name: &'static str,
    listener: TcpListener,
    bounds: ListenersConfig,
    protocol: Protocol,
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
                failures = 0;
                stream
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let wait = accept_backoff(failures);
                if failures == 1 || wait == ACCEPT_BACKOFF_MAX {
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
            refuse(name, stream, protocol, bounds.max_connections, &refusals);
            continue;
        };
        let service = service.clone();
        let bounds = bounds.clone();
        let stop = stop_rx.clone();
        connections.spawn(async move {
            conn::serve(stream, protocol, &bounds, service, stop).await;
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

fn refuse(
    name: &'static str,
    mut stream: TcpStream,
    protocol: Protocol,
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
    tokio::spawn(async move {
        let bytes = refusal(protocol, max_connections);
        let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, async {
            stream.write_all(&bytes).await?;
            stream.shutdown().await
        })
        .await;
        drop(permit);
    });
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
    fn an_http2_refusal_is_settings_then_goaway_naming_the_limit() {
        let bytes = refusal(Protocol::Http2, 7);
        assert_eq!(&bytes[..9], &[0, 0, 0, 4, 0, 0, 0, 0, 0], "empty SETTINGS");
        let goaway = &bytes[9..];
        let len = u32::from_be_bytes([0, goaway[0], goaway[1], goaway[2]]) as usize;
        assert_eq!(goaway[3], 0x7, "GOAWAY frame type");
        assert_eq!(len, goaway.len() - 9);
        assert_eq!(&goaway[9..13], &[0, 0, 0, 0], "no stream was processed");
        assert_eq!(&goaway[13..17], &[0, 0, 0, 0xb], "ENHANCE_YOUR_CALM");
        let why = std::str::from_utf8(&goaway[17..]).unwrap();
        assert!(why.contains("max_connections = 7"), "{why}");
    }

    #[test]
    fn an_http1_refusal_is_a_503() {
        let text = String::from_utf8(refusal(Protocol::Http1, 3)).unwrap();
        assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(text.contains(&format!("content-length: {}", body.len())));
        assert!(body.contains("max_connections = 3"));
    }
}
