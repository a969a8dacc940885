//! `prism-console [--admin ADDR] [--readonly] [--no-confirm]`: parses the
//! flags and runs the console (see the library, `prism_console`).

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args = prism_console::Args::parse();
    prism_console::run(args)?;
    Ok(())
}
