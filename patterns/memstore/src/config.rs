//! MemStore's config block; every field has a default.

use std::time::Duration;

use prism_pattern_sdk::ConfigError;
use prism_proto::limits::Limits;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct MemStoreConfig {
    /// New keys beyond this are RESOURCE_EXHAUSTED; health is DEGRADED at 90%.
    pub max_keys: usize,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    /// How often expired keys are removed (reads never see them regardless).
    pub sweep_interval_ms: u64,
    /// Added to every data-plane call, to show latency in demos and to hold
    /// calls in flight in tests. 0 (the default) adds nothing.
    pub simulated_latency_ms: u64,
}

impl Default for MemStoreConfig {
    fn default() -> Self {
        Self {
            max_keys: 100_000,
            max_key_bytes: Limits::DEFAULT_MAX_KEY_BYTES,
            max_value_bytes: Limits::DEFAULT_MAX_VALUE_BYTES,
            sweep_interval_ms: 1000,
            simulated_latency_ms: 0,
        }
    }
}

impl MemStoreConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_keys == 0 {
            return Err(ConfigError::new("max_keys", "must be at least 1"));
        }
        if self.max_key_bytes == 0 {
            return Err(ConfigError::new("max_key_bytes", "must be at least 1"));
        }
        if self.sweep_interval_ms == 0 {
            return Err(ConfigError::new("sweep_interval_ms", "must be at least 1"));
        }
        Ok(())
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_key_bytes: self.max_key_bytes,
            max_value_bytes: self.max_value_bytes,
        }
    }

    pub(crate) fn simulated_latency(&self) -> Option<Duration> {
        (self.simulated_latency_ms > 0).then(|| Duration::from_millis(self.simulated_latency_ms))
    }

    pub(crate) fn sweep_interval(&self) -> Duration {
        Duration::from_millis(self.sweep_interval_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prism_pattern_sdk::parse_config;
    use serde_json::json;

    #[test]
    fn empty_config_is_default() {
        let c: MemStoreConfig = parse_config(json!({})).unwrap();
        assert_eq!(c, MemStoreConfig::default());
    }

    #[test]
    fn zero_max_keys_is_rejected_by_name() {
        let c: MemStoreConfig = parse_config(json!({"max_keys": 0})).unwrap();
        assert_eq!(c.validate().unwrap_err().field, "max_keys");
    }
}
