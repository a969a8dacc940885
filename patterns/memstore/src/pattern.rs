//! MemStore as a [`Pattern`]: config, the sweep task, health.

use std::{
    sync::{Arc, Mutex, RwLock},
    time::Instant,
};

use prism_pattern_sdk::{
    ConfigError, Health, HealthStatus, Pattern, PatternMetadata, parse_config,
};
use tokio::task::JoinHandle;

use crate::{broker::Broker, config::MemStoreConfig, store::Store};

/// Health turns DEGRADED at this fill ratio.
const DEGRADED_FILL: f64 = 0.9;

pub(crate) struct MemStore {
    config: RwLock<MemStoreConfig>,
    /// One lock for the map: operations are short and never await inside it.
    store: Arc<Mutex<Store>>,
    sweeper: Mutex<Option<JoinHandle<()>>>,
    broker: Arc<Broker>,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStore {
    pub(crate) fn new() -> Self {
        let config = MemStoreConfig::default();
        Self {
            store: Arc::new(Mutex::new(Store::new(config.max_keys))),
            config: RwLock::new(config),
            sweeper: Mutex::new(None),
            broker: Arc::new(Broker::default()),
        }
    }

    pub(crate) fn config(&self) -> MemStoreConfig {
        self.config.read().expect("config lock").clone()
    }

    pub(crate) fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Runs `f` on the store under its lock.
    pub(crate) fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        f(&mut self.store.lock().expect("store lock"))
    }
}

impl Pattern for MemStore {
    fn metadata(&self) -> PatternMetadata {
        PatternMetadata {
            name: "memstore".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            interfaces: vec![
                "prism.keyvalue.v1.KeyValue".into(),
                "prism.pubsub.v1.PubSub".into(),
            ],
            capabilities: vec!["ttl".into(), "scan".into(), "wildcards".into()],
        }
    }

    async fn initialize(
        &self,
        _namespace: &str,
        config: serde_json::Value,
    ) -> Result<(), ConfigError> {
        let config: MemStoreConfig = parse_config(config)?;
        config.validate()?;
        *self.store.lock().expect("store lock") = Store::new(config.max_keys);
        *self.config.write().expect("config lock") = config;
        Ok(())
    }

    fn check_config(&self, config: serde_json::Value) -> Result<(), ConfigError> {
        parse_config::<MemStoreConfig>(config)?.validate()
    }

    async fn start(&self) -> Result<(), tonic::Status> {
        let store = self.store.clone();
        let interval = self.config().sweep_interval();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                let removed = store.lock().expect("store lock").sweep(Instant::now());
                if removed > 0 {
                    tracing::debug!(removed, "swept expired keys");
                }
            }
        });
        if let Some(old) = self.sweeper.lock().expect("sweeper lock").replace(task) {
            old.abort();
        }
        Ok(())
    }

    async fn stop(&self) {
        if let Some(task) = self.sweeper.lock().expect("sweeper lock").take() {
            task.abort();
        }
    }

    async fn health(&self) -> Health {
        let (keys, max_keys) = self.with_store(|s| (s.len(), s.max_keys()));
        let stats = &self.broker.stats;
        health_for(keys, max_keys)
            .detail("subscriptions", self.broker.subscriptions())
            .detail(
                "in_msgs",
                stats.published.load(std::sync::atomic::Ordering::Relaxed),
            )
            .detail(
                "out_msgs",
                stats.delivered.load(std::sync::atomic::Ordering::Relaxed),
            )
            .detail(
                "dropped",
                stats.dropped.load(std::sync::atomic::Ordering::Relaxed),
            )
    }
}

fn health_for(keys: usize, max_keys: usize) -> Health {
    let fill = keys as f64 / max_keys as f64;
    let health = if fill >= DEGRADED_FILL {
        Health::new(
            HealthStatus::Degraded,
            format!("{:.0}% of max_keys in use", fill * 100.0),
        )
    } else {
        Health::healthy()
    };
    health.detail("keys", keys).detail("max_keys", max_keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degraded_at_ninety_percent() {
        assert_eq!(health_for(89, 100).status, HealthStatus::Healthy);
        let h = health_for(90, 100);
        assert_eq!(h.status, HealthStatus::Degraded);
        assert_eq!(h.details["keys"], "90");
        assert_eq!(h.details["max_keys"], "100");
    }
}
