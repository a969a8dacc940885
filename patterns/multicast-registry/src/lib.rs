//! `prism-multicast-registry`: identities register with metadata and a TTL;
//! a Multicast sends one message to every identity a filter selects and
//! reports, per identity, what became of it. State lives in the registry
//! slot (MemStore in process, or Redis), delivery goes through the messaging
//! slot (MemStore, NATS core or JetStream, Redis Pub/Sub).
//!
//! Modules: [`config`] (the namespace's config block and its two slots),
//! [`slots`] (the slot interfaces and their backends), [`service`] (the
//! gRPC service), [`pattern`] (lifecycle hooks, the sweep, health),
//! [`error`] (failures and their one map to gRPC status).

mod config;
mod error;
mod pattern;
mod service;
mod slots;

use std::sync::Arc;

use pattern::RegistryPattern;
use prism_pattern_sdk::{Args, Gate, ServeError};
use prism_proto::registry::v1::multicast_registry_server::MulticastRegistryServer;
use tonic::service::Routes;

/// What `prism-multicast-registry --help` says about the pattern and its config.
pub const HELP: prism_pattern_sdk::PatternHelp = prism_pattern_sdk::PatternHelp {
    name: "prism-multicast-registry",
    about: "The Prism multicast registry pattern: identities with metadata and a TTL, and multicast to those a filter selects. Normally spawned by prism-proxy.",
    config: r#"CONFIG (the namespace's `config:` block, or `--config` JSON; every field optional):
  registry             where identities live: {"backend": "memstore" | "redis", ...options}
                       (redis options: address, as for prism-redis)
  messaging            how messages reach receivers:
                       {"backend": "memstore" | "nats" | "redis", ...options}
                       (nats options: url, jetstream, as for prism-nats)
  fanout_concurrency   deliveries of one Multicast in flight at once
  sweep_interval_ms    how often expired identities are removed
  max_identities, max_value_bytes

Example:
  prism-multicast-registry --autostart --grpc-port 50051 \
    --config '{"registry": {"backend": "redis", "address": "redis://127.0.0.1:6379"}, "messaging": {"backend": "nats", "url": "nats://127.0.0.1:4222"}}'
"#,
};
/// Serves the registry pattern as the flags say, until it is stopped.
pub async fn run(args: Args) -> Result<(), ServeError> {
    let gate = Gate::new();
    let pattern = Arc::new(RegistryPattern::new());
    let registry =
        MulticastRegistryServer::new(service::RegistryService::new(pattern.clone(), gate.clone()))
            .max_decoding_message_size(prism_pattern_sdk::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(prism_pattern_sdk::MAX_MESSAGE_BYTES);
    prism_pattern_sdk::serve(&args, pattern, gate, Routes::new(registry)).await
}
