//! The one error type of the harness. Each variant names what was being
//! done, so a caller can print it as is.

use std::{path::PathBuf, time::Duration};

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("cannot start {}: {source}", binary.display())]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    /// A started process did not become usable in time, or exited first.
    #[error("{what} was not ready within {timeout:?}: {detail}")]
    NotReady {
        what: String,
        timeout: Duration,
        detail: String,
    },
    #[error("cannot send signal {signal} to pid {pid}: {detail}")]
    Signal {
        pid: u32,
        signal: i32,
        detail: String,
    },
    /// A request to a test server (the OpenID provider) was refused or
    /// not answered.
    #[error("{context}: {detail}")]
    Request { context: String, detail: String },
    #[error("cannot make a test certificate: {0}")]
    Certificate(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl HarnessError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
