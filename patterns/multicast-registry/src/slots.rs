//! The two slots a registry namespace composes, as domain types and one enum
//! per slot that forwards to the backend chosen in config. Nothing here
//! speaks gRPC: the service turns requests into these calls.
//!
//! - Registry slot ([`Registry`]): identities, their metadata and expiry.
//!   Expired identities are never returned, even before [`Registry::sweep`]
//!   removes them. Pages run in identity (byte) order.
//! - Messaging slot ([`Messaging`]): one inbox per identity. `deliver` says
//!   what became of one message ([`Outcome`]); `attach` is a receiver.
//!
//! Backends: `mem_registry`, `redis_registry`; `mem_messaging`,
//! `nats_messaging` (core and JetStream), `redis_messaging` (Pub/Sub).

mod mem_messaging;
mod mem_registry;
mod nats_messaging;
mod redis_backend;
mod redis_messaging;
mod redis_registry;

use std::{collections::HashMap, pin::Pin, sync::Arc};

use futures_util::Stream;
use prism_pattern_sdk::ConfigError;
use prism_proto::{filter::Filter, registry::Registration};
use serde_json::Value;

use crate::{
    config::{MessagingBackend, RegistryBackend, Slot},
    error::Error,
};

/// One registered identity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub identity: String,
    /// A JSON object.
    pub metadata: Arc<Value>,
    pub registered_at_ms: i64,
    /// `None`: never expires.
    pub expires_at_ms: Option<i64>,
}

/// What a Register did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Registered {
    pub created: bool,
    pub registered_at_ms: i64,
    pub expires_at_ms: Option<i64>,
}

/// A page of the identities a filter selects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Page {
    /// In identity order, at most the page size.
    pub records: Vec<Record>,
    /// Whether identities after the last record also match (then the next
    /// page starts after the last record).
    pub more: bool,
    /// Every matching, unexpired identity, on all pages.
    pub total: u64,
}

/// A slot's view of its backend, for health.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlotHealth {
    pub state: SlotState,
    /// Figures for the health details, e.g. `("identities", "12")`; the
    /// pattern prefixes them with the slot's name.
    pub details: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SlotState {
    Ready,
    /// Serving, with a problem worth showing (slow, nearly full).
    Degraded(String),
    /// The backend (named) cannot be reached; calls fail with UNAVAILABLE.
    Unreachable {
        backend: &'static str,
        reason: String,
    },
}

/// One message on its way to one identity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Envelope {
    /// Unique per message and identity.
    pub message_id: String,
    pub multicast_id: String,
    pub payload: Arc<[u8]>,
    pub metadata: Arc<HashMap<String, String>>,
    pub sent_at_ms: i64,
    /// W3C traceparent of the multicast's span, so the receiving side's
    /// CONSUMER span joins its trace.
    pub traceparent: String,
}

/// What became of one delivery (TIMEOUT is decided by the fan-out, which
/// stops waiting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Handed to a live receiver, or durably stored while one is attached.
    Delivered,
    /// Stored for an identity with no receiver attached.
    Pending,
    /// Nobody holds the message; the reason says why.
    Failed(String),
}

/// A message handed to a receiver, and how to acknowledge it once the
/// receiver's stream has taken it (at-least-once slots redeliver what is not
/// acknowledged).
pub(crate) struct Incoming {
    pub envelope: Envelope,
    pub ack: Option<Box<dyn FnOnce() + Send>>,
}

/// A receiver: the identity's messages, beginning with what is pending.
/// Dropping it detaches the receiver.
pub(crate) type Inbox = Pin<Box<dyn Stream<Item = Result<Incoming, Error>> + Send>>;

/// The registry slot, on the backend chosen in config.
pub(crate) enum Registry {
    Memstore(mem_registry::MemRegistry),
    Redis(redis_registry::RedisRegistry),
}

impl Registry {
    /// Builds the slot for `namespace` from its config (no I/O: a backend
    /// is reached on first use and by health).
    pub(crate) fn open(
        namespace: &str,
        slot: &Slot<RegistryBackend>,
        max_identities: usize,
    ) -> Result<Self, ConfigError> {
        Ok(match slot.backend {
            RegistryBackend::Memstore => Self::Memstore(mem_registry::MemRegistry::open(
                &slot.options,
                max_identities,
            )?),
            RegistryBackend::Redis => Self::Redis(redis_registry::RedisRegistry::open(
                namespace,
                &slot.options,
                max_identities,
            )?),
        })
    }

    /// Registers or refreshes an identity at `now_ms`. A new identity past
    /// `max_identities` is [`Error::Exhausted`].
    pub(crate) async fn register(
        &self,
        registration: &Registration,
        now_ms: i64,
    ) -> Result<Registered, Error> {
        match self {
            Self::Memstore(r) => r.register(registration, now_ms).await,
            Self::Redis(r) => r.register(registration, now_ms).await,
        }
    }

