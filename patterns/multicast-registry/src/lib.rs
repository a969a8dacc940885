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
