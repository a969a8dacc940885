//! `prismctl [--admin ADDR] [--json] COMMAND`: see `prismctl --help` and the
//! library (`prism_console::ctl`).

fn main() -> std::process::ExitCode {
    prism_console::ctl::main()
}
