//! `prism-console [--admin ADDR] [--readonly] [--no-confirm] [--token-file PATH]`
//! or `prism-console login --issuer URL`: parses the
//! flags and runs the console (see the library, `prism_console`).

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = prism_console::Args::parse();
    prism_console::run(args)?;
    Ok(())
}
