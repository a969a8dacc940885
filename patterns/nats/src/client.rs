//! The NATS client as Prism runs it, for this pattern and for any crate
//! that talks NATS through it (the multicast registry's messaging slot):
//! credentials taken from the url, a bounded connect attempt, pings, and
//! reconnects forever with a short backoff, so a server that is down at
//! start or goes away later never stops the process. Every connection event
//! feeds a [`Link`], from which [`crate::link::assess`] derives health.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use async_nats::ConnectOptions;
use tokio::sync::watch;

use crate::{
    config::{Credentials, NatsConfig},
    error::NatsError,
    link::Link,
};

/// How often the client pings an idle server (a dead peer that sends no
/// RST is noticed within two of these).
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// Longest wait between two reconnect attempts.
pub(crate) const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// A delay that grows by 100 ms per failed attempt up to one second.
pub fn reconnect_delay(attempts: usize) -> Duration {
    (Duration::from_millis(100) * attempts.saturating_sub(1).min(100) as u32)
        .min(MAX_RECONNECT_DELAY)
}

/// A client that keeps itself connected, and what it reports.
pub struct Connected {
    pub client: async_nats::Client,
    /// Connection state for health, fed by the client's events.
    pub link: Arc<Link>,
    /// Bumped on every (re)connect: wait on it to redo work a server may
    /// have lost, or to wait until the client is online
    /// ([`crate::link::Online`]).
    pub connects: watch::Receiver<u64>,
}

/// Connects to the servers of `config.url` as `name` (shown in the
/// server's connection list). Returns once connected, or after
/// `connect_timeout_ms` with the client still trying in the background.
///
/// Errors: `InvalidArgument` naming `url` when it does not parse, `Backend`
/// when the client cannot be built at all.
pub async fn connect(config: &NatsConfig, name: String) -> Result<Connected, NatsError> {
    let servers = config
        .servers()
        .map_err(|e| NatsError::invalid("url", e.reason))?;
    let link = Arc::new(Link::new(Instant::now()));
    let (connects_tx, connects) = watch::channel(0u64);
    let events = link.clone();
    let options = match config.credentials() {
        Some(Credentials::UserPassword { user, password }) => {
            ConnectOptions::with_user_and_password(user, password)
        }
        Some(Credentials::Token(token)) => ConnectOptions::with_token(token),
        None => ConnectOptions::new(),
    };
    let client = options
        .name(name)
        .connection_timeout(config.connect_timeout())
        .request_timeout(Some(config.request_timeout()))
        .ping_interval(PING_INTERVAL)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(reconnect_delay)
        .event_callback(move |event| {
            events.on_event(&event, Instant::now());
            if matches!(event, async_nats::Event::Connected) {
                connects_tx.send_modify(|n| *n += 1);
            }
            async {}
        })
        .connect(servers)
        .await
        .map_err(|e| NatsError::Backend(e.to_string()))?;
    // Give the first connection a moment, so calls right after Start find
    // it; a server that is down only leaves health UNHEALTHY.
    let mut first = connects.clone();
    let _ = tokio::time::timeout(config.connect_timeout(), first.wait_for(|n| *n > 0)).await;
    Ok(Connected {
        client,
        link,
        connects,
    })
}

/// Returns once the server has handled everything `client` sent before this
/// call, such as a new subscription, so a publish from another connection
/// right after finds it. (`flush` only writes the socket.) A request to a
/// subject nobody subscribes to is answered "no responders" by the server
/// itself, after what came before it on the connection.
pub async fn round_trip(
    client: &async_nats::Client,
    timeout: Duration,
) -> Result<(), async_nats::RequestError> {
    let request = async_nats::Request::new().timeout(Some(timeout));
    match client.send_request(client.new_inbox(), request).await {
        Err(e) if e.kind() != async_nats::client::RequestErrorKind::NoResponders => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_start_at_once_and_back_off_to_a_second() {
        assert_eq!(reconnect_delay(0), Duration::ZERO);
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        assert_eq!(reconnect_delay(2), Duration::from_millis(100));
        assert_eq!(reconnect_delay(5), Duration::from_millis(400));
        assert_eq!(reconnect_delay(50), MAX_RECONNECT_DELAY);
        assert_eq!(reconnect_delay(usize::MAX), MAX_RECONNECT_DELAY);
    }
}
