//! What every Prism pattern binary shares, so a pattern only writes its
//! backend logic: command-line flags ([`cli`]), the address it listens on
//! ([`listen`]), config decoding with errors that name the field ([`config`]), the
//! lifecycle errors and their one status map ([`LifecycleError`]),
//! health values ([`health`]), the `PatternLifecycle` gRPC server
//! ([`lifecycle`]), [`serve`], which runs it all until the proxy says
//! `Stop`, a signal arrives or the parent process goes away, and [`main`],
//! the whole of a pattern binary's `main` with its exit codes.

pub mod cli;
pub mod config;
mod entry;
mod error;
pub mod health;
pub mod lifecycle;
pub mod listen;
mod serve;

use std::future::Future;

pub use cli::{Args, PatternHelp};
pub use config::{ConfigError, parse_config};
pub use entry::main;
pub use error::LifecycleError;
pub use health::{Health, HealthStatus};
pub use lifecycle::Gate;
pub use listen::ListenAddr;
pub use prism_proto::lifecycle::v1::PatternMetadata;
pub use serve::{ServeError, serve};

pub use prism_proto::limits::MAX_MESSAGE_BYTES;

/// A backend behind one namespace. The SDK calls these from the lifecycle
/// server; the pattern's data-plane services are handed to [`serve`].
pub trait Pattern: Send + Sync + 'static {
    /// Name, version, interfaces and capabilities, returned from `Initialize`.
    fn metadata(&self) -> PatternMetadata;

    /// Applies the namespace's config (`{}` means defaults). An error rejects
    /// the config; the proxy marks the namespace FAILED with its message.
    fn initialize(
        &self,
        namespace: &str,
        config: serde_json::Value,
    ) -> impl Future<Output = Result<(), ConfigError>> + Send;

    /// Checks a config as [`Self::initialize`] would, with the same
    /// decoder and rules, but without reaching a backend or changing
    /// anything: `--check-config` (run by `prism-proxy --check`).
    fn check_config(&self, config: serde_json::Value) -> Result<(), ConfigError>;

    /// Starts background work (sweeps, backend connections).
    fn start(&self) -> impl Future<Output = Result<(), tonic::Status>> + Send;

    /// Releases backend resources. Called once, on `Stop` or on a signal.
    fn stop(&self) -> impl Future<Output = ()> + Send;

    /// Current health, polled by the proxy.
    fn health(&self) -> impl Future<Output = Health> + Send;
}
