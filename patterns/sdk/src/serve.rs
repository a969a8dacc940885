//! Runs a pattern's gRPC server until `Stop`, SIGINT/SIGTERM, or (with
//! `--exit-with-parent`) the parent process going away.

use std::{sync::Arc, time::Duration};

use prism_net::Corked;
use prism_proto::lifecycle::v1::pattern_lifecycle_server::PatternLifecycleServer;
use tokio::{
    net::{TcpListener, UnixListener},
    signal::unix::{SignalKind, signal},
    sync::Notify,
};
use tokio_stream::{Stream, StreamExt, wrappers::UnixListenerStream};
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};

use crate::{Args, Gate, ListenAddr, Pattern, lifecycle};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    /// A config the pattern rejects (`--check-config`, or `--autostart`
    /// with `--config`): the process exits 64.
    #[error("invalid config: {0}")]
    Config(String),
    #[error("autostart failed: {0}")]
    Autostart(String),
    #[error("cannot install signal handler: {0}")]
    Signal(std::io::Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl ServeError {
    /// The process's exit code: 64 (sysexits' EX_USAGE) for a config the
    /// pattern rejects, 1 for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 64,
            _ => 1,
        }
    }
}

/// `--check-config`: decodes the JSON on `input` with the pattern's own
/// checks, as Initialize would, and says so on stdout when it is valid.
fn check_config<P: Pattern>(pattern: &P, input: impl std::io::Read) -> Result<(), ServeError> {
    let config: serde_json::Value = serde_json::from_reader(input)
        .map_err(|e| ServeError::Config(format!("stdin is not JSON: {e}")))?;
    if !(config.is_object() || config.is_null()) {
        return Err(ServeError::Config(
            "config: expected a JSON object".to_string(),
        ));
    }
    pattern
        .check_config(config)
        .map_err(|e| ServeError::Config(e.to_string()))?;
    println!("config OK");
    Ok(())
}

/// Serves `data` (the pattern's data-plane services) beside the lifecycle,
/// health and reflection services. Returns once the server has drained.
pub async fn serve<P: Pattern>(
    args: &Args,
    pattern: Arc<P>,
    gate: Gate,
    data: Routes,
) -> Result<(), ServeError> {
    if args.check_config {
        return check_config(pattern.as_ref(), std::io::stdin().lock());
    }
    let addr = args.listen_addr();
    let stop = Arc::new(Notify::new());
    if args.autostart {
        let config = args.config.clone().unwrap_or(serde_json::Value::Null);
        lifecycle::autostart(pattern.as_ref(), &gate, config).await?;
    }

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(prism_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(prism_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let lifecycle = lifecycle::LifecycleService::new(pattern.clone(), gate.clone(), stop.clone());
    let router = Server::builder()
        .layer(prism_observability::grpc::TraceLayer::pattern())
        .add_routes(data)
        .add_service(PatternLifecycleServer::new(lifecycle))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let signal = shutdown_signal(stop, args.exit_with_parent)?;
    let shutdown = {
        let (pattern, gate) = (pattern.clone(), gate.clone());
        async move {
            signal.await;
            // Long-lived streams (Subscribe, Receive) end only when the
            // pattern lets go of them, and the server waits for every
            // connection to finish: stop the pattern first, as `Stop` does,
            // or a SIGTERM waits until the process is killed.
            if gate.begin_stop() {
                pattern.stop().await;
            }
        }
    };
    match &addr {
        ListenAddr::Unix(path) => {
            // A stale socket from a killed predecessor would make bind fail.
            let _ = std::fs::remove_file(path);
            let listener = UnixListener::bind(path).map_err(|source| ServeError::Bind {
                addr: addr.to_string(),
                source,
            })?;
            tracing::info!(%addr, "pattern listening");
            let result = router
                .serve_with_incoming_shutdown(corked(UnixListenerStream::new(listener)), shutdown)
                .await;
            let _ = std::fs::remove_file(path);
            result?;
        }
        ListenAddr::Tcp(socket) => {
            let listener = TcpListener::bind(socket)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: addr.to_string(),
                    source,
                })?;
            let local = listener.local_addr().map_err(|source| ServeError::Bind {
                addr: addr.to_string(),
                source,
            })?;
            tracing::info!(addr = %local, "pattern listening");
            println!("listening on {local}");
            router
                .serve_with_incoming_shutdown(
                    corked(TcpIncoming::from(listener).with_nodelay(Some(true))),
                    shutdown,
                )
                .await?;
        }
    }
    if gate.begin_stop() {
        pattern.stop().await;
    }
    Ok(())
}

/// Every accepted connection with its writes batched per turn
/// ([`prism_net::cork`]): a unary reply leaves in one write, not two.
fn corked<IO>(
    incoming: impl Stream<Item = std::io::Result<IO>>,
) -> impl Stream<Item = std::io::Result<Corked<IO>>> {
    incoming.map(|accepted| accepted.map(Corked::new))
}

/// Resolves on `Stop`, SIGINT, SIGTERM, or when the parent process changes.
fn shutdown_signal(
    stop: Arc<Notify>,
    watch_parent: bool,
) -> Result<impl Future<Output = ()>, ServeError> {
    let mut sigterm = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
    let parent = std::os::unix::process::parent_id();
    Ok(async move {
        let parent_gone = async {
            if !watch_parent {
                return std::future::pending().await;
            }
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                if std::os::unix::process::parent_id() != parent {
                    return;
                }
            }
        };
        tokio::select! {
            _ = stop.notified() => tracing::info!("stop requested"),
            _ = sigterm.recv() => tracing::info!("SIGTERM received"),
            _ = sigint.recv() => tracing::info!("SIGINT received"),
            _ = parent_gone => tracing::warn!("parent process exited; shutting down"),
        }
    })
}
