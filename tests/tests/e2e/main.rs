//! End-to-end suites, one test binary so everything links once. Every test
//! starts its own real `prism-proxy` (which spawns real pattern processes) on
//! free ports.
//!
//! - `keyvalue`: the KeyValue section of ACCEPTANCE.md, written once and
//!   instantiated per backend (`keyvalue_suite!`).
//! - `lifecycle`: the proxy ⇄ pattern lifecycle section.
//! - `memstore`: MemStore-only behaviour (capacity, health details).
//! - `blackbox`: an independent client (grpcurl) using reflection.
//! - `console`: the real `prism-console` in tmux against a real proxy.

#[macro_use]
mod keyvalue;
#[macro_use]
mod pubsub;
mod admin;
mod blackbox;
mod compose;
mod console;
mod lifecycle;
mod memstore;
mod observability;

keyvalue_suite!(keyvalue_memstore, crate::memstore::kv_env);
pubsub_suite!(pubsub_memstore, crate::memstore::pubsub_env);
