//! Decoding a namespace's config block into a pattern's own config type.

use serde::de::DeserializeOwned;

/// A config the pattern rejects; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config field `{field}`: {reason}")]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Decodes `config` into `T`; `null` or `{}` gives `T::default()` when `T`
/// has `#[serde(default)]`. Errors name the offending field path.
pub fn parse_config<T: DeserializeOwned>(config: serde_json::Value) -> Result<T, ConfigError> {
    let config = if config.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        config
    };
    serde_path_to_error::deserialize(config).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        // Unknown fields are reported at the parent's path; the message names the field.
        let field = if path == "." {
            "config".to_string()
        } else {
            path
        };
        ConfigError::new(field, reason)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        max_keys: u64,
    }

    #[test]
    fn null_is_defaults() {
        assert_eq!(
            parse_config::<Sample>(json!(null)).unwrap(),
            Sample::default()
        );
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse_config::<Sample>(json!({"max_keys": "many"})).unwrap_err();
        assert_eq!(err.field, "max_keys");
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse_config::<Sample>(json!({"max_kyes": 1})).unwrap_err();
        assert!(err.to_string().contains("max_kyes"), "{err}");
    }
}
