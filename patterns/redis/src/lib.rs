//! `prism-redis`: the KeyValue pattern on Redis. Each call runs one Redis
//! command (`SET … EX`, `GET`, `DEL`, `EXISTS`, `SCAN`) on a pooled
//! connection, inside a client span; a Redis that goes away makes calls fail
//! fast with `UNAVAILABLE` and health UNHEALTHY, and the pattern reconnects
//! by itself when it returns.
//!
//! Modules: [`config`] (the namespace's config block), [`pool`] (pooled
//! connections that heal), [`cluster`] (Redis Cluster: slot routing, scans
//! over every master, per-node health), [`backend`] (the commands and the
//! health probe, on one server or a cluster),
//! [`scan`] (prefix scans as pages over `SCAN`, cursor encoding), [`error`]
//! (failures and their one mapping to gRPC status), [`keyvalue`] (the gRPC
//! service), [`pattern`] (lifecycle hooks and health).
//!
//! [`client`] lends the same Redis client to other patterns that keep
//! state in Redis, so they do not write their own.

mod backend;
mod cluster;
mod config;
mod error;
mod keyvalue;
mod pattern;
mod pool;
mod scan;

/// The Redis client this pattern runs on, for other crates: the config
/// block ([`RedisConfig`](client::RedisConfig): address, password, db, pool
/// size, timeouts; [`RedisConfig::FIELDS`](client::RedisConfig::FIELDS)
/// names them), pooled connections that heal with a client span per command
/// and a health PING on a connection of its own
/// ([`Backend`](client::Backend): [`run`](client::Backend::run),
/// [`ping`](client::Backend::ping), [`pubsub`](client::Backend::pubsub)),
/// and its failures ([`Error`](client::Error), with
/// [`is_unreachable`](client::Error::is_unreachable) telling a server that
/// is down or busy from one that refused the command).
pub mod client {
    pub use crate::{
        backend::{Backend, Retry},
        config::{Endpoint, RedisConfig},
        error::Error,
        pool::PoolStats,
    };
}

use pattern::RedisPattern;

use std::sync::Arc;

use prism_pattern_sdk::{Args, Gate, ServeError};
use prism_proto::keyvalue::v1::key_value_server::KeyValueServer;
use tonic::service::Routes;

/// What `prism-redis --help` says about the pattern and its config.
pub const HELP: prism_pattern_sdk::PatternHelp = prism_pattern_sdk::PatternHelp {
    name: "prism-redis",
    about: "The Prism Redis pattern: KeyValue on a Redis server. Normally spawned by prism-proxy.",
    config: r#"CONFIG (the namespace's `config:` block, or `--config` JSON):
  address              redis://[user][:password@]host[:port][/db] or redis+unix:///path
                       (redis://127.0.0.1:6379)
  password, db         override those in `address`
  pool_size            connections kept open at most (16)
  connect_timeout_ms   bound on opening one connection (1000)
  command_timeout_ms   bound on one command's reply (1000)
  read_retries         extra attempts for reads on a broken connection (1, at most 10)
  slow_ping_ms         a slower health PING makes health DEGRADED (100)
  health_timeout_ms    bound on the health PING (750)
  max_key_bytes, max_value_bytes

Example:
  prism-redis --autostart --grpc-port 50051 --config '{"address": "redis://127.0.0.1:6379"}'
"#,
};
/// Serves the Redis pattern as the flags say, until it is stopped.
pub async fn run(args: Args) -> Result<(), ServeError> {
    let gate = Gate::new();
    let redis = Arc::new(RedisPattern::new());
    let kv = KeyValueServer::new(keyvalue::KeyValueService::new(redis.clone(), gate.clone()))
        .max_decoding_message_size(prism_pattern_sdk::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(prism_pattern_sdk::MAX_MESSAGE_BYTES);
    prism_pattern_sdk::serve(&args, redis, gate, Routes::new(kv)).await
}
