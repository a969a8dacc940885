//! `prism-bench`: parses flags, runs the benchmark, prints the report.
//! Everything else is in the library.

use std::{process::ExitCode, sync::Arc};

use clap::Parser;
use prism_bench::{
    BenchError,
    chaos::args::ChaosArgs,
    cli::{Args, TargetArgs},
    config::Output,
    live::Board,
    registry::args::RegistryArgs,
    table,
};

/// sysexits' EX_USAGE: flags that cannot be used.
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
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
    let args = match args.target {
        TargetArgs::Chaos(chaos) => return run_chaos(chaos),
        TargetArgs::Registry(registry) => return run_registry(registry),
        TargetArgs::OtlpSink => {
            return match run_to_report(prism_bench::sink::serve()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            };
        }
        _ => args,
    };
    let config = match args.into_config() {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<BenchError>() {
            Some(bench) => fail(bench),
            None => {
                eprintln!("prism-bench: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(config: prism_bench::Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let output = config.output;
    let report = if config.tui {
        match prism_bench::tui::run(&runtime, config)? {
            Some(report) => report,
            None => return Err(BenchError::Interrupted.into()),
        }
    } else {
        let board = Arc::new(Board::default());
        runtime.block_on(async {
            tokio::select! {
                report = prism_bench::run(config, board) => report,
                _ = tokio::signal::ctrl_c() => Err(BenchError::Interrupted),
            }
        })?
    };
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Table => print!("{}", table::render(&report)),
    }
    Ok(())
}

/// The soak: exit 0 only when nothing acknowledged was lost and the proxy
/// stayed up.
fn run_chaos(args: ChaosArgs) -> ExitCode {
    let json = args.json;
    let report = match args.into_config() {
        Ok(config) => run_to_report(prism_bench::chaos::run(config)),
        Err(e) => Err(e),
    };
    match report {
        Ok(report) => {
            let printed = if json {
                serde_json::to_string_pretty(&report).map(|text| println!("{text}"))
            } else {
                print!("{}", report.render());
                Ok(())
            };
            match printed {
                Ok(()) if report.passed() => ExitCode::SUCCESS,
                Ok(()) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("prism-bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => fail(&e),
    }
}

/// The registry bench: exit 0 when it ran (the report says which targets
/// were met).
fn run_registry(args: RegistryArgs) -> ExitCode {
    let json = args.json;
    let report = match args.into_config() {
        Ok(config) => run_to_report(prism_bench::registry::run(config)),
        Err(e) => Err(e),
    };
    match report {
        Ok(report) if json => {
            let value = serde_json::json!({ "report": report, "verdicts": report.verdicts() });
            println!("{value:#}");
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{}", report.render());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// Runs a bench to its report on a fresh runtime; Ctrl-C interrupts it.
fn run_to_report<R>(bench: impl Future<Output = Result<R, BenchError>>) -> Result<R, BenchError> {
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| BenchError::io("starting the runtime", e))?;
    runtime.block_on(async {
        tokio::select! {
            report = bench => report,
            _ = tokio::signal::ctrl_c() => Err(BenchError::Interrupted),
        }
    })
}

fn fail(e: &BenchError) -> ExitCode {
    eprintln!("prism-bench: {e}");
    if e.is_usage() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::FAILURE
    }
}
