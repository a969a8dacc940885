//! End-to-end suites, one test binary so everything links once. Every test
//! starts its own real `prism-proxy` (which spawns real pattern processes) on
//! free ports.
//!
//! - `keyvalue`: the KeyValue section of ACCEPTANCE.md, written once and
//!   instantiated per backend (`keyvalue_suite!`).
//! - `pubsub`: the PubSub section, written once, instantiated per backend
//!   (`pubsub_suite!`).
//! - `registry`: the multicast registry section, written once and run per
//!   slot combination (`registry_suite!`); two proxies on shared backends,
//!   JetStream inboxes across reconnects, one trace per multicast.
//! - `registry_proxy`: what the proxy adds to the registry (routing,
//!   refusals at the proxy, Receive ending UNAVAILABLE, listener bounds,
//!   latency, metrics and the admin snapshot).
//! - `lifecycle`: the proxy ⇄ pattern lifecycle section.
//! - `auth`: tokens, access and admin roles through the real proxy, against
//!   an issuer the tests control (the negative matrix, tenants, key
//!   rotation, expiring streams, no token in any output).
//! - `admin`: the admin API (traffic, latency, events, restart, hot reload,
//!   config reload) and Prometheus metrics.
//! - `observability`: one trace per request, exported to a real OTLP receiver.
//! - `pattern_logs`: pattern output captured by the proxy and served on the
//!   admin API (tagging, restart, resume, JSON lines, a flood kept bounded).
//! - `exemplars`: a slow and a failed call's trace ids in `GetExemplars`,
//!   OTLP and OpenMetrics; NOT_FOUND apart from errors.
//! - `events`: event seqs; a reconnecting watcher resumes without
//!   duplicates or gaps; a rejected config reload names its reason.
//! - `config_safety`: a watched file rewritten slowly never applies half of
//!   it; absurd numbers and missing backend addresses are refused.
//! - `compose`: the compose stack's files, checked without Docker.
//! - `memstore`: MemStore-only behaviour (capacity, health details).
//! - `nats`: the PubSub suite's setups for core NATS and JetStream, and
//!   NATS-only behaviour on a real nats-server (healing after NATS dies,
//!   spans across the message, the pattern's acks, drops and backpressure).
//! - `faults`: backend outages past the failure budget (Redis, NATS,
//!   JetStream), crash loops, SIGSTOP of a pattern or of Redis, FAILED
//!   namespaces with live subscribers — what callers see, and self-healing.
//! - `redis`: Redis-only behaviour (healing after Redis dies, config reaching
//!   Redis, glob characters in scan prefixes) against a real `redis-server`.
//! - `oidc`: the real OpenID provider the auth suites use (JWT access
//!   tokens and their claims, device flow, key rotation, down and up).
//! - `login`: the device-code login and the token cache against that
//!   provider (a private cache, refresh before expiry, a denied login).
//! - `blackbox`: an independent client (grpcurl) using reflection; each
//!   port lists only what it serves and points wrong-port calls to the other.
//! - `cli`: exit codes, each pattern's `--help`, and `prism-proxy --check`
//!   judging every namespace's config with its pattern's `--check-config`.
//! - `console`: the real `prism-console` in tmux against a real proxy.
//! - `prismctl`: the real `prismctl` against a real proxy (every subcommand,
//!   exit codes, namespaces applied and deleted through the admin API).
//! - `validation`: bad input as a client sends it (huge names and keys,
//!   undecodable bytes, MemStore's own checks); refusals stay short.
//! - `secrets`: a trace-level log of the proxy and its patterns holds no
//!   password.
//! - `bounds`: bounded resources on every listener under attack (stalled
//!   giant messages, many streams, connection floods, idle and half-open
//!   connections, fd exhaustion) with the proxy's RSS and CPU checked.
//! - `tls`: TLS on every listener and mTLS (required, optional) with
//!   certificates made at test time; bad files refused at start and reload.
//! - `bench`: a short `prism-bench` run over every path (JSON sanity).
//! - `cluster`: the KeyValue suite on a local Redis Cluster and the PubSub
//!   suite on a three-node NATS cluster (core and JetStream R3), failover
//!   under load with the windows measured, two proxies over the same
//!   clusters, and the Kubernetes manifests.
//! - `client_rust`: the Rust client (`prism-client`) and its examples
//!   through a real proxy: RFC-018's POC 1–3 on every backend, the
//!   registry's filtered multicast, TLS and mTLS, auth on, across a pattern
//!   restart.

// A panic here is a failed test: suite helpers may unwrap like test bodies do.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod keyvalue;
#[macro_use]
mod pubsub;
mod admin;
mod auth;
mod bench;
mod blackbox;
mod bounds;
mod chaos;
mod cli;
mod client_rust;
mod cluster;
mod compose;
mod config_safety;
mod console;
mod events;
mod exemplars;
mod faults;
mod harness;
mod lifecycle;
mod login;
mod memstore;
mod nats;
mod observability;
mod oidc;
mod pattern_logs;
mod prismctl;
mod redis;
#[macro_use]
mod registry;
mod registry_proxy;
mod secrets;
mod tls;
mod validation;

keyvalue_suite!(keyvalue_memstore, crate::memstore::kv_env);
keyvalue_suite!(keyvalue_redis, crate::redis::kv_env);
keyvalue_suite!(keyvalue_redis_cluster, crate::cluster::redis_cluster_kv_env);
pubsub_suite!(pubsub_memstore, crate::memstore::pubsub_env);
pubsub_suite!(pubsub_nats_core, crate::nats::pubsub_core_env);
pubsub_suite!(pubsub_nats_jetstream, crate::nats::pubsub_jetstream_env);
pubsub_suite!(
    pubsub_nats_cluster_core,
    crate::cluster::nats_cluster_core_env
);
pubsub_suite!(
    pubsub_nats_cluster_jetstream,
    crate::cluster::nats_cluster_jetstream_env
);
registry_suite!(registry_memstore, crate::registry::envs::memstore_env);
registry_suite!(registry_redis_nats, crate::registry::envs::redis_nats_env);
registry_suite!(
    registry_redis_jetstream,
    crate::registry::envs::redis_jetstream_env
);
registry_suite!(registry_redis_redis, crate::registry::envs::redis_redis_env);
