//! NATS as a [`Pattern`]: config at `Initialize`, the connection at
//! `Start`, subscriptions ended (and JetStream messages given back) at
//! `Stop`, and health.

use std::{
    sync::{Arc, RwLock, atomic::Ordering},
    time::{Duration, Instant},
};

use prism_pattern_sdk::{
    ConfigError, Health, HealthStatus, Pattern, PatternMetadata, parse_config,
};

use crate::{
    broker::{Connection, Setup},
    config::NatsConfig,
    delivery::Stats,
    error::NatsError,
    link,
    subscriptions::Registry,
};

/// How long `Stop` waits for subscriptions to hand back pending messages.
const STOP_GRACE: Duration = Duration::from_secs(4);

pub(crate) struct Nats {
    setup: RwLock<Arc<Setup>>,
    /// Set by `Start`, taken by `Stop`.
    connection: RwLock<Option<Arc<Connection>>>,
    pub registry: Arc<Registry>,
    pub stats: Arc<Stats>,
}

impl Default for Nats {
    fn default() -> Self {
        Self::new()
    }
}

impl Nats {
    pub(crate) fn new() -> Self {
        Self {
            setup: RwLock::new(Arc::new(Setup::new(NatsConfig::default(), "default"))),
            connection: RwLock::new(None),
            registry: Arc::default(),
            stats: Arc::default(),
        }
    }

    pub(crate) fn setup(&self) -> Arc<Setup> {
        self.setup.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The connection; `UNAVAILABLE` before `Start` or after `Stop`.
    pub(crate) fn connection(&self) -> Result<Arc<Connection>, NatsError> {
        self.connection
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(NatsError::NotConnected)
    }
}

impl Pattern for Nats {
    fn metadata(&self) -> PatternMetadata {
        let mut capabilities = vec!["wildcards".to_string()];
        if self.setup().config.jetstream {
            capabilities.extend(["ack".to_string(), "durable".to_string()]);
        }
        PatternMetadata {
            name: "nats".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            interfaces: vec!["prism.pubsub.v1.PubSub".into()],
            capabilities,
        }
    }

    async fn initialize(
        &self,
        namespace: &str,
        config: serde_json::Value,
    ) -> Result<(), ConfigError> {
        let config: NatsConfig = parse_config(config)?;
        config.validate()?;
        *self.setup.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(Setup::new(config, namespace));
        Ok(())
    }

    fn check_config(&self, config: serde_json::Value) -> Result<(), ConfigError> {
        parse_config::<NatsConfig>(config)?.validate()
    }

    async fn start(&self) -> Result<(), tonic::Status> {
        let setup = self.setup();
        let connection = Connection::open(setup.clone())
            .await
            .map_err(crate::error::to_status)?;
        tracing::info!(
            server = %setup.config.display_url(),
            jetstream = setup.config.jetstream,
            "connecting to NATS"
        );
        let old = self
            .connection
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(Arc::new(connection));
        if let Some(old) = old.and_then(Arc::into_inner) {
            old.close().await;
        }
        Ok(())
    }

    async fn stop(&self) {
        self.registry.stop_all(STOP_GRACE).await;
        let connection = self
            .connection
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(connection) = connection.and_then(Arc::into_inner) {
            connection.close().await;
        }
    }

    async fn health(&self) -> Health {
        let Ok(connection) = self.connection() else {
            return Health::new(HealthStatus::Unhealthy, "not started");
        };
        let config = &connection.setup.config;
        let streams = self.registry.all();
        let full = streams.iter().filter(|h| h.is_full()).count();
        let mut observed = connection
            .link
            .observe(connection.is_connected(), full, Instant::now());
        observed.jetstream_problem = connection.jetstream.as_ref().and_then(|js| js.problem());
        let (status, message) = link::assess(&observed, config.request_timeout());
        let nats = connection.client.statistics();
        // Down past the grace period: alive but not ready, never broken — the
        // client reconnects by itself, a new process would not do better.
        let health = if status == HealthStatus::Unhealthy && observed.down_for.is_some() {
            Health::backend_unreachable("nats", message)
        } else {
            Health::new(status, message)
        };
        let mut health = health
            .detail("server", config.display_url())
            // Which server of a cluster the client is on now, so an operator
            // (or a failover test) sees it move.
            .detail("connected_to", connected_to(&connection.client))
            .detail("jetstream", if config.jetstream { "on" } else { "off" })
            .detail("subscriptions", streams.len())
            .detail("in_msgs", nats.in_messages.load(Ordering::Relaxed))
            .detail("out_msgs", nats.out_messages.load(Ordering::Relaxed))
            .detail("connects", nats.connects.load(Ordering::Relaxed))
            .detail("delivered", self.stats.delivered.load(Ordering::Relaxed))
            .detail("dropped", self.stats.dropped.load(Ordering::Relaxed))
            .detail(
                "client_dropped",
                connection.link.client_dropped.load(Ordering::Relaxed),
            );
        if let Some(js) = &connection.jetstream {
            let pending: usize = streams.iter().map(|h| h.pending_count()).sum();
            health = health
                .detail("stream", js.stream_name())
                .detail("pending_acks", pending);
        }
        health
    }
}

/// `<server_name> <host>:<port>` of the server the client last connected to.
fn connected_to(client: &async_nats::Client) -> String {
    let info = client.server_info();
    format!("{} {}:{}", info.server_name, info.host, info.port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn capabilities_follow_the_delivery_mode() {
        let nats = Nats::new();
        nats.initialize("ns", json!({})).await.unwrap();
        let core = nats.metadata();
        assert_eq!(core.interfaces, ["prism.pubsub.v1.PubSub"]);
        assert!(!core.capabilities.contains(&"ack".to_string()));

        nats.initialize("ns", json!({"jetstream": true}))
            .await
            .unwrap();
        let js = nats.metadata();
        assert!(js.capabilities.contains(&"ack".to_string()));
        assert!(js.capabilities.contains(&"durable".to_string()));
    }

    #[tokio::test]
    async fn a_bad_config_is_refused_and_the_old_one_kept() {
        let nats = Nats::new();
        let err = nats
            .initialize("ns", json!({"url": "http://x"}))
            .await
            .unwrap_err();
        assert_eq!(err.field, "url");
        assert_eq!(nats.setup().config, NatsConfig::default());
    }

    #[tokio::test]
    async fn nats_being_down_at_start_is_only_unhealthy() {
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let nats = Nats::new();
        nats.initialize(
            "ns",
            json!({
                "url": format!("nats://127.0.0.1:{port}"),
                "request_timeout_ms": 1,
                "connect_timeout_ms": 50,
            }),
        )
        .await
        .unwrap();
        assert_eq!(nats.health().await.status, HealthStatus::Unhealthy);
        nats.start().await.expect("start does not wait for NATS");
        let health = nats.health().await;
        assert_ne!(health.status, HealthStatus::Healthy);
        if health.status == HealthStatus::Unhealthy {
            assert_eq!(health.unreachable_backend.as_deref(), Some("nats"));
        }
        assert_eq!(health.details["jetstream"], "off");
        assert_eq!(health.details["server"], format!("nats://127.0.0.1:{port}"));
        assert_eq!(
            nats.connection()
                .unwrap()
                .publish(crate::broker::Publish {
                    topic: "t".into(),
                    payload: vec![],
                    metadata: Default::default(),
                })
                .await,
            Err(NatsError::NotConnected)
        );
        nats.stop().await;
        assert!(nats.connection().is_err());
    }
}
