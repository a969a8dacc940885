//! Redis as a [`Pattern`]: config, lifecycle and health.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use prism_pattern_sdk::{
    ConfigError, Health, HealthStatus, Pattern, PatternMetadata, parse_config,
};

use crate::{backend::Backend, cluster, config::RedisConfig, pool::PoolStats};

/// Health turns DEGRADED when this share of the pool is busy.
const DEGRADED_BUSY: f64 = 0.9;

#[derive(Default)]
pub(crate) struct RedisPattern {
    /// Set by `Initialize`; a new config replaces the whole backend.
    backend: RwLock<Option<Arc<Backend>>>,
}

impl RedisPattern {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn backend(&self) -> Option<Arc<Backend>> {
        self.backend.read().expect("backend lock").clone()
    }
}

impl Pattern for RedisPattern {
    fn metadata(&self) -> PatternMetadata {
        PatternMetadata {
            name: "redis".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            interfaces: vec!["prism.keyvalue.v1.KeyValue".into()],
            capabilities: vec!["ttl".into(), "scan".into()],
        }
    }

    /// Rejects a config that cannot work (a malformed address, a zero
    /// timeout) but never fails because Redis is down right now: the
    /// pattern starts UNHEALTHY and heals when Redis comes.
    async fn initialize(
        &self,
        _namespace: &str,
        config: serde_json::Value,
    ) -> Result<(), ConfigError> {
        let config: RedisConfig = parse_config(config)?;
        config.validate()?;
        let backend = Arc::new(Backend::new(config)?);
        tracing::info!(redis = %backend.endpoint(), config = ?backend.config(), "redis configured");
        let old = self.backend.write().expect("backend lock").replace(backend);
        if let Some(old) = old {
            old.close().await;
        }
        Ok(())
    }

    fn check_config(&self, config: serde_json::Value) -> Result<(), ConfigError> {
        parse_config::<RedisConfig>(config)?.validate()
    }

    async fn start(&self) -> Result<(), tonic::Status> {
        Ok(())
    }

    async fn stop(&self) {
        let backend = self.backend.write().expect("backend lock").take();
        if let Some(backend) = backend {
            backend.close().await;
        }
    }

    async fn health(&self) -> Health {
        let Some(backend) = self.backend() else {
            return Health::new(HealthStatus::Unhealthy, "not initialized");
        };
        if let Some(probe) = backend.cluster_probe().await {
            return cluster::health::health_for(probe, backend.config().slow_ping());
        }
        // Pool figures first: the probe must not count itself as load.
        let stats = backend.pool_stats().unwrap_or_default();
        let ping = backend.ping().await;
        health_for(ping, stats, backend.config().slow_ping()).detail("address", backend.endpoint())
    }
}

/// Health from a PING outcome and the pool's figures.
fn health_for(ping: Result<Duration, String>, pool: PoolStats, slow_ping: Duration) -> Health {
    let health = match &ping {
        Err(reason) => Health::backend_unreachable("redis", format!("redis unreachable: {reason}")),
        Ok(rtt) if *rtt > slow_ping => Health::new(
            HealthStatus::Degraded,
            format!(
                "PING took {} ms (slow_ping_ms {})",
                rtt.as_millis(),
                slow_ping.as_millis()
            ),
        ),
        Ok(_) if pool.busy() >= DEGRADED_BUSY => Health::new(
            HealthStatus::Degraded,
            format!(
                "{:.0}% of pool_size {} busy",
                pool.busy() * 100.0,
                pool.max_size
            ),
        ),
        Ok(_) => Health::healthy(),
    };
    let health = match ping {
        Ok(rtt) => health.detail("ping_ms", format!("{:.1}", rtt.as_secs_f64() * 1000.0)),
        Err(_) => health,
    };
    health
        .detail("pool_size", pool.max_size)
        .detail("pool_open", pool.open)
        .detail("pool_in_use", pool.in_use)
        .detail("pool_available", pool.available)
        .detail("pool_waiting", pool.waiting)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOW: Duration = Duration::from_millis(100);

    fn pool(in_use: usize, waiting: usize) -> PoolStats {
        PoolStats {
            max_size: 10,
            open: in_use.max(2),
            in_use,
            available: 2usize.saturating_sub(in_use),
            waiting,
        }
    }

    #[test]
    fn a_quick_ping_and_an_idle_pool_are_healthy() {
        let h = health_for(Ok(Duration::from_micros(1500)), pool(0, 0), SLOW);
        assert_eq!(h.status, HealthStatus::Healthy);
        assert_eq!(h.details["ping_ms"], "1.5");
        assert_eq!(h.details["pool_size"], "10");
        assert_eq!(h.details["pool_in_use"], "0");
    }

    #[test]
    fn a_slow_ping_is_degraded() {
        let h = health_for(Ok(Duration::from_millis(101)), pool(0, 0), SLOW);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert!(h.message.contains("slow_ping_ms"), "{}", h.message);
    }

    #[test]
    fn a_pool_ninety_percent_busy_is_degraded() {
        let quick = Ok(Duration::from_millis(1));
        assert_eq!(
            health_for(quick.clone(), pool(8, 0), SLOW).status,
            HealthStatus::Healthy
        );
        let h = health_for(quick.clone(), pool(9, 0), SLOW);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert!(h.message.contains("90%"), "{}", h.message);
        assert_eq!(
            health_for(quick, pool(8, 1), SLOW).status,
            HealthStatus::Degraded,
            "waiters count as load"
        );
    }

    #[test]
    fn no_pong_is_unhealthy_and_still_shows_the_pool() {
        let h = health_for(Err("connection refused".into()), pool(0, 0), SLOW);
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert_eq!(
            h.unreachable_backend.as_deref(),
            Some("redis"),
            "alive, not broken"
        );
        assert!(h.message.contains("connection refused"), "{}", h.message);
        assert!(!h.details.contains_key("ping_ms"));
        assert_eq!(h.details["pool_size"], "10");
    }

    #[tokio::test]
    async fn a_down_server_does_not_fail_initialize() {
        let pattern = RedisPattern::new();
        pattern
            .initialize(
                "ns",
                serde_json::json!({"address": "redis://127.0.0.1:1", "health_timeout_ms": 200}),
            )
            .await
            .expect("initialize without a server");
        let h = pattern.health().await;
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert_eq!(h.details["address"], "127.0.0.1:1");
    }

    #[tokio::test]
    async fn a_malformed_address_fails_initialize_naming_it() {
        let err = RedisPattern::new()
            .initialize("ns", serde_json::json!({"address": "http://x"}))
            .await
            .unwrap_err();
        assert_eq!(err.field, "address");
    }
}
