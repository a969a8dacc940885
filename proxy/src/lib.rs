//! `prism-proxy`: the gRPC front door. It loads `prism.yaml` ([`config`]),
//! supervises one pattern process per namespace ([`supervisor`] over
//! [`process`]), keeps the live routing table ([`namespace`]), forwards
//! data-plane calls ([`keyvalue`]), serves the admin API ([`admin`]) and
//! shuts down without dropping in-flight calls ([`drain`], [`server`]).
//! [`error`] is the one place proxy errors become gRPC statuses.

pub mod admin;
pub mod cli;
pub mod config;
pub mod drain;
pub mod error;
pub mod keyvalue;
pub mod namespace;
pub mod process;
pub mod server;
pub mod supervisor;

pub use config::{Config, ConfigError};
pub use server::{Listeners, RunError, run};
