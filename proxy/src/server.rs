//! Runs the proxy: the data-plane, admin and metrics servers on listeners the
//! caller bound (each within [`crate::listener`]'s bounds), the pattern
//! supervisor, the config watcher, and the shutdown sequence (refuse new
//! calls → let in-flight calls finish → stop the servers → stop the
//! patterns).

use std::{future::Future, path::PathBuf};

use prism_proto::admin::v1::admin_server::AdminServer;
use tokio::{net::TcpListener, sync::watch, time::Instant};
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tower::ServiceBuilder;

use crate::{
    admin::AdminService,
    auth::layer::{AuthService, Plane},
    config::{Config, ListenerName},
    forward::{Forward, NoOtherMethods},
    keyvalue::KeyValueTable,
    listener::{self, Protocol, message::MessageBounds, tls::Acceptor},
    metrics,
    pubsub::{self, PubSubTable},
    registry::{self, RegistryTable},
    state::ProxyState,
};

use crate::ports::{self, DATA_SERVICES as SERVICES};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot create the pattern socket folder: {0}")]
    SocketDir(std::io::Error),
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("server task: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// A `tls` file became unusable after the config was checked.
    #[error("{0}")]
    Tls(crate::config::ConfigError),
}

/// Listeners bound by the caller, so tests can bind port 0 and read the port.
pub struct Listeners {
    pub data: TcpListener,
    pub admin: TcpListener,
    pub metrics: Option<TcpListener>,
}

/// Serves until `shutdown` resolves, then drains and stops the patterns.
/// `config_path` is re-read by `ReloadConfig` and watched when the config
/// says so.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    for service in SERVICES {
        health
            .set_service_status(service, ServingStatus::Serving)
            .await;
    }
    for ns in &config.namespaces {
        health
            .set_service_status(&ns.name, ServingStatus::NotServing)
            .await;
    }
    let acceptor = |name| Acceptor::for_listener(config.tls.as_ref(), name).map_err(RunError::Tls);
    let data_tls = acceptor(ListenerName::Data)?;
    let admin_tls = acceptor(ListenerName::Admin)?;
    let metrics_tls = acceptor(ListenerName::Metrics)?;
    match &config.tls {
        None => tracing::info!("TLS is off: every listener speaks plaintext"),
        Some(tls) => tracing::info!(
            listeners = ?tls.listeners,
            client_certificates = ?tls.client_ca_file.as_ref().map(|_| tls.client_auth.unwrap_or(crate::config::ClientAuth::Required)),
            "TLS is on"
        ),
    }
    let listen = listeners.data.local_addr().map_err(RunError::SocketDir)?;
    let admin_listen = listeners.admin.local_addr().map_err(RunError::SocketDir)?;
    match &config.auth {
        None => tracing::warn!(
            "auth is off: anyone who can reach the proxy may call every namespace and the admin API (add `auth:` to the config to require tokens)"
        ),
        Some(auth) => tracing::info!(
            issuers = auth.issuers.len(),
            "auth is on: calls need a bearer token (or a verified client certificate) and access on the namespace"
        ),
    }
    let watch_config = config.watch_config;
    let listeners_config = config.listeners.clone();
    let grace = config.supervisor.shutdown_grace();
    let state = ProxyState::start(
        config,
        config_path.clone(),
        health.clone(),
        listen,
        admin_listen,
    )
    .map_err(RunError::SocketDir)?;
    let _watcher = match (&config_path, watch_config) {
        (Some(path), true) => match crate::watch::watch_config(path, state.clone()) {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the config file; ReloadConfig still works");
                None
            }
        },
        _ => None,
    };

    let (stop_servers, servers_stopped) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let bounds = listeners_config.clone();
    let mut data_routes = Routes::builder();
    data_routes
        .add_service(Forward::<KeyValueTable, _>::new(
            state.clone(),
            NoOtherMethods,
        ))
        .add_service(Forward::<PubSubTable, _>::new(
            state.clone(),
            pubsub::streams(state.clone()),
        ))
        .add_service(Forward::<RegistryTable, _>::new(
            state.clone(),
            registry::inbox(state.clone()),
        ))
        .add_service(health_service.clone())
        .add_service(reflection_v1(ports::data_port_services())?)
        .add_service(reflection_v1alpha(ports::data_port_services())?);
    // A call for the admin port is answered before auth: where the admin
    // API lives is no secret, and the admin port guards the admin API.
    let data_service = MessageBounds::new(
        ServiceBuilder::new()
            .layer(prism_observability::grpc::TraceLayer::data_plane())
            .service(
                ports::not_on_data_port(admin_listen).guard(AuthService::new(
                    data_routes.routes().prepare(),
                    state.auth.clone(),
                    Plane::Data,
                )),
            ),
        state.clone(),
    );
    let data = listener::serve(
        "data",
        listeners.data,
        bounds.clone(),
        Protocol::Http2,
        data_tls,
        data_service,
        stopped(servers_stopped.clone()),
    );
    let mut admin_routes = Routes::builder();
    admin_routes
        .add_service(AdminServer::new(AdminService::new(state.clone())))
        .add_service(health_service)
        .add_service(reflection_v1(ports::admin_port_services())?)
        .add_service(reflection_v1alpha(ports::admin_port_services())?);
    let admin = listener::serve(
        "admin",
        listeners.admin,
        bounds.clone(),
        Protocol::Http2,
        admin_tls,
        ports::not_on_admin_port(listen).guard(AuthService::new(
            admin_routes.routes().prepare(),
            state.auth.clone(),
            Plane::Admin,
        )),
        stopped(servers_stopped.clone()),
    );
    let data = tokio::spawn(data);
    let admin = tokio::spawn(admin);
    let metrics = listeners.metrics.map(|listener| {
        tokio::spawn(listener::serve(
            "metrics",
            listener,
            bounds,
            Protocol::Http1,
            metrics_tls,
            metrics::router(state.clone()),
            stopped(servers_stopped),
        ))
    });

    shutdown.await;
    tracing::info!(
        in_flight = state.drain.in_flight(),
        "shutting down: draining"
    );
    state.drain.start_draining();
    // Subscriptions and admin watch streams are not in-flight calls: they
    // end now, cleanly, so the servers can finish.
    state.subscriptions.close_all();
    state.stopping.send_replace(true);
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    for service in SERVICES {
        health
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
    if !state.drain.wait_idle(Instant::now() + grace).await {
        tracing::warn!(
            in_flight = state.drain.in_flight(),
            "grace period over with calls still in flight"
        );
    }
    let _ = stop_servers.send(true);
    let served = (data.await, admin.await);
    if let Some(metrics) = metrics {
        metrics.await?;
    }
    state.supervisor.shutdown().await;
    tracing::info!("proxy stopped");
    served.0?;
    served.1?;
    Ok(())
}

/// Reflection listing `services` only: each port lists what it serves.
fn reflection(
    services: impl Iterator<Item = &'static str>,
) -> tonic_reflection::server::Builder<'static> {
    services.fold(
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(prism_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
        |builder, service| builder.with_service_name(service),
    )
}

fn reflection_v1(
    services: impl Iterator<Item = &'static str>,
) -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    RunError,
> {
    Ok(reflection(services).build_v1()?)
}

fn reflection_v1alpha(
    services: impl Iterator<Item = &'static str>,
) -> Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
    RunError,
> {
    Ok(reflection(services).build_v1alpha()?)
}
