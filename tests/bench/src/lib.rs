//! `prism-bench`: an open-loop gRPC load generator that measures one target
//! (KeyValue today) over several paths in the same run — through
//! `prism-proxy`, direct to the pattern process, and a bare in-process gRPC
//! floor — and compares them.
//!
//! The flow of one run: [`cli`] turns flags into a [`Config`]; [`run`] takes
//! each [`paths::PathKind`] in turn, starts what it needs ([`endpoint`],
//! [`floor`]), connects a [`transport::Transport`], lets the [`target`]
//! pre-populate, drives load ([`load`], on the send-time grid of
//! [`schedule`]) into a [`stats::Recorder`], watches the processes
//! ([`procstat`]), and finally builds a [`report::Report`] rendered by
//! [`table`] or as JSON. [`live`] carries progress to the optional [`tui`].
//!
//! Modules: [`cli`], [`config`], [`error`], [`paths`], [`endpoint`],
//! [`floor`], [`redis_server`], [`transport`], [`target`], [`schedule`],
//! [`load`], [`stats`],
//! [`procstat`], [`live`], [`run`], [`report`], [`table`], [`tui`].

pub mod cli;
pub mod config;
pub mod endpoint;
pub mod error;
pub mod floor;
pub mod live;
pub mod load;
pub mod paths;
pub mod procstat;
pub mod redis_server;
pub mod report;
pub mod run;
pub mod schedule;
pub mod sink;
pub mod stats;
pub mod table;
pub mod target;
pub mod transport;
pub mod tui;

pub use config::Config;
pub use error::BenchError;
pub use report::Report;
pub use run::run;
