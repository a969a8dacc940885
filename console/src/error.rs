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
    /// `--token-file` is unusable, or the token cache cannot be read.
    #[error("{0}")]
    Token(#[source] prism_auth::AuthError),
    /// `prism-console login` did not complete.
    #[error("{0}")]
    Login(#[source] prism_auth::AuthError),
    /// `prism-console login` has nowhere to keep the token.
    #[error("HOME is not set: there is no ~/.prism/token to write")]
    NoHome,
    #[error("cannot write to the terminal: {0}")]
    Output(#[source] std::io::Error),
    /// prismctl: nothing answers at the admin address.
    #[error("cannot reach the admin port at {uri}: {reason}")]
    Unreachable { uri: String, reason: String },
    /// prismctl: the proxy answered a call with an error.
    #[error("{call}: {code:?}: {message}")]
    Call {
        call: &'static str,
        code: tonic::Code,
        message: String,
    },
    /// prismctl: a file it was given cannot be read.
    #[error("cannot read {path}: {source}")]
    Input {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The error of a call the proxy answered with `status`.
    pub(crate) fn call(call: &'static str, status: &tonic::Status) -> Self {
        let mut message = status.message().to_string();
        if status.code() == tonic::Code::Unimplemented {
            message.push_str(" (is --admin the proxy's admin port, not its data port?)");
        }
        Self::Call {
            call,
            code: status.code(),
            message,
        }
    }
}

impl Error {
    /// sysexits' EX_USAGE: bad flags, or a file a flag names that cannot be
    /// used.
    pub const EXIT_USAGE: u8 = 64;

    /// The process's exit code for this error: [`Self::EXIT_USAGE`] when
    /// the flags are at fault, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::InvalidAddress { .. } | Self::TlsFile { .. } | Self::Token(_) => Self::EXIT_USAGE,
            _ => 1,
        }
    }
}
