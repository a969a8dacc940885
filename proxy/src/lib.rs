//! `prism-proxy`: the gRPC front door. It loads `prism.yaml` ([`config`],
//! [`cli`]; reloads apply [`config_diff`]), supervises one pattern process per namespace ([`supervisor`]
//! over [`process`], calls going out on a [`channel`]), keeps the live routing table ([`namespace`]) inside the
//! shared [`state`], forwards data-plane calls ([`dataplane`], [`keyvalue`],
//! [`pubsub`] with per-subscriber buffers in [`subscriptions`]), records what
//! happens ([`activity`]), serves the admin API ([`admin`]) and Prometheus
//! metrics ([`metrics`]) on bounded listeners ([`listener`]), follows config file changes ([`watch`]) and shuts
//! down without dropping in-flight calls ([`drain`], [`server`]). [`error`]
//! is the one place proxy errors become gRPC statuses.

pub mod activity;
pub mod admin;
pub mod channel;
pub mod cli;
pub mod config;
pub mod config_diff;
pub mod dataplane;
pub mod drain;
pub mod error;
pub mod keyvalue;
pub mod listener;
pub mod metrics;
pub mod namespace;
pub mod process;
pub mod pubsub;
pub mod server;
pub mod state;
pub mod subscriptions;
pub mod supervisor;
pub mod watch;

pub use config::{Config, ConfigError};
pub use server::{Listeners, RunError, run};
