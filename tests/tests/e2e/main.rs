//! End-to-end suites, one test binary so everything links once. Every test
//! starts its own real `prism-proxy` (which spawns real pattern processes) on
//! free ports.
//!
//! - `keyvalue`: the KeyValue section of ACCEPTANCE.md, written once and
//!   instantiated per backend (`keyvalue_suite!`).
//! - `lifecycle`: the proxy ⇄ pattern lifecycle section.
//! - `memstore`: MemStore-only behaviour (capacity, health details).
//! - `nats`: the NATS pattern on a real nats-server (core and JetStream
//!   delivery, redelivery, a NATS restart, trace context in messages).
//! - `blackbox`: an independent client (grpcurl) using reflection.

#[macro_use]
mod keyvalue;
mod admin;
mod blackbox;
mod compose;
mod lifecycle;
mod memstore;
mod nats;
mod observability;

keyvalue_suite!(keyvalue_memstore, crate::memstore::kv_env);
