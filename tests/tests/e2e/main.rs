//! End-to-end suites, one test binary so everything links once. Every test
//! starts its own real `prism-proxy` (which spawns real pattern processes) on
//! free ports.
//!
//! - `keyvalue`: the KeyValue section of ACCEPTANCE.md, written once and
//!   instantiated per backend (`keyvalue_suite!`).
//! - `pubsub`: the PubSub section, written once, instantiated per backend
//!   (`pubsub_suite!`).
//! - `lifecycle`: the proxy ⇄ pattern lifecycle section.
//! - `admin`: the admin API (traffic, latency, events, restart, hot reload,
//!   config reload) and Prometheus metrics.
//! - `observability`: one trace per request, exported to a real OTLP receiver.
//! - `compose`: the compose stack's files, checked without Docker.
//! - `memstore`: MemStore-only behaviour (capacity, health details).
//! - `nats`: the PubSub suite's setups for core NATS and JetStream, and
//!   NATS-only behaviour on a real nats-server (healing after NATS dies,
//!   spans across the message, the pattern's acks, drops and backpressure).
//! - `redis`: Redis-only behaviour (healing after Redis dies, config reaching
//!   Redis, glob characters in scan prefixes) against a real `redis-server`.
//! - `blackbox`: an independent client (grpcurl) using reflection.
//! - `console`: the real `prism-console` in tmux against a real proxy.
//! - `bench`: a short `prism-bench` run over every path (JSON sanity).

#[macro_use]
mod keyvalue;
#[macro_use]
mod pubsub;
mod admin;
mod bench;
mod blackbox;
mod chaos;
mod compose;
mod console;
mod harness;
mod lifecycle;
mod memstore;
mod nats;
mod observability;
mod redis;

keyvalue_suite!(keyvalue_memstore, crate::memstore::kv_env);
keyvalue_suite!(keyvalue_redis, crate::redis::kv_env);
pubsub_suite!(pubsub_memstore, crate::memstore::pubsub_env);
pubsub_suite!(pubsub_nats_core, crate::nats::pubsub_core_env);
pubsub_suite!(pubsub_nats_jetstream, crate::nats::pubsub_jetstream_env);
