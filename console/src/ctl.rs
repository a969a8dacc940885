//! `prismctl`: the admin API from a shell or a script, one call per run, over
//! the console's admin client and connection flags. Human output by default,
//! protobuf JSON with `--json`, and exit codes a script can rely on
//! ([`exit_code`], listed in `prismctl --help`).
//!
//! Modules: [`args`] (flags and subcommands), [`run`] (the calls), [`human`]
//! (tables and lines).

use std::process::ExitCode;

use clap::Parser;
use tonic::Code;

use crate::Error;

pub mod args;
mod human;
mod run;

pub use args::{CtlArgs, CtlCommand};

/// Exit codes, after sysexits.h.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 64;
    pub const NO_INPUT: u8 = 66;
    pub const UNAVAILABLE: u8 = 69;
    pub const SOFTWARE: u8 = 70;
    pub const IO: u8 = 74;
    pub const NO_PERMISSION: u8 = 77;
}

/// Parses the command line, runs it, and says how it ended: the reply on
/// stdout, an error on stderr.
pub fn main() -> ExitCode {
    let args = match CtlArgs::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
        .and_then(|runtime| runtime.block_on(run::run(&args, &mut std::io::stdout())));
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("prismctl: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// What an error means to a script.
pub fn exit_code(error: &Error) -> u8 {
    match error {
        Error::InvalidAddress { .. } => exit::USAGE,
        Error::TlsFile { .. } | Error::Input { .. } => exit::NO_INPUT,
        Error::Token(_) | Error::Login(_) | Error::NoHome => exit::NO_PERMISSION,
        Error::Unreachable { .. } => exit::UNAVAILABLE,
        Error::Call { code, .. } => match code {
            Code::Unauthenticated | Code::PermissionDenied => exit::NO_PERMISSION,
            Code::Unavailable | Code::Unimplemented => exit::UNAVAILABLE,
            _ => exit::FAILED,
        },
        Error::Output(_) | Error::Terminal(_) => exit::IO,
        Error::Runtime(_) | Error::Signals(_) => exit::SOFTWARE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_unavailability_and_failures_exit_apart() {
        let call = |code| Error::Call {
            call: "x",
            code,
            message: String::new(),
        };
        assert_eq!(exit_code(&call(Code::PermissionDenied)), 77);
        assert_eq!(exit_code(&call(Code::Unauthenticated)), 77);
        assert_eq!(exit_code(&call(Code::Unavailable)), 69);
        assert_eq!(exit_code(&call(Code::Unimplemented)), 69);
        assert_eq!(exit_code(&call(Code::NotFound)), 1);
        assert_eq!(exit_code(&call(Code::FailedPrecondition)), 1);
        let unreachable = Error::Unreachable {
            uri: "http://x".into(),
            reason: "refused".into(),
        };
        assert_eq!(exit_code(&unreachable), 69);
        let address = Error::InvalidAddress {
            address: "x".into(),
            reason: "y".into(),
        };
        assert_eq!(exit_code(&address), 64);
    }
}
