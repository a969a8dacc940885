//! Test harness for Prism's end-to-end suites: it starts the real binaries
//! on free ports, hands out gRPC clients, waits for asynchronous states with
//! a deadline, and cleans every process up on drop. The processes
//! themselves are `prism-harness`'s, shared with `prism-bench`; this crate
//! adds gRPC clients and turns their errors into panics with the log, as a
//! test wants.
//!
//! Modules: [`attack`] (raw HTTP/2 frames, a process's RSS and CPU time),
//! [`auth`] (clients with bearer tokens, configs with `auth:` on),
//! [`bins`] (finding the built binaries), [`cluster`] (a local Redis
//! Cluster and NATS cluster), [`proxy`] (a running
//! `prism-proxy` and its builder), [`wait`] (bounded polling), [`procs`]
//! (process checks by PID), [`otlp`] (a real OTLP trace receiver), [`redis`]
//! (a real `redis-server` on a free port), [`nats`] (a real `nats-server`
//! with JetStream), [`pattern`] (a pattern binary driven directly, without
//! a proxy), [`registry`] (registry clients through the proxy), [`server`] (what the backend server processes share),
//! [`refusal`] (what a refused request looks like), [`tls`] (gRPC and
//! HTTPS clients for a proxy under TLS).

pub mod attack;
pub mod auth;
pub mod bins;
pub mod cluster;
pub mod nats;
pub mod otlp;
pub mod pattern;
pub mod procs;
pub mod proxy;
pub mod redis;
pub mod refusal;
pub mod registry;
pub mod server;
pub mod tls;
pub mod wait;

pub use self::redis::RedisServer;
pub use nats::NatsServer;
pub use proxy::{Proxy, ProxyBuilder};
pub use refusal::assert_invalid_field;
pub use wait::eventually;
