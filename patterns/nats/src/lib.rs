//! `prism-nats`: PubSub on NATS. Core NATS gives at-most-once delivery;
//! with `jetstream: true` each subscriber id is a durable JetStream consumer
//! and delivery is at-least-once (acks, redelivery after a reconnect). Trace
//! context travels inside each message, so a subscriber's span belongs to
//! the publisher's trace.
//!
//! Modules: [`config`] (the namespace's config block), [`topic`] (topic
//! rules, subjects, consumer names), [`headers`] (what a message carries
//! besides its payload), [`telemetry`] (producer and consumer spans),
//! [`error`] (errors and their one mapping to gRPC status), [`link`]
//! (connection state and the health rule), [`subscriptions`] (live streams),
//! [`delivery`] (NATS → Subscribe stream), [`jetstream`] (stream, consumers,
//! acknowledged publish), [`broker`] (the connection and the four
//! operations), [`pattern`] (lifecycle hooks and health), [`pubsub`] (the
//! gRPC service), [`client`] (connecting, reconnecting, and the events
//! that feed [`link`]).
//!
//! As a library (the multicast registry's NATS messaging slot uses it, so
//! NATS is spoken one way in Prism): [`config`] for the connection settings
//! and their checks, [`client::connect`], [`link`] for the health rule,
//! [`headers`] and [`telemetry`] for what messages carry, [`jetstream`] for
//! a stream created on demand, acknowledged publishes and durable consumers,
//! and [`error`] for what those report. The rest is this binary's own.

mod broker;
pub mod client;
pub mod config;
mod delivery;
pub mod error;
pub mod headers;
pub mod jetstream;
pub mod link;
mod pattern;
mod pubsub;
mod subscriptions;
pub mod telemetry;
mod topic;

use pattern::Nats;

use std::sync::Arc;

use prism_pattern_sdk::{Args, Gate, ServeError};
use prism_proto::pubsub::v1::pub_sub_server::PubSubServer;
use tonic::service::Routes;

/// What `prism-nats --help` says about the pattern and its config.
pub const HELP: prism_pattern_sdk::PatternHelp = prism_pattern_sdk::PatternHelp {
    name: "prism-nats",
    about: "The Prism NATS pattern: PubSub on NATS, at-most-once (core NATS) or at-least-once (JetStream). Normally spawned by prism-proxy.",
    config: r#"CONFIG (the namespace's `config:` block, or `--config` JSON):
  url                  nats://host:4222 (or tls://…), or a comma-separated list
  jetstream            at-least-once delivery through JetStream (false)
  stream               JetStream stream name (PRISM_<NAMESPACE>)
  subject_prefix       topics map to `<prefix>.<topic>` (prism.<namespace>)
  ack_wait_ms          JetStream: redelivery after this long unacknowledged
  max_deliver          JetStream: deliveries per message, 0 = no limit
  subscriber_buffer    messages buffered per subscriber
  connect_timeout_ms, request_timeout_ms, max_payload_bytes

Example:
  prism-nats --autostart --grpc-port 50051 --config '{"url": "nats://127.0.0.1:4222", "jetstream": true}'
"#,
};
/// Serves the NATS pattern as the flags say, until it is stopped.
pub async fn run(args: Args) -> Result<(), ServeError> {
    let gate = Gate::new();
    let nats = Arc::new(Nats::new());
    let pubsub = PubSubServer::new(pubsub::PubSubService::new(nats.clone(), gate.clone()))
        .max_decoding_message_size(prism_pattern_sdk::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(prism_pattern_sdk::MAX_MESSAGE_BYTES);
    prism_pattern_sdk::serve(&args, nats, gate, Routes::new(pubsub)).await
}
