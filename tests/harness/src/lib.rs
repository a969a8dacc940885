//! The processes Prism's end-to-end tests and `prism-bench` run for real:
//! backend servers on free ports ([`redis`], [`nats`], sharing [`server`]),
//! nginx in front of a gRPC server for comparison ([`nginx`]),
//! local clusters of them ([`redis_cluster`]: three masters, three replicas;
//! [`nats_cluster`]: three nodes with JetStream),
//! the proxy and pattern binaries with the addresses they announce
//! ([`proxy`], [`pattern`], sharing [`child`]), an OTLP trace receiver
//! ([`otlp`]), a real OpenID provider issuing JWT access tokens ([`oidc`]),
//! test certificates for TLS ([`pki`]), signals and resident memory by PID
//! ([`procs`]), bounded polling ([`wait`]) and a token issuer tests control
//! ([`jwt`]). Every process is stopped by PID on drop.
//!
//! Nothing here panics on a failure of the outside world: each function
//! returns a [`HarnessError`] that names what was being done, so the bench
//! can report it and the tests' wrappers can `expect` it.

pub mod child;
pub mod error;
pub mod jwt;
pub mod nats;
pub mod nats_cluster;
pub mod nginx;
pub mod oidc;
pub mod otlp;
pub mod pattern;
pub mod pki;
pub mod procs;
pub mod proxy;
pub mod redis;
pub mod redis_cluster;
pub mod server;
pub mod wait;

pub use error::HarnessError;
pub use nats::{Nats, NatsServer};
pub use nats_cluster::NatsCluster;
pub use nginx::{Nginx, NginxServer};
pub use oidc::{Oidc, OidcProvider};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use pattern::PatternProcess;
pub use pki::TestPki;
pub use proxy::{ProxyConfig, ProxyProcess};
pub use redis::{Redis, RedisServer};
pub use redis_cluster::RedisCluster;
pub use server::{Launch, ServerProcess};
