//! The registry as a [`Pattern`]: Initialize builds both slots from the
//! config, Start connects the messaging slot and starts the sweep, health
//! joins both slots' states.

use std::sync::{
    Arc, Mutex, RwLock,
    atomic::{AtomicU64, Ordering},
};

use prism_pattern_sdk::{ConfigError, Health, HealthStatus, Pattern, PatternMetadata};
use tokio::task::JoinHandle;

use crate::{
    config::RegistryConfig,
    error::Error,
    slots::{Messaging, Registry, SlotState},
};

/// Both slots of a started namespace, shared by the service and the sweep.
pub(crate) struct Slots {
    pub config: RegistryConfig,
    pub registry: Registry,
    pub messaging: Messaging,
}

/// What the service has done since the process started, for health.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Multicast calls that reached the fan-out.
    multicasts: AtomicU64,
    /// Per-identity results: DELIVERED, PENDING, and FAILED with TIMEOUT.
    delivered: AtomicU64,
    pending: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    /// Counts one Multicast call and its per-identity results.
    pub(crate) fn count_multicast(&self, delivered: u64, pending: u64, failed: u64) {
        self.multicasts.fetch_add(1, Ordering::Relaxed);
        self.delivered.fetch_add(delivered, Ordering::Relaxed);
        self.pending.fetch_add(pending, Ordering::Relaxed);
        self.failed.fetch_add(failed, Ordering::Relaxed);
    }

    fn figures(&self) -> [(&'static str, u64); 4] {
        [
            ("multicasts", self.multicasts.load(Ordering::Relaxed)),
            ("delivered", self.delivered.load(Ordering::Relaxed)),
            ("pending", self.pending.load(Ordering::Relaxed)),
            ("failed", self.failed.load(Ordering::Relaxed)),
        ]
    }
}

pub(crate) struct RegistryPattern {
    slots: RwLock<Option<Arc<Slots>>>,
    sweeper: Mutex<Option<JoinHandle<()>>>,
    counters: Counters,
}

impl RegistryPattern {
    pub(crate) fn new() -> Self {
        Self {
            slots: RwLock::new(None),
            sweeper: Mutex::new(None),
            counters: Counters::default(),
        }
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The slots, once Initialize has built them.
    pub(crate) fn slots(&self) -> Result<Arc<Slots>, Error> {
        self.slots
            .read()
            .expect("slots lock")
            .clone()
            .ok_or(Error::Lifecycle(
                prism_pattern_sdk::LifecycleError::NotInitialized,
            ))
    }
}

/// Milliseconds since the Unix epoch: TTLs are wall-clock times so that
/// processes sharing one Redis agree on them.
pub(crate) fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

impl Pattern for RegistryPattern {
    fn metadata(&self) -> PatternMetadata {
        PatternMetadata {
            name: "multicast-registry".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            interfaces: vec!["prism.registry.v1.MulticastRegistry".into()],
            capabilities: vec!["ttl".into(), "filters".into()],
        }
    }

    async fn initialize(
        &self,
        namespace: &str,
        config: serde_json::Value,
    ) -> Result<(), ConfigError> {
        let config = RegistryConfig::parse(config)?;
        let registry = Registry::open(namespace, &config.registry, config.max_identities)?;
        let messaging = Messaging::open(namespace, &config.messaging)?;
        *self.slots.write().expect("slots lock") = Some(Arc::new(Slots {
            config,
            registry,
            messaging,
        }));
        Ok(())
    }

    fn check_config(&self, config: serde_json::Value) -> Result<(), ConfigError> {
        // Opening the slots reaches no backend (see `Registry::open`); it
        // runs the slots' own option checks.
        let config = RegistryConfig::parse(config)?;
        Registry::open("check", &config.registry, config.max_identities)?;
        Messaging::open("check", &config.messaging)?;
        Ok(())
    }

    async fn start(&self) -> Result<(), tonic::Status> {
        let slots = self.slots().map_err(tonic::Status::from)?;
        slots.messaging.start().await.map_err(tonic::Status::from)?;
        let interval = std::time::Duration::from_millis(slots.config.sweep_interval_ms);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                match slots.registry.sweep(now_ms()).await {
                    Ok(expired) => {
                        for identity in &expired {
                            if let Err(err) = slots.messaging.forget(identity).await {
                                tracing::debug!(%err, "could not drop an expired identity's inbox");
                            }
                        }
                    }
                    Err(err) => tracing::debug!(%err, "sweep failed; retried next tick"),
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
        if let Ok(slots) = self.slots() {
            slots.messaging.stop().await;
        }
    }

    async fn health(&self) -> Health {
        let Ok(slots) = self.slots() else {
            return Health::new(HealthStatus::Unhealthy, "not initialized");
        };
        let registry = slots.registry.health().await;
        let messaging = slots.messaging.health().await;
        let mut health = match (&registry.state, &messaging.state) {
            (SlotState::Unreachable { backend, reason }, _)
            | (_, SlotState::Unreachable { backend, reason }) => {
                Health::backend_unreachable(backend, reason.clone())
            }
            (SlotState::Degraded(why), _) | (_, SlotState::Degraded(why)) => {
                Health::new(HealthStatus::Degraded, why.clone())
            }
            (SlotState::Ready, SlotState::Ready) => Health::healthy(),
        };
        health = health
            .detail("registry.backend", slots.registry.backend())
            .detail("messaging.backend", slots.messaging.backend());
        for (slot, figures) in [
            ("registry", registry.details),
            ("messaging", messaging.details),
        ] {
            for (key, value) in figures {
                health = health.detail(&format!("{slot}.{key}"), value);
            }
        }
        for (key, value) in self.counters.figures() {
            health = health.detail(key, value);
        }
        health
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use prism_proto::registry::Registration;

    #[tokio::test]
    async fn health_reports_both_slots_and_the_counters() {
        let pattern = RegistryPattern::new();
        assert_eq!(pattern.health().await.status, HealthStatus::Unhealthy);
        pattern.initialize("ns", json!({})).await.unwrap();
        pattern.start().await.unwrap();
        let slots = pattern.slots().unwrap();
        let registration = Registration {
            identity: "a".into(),
            metadata: json!({}),
            ttl: None,
        };
        slots
            .registry
            .register(&registration, now_ms())
            .await
            .unwrap();
        let _inbox = slots.messaging.attach("a").await.unwrap();
        pattern
            .counters()
            .multicasts
            .fetch_add(2, Ordering::Relaxed);
        pattern.counters().failed.fetch_add(5, Ordering::Relaxed);
        let health = pattern.health().await;
        assert_eq!(health.status, HealthStatus::Healthy);
        let details: Vec<(&str, &str)> = health
            .details
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            details,
            [
                ("delivered", "0"),
                ("failed", "5"),
                ("messaging.backend", "memstore"),
                ("messaging.receivers", "1"),
                ("multicasts", "2"),
                ("pending", "0"),
                ("registry.backend", "memstore"),
                ("registry.identities", "1"),
            ]
        );
        pattern.stop().await;
    }

    #[tokio::test]
    async fn a_bad_slot_option_fails_initialize_naming_it() {
        let pattern = RegistryPattern::new();
        let err = pattern
            .initialize("ns", json!({"messaging": {"inbox_capacity": "lots"}}))
            .await
            .unwrap_err();
        assert_eq!(err.field, "messaging.inbox_capacity", "{err}");
    }
}
