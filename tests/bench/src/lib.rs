//! `prism-bench`: an open-loop gRPC load generator that measures one target
//! (KeyValue or PubSub) over several paths in the same run — through
//! `prism-proxy`, direct to the pattern process, straight to the backend
//! (Redis, NATS), and a bare in-process gRPC floor — and compares them.
//!
//! The flow of one run: [`cli`] turns flags into a [`Config`]; [`run`]
//! starts the backend server if one is needed ([`server_process`]), then
//! takes each [`paths::PathKind`] in turn, starts what it needs
//! ([`endpoint`], [`floor`]), connects a [`transport::Transport`], lets the
//! [`target`] get ready (pre-populate; open subscribers), drives load
//! ([`load`], on the send-time grid of [`schedule`]) into a
//! [`stats::Recorder`], watches the processes ([`procstat`]), collects what
//! the target adds (PubSub deliveries), and finally builds a
//! [`report::Report`] rendered by [`table`] or as JSON. [`live`] carries
//! progress to the optional [`tui`].
//!
//! `prism-bench chaos` is the soak under injected faults ([`chaos`]);
//! `prism-bench registry` measures the multicast registry ([`registry`]).
//!
//! Modules: [`auth`], [`chaos`], [`registry`], [`cli`], [`config`], [`error`], [`paths`], [`endpoint`],
//! [`floor`], [`server_process`], [`transport`], [`target`],
//! [`schedule`], [`load`], [`stats`], [`procstat`], [`live`], [`run`],
//! [`report`], [`table`], [`tui`].

pub mod auth;
pub mod chaos;
pub mod cli;
pub mod config;
mod endpoint;
mod error;
mod floor;
pub mod live;
mod load;
mod paths;
mod procstat;
pub mod registry;
mod report;
mod run;
mod schedule;
mod server_process;
pub mod sink;
mod stats;
pub mod table;
mod target;
mod transport;
pub mod tui;

pub use config::Config;
pub use error::BenchError;
pub use report::Report;
pub use run::run;
