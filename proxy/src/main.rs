use std::process::ExitCode;

use clap::Parser;
use prism_proxy::{Listeners, cli::Args};
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};

// Most of a call's allocations are small and short-lived (headers, frames,
// spans); mimalloc serves them with less CPU than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// sysexits' EX_USAGE: bad flags or config, refused before binding anything.
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let config = match args.load_config() {
        Ok(config) => config,
        Err(e) => {
            prism_observability::fatal("prism-proxy", &format!("invalid config: {e}"));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.check {
        let problems = prism_proxy::check::check_patterns(&config);
        if !problems.is_empty() {
            for problem in &problems {
                prism_observability::fatal("prism-proxy", &problem.to_string());
            }
            return ExitCode::from(EXIT_CONFIG);
        }
        println!(
            "config OK: {} namespace(s): {}",
            config.namespaces.len(),
            config
                .namespaces
                .iter()
                .map(|ns| format!(
                    "{} ({} on {})",
                    ns.name,
                    ns.pattern.as_str(),
                    ns.backend_label()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        match &config.auth {
            None => println!("auth: off"),
            Some(auth) => println!(
                "auth: on, trusting {}",
                if auth.issuers.is_empty() {
                    "client certificates only".to_string()
                } else {
                    auth.issuers
                        .iter()
                        .map(|i| i.issuer.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        }
        return ExitCode::SUCCESS;
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    let auto = || {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        prism_proxy::config::auto_worker_threads(cores)
    };
    match config.worker_threads {
        Some(threads) => {
            builder.worker_threads(threads);
        }
        // Tokio reads the variable itself when the builder is not told.
        None if std::env::var_os("TOKIO_WORKER_THREADS").is_some() => {}
        None => {
            builder.worker_threads(auto());
        }
    }
    let runtime = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            prism_observability::fatal("prism-proxy", &format!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, args.config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            prism_observability::fatal("prism-proxy", &format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    config: prism_proxy::Config,
    config_path: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let _guard = prism_observability::init(&prism_observability::Settings::from_env("prism-proxy"));
    let data = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let admin = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} (admin): {e}", config.admin_listen))?;
    let metrics = match config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (metrics): {e}"))?,
        ),
        None => None,
    };
    if let Some(metrics) = &metrics {
        let scheme = match &config.tls {
            Some(tls) if tls.serves(prism_proxy::config::ListenerName::Metrics) => "https",
            _ => "http",
        };
        println!(
            "prism-proxy metrics on {scheme}://{}/metrics",
            metrics.local_addr()?
        );
    }
    // The last line on stdout at start-up; scripts and the test harness wait for it.
    println!(
        "prism-proxy listening on {} (admin {})",
        data.local_addr()?,
        admin.local_addr()?
    );
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let shutdown = async move {
        tokio::select! {
            _ = sigterm.recv() => tracing::info!("SIGTERM received"),
            _ = sigint.recv() => tracing::info!("SIGINT received"),
        }
    };
    let listeners = Listeners {
        data,
        admin,
        metrics,
    };
    prism_proxy::run(config, config_path, listeners, shutdown).await?;
    Ok(())
}
