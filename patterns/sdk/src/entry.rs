//! The whole of a pattern binary's `main`: flags, runtime, telemetry and
//! exit codes, so every pattern exits the same way — 0 when stopped, 64
//! (sysexits' EX_USAGE) on bad flags or a config it rejects, 1 otherwise.

use std::{future::Future, process::ExitCode};

use crate::{Args, PatternHelp, ServeError};

/// sysexits' EX_USAGE, as prism-proxy uses for bad flags or config.
const EXIT_USAGE: u8 = 64;

/// Parses the flags for the pattern `help` describes and runs `run` with
/// them on the pattern's runtime.
pub fn main<F, Fut>(help: &PatternHelp, run: F) -> ExitCode
where
    F: FnOnce(Args) -> Fut,
    Fut: Future<Output = Result<(), ServeError>>,
{
    let args = match Args::try_parse_for(help, std::env::args_os()) {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match args.runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            prism_observability::fatal(help.name, &format!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        // A config check prints its verdict alone, without telemetry set up.
        let _guard = (!args.check_config).then(|| {
            prism_observability::init(&prism_observability::Settings::from_env(help.name))
        });
        run(args).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            prism_observability::fatal(help.name, &e.to_string());
            ExitCode::from(e.exit_code())
        }
    }
}
