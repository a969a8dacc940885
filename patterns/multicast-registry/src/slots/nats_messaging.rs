//! The NATS messaging slot: one inbox subject per identity,
//! `prism.registry.<namespace>.inbox.<hex(identity)>`, shared by every
//! process serving the namespace on one NATS, so a multicast from one proxy
//! reaches receivers attached to another.
//!
//! - Core NATS ([`core`]): at-most-once. A delivery is a request; each
//!   process with a receiver of the identity answers once the message is in
//!   its receiver's queue, so DELIVERED means a live receiver holds it. No
//!   receiver: FAILED, core NATS keeps nothing.
//! - JetStream ([`jetstream`]): at-least-once. A delivery is stored in the
//!   identity's inbox (PubAck), then a presence request says whether a
//!   receiver is attached: DELIVERED, else PENDING. A receiver reads the
//!   identity's durable consumer and acknowledges each message once the
//!   service has written it; whatever it did not acknowledge comes again.
//!
//! The connection, its reconnects and the health rule are `prism-nats`'s
//! ([`prism_nats::client`], [`prism_nats::link`]); [`options`] reads the
//! slot's options, [`wire`] names subjects and carries envelopes.

mod core;
mod jetstream;
mod options;
mod wire;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use async_nats::connection::State;
use prism_nats::{
    client::{self, Connected},
    jetstream::JetStream,
    link::{self, Link, Online},
};
use prism_pattern_sdk::{ConfigError, HealthStatus};
use serde_json::Value;
use tokio::{sync::watch, task::JoinHandle};

use super::{Envelope, Inbox, Outcome, SlotHealth, SlotState};
use crate::error::Error;
use options::Options;
use wire::Names;

pub(crate) struct NatsMessaging {
    namespace: String,
    options: Arc<Options>,
    names: Names,
    live: RwLock<Option<Arc<Live>>>,
    receivers: Arc<Receivers>,
}

/// A started slot: the connection and what runs on it.
pub(super) struct Live {
    client: async_nats::Client,
    link: Arc<Link>,
    online: Online,
    /// Set with `jetstream: true`.
    jetstream: Option<Arc<JetStream>>,
    /// Creates the stream again after every (re)connect.
    keeper: Option<JoinHandle<()>>,
    options: Arc<Options>,
    names: Names,
    receivers: Arc<Receivers>,
}

impl Live {
    fn check_connected(&self) -> Result<(), Error> {
        if self.client.connection_state() == State::Connected {
            Ok(())
        } else {
            Err(unreachable("not connected; retry once it is back"))
        }
    }
}

/// Subscribes to `subject`; returns once NATS holds the subscription, so
/// that a delivery from any process after this finds it.
pub(super) async fn subscribe_confirmed(
    live: &Live,
    subject: String,
) -> Result<async_nats::Subscriber, Error> {
    let subscriber = live
        .client
        .subscribe(subject)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    prism_nats::client::round_trip(&live.client, live.options.nats.request_timeout())
        .await
        .map_err(|e| unreachable(format!("the subscription was not confirmed: {e}")))?;
    Ok(subscriber)
}

/// `Error::Unreachable` for NATS.
pub(super) fn unreachable(reason: impl Into<String>) -> Error {
    Error::Unreachable {
        backend: "nats",
        reason: reason.into(),
    }
}

impl NatsMessaging {
    /// Reads the options (no I/O); errors name `messaging.<field>`.
    pub(crate) fn open(namespace: &str, options: &Value) -> Result<Self, ConfigError> {
        Ok(Self {
            namespace: namespace.to_string(),
            options: Arc::new(Options::parse(options)?),
            names: Names::new(namespace),
            live: RwLock::new(None),
            receivers: Arc::default(),
        })
    }

