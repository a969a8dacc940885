//! What the Redis registry and Redis messaging slots share: their options
//! (prism-redis's `RedisConfig`, read under the slot's name), the key
//! prefix that scopes a namespace, how a Redis failure becomes this
//! pattern's [`Error`], and health from a PING.
//!
//! Every key and channel of a namespace starts `prism:registry:{<namespace>}:`;
//! the braces are a hash tag, so a Redis Cluster keeps a namespace in one
//! slot (the registry's scripts and MGETs touch several of its keys).

use std::sync::Arc;

use prism_pattern_sdk::{ConfigError, parse_config};
use prism_redis::client::{Backend, RedisConfig};
use serde_json::Value;

use super::{SlotHealth, SlotState};
use crate::error::Error;

/// Builds the client for one slot from its options; errors name the
/// option under the slot, e.g. `registry.pool_size`. Nothing connects yet.
pub(super) fn open(slot: &str, options: &Value) -> Result<Arc<Backend>, ConfigError> {
    let under = |err: ConfigError| ConfigError::new(format!("{slot}.{}", err.field), err.reason);
    if let Value::Object(fields) = options
        && let Some(unknown) = fields
            .keys()
            .find(|k| !RedisConfig::FIELDS.contains(&k.as_str()))
    {
        return Err(ConfigError::new(
            format!("{slot}.{}", prism_proto::field::quote(unknown)),
            format!(
                "is not a Redis option (known: backend, {})",
                RedisConfig::FIELDS.join(", ")
            ),
        ));
    }
    let config: RedisConfig = parse_config(options.clone()).map_err(under)?;
    config.validate().map_err(under)?;
    Ok(Arc::new(Backend::new(config).map_err(under)?))
}

/// `prism:registry:{<namespace>}:`
pub(super) fn key_prefix(namespace: &str) -> String {
    format!("prism:registry:{{{namespace}}}:")
}

/// A Redis failure as this pattern reports it: the server down, busy or
/// failing over is [`Error::Unreachable`] (UNAVAILABLE), out of memory is
/// [`Error::Exhausted`], anything else [`Error::Internal`].
pub(super) fn error(err: prism_redis::client::Error) -> Error {
    if err.is_unreachable() {
        Error::Unreachable {
            backend: "redis",
            reason: err.to_string(),
        }
    } else if err.is_out_of_memory() {
        Error::Exhausted(err.to_string())
    } else {
        Error::Internal(err.to_string())
    }
}

/// The slot's state from a PING on the client's own probe connection (a
/// busy pool never makes Redis look down), plus `address` and `ping_ms`.
pub(super) async fn health(backend: &Backend) -> SlotHealth {
    let mut details = vec![("address".to_string(), backend.endpoint().to_string())];
    let state = match backend.ping().await {
        Err(reason) => SlotState::Unreachable {
            backend: "redis",
            reason: format!("redis unreachable: {reason}"),
        },
        Ok(rtt) => {
            details.push((
                "ping_ms".to_string(),
                format!("{:.1}", rtt.as_secs_f64() * 1000.0),
            ));
            let slow = backend.config().slow_ping();
            if rtt > slow {
                SlotState::Degraded(format!(
                    "redis PING took {} ms (slow_ping_ms {})",
                    rtt.as_millis(),
                    slow.as_millis()
                ))
            } else {
                SlotState::Ready
            }
        }
    };
    SlotHealth { state, details }
}

/// Lower-case hex of the identity's UTF-8: channel names stay printable
/// whatever an identity holds.
pub(super) fn hex(identity: &str) -> String {
    use std::fmt::Write;
    identity
        .bytes()
        .fold(String::with_capacity(identity.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_are_redis_config_named_under_the_slot() {
        assert!(open("registry", &json!({})).is_ok());
        assert!(
            open(
                "registry",
                &json!({"address": "redis://h:1/2", "pool_size": 4, "password": "pw"}),
            )
            .is_ok()
        );
        let cases = [
            (json!({"adress": "redis://h"}), "registry.adress"),
            (json!({"pool_size": 0}), "registry.pool_size"),
            (json!({"pool_size": "x"}), "registry.pool_size"),
            (json!({"address": "http://h"}), "registry.address"),
            (json!({"db": -1}), "registry.db"),
        ];
        for (options, field) in cases {
            let err = open("registry", &options).err().unwrap();
            assert_eq!(err.field, field, "{options}: {}", err.reason);
        }
        let err = open("messaging", &json!({"url": "nats://x"}))
            .err()
            .unwrap();
        assert_eq!(err.field, "messaging.url");
        assert!(err.reason.contains("address"), "{}", err.reason);
    }

    #[test]
    fn keys_hash_tag_the_namespace_and_channels_hex_the_identity() {
        assert_eq!(key_prefix("iot"), "prism:registry:{iot}:");
        assert_eq!(hex("a.b *>"), "612e62202a3e");
        assert_eq!(hex("ü"), "c3bc");
    }

    #[test]
    fn failures_are_classified() {
        let refused: redis::RedisError =
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        assert!(matches!(
            error(refused.into()),
            Error::Unreachable {
                backend: "redis",
                ..
            }
        ));
        let oom = redis::make_extension_error("OOM".into(), Some("no memory".into()));
        assert!(matches!(error(oom.into()), Error::Exhausted(_)));
        let wrong = redis::make_extension_error("WRONGTYPE".into(), None);
        assert!(matches!(error(wrong.into()), Error::Internal(_)));
    }
}
