//! `prism-memstore`: the embedded in-memory backend. It serves KeyValue with
//! TTL (enforced on read and by a periodic sweep), a max-keys capacity and
//! paginated prefix scans, and at-most-once PubSub with NATS-style wildcards.
//!
//! Modules: [`config`] (the namespace's config block), [`store`] (the pure
//! key/value structure), [`keyvalue`] (its gRPC service), [`broker`] (the
//! in-memory fan-out), [`pubsub`] (its gRPC service), [`pattern`] (lifecycle
//! hooks and health), [`error`] (the errors and their one map to statuses).

mod broker;
mod config;
mod error;
mod keyvalue;
mod pattern;
mod pubsub;
mod store;

use pattern::MemStore;

use std::sync::Arc;

use prism_pattern_sdk::{Args, Gate, ServeError};
use prism_proto::{
    keyvalue::v1::key_value_server::KeyValueServer, pubsub::v1::pub_sub_server::PubSubServer,
};
use tonic::service::Routes;

/// What `prism-memstore --help` says about the pattern and its config.
pub const HELP: prism_pattern_sdk::PatternHelp = prism_pattern_sdk::PatternHelp {
    name: "prism-memstore",
    about: "The Prism MemStore pattern: KeyValue (TTL, max keys, prefix scans) and at-most-once PubSub, in memory. Normally spawned by prism-proxy.",
    config: r#"CONFIG (the namespace's `config:` block, or `--config` JSON; every field optional):
  max_keys              new keys beyond this are RESOURCE_EXHAUSTED (100000)
  max_key_bytes         largest key accepted
  max_value_bytes       largest value accepted
  sweep_interval_ms     how often expired keys are removed (1000)
  simulated_latency_ms  added to every call, for demos (0)

Example:
  prism-memstore --autostart --grpc-port 50051 --config '{"max_keys": 1000}'
"#,
};
/// Serves the MemStore pattern as the flags say, until it is stopped.
pub async fn run(args: Args) -> Result<(), ServeError> {
    let gate = Gate::new();
    let memstore = Arc::new(MemStore::new());
    let kv = KeyValueServer::new(keyvalue::KeyValueService::new(
        memstore.clone(),
        gate.clone(),
    ))
    .max_decoding_message_size(prism_pattern_sdk::MAX_MESSAGE_BYTES)
    .max_encoding_message_size(prism_pattern_sdk::MAX_MESSAGE_BYTES);
    let pubsub = PubSubServer::new(pubsub::PubSubService::new(memstore.clone(), gate.clone()))
        .max_decoding_message_size(prism_pattern_sdk::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(prism_pattern_sdk::MAX_MESSAGE_BYTES);
    let routes = Routes::new(kv).add_service(pubsub);
    prism_pattern_sdk::serve(&args, memstore, gate, routes).await
}
