//! `prism-console [--admin ADDR] [--readonly] [--no-confirm] [--token-file PATH]`
//! or `prism-console login --issuer URL`: parses the
//! flags and runs the console (see the library, `prism_console`). Exits 64
//! (sysexits' EX_USAGE, as every Prism binary) on bad flags or a flag's file
//! that cannot be used, 1 on any other failure.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match prism_console::Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(prism_console::Error::EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match prism_console::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prism-console: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
