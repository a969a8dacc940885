//! The one error type of the bench library. Each variant names what was
//! being done, so `main` can print it as is.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Flags that cannot be used together or are out of range.
    #[error("{0}")]
    Usage(String),
    /// A path was asked for by name but cannot run here.
    #[error("path `{path}` is not available: {reason}")]
    PathUnavailable { path: &'static str, reason: String },
    /// A server or subscriber did not become usable in time.
    #[error("{what} was not ready within {timeout:?}: {detail}")]
    NotReady {
        what: String,
        timeout: Duration,
        detail: String,
    },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: tonic::transport::Error,
    },
    /// Writing the key space before measuring failed.
    #[error("pre-populating {key}: {code}: {message}")]
    Populate {
        key: String,
        code: &'static str,
        message: String,
    },
    /// A PubSub subscriber could not subscribe, or its stream ended before
    /// measuring.
    #[error("subscribing: {code}: {message}")]
    Subscribe { code: &'static str, message: String },
    #[error("in-process floor server: {0}")]
    Floor(String),
    #[error("load generator: {0}")]
    Load(String),
    /// Starting or driving a process (server, proxy, pattern) failed.
    #[error(transparent)]
    Harness(#[from] prism_harness::HarnessError),
    #[error("interrupted")]
    Interrupted,
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl BenchError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// True for mistakes in the flags, which `main` reports with exit code 64.
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::Usage(_) | Self::PathUnavailable { .. })
    }
}
