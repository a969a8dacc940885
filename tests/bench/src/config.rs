//! A validated run: what to send, how hard, for how long, over which paths.
//! Built from flags by [`crate::cli`]; everything downstream reads only this.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::Serialize;

use crate::{auth::AuthSettings, paths::PathKind};

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Mode {
    /// Open loop: `rate` requests per second on a fixed grid of send times,
    /// whatever the server does; latency counts from the intended send time.
    OpenLoop { rate: u64 },
    /// Closed loop: `concurrency` workers, each sending its next request when
    /// the last one returns.
    ClosedLoop { concurrency: usize },
}

/// How load is applied on every path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadSettings {
    pub mode: Mode,
    #[serde(rename = "duration_s", serialize_with = "secs")]
    pub duration: Duration,
    #[serde(rename = "warmup_s", serialize_with = "secs")]
    pub warmup: Duration,
    /// HTTP/2 connections (tonic channels) the requests are spread over.
    pub connections: usize,
    /// Per-request deadline; a request over it counts as DEADLINE_EXCEEDED.
    #[serde(rename = "timeout_s", serialize_with = "secs")]
    pub timeout: Duration,
    /// Open loop only: requests outstanding at once before the generator
    /// waits (the wait still counts in latency). Bounds memory.
    pub max_in_flight: usize,
}

/// The store behind the pattern on the `proxy` and `pattern` paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// `prism-memstore`: in memory, no backend to compare with.
    #[default]
    Memstore,
    /// KeyValue only: `prism-redis` on a Redis the bench starts (or `--redis
    /// URL`); adds the `redis` path, the same operations sent straight to Redis.
    Redis,
    /// KeyValue only: `prism-redis` with `config.cluster` on a Redis Cluster
    /// of three masters and three replicas the bench starts (or
    /// `--redis-cluster URL,URL,…`); the `redis` path sends the same
    /// operations with the redis crate's cluster client.
    #[serde(rename = "redis-cluster")]
    RedisCluster,
    /// PubSub only: `prism-nats` (core NATS) on a `nats-server` the bench
    /// starts (or `--nats URL`); adds the `nats` path, the same messages
    /// published and received straight through NATS.
    Nats,
    /// PubSub only: `prism-nats` (core NATS) given every node of a
    /// three-node NATS cluster the bench starts (or `--nats-cluster
    /// URL,URL,…`); the `nats` path publishes to the first node and
    /// subscribes on the second, so every message crosses a route.
    #[serde(rename = "nats-cluster")]
    NatsCluster,
}

impl Backend {
    /// How the report names it.
    pub fn title(self) -> &'static str {
        match self {
            Self::Memstore => "MemStore",
            Self::Redis => "Redis",
            Self::RedisCluster => "Redis Cluster",
            Self::Nats => "NATS",
            Self::NatsCluster => "a NATS cluster",
        }
    }

    /// How `--backend` spells it.
    pub fn flag_value(self) -> &'static str {
        match self {
            Self::Memstore => "memstore",
            Self::Redis => "redis",
            Self::RedisCluster => "redis-cluster",
            Self::Nats => "nats",
            Self::NatsCluster => "nats-cluster",
        }
    }

    /// Redis, one server or a cluster: serves KeyValue only.
    pub fn is_redis(self) -> bool {
        matches!(self, Self::Redis | Self::RedisCluster)
    }

    /// NATS, one server or a cluster: serves PubSub only.
    pub fn is_nats(self) -> bool {
        matches!(self, Self::Nats | Self::NatsCluster)
    }

    /// A cluster of several servers.
    pub fn is_cluster(self) -> bool {
        matches!(self, Self::RedisCluster | Self::NatsCluster)
    }
}

/// The KeyValue target: a Get/Set mix over a pre-populated key space.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KvSettings {
    /// Fraction of requests that are Gets (the rest are Sets).
    pub get_ratio: f64,
    pub value_size: usize,
    pub keys: u64,
    pub backend: Backend,
}

/// The PubSub target: publishers (`--rate` or `--concurrency`) and
/// `subscribers` on one topic, every message carrying its sequence number
/// and send time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PubsubSettings {
    /// Each on its own connection and stream.
    pub subscribers: usize,
    /// Bytes per message, at least [`crate::target::pubsub::STAMP_BYTES`].
    pub payload_size: usize,
    /// Messages per publish call: 1 is a unary `Publish`, more a
    /// `PublishBatch` (on the `nats` path: that many publishes, one flush).
    pub batch: usize,
    pub topic: String,
    pub backend: Backend,
}

/// The operation mix of one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "target", rename_all = "lowercase")]
pub enum TargetSettings {
    Kv(KvSettings),
    Pubsub(PubsubSettings),
}

/// Where each path's server comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoints {
    /// A running proxy to use instead of starting one.
    pub proxy: Option<SocketAddr>,
    /// A running pattern to use instead of starting one.
    pub pattern: Option<SocketAddr>,
    /// A running Redis (`redis://HOST:PORT`) to use instead of starting
    /// `redis-server`; only with `--backend redis`.
    pub redis: Option<String>,
    /// A running NATS (`nats://HOST:PORT`) to use instead of starting
    /// `nats-server`; only with `--backend nats`.
    pub nats: Option<String>,
    /// A running cluster's nodes (`--redis-cluster` or `--nats-cluster`)
    /// to use instead of starting one; only with that cluster backend.
    pub cluster: Option<Vec<String>>,
    /// Where `prism-proxy` and the pattern binaries are.
    pub bin_dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub target: TargetSettings,
    pub load: LoadSettings,
    pub namespace: String,
    /// Paths named by `--paths`; `None` means every default path that can run.
    pub paths: Option<Vec<PathKind>>,
    pub endpoints: Endpoints,
    pub output: Output,
    pub tui: bool,
    /// The `proxy-auth` paths' algorithm; a token for the other gRPC paths.
    pub auth: AuthSettings,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
