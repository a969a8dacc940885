//! Runs the proxy: the data-plane and admin gRPC servers on listeners the
//! caller bound, the pattern supervisor, and the shutdown sequence (refuse
//! new calls → let in-flight calls finish → stop the servers → stop the
//! patterns).

use std::{future::Future, path::PathBuf, sync::Arc};

use prism_proto::{
    admin::v1::admin_server::AdminServer, keyvalue::v1::key_value_server::KeyValueServer,
};
use tokio::{net::TcpListener, sync::watch, time::Instant};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::{
    admin::AdminService,
    config::Config,
    drain::Drain,
    keyvalue::KeyValueProxy,
    namespace::{Namespace, Namespaces},
    supervisor::Supervisor,
};

const KEYVALUE_SERVICE: &str = "prism.keyvalue.v1.KeyValue";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot create the pattern socket folder: {0}")]
    SocketDir(std::io::Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("server task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Listeners bound by the caller, so tests can bind port 0 and read the port.
pub struct Listeners {
    pub data: TcpListener,
    pub admin: TcpListener,
}

/// Where pattern binaries are looked for when the config does not say.
pub fn default_patterns_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Serves until `shutdown` resolves, then drains and stops the patterns.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let patterns_dir = config
        .patterns_dir
        .clone()
        .unwrap_or_else(default_patterns_dir);
    let namespaces = Arc::new(Namespaces::default());
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    health
        .set_service_status(KEYVALUE_SERVICE, ServingStatus::Serving)
        .await;
    for ns in &config.namespaces {
        let binary = ns.binary_path(&patterns_dir);
        namespaces.insert(Arc::new(Namespace::new(ns.clone(), binary)));
        health
            .set_service_status(&ns.name, ServingStatus::NotServing)
            .await;
    }

    let supervisor = Supervisor::start(&namespaces, config.supervisor.clone(), health.clone())
        .map_err(RunError::SocketDir)?;
    let drain = Drain::default();
    let (stop_servers, servers_stopped) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let data = Server::builder()
        .add_service(
            KeyValueServer::new(KeyValueProxy::new(namespaces.clone(), drain.clone()))
                .max_decoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES),
        )
        .add_service(health_service.clone())
        .add_service(reflection_v1()?)
        .add_service(reflection_v1alpha()?)
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listeners.data),
            stopped(servers_stopped.clone()),
        );
    let admin = Server::builder()
        .add_service(AdminServer::new(AdminService::new(
            namespaces.clone(),
            drain.clone(),
        )))
        .add_service(health_service)
        .add_service(reflection_v1()?)
        .add_service(reflection_v1alpha()?)
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listeners.admin),
            stopped(servers_stopped),
        );
    let data = tokio::spawn(data);
    let admin = tokio::spawn(admin);

    shutdown.await;
    let grace = config.supervisor.shutdown_grace();
    tracing::info!(in_flight = drain.in_flight(), "shutting down: draining");
    drain.start_draining();
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    health
        .set_service_status(KEYVALUE_SERVICE, ServingStatus::NotServing)
        .await;
    if !drain.wait_idle(Instant::now() + grace).await {
        tracing::warn!(
            in_flight = drain.in_flight(),
            "grace period over with calls still in flight"
        );
    }
    let _ = stop_servers.send(true);
    let served = (data.await, admin.await);
    supervisor.shutdown().await;
    tracing::info!("proxy stopped");
    served.0??;
    served.1??;
    Ok(())
}

fn reflection_v1() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    RunError,
> {
    Ok(tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(prism_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?)
}

fn reflection_v1alpha() -> Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
    RunError,
> {
    Ok(tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(prism_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?)
}
