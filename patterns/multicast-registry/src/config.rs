//! The registry namespace's config block. Every field has a default, so
//! `pattern: multicast-registry` with no config runs both slots in process
//! (MemStore). Each slot names its backend; the rest of the slot's object is
//! that backend's options, read by the slot itself:
//!
//! ```yaml
//! config:
//!   registry:  { backend: redis, address: "redis://127.0.0.1:6379" }
//!   messaging: { backend: nats, url: "nats://127.0.0.1:4222", jetstream: true }
//!   fanout_concurrency: 256
//! ```

use prism_pattern_sdk::ConfigError;
use prism_proto::limits::Limits;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Where identities live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegistryBackend {
    Memstore,
    Redis,
}

/// How messages reach receivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessagingBackend {
    Memstore,
    Nats,
    Redis,
}

/// One slot: its backend and that backend's own options (everything in the
/// slot's object but `backend`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Slot<B> {
    pub backend: B,
    pub options: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    registry: Map<String, Value>,
    messaging: Map<String, Value>,
    fanout_concurrency: usize,
    sweep_interval_ms: u64,
    max_identities: usize,
    max_value_bytes: usize,
}

impl Default for RawConfig {
    fn default() -> Self {
        let d = RegistryConfig::default();
        Self {
            registry: Map::new(),
            messaging: Map::new(),
            fanout_concurrency: d.fanout_concurrency,
            sweep_interval_ms: d.sweep_interval_ms,
            max_identities: d.max_identities,
            max_value_bytes: d.max_value_bytes,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RegistryConfig {
    pub registry: Slot<RegistryBackend>,
    pub messaging: Slot<MessagingBackend>,
    /// Deliveries of one Multicast in flight at once.
    pub fanout_concurrency: usize,
    /// How often expired identities are removed (reads never see them).
    pub sweep_interval_ms: u64,
    /// Registering a new identity beyond this is RESOURCE_EXHAUSTED.
    pub max_identities: usize,
    /// Largest Multicast payload.
    pub max_value_bytes: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            registry: Slot {
                backend: RegistryBackend::Memstore,
                options: Value::Object(Map::new()),
            },
            messaging: Slot {
                backend: MessagingBackend::Memstore,
                options: Value::Object(Map::new()),
            },
            fanout_concurrency: 256,
            sweep_interval_ms: 1000,
            max_identities: 1_000_000,
            max_value_bytes: Limits::DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

impl RegistryConfig {
    /// Reads the config block (`null` or `{}`: every default). Errors name the
    /// field, e.g. `registry.backend`.
    pub(crate) fn parse(config: Value) -> Result<Self, ConfigError> {
        let raw: RawConfig = prism_pattern_sdk::parse_config(config)?;
        let registry = slot("registry", raw.registry, |name| match name {
            "memstore" => Some(RegistryBackend::Memstore),
            "redis" => Some(RegistryBackend::Redis),
            _ => None,
        })?;
        let messaging = slot("messaging", raw.messaging, |name| match name {
            "memstore" => Some(MessagingBackend::Memstore),
            "nats" => Some(MessagingBackend::Nats),
            "redis" => Some(MessagingBackend::Redis),
            _ => None,
        })?;
        for (field, value) in [
            ("fanout_concurrency", raw.fanout_concurrency),
            ("max_identities", raw.max_identities),
            ("max_value_bytes", raw.max_value_bytes),
            (
                "sweep_interval_ms",
                usize::try_from(raw.sweep_interval_ms).unwrap_or(usize::MAX),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::new(field, "must be at least 1"));
            }
        }
        if raw.fanout_concurrency > 10_000 {
            return Err(ConfigError::new(
                "fanout_concurrency",
                format!("{} is over the maximum of 10000", raw.fanout_concurrency),
            ));
        }
        Ok(Self {
            registry,
            messaging,
            fanout_concurrency: raw.fanout_concurrency,
            sweep_interval_ms: raw.sweep_interval_ms,
            max_identities: raw.max_identities,
            max_value_bytes: raw.max_value_bytes,
        })
    }
}

/// Splits a slot's object into its backend (default `memstore`) and options.
fn slot<B>(
    name: &str,
    mut object: Map<String, Value>,
    backend: impl Fn(&str) -> Option<B>,
) -> Result<Slot<B>, ConfigError> {
    let field = format!("{name}.backend");
    let chosen = match object.remove("backend") {
        None => "memstore".to_string(),
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(ConfigError::new(
                field,
                format!("must be a string, not {other}"),
            ));
        }
    };
    let backend = backend(&chosen).ok_or_else(|| {
        ConfigError::new(
            &field,
            format!(
                "`{}` cannot serve the {name} slot",
                prism_proto::field::quote(&chosen)
            ),
        )
    })?;
    Ok(Slot {
        backend,
        options: Value::Object(object),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn no_config_is_memstore_in_both_slots() {
        for empty in [Value::Null, json!({})] {
            assert_eq!(
                RegistryConfig::parse(empty).unwrap(),
                RegistryConfig::default()
            );
        }
    }

    #[test]
    fn slots_keep_their_options() {
        let c = RegistryConfig::parse(json!({
            "registry": {"backend": "redis", "address": "redis://h:1"},
            "messaging": {"backend": "nats", "url": "nats://h:2", "jetstream": true},
            "fanout_concurrency": 8,
        }))
        .unwrap();
        assert_eq!(c.registry.backend, RegistryBackend::Redis);
        assert_eq!(c.registry.options, json!({"address": "redis://h:1"}));
        assert_eq!(c.messaging.backend, MessagingBackend::Nats);
        assert_eq!(
            c.messaging.options,
            json!({"url": "nats://h:2", "jetstream": true})
        );
        assert_eq!(c.fanout_concurrency, 8);
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (json!({"registry": {"backend": "nats"}}), "registry.backend"),
            (json!({"messaging": {"backend": 3}}), "messaging.backend"),
            (json!({"fanout_concurrency": 0}), "fanout_concurrency"),
            (json!({"fanout_concurrency": 10_001}), "fanout_concurrency"),
            (json!({"sweep_interval_ms": 0}), "sweep_interval_ms"),
            (json!({"slots": {}}), "slots"),
        ];
        for (config, field) in cases {
            let err = RegistryConfig::parse(config.clone()).unwrap_err();
            assert!(err.to_string().contains(field), "{config}: {err}");
        }
    }
}