    pub(crate) fn backend(&self) -> &'static str {
        if self.options.nats.jetstream {
            "nats-jetstream"
        } else {
            "nats"
        }
    }

    fn live(&self) -> Result<Arc<Live>, Error> {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| unreachable("the messaging slot is not started"))
    }

    /// Connects (returning after `connect_timeout_ms` even if NATS is down:
    /// the client keeps trying) and, with JetStream, creates the stream on
    /// every connect.
    pub(crate) async fn start(&self) -> Result<(), Error> {
        let config = &self.options.nats;
        let Connected {
            client,
            link,
            connects,
        } = client::connect(
            config,
            format!("prism-multicast-registry {}", self.namespace),
        )
        .await
        .map_err(|e| unreachable(e.to_string()))?;
        let js = config.jetstream.then(|| {
            Arc::new(JetStream::with_stream(
                client.clone(),
                config,
                jetstream::stream_config(&self.names, &self.options, &self.namespace),
            ))
        });
        let keeper = js.clone().map(|js| {
            let mut connected = connects.clone();
            tokio::spawn(async move {
                while connected.changed().await.is_ok() {
                    js.recheck();
                    if let Err(e) = js.ensure_stream().await {
                        tracing::warn!(error = %e, stream = %js.stream_name(), "cannot create the inbox stream yet; retried on first use");
                    }
                }
            })
        });
        let live = Arc::new(Live {
            online: Online::new(client.clone(), connects),
            client,
            link,
            jetstream: js,
            keeper,
            options: self.options.clone(),
            names: self.names.clone(),
            receivers: self.receivers.clone(),
        });
        let old = self
            .live
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(live);
        if let Some(old) = old {
            close(&old).await;
        }
        Ok(())
    }

    /// Ends every receiver's stream and closes the connection.
    pub(crate) async fn stop(&self) {
        self.receivers.end_all();
        let live = self.live.write().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(live) = live {
            close(&live).await;
        }
    }

    pub(crate) async fn deliver(
        &self,
        identity: &str,
        envelope: &Envelope,
    ) -> Result<Outcome, Error> {
        let live = self.live()?;
        live.check_connected()?;
        match &live.jetstream {
            None => core::deliver(&live, identity, envelope).await,
            Some(js) => jetstream::deliver(&live, js, identity, envelope).await,
        }
    }

    pub(crate) async fn attach(&self, identity: &str) -> Result<Inbox, Error> {
        let live = self.live()?;
        live.check_connected()?;
        match &live.jetstream {
            None => core::attach(&live, identity).await,
            Some(js) => jetstream::attach(&live, js, identity).await,
        }
    }

    /// Ends this process's receivers of `identity`; with JetStream also
    /// deletes its consumer and purges its inbox.
    pub(crate) async fn forget(&self, identity: &str) -> Result<(), Error> {
        self.receivers.end(identity);
        if !self.options.nats.jetstream {
            // Core NATS stores nothing.
            return Ok(());
        }
        let live = self.live()?;
        live.check_connected()?;
        match &live.jetstream {
            Some(js) => jetstream::forget(&live, js, identity).await,
            None => Ok(()),
        }
    }

    /// `prism-nats`'s rule: an outage shorter than `request_timeout_ms` is
    /// DEGRADED, longer is unreachable; a stream that cannot be created
    /// degrades.
    pub(crate) async fn health(&self) -> SlotHealth {
        let mut details = vec![
            (
                "receivers".to_string(),
                self.receivers.attached.load(Ordering::Relaxed).to_string(),
            ),
            ("url".to_string(), self.options.nats.display_url()),
        ];
        if self.options.nats.jetstream {
            details.push(("stream".to_string(), self.names.stream().to_string()));
        }
        let Ok(live) = self.live() else {
            return SlotHealth {
                state: SlotState::Degraded("not started".into()),
                details,
            };
        };
        let connected = live.client.connection_state() == State::Connected;
        let mut observed = live.link.observe(connected, 0, Instant::now());
        observed.jetstream_problem = live.jetstream.as_ref().and_then(|js| js.problem());
        let (status, message) = link::assess(&observed, self.options.nats.request_timeout());
        let state = match status {
            HealthStatus::Healthy => SlotState::Ready,
            HealthStatus::Degraded => SlotState::Degraded(message),
            _ => SlotState::Unreachable {
                backend: "nats",
                reason: message,
            },
        };
        SlotHealth { state, details }
    }
}

