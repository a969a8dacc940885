//! Field limits of `prism.keyvalue.v1`, checked the same way at every edge
//! (the proxy and each pattern) so a client sees one error text wherever
//! the limit bites.

use crate::field::FieldError;

/// Largest gRPC message any Prism server accepts or sends. Above any value
/// limit a namespace can configure, so that limit (not the transport) answers
/// first with a message naming it.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Size limits for one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

impl Limits {
    pub const DEFAULT_MAX_KEY_BYTES: usize = 4096;
    pub const DEFAULT_MAX_VALUE_BYTES: usize = 4 * 1024 * 1024;
    /// Longest TTL accepted: 100 years.
    pub const MAX_TTL_SECONDS: i64 = 100 * 365 * 24 * 3600;

    /// Refuses an empty or too long `key`.
    pub fn check_key(&self, key: &str) -> Result<(), FieldError> {
        if key.is_empty() {
            return Err(FieldError::new("key", "must not be empty"));
        }
        self.check_length("key", key)
    }

    /// Checks everything a `Set` carries.
    pub fn check_set(&self, key: &str, value: &[u8], ttl_seconds: i64) -> Result<(), FieldError> {
        self.check_key(key)?;
        if value.len() > self.max_value_bytes {
            return Err(FieldError::new(
                "value",
                format!(
                    "{} bytes exceeds the limit of {} bytes (max_value_bytes)",
                    value.len(),
                    self.max_value_bytes
                ),
            ));
        }
        if ttl_seconds < 0 {
            return Err(FieldError::new(
                "ttl_seconds",
                format!("{ttl_seconds} is negative; use 0 for no expiry"),
            ));
        }
        if ttl_seconds > Self::MAX_TTL_SECONDS {
            return Err(FieldError::new(
                "ttl_seconds",
                format!(
                    "{ttl_seconds} exceeds the limit of {} seconds",
                    Self::MAX_TTL_SECONDS
                ),
            ));
        }
        Ok(())
    }

    /// Checks a `Scan`: the prefix is limited like a key (but may be
    /// empty), the cursor to what a server could have issued for such keys.
    /// What a cursor holds is each backend's to check.
    pub fn check_scan(&self, prefix: &str, cursor: &str) -> Result<(), FieldError> {
        self.check_length("prefix", prefix)?;
        if cursor.len() > self.max_cursor_bytes() {
            return Err(FieldError::new(
                "cursor",
                format!(
                    "{} bytes is longer than any cursor this server issues",
                    cursor.len()
                ),
            ));
        }
        Ok(())
    }

    /// Longest cursor a scan can issue: a key in hex and a little framing.
    pub fn max_cursor_bytes(&self) -> usize {
        self.max_key_bytes.saturating_mul(2).saturating_add(64)
    }

    fn check_length(&self, field: &str, key: &str) -> Result<(), FieldError> {
        if key.len() > self.max_key_bytes {
            return Err(FieldError::new(
                field,
                format!(
                    "{} bytes exceeds the limit of {} bytes (max_key_bytes)",
                    key.len(),
                    self.max_key_bytes
                ),
            ));
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_key_bytes: Self::DEFAULT_MAX_KEY_BYTES,
            max_value_bytes: Self::DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limits = Limits {
        max_key_bytes: 4,
        max_value_bytes: 8,
    };

    #[test]
    fn empty_key_is_invalid() {
        let err = SMALL.check_key("").unwrap_err();
        assert_eq!(err.field, "key");
        assert_eq!(err.to_string(), "key: must not be empty");
    }

    #[test]
    fn oversize_key_and_value_name_the_limit() {
        let err = SMALL.check_key("abcde").unwrap_err();
        assert_eq!(
            err.to_string(),
            "key: 5 bytes exceeds the limit of 4 bytes (max_key_bytes)"
        );
        let err = SMALL.check_set("k", &[0; 9], 0).unwrap_err();
        assert_eq!(err.field, "value");
        assert!(err.problem.contains("limit of 8 bytes"), "{err}");
    }

    #[test]
    fn at_the_limit_is_fine() {
        SMALL.check_set("abcd", &[0; 8], 0).unwrap();
    }

    #[test]
    fn huge_ttl_is_invalid() {
        let err = SMALL.check_set("k", b"", i64::MAX).unwrap_err();
        assert_eq!(err.field, "ttl_seconds");
        SMALL.check_set("k", b"", Limits::MAX_TTL_SECONDS).unwrap();
    }

    #[test]
    fn negative_ttl_is_invalid() {
        assert_eq!(
            SMALL.check_set("k", b"", -1).unwrap_err().field,
            "ttl_seconds"
        );
    }

    #[test]
    fn scan_prefix_is_limited_like_a_key_and_may_be_empty() {
        SMALL.check_scan("", "").unwrap();
        SMALL.check_scan("abcd", "").unwrap();
        let err = SMALL.check_scan("abcde", "").unwrap_err();
        assert_eq!(err.field, "prefix");
        assert!(err.problem.contains("max_key_bytes"), "{err}");
    }

    #[test]
    fn scan_cursor_is_bounded() {
        let longest = "0".repeat(SMALL.max_cursor_bytes());
        SMALL.check_scan("", &longest).unwrap();
        let err = SMALL.check_scan("", &format!("{longest}0")).unwrap_err();
        assert_eq!(err.field, "cursor");
        assert!(
            !err.problem.contains("000"),
            "never echoes the cursor: {err}"
        );
    }
}
