//! Field limits of `prism.keyvalue.v1`, checked the same way at every edge
//! (the proxy and each pattern) so a client sees one error text wherever
//! the limit bites.

use tonic::Status;

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

    /// `INVALID_ARGUMENT` naming the field and limit when `key` is empty or too long.
    pub fn check_key(&self, key: &str) -> Result<(), Status> {
        if key.is_empty() {
            return Err(Status::invalid_argument("key: must not be empty"));
        }
        if key.len() > self.max_key_bytes {
            return Err(Status::invalid_argument(format!(
                "key: {} bytes exceeds the limit of {} bytes (max_key_bytes)",
                key.len(),
                self.max_key_bytes
            )));
        }
        Ok(())
    }

    /// Checks everything a `Set` carries.
    pub fn check_set(&self, key: &str, value: &[u8], ttl_seconds: i64) -> Result<(), Status> {
        self.check_key(key)?;
        if value.len() > self.max_value_bytes {
            return Err(Status::invalid_argument(format!(
                "value: {} bytes exceeds the limit of {} bytes (max_value_bytes)",
                value.len(),
                self.max_value_bytes
            )));
        }
        if ttl_seconds < 0 {
            return Err(Status::invalid_argument(format!(
                "ttl_seconds: {ttl_seconds} is negative; use 0 for no expiry"
            )));
        }
        if ttl_seconds > Self::MAX_TTL_SECONDS {
            return Err(Status::invalid_argument(format!(
                "ttl_seconds: {ttl_seconds} exceeds the limit of {} seconds",
                Self::MAX_TTL_SECONDS
            )));
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
    use tonic::Code;

    const SMALL: Limits = Limits {
        max_key_bytes: 4,
        max_value_bytes: 8,
    };

    #[test]
    fn empty_key_is_invalid() {
        let err = SMALL.check_key("").unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().starts_with("key"));
    }

    #[test]
    fn oversize_key_and_value_name_the_limit() {
        let err = SMALL.check_key("abcde").unwrap_err();
        assert!(
            err.message().contains("limit of 4 bytes"),
            "{}",
            err.message()
        );
        let err = SMALL.check_set("k", &[0; 9], 0).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().contains("limit of 8 bytes"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn at_the_limit_is_fine() {
        SMALL.check_set("abcd", &[0; 8], 0).unwrap();
    }

    #[test]
    fn huge_ttl_is_invalid() {
        let err = SMALL.check_set("k", b"", i64::MAX).unwrap_err();
        assert!(err.message().contains("ttl_seconds"), "{}", err.message());
        SMALL.check_set("k", b"", Limits::MAX_TTL_SECONDS).unwrap();
    }

    #[test]
    fn negative_ttl_is_invalid() {
        assert_eq!(
            SMALL.check_set("k", b"", -1).unwrap_err().code(),
            Code::InvalidArgument
        );
    }
}