async fn close(live: &Live) {
    if let Some(keeper) = &live.keeper {
        keeper.abort();
    }
    if live.client.connection_state() == State::Connected {
        let wait = std::time::Duration::from_secs(1);
        let _ = tokio::time::timeout(wait, live.client.flush()).await;
        let _ = tokio::time::timeout(wait, live.client.drain()).await;
    }
}

/// The receivers attached in this process, and a way to end those of one
/// identity (its inbox was forgotten) or all (Stop).
#[derive(Default)]
pub(super) struct Receivers {
    attached: AtomicUsize,
    ends: Mutex<HashMap<String, watch::Sender<bool>>>,
}

impl Receivers {
    /// Counts a receiver of `identity` until the returned guard drops.
    pub(super) fn join(self: &Arc<Self>, identity: &str) -> Attached {
        let ended = self
            .ends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(identity.to_string())
            .or_insert_with(|| watch::channel(false).0)
            .subscribe();
        self.attached.fetch_add(1, Ordering::Relaxed);
        Attached {
            receivers: self.clone(),
            identity: identity.to_string(),
            ended,
        }
    }

    fn end(&self, identity: &str) {
        let ends = self
            .ends
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(identity);
        if let Some(end) = ends {
            end.send_replace(true);
        }
    }

    fn end_all(&self) {
        let ends = std::mem::take(&mut *self.ends.lock().unwrap_or_else(|e| e.into_inner()));
        for end in ends.values() {
            end.send_replace(true);
        }
    }
}

/// One attached receiver; `ended` turns true when its stream must end.
pub(super) struct Attached {
    receivers: Arc<Receivers>,
    identity: String,
    pub ended: watch::Receiver<bool>,
}

impl Attached {
    /// Resolves once the receiver must end (forget or Stop).
    pub(super) async fn wait_ended(&mut self) {
        until_ended(&mut self.ended).await;
    }
}

/// Resolves once `ended` turns true (or its sender is gone).
pub(super) async fn until_ended(ended: &mut watch::Receiver<bool>) {
    let _ = ended.wait_for(|ended| *ended).await;
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.receivers.attached.fetch_sub(1, Ordering::Relaxed);
        let mut ends = self
            .receivers
            .ends
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // The last receiver of the identity (this one still counts) takes
        // its entry along.
        if ends.get(&self.identity).is_some_and(|end| {
            end.receiver_count() <= 1 && self.ended.same_channel(&end.subscribe())
        }) {
            ends.remove(&self.identity);
        }
    }
}

#[cfg(test)]
mod server_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn forgetting_ends_only_that_identitys_receivers() {
        let receivers = Arc::new(Receivers::default());
        let mut a1 = receivers.join("a");
        let a2 = receivers.join("a");
        let b = receivers.join("b");
        assert_eq!(receivers.attached.load(Ordering::Relaxed), 3);
        receivers.end("a");
        tokio::time::timeout(std::time::Duration::from_secs(5), a1.wait_ended())
            .await
            .expect("ended");
        assert!(*a2.ended.borrow());
        assert!(!*b.ended.borrow());
        // A receiver attached after the end starts afresh, and the old ones
        // leaving does not take its entry along.
        let a3 = receivers.join("a");
        drop((a1, a2));
        assert!(!*a3.ended.borrow());
        receivers.end("a");
        assert!(*a3.ended.borrow());
        drop((a3, b));
        assert_eq!(receivers.attached.load(Ordering::Relaxed), 0);
        assert!(receivers.ends.lock().unwrap().is_empty());
    }

    #[test]
    fn stop_ends_every_receiver() {
        let receivers = Arc::new(Receivers::default());
        let (a, b) = (receivers.join("a"), receivers.join("b"));
        receivers.end_all();
        assert!(*a.ended.borrow() && *b.ended.borrow());
    }
}
