//! `prism-proxy`: the gRPC front door. It checks who calls ([`auth`]), loads `prism.yaml` ([`config`],
//! [`cli`], [`check`]; reloads apply [`config_diff`]), supervises one pattern process per namespace ([`supervisor`]
//! over [`process`], calls going out on a [`channel`]), keeps the live routing table ([`namespace`]) inside the
//! shared [`state`], forwards data-plane calls as encoded ([`forward`], [`dataplane`], [`keyvalue`],
//! [`pubsub`] with per-subscriber buffers in [`subscriptions`], [`registry`]), records what
//! happens ([`activity`]), captures what patterns print ([`pattern_logs`]), serves the admin API ([`admin`]) and Prometheus
//! metrics ([`metrics`]) on bounded listeners ([`listener`]; [`ports`] says which serves what), follows config file changes ([`watch`]) and shuts
//! down without dropping in-flight calls ([`drain`], [`server`]). [`error`]
//! is the one place proxy errors become gRPC statuses.

mod activity;
mod admin;
mod auth;
mod channel;
pub mod check;
pub mod cli;
pub mod config;
mod config_diff;
mod dataplane;
mod drain;
mod error;
mod forward;
mod keyvalue;
mod listener;
mod metrics;
mod namespace;
mod pattern_logs;
mod ports;
mod process;
mod pubsub;
mod registry;
mod server;
mod state;
mod subscriptions;
mod supervisor;
mod watch;

pub use config::{Config, ConfigError};
pub use server::{Listeners, RunError, run};
