//! The console's one error type. Everything the admin API reports goes to
//! the screen instead (a dropped connection is a state, not an error).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--admin` is not something a gRPC client can dial.
    #[error("invalid --admin address `{address}`: {reason}")]
    InvalidAddress { address: String, reason: String },
    /// A `--ca-file`, `--cert-file` or `--key-file` that cannot be used.
    #[error("{flag} {}: {reason}", path.display())]
    TlsFile {
        flag: &'static str,
        path: std::path::PathBuf,
        reason: String,
    },
    /// Raw mode, the alternate screen or drawing failed (e.g. no terminal).
    #[error("cannot use the terminal: {0}")]
    Terminal(#[source] std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}