    /// Forgets an identity; whether it was registered (and unexpired).
    pub(crate) async fn unregister(&self, identity: &str, now_ms: i64) -> Result<bool, Error> {
        match self {
            Self::Memstore(r) => r.unregister(identity, now_ms).await,
            Self::Redis(r) => r.unregister(identity, now_ms).await,
        }
    }

    /// The identity, unless it is not registered or has expired.
    pub(crate) async fn get(&self, identity: &str, now_ms: i64) -> Result<Option<Record>, Error> {
        match self {
            Self::Memstore(r) => r.get(identity, now_ms).await,
            Self::Redis(r) => r.get(identity, now_ms).await,
        }
    }

    /// Up to `limit` unexpired identities the filter selects, after `after`
    /// in identity order, and how many match in all. Multicast passes
    /// `usize::MAX` to get every target.
    pub(crate) async fn select(
        &self,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page, Error> {
        match self {
            Self::Memstore(r) => r.select(filter, after, limit, now_ms).await,
            Self::Redis(r) => r.select(filter, after, limit, now_ms).await,
        }
    }

    /// Removes identities expired at `now_ms`; returns them, so their inboxes
    /// can be forgotten too.
    pub(crate) async fn sweep(&self, now_ms: i64) -> Result<Vec<String>, Error> {
        match self {
            Self::Memstore(r) => r.sweep(now_ms).await,
            Self::Redis(r) => r.sweep(now_ms).await,
        }
    }

    pub(crate) async fn health(&self) -> SlotHealth {
        match self {
            Self::Memstore(r) => r.health().await,
            Self::Redis(r) => r.health().await,
        }
    }

    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Self::Memstore(_) => "memstore",
            Self::Redis(_) => "redis",
        }
    }
}

/// The messaging slot, on the backend chosen in config.
pub(crate) enum Messaging {
    Memstore(mem_messaging::MemMessaging),
    Nats(nats_messaging::NatsMessaging),
    Redis(redis_messaging::RedisMessaging),
}

impl Messaging {
    /// Builds the slot for `namespace` from its config (no I/O).
    pub(crate) fn open(
        namespace: &str,
        slot: &Slot<MessagingBackend>,
    ) -> Result<Self, ConfigError> {
        Ok(match slot.backend {
            MessagingBackend::Memstore => {
                Self::Memstore(mem_messaging::MemMessaging::open(&slot.options)?)
            }
            MessagingBackend::Nats => Self::Nats(nats_messaging::NatsMessaging::open(
                namespace,
                &slot.options,
            )?),
            MessagingBackend::Redis => Self::Redis(redis_messaging::RedisMessaging::open(
                namespace,
                &slot.options,
            )?),
        })
    }

    /// Connects and starts background work (called from the pattern's Start).
    pub(crate) async fn start(&self) -> Result<(), Error> {
        match self {
            Self::Memstore(m) => m.start().await,
            Self::Nats(m) => m.start().await,
            Self::Redis(m) => m.start().await,
        }
    }

    /// Releases connections and receivers.
    pub(crate) async fn stop(&self) {
        match self {
            Self::Memstore(m) => m.stop().await,
            Self::Nats(m) => m.stop().await,
            Self::Redis(m) => m.stop().await,
        }
    }

    /// Hands one message to `identity`'s inbox and says what became of it.
    /// An `Err` is reported as FAILED with its message.
    pub(crate) async fn deliver(
        &self,
        identity: &str,
        envelope: &Envelope,
    ) -> Result<Outcome, Error> {
        match self {
            Self::Memstore(m) => m.deliver(identity, envelope).await,
            Self::Nats(m) => m.deliver(identity, envelope).await,
            Self::Redis(m) => m.deliver(identity, envelope).await,
        }
    }

    /// Attaches a receiver to `identity`'s inbox (what is pending comes first).
    pub(crate) async fn attach(&self, identity: &str) -> Result<Inbox, Error> {
        match self {
            Self::Memstore(m) => m.attach(identity).await,
            Self::Nats(m) => m.attach(identity).await,
            Self::Redis(m) => m.attach(identity).await,
        }
    }

    /// Drops what is stored for an identity that was unregistered or expired.
    pub(crate) async fn forget(&self, identity: &str) -> Result<(), Error> {
        match self {
            Self::Memstore(m) => m.forget(identity).await,
            Self::Nats(m) => m.forget(identity).await,
            Self::Redis(m) => m.forget(identity).await,
        }
    }

    pub(crate) async fn health(&self) -> SlotHealth {
        match self {
            Self::Memstore(m) => m.health().await,
            Self::Nats(m) => m.health().await,
            Self::Redis(m) => m.health().await,
        }
    }

    /// `memstore`, `nats`, `nats-jetstream` or `redis`.
    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Self::Memstore(_) => "memstore",
            Self::Nats(m) => m.backend(),
            Self::Redis(_) => "redis",
        }
    }
}
