//! Rules of `prism.registry.v1`, shared by the proxy and the registry
//! pattern so a request is refused the same way at either edge: identities,
//! metadata, TTLs, page sizes and cursors, multicast timeouts, and whole
//! requests turned into checked domain values ([`Registration`],
//! [`EnumerateQuery`], [`MulticastOrder`]) with the filter parsed once.

use std::time::Duration;

use serde_json::Value;

use crate::{
    cursor,
    field::{FieldError, quote},
    filter::Filter,
    json, publish,
    registry::v1::{EnumerateRequest, MulticastRequest, RegisterRequest},
};

/// The generated `prism.registry.v1` code.
pub mod v1 {
    tonic::include_proto!("prism.registry.v1");
}

/// Longest identity accepted, in bytes.
pub const MAX_IDENTITY_BYTES: usize = 256;
/// Largest metadata of one identity, as compact JSON.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Deepest nesting of metadata objects and arrays; the top level is 1.
pub const MAX_METADATA_DEPTH: usize = 8;
/// Longest TTL accepted: 30 days.
pub const MAX_TTL_SECONDS: i64 = 30 * 24 * 3600;
/// Page size when the request says 0.
pub const DEFAULT_PAGE: usize = 100;
/// Largest page.
pub const MAX_PAGE: usize = 10_000;
/// Fan-out time when the request says 0.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(5000);
/// Longest fan-out time a request may ask for.
pub const MAX_TIMEOUT_MS: u32 = 60_000;

/// Refuses an empty identity, one over [`MAX_IDENTITY_BYTES`], or one with a
/// control character (identities appear in logs, keys and subjects).
pub fn check_identity(identity: &str) -> Result<(), FieldError> {
    if identity.is_empty() {
        return Err(FieldError::new("identity", "must not be empty"));
    }
    if identity.len() > MAX_IDENTITY_BYTES {
        return Err(FieldError::new(
            "identity",
            format!(
                "{} bytes exceeds the limit of {MAX_IDENTITY_BYTES} bytes",
                identity.len()
            ),
        ));
    }
    if identity.chars().any(char::is_control) {
        return Err(FieldError::new(
            "identity",
            format!(
                "`{}` must not contain control characters",
                quote(identity).to_string().escape_debug()
            ),
        ));
    }
    Ok(())
}

/// The TTL as a duration (`None`: never expires), or a refusal of a
/// negative one or one over [`MAX_TTL_SECONDS`].
pub fn check_ttl(ttl_seconds: i64) -> Result<Option<Duration>, FieldError> {
    if ttl_seconds < 0 {
        return Err(FieldError::new(
            "ttl_seconds",
            format!("{ttl_seconds} is negative (0 means never expires)"),
        ));
    }
    if ttl_seconds > MAX_TTL_SECONDS {
        return Err(FieldError::new(
            "ttl_seconds",
            format!("{ttl_seconds} exceeds the limit of {MAX_TTL_SECONDS} seconds (30 days)"),
        ));
    }
    Ok((ttl_seconds > 0).then(|| Duration::from_secs(ttl_seconds.unsigned_abs())))
}

/// Refuses metadata over [`MAX_METADATA_BYTES`] as JSON or nested deeper
/// than [`MAX_METADATA_DEPTH`].
pub fn check_metadata(metadata: &Value) -> Result<(), FieldError> {
    let depth = depth(metadata);
    if depth > MAX_METADATA_DEPTH {
        return Err(FieldError::new(
            "metadata",
            format!("nested {depth} levels deep, over the limit of {MAX_METADATA_DEPTH}"),
        ));
    }
    let len = serde_json::to_vec(metadata).map_or(usize::MAX, |json| json.len());
    if len > MAX_METADATA_BYTES {
        return Err(FieldError::new(
            "metadata",
            format!("{len} bytes as JSON exceeds the limit of {MAX_METADATA_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(fields) => 1 + fields.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The page size a request's `limit` means, or a refusal over [`MAX_PAGE`].
pub fn check_limit(limit: u32) -> Result<usize, FieldError> {
    match usize::try_from(limit).unwrap_or(usize::MAX) {
        0 => Ok(DEFAULT_PAGE),
        n if n > MAX_PAGE => Err(FieldError::new(
            "limit",
            format!("{n} exceeds the limit of {MAX_PAGE} identities per page"),
        )),
        n => Ok(n),
    }
}

/// The fan-out time a request's `timeout_ms` means, or a refusal over
/// [`MAX_TIMEOUT_MS`].
pub fn check_timeout(timeout_ms: u32) -> Result<Duration, FieldError> {
    match timeout_ms {
        0 => Ok(DEFAULT_TIMEOUT),
        ms if ms > MAX_TIMEOUT_MS => Err(FieldError::new(
            "timeout_ms",
            format!("{ms} exceeds the limit of {MAX_TIMEOUT_MS} ms"),
        )),
        ms => Ok(Duration::from_millis(u64::from(ms))),
    }
}

/// The cursor of the page after `identity`: pages run in identity order, so
/// a cursor is the last identity shown and the next page starts after it.
pub fn encode_cursor(identity: &str) -> String {
    cursor::encode_key(identity)
}

/// The identity an `Enumerate` cursor continues after (`None` for the first
/// page), or a refusal of a cursor no server issued.
pub fn decode_cursor(text: &str) -> Result<Option<String>, FieldError> {
    if text.is_empty() {
        return Ok(None);
    }
    let identity = cursor::decode_key(text, MAX_IDENTITY_BYTES)?;
    check_identity(&identity).map_err(|_| cursor::invalid())?;
    Ok(Some(identity))
}

/// The filter of an `Enumerate` or `Multicast` (absent: everything).
pub fn parse_filter(filter: Option<&prost_types::Struct>) -> Result<Filter, FieldError> {
    let json = filter.map_or_else(|| Value::Object(Default::default()), json::from_struct);
    Filter::parse(&json)
}

/// A checked `Register`.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub identity: String,
    /// A JSON object (an absent Struct is `{}`).
    pub metadata: Value,
    pub ttl: Option<Duration>,
}

impl Registration {
    /// When a registration made at `now_ms` expires (Unix epoch
    /// milliseconds), or `None` when it never does.
    pub fn expires_at_ms(&self, now_ms: i64) -> Option<i64> {
        self.ttl
            .map(|ttl| now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)))
    }

    pub fn from_request(request: &RegisterRequest) -> Result<Self, FieldError> {
        check_identity(&request.identity)?;
        let ttl = check_ttl(request.ttl_seconds)?;
        let metadata = request
            .metadata
            .as_ref()
            .map_or_else(|| Value::Object(Default::default()), json::from_struct);
        check_metadata(&metadata)?;
        Ok(Self {
            identity: request.identity.clone(),
            metadata,
            ttl,
        })
    }
}

/// A checked `Enumerate`.
#[derive(Debug, Clone)]
pub struct EnumerateQuery {
    pub filter: Filter,
    pub limit: usize,
    /// The page starts after this identity.
    pub after: Option<String>,
    pub include_metadata: bool,
}

impl EnumerateQuery {
    pub fn from_request(request: &EnumerateRequest) -> Result<Self, FieldError> {
        Ok(Self {
            filter: parse_filter(request.filter.as_ref())?,
            limit: check_limit(request.limit)?,
            after: decode_cursor(&request.cursor)?,
            include_metadata: request.include_metadata,
        })
    }
}

/// A checked `Multicast`, its payload still in the request.
#[derive(Debug, Clone)]
pub struct MulticastOrder {
    pub filter: Filter,
    pub timeout: Duration,
}

impl MulticastOrder {
    /// `max_payload_bytes` is the namespace's `max_value_bytes`.
    pub fn from_request(
        request: &MulticastRequest,
        max_payload_bytes: usize,
    ) -> Result<Self, FieldError> {
        let filter = parse_filter(request.filter.as_ref())?;
        publish::check_payload(request.payload.len(), max_payload_bytes, "max_value_bytes")?;
        // Multicast metadata travels as message headers: PubSub's rules.
        publish::check_metadata(&request.metadata)?;
        Ok(Self {
            filter,
            timeout: check_timeout(request.timeout_ms)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identities() {
        check_identity("sensor-1").unwrap();
        check_identity("gerät/7 ✓").unwrap();
        check_identity(&"x".repeat(MAX_IDENTITY_BYTES)).unwrap();
        let cases = [
            ("", "identity: must not be empty"),
            (
                &"x".repeat(MAX_IDENTITY_BYTES + 1),
                "identity: 257 bytes exceeds the limit of 256 bytes",
            ),
            (
                "a\nb",
                "identity: `a\\nb` must not contain control characters",
            ),
        ];
        for (identity, message) in cases {
            assert_eq!(check_identity(identity).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn ttls() {
        assert_eq!(check_ttl(0).unwrap(), None);
        assert_eq!(check_ttl(30).unwrap(), Some(Duration::from_secs(30)));
        assert_eq!(
            check_ttl(MAX_TTL_SECONDS).unwrap(),
            Some(Duration::from_secs(2_592_000))
        );
        assert_eq!(
            check_ttl(-1).unwrap_err().to_string(),
            "ttl_seconds: -1 is negative (0 means never expires)"
        );
        assert_eq!(
            check_ttl(MAX_TTL_SECONDS + 1).unwrap_err().to_string(),
            "ttl_seconds: 2592001 exceeds the limit of 2592000 seconds (30 days)"
        );
    }

    #[test]
    fn metadata_size_and_depth() {
        check_metadata(&json!({"type": "sensor", "loc": {"floor": 1}})).unwrap();
        let mut deep = json!(1);
        for _ in 0..MAX_METADATA_DEPTH {
            deep = json!({ "a": deep });
        }
        check_metadata(&deep).unwrap();
        let too_deep = json!([deep]);
        assert_eq!(
            check_metadata(&too_deep).unwrap_err().to_string(),
            "metadata: nested 9 levels deep, over the limit of 8"
        );
        let big = json!({ "blob": "x".repeat(MAX_METADATA_BYTES) });
        assert!(
            check_metadata(&big)
                .unwrap_err()
                .to_string()
                .starts_with("metadata: 65547 bytes as JSON exceeds the limit of 65536 bytes")
        );
    }

    #[test]
    fn limits_and_timeouts() {
        assert_eq!(check_limit(0).unwrap(), DEFAULT_PAGE);
        assert_eq!(check_limit(7).unwrap(), 7);
        assert_eq!(check_limit(10_000).unwrap(), 10_000);
        assert_eq!(
            check_limit(10_001).unwrap_err().to_string(),
            "limit: 10001 exceeds the limit of 10000 identities per page"
        );
        assert_eq!(check_timeout(0).unwrap(), DEFAULT_TIMEOUT);
        assert_eq!(check_timeout(250).unwrap(), Duration::from_millis(250));
        assert_eq!(
            check_timeout(60_001).unwrap_err().to_string(),
            "timeout_ms: 60001 exceeds the limit of 60000 ms"
        );
    }

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        assert_eq!(decode_cursor("").unwrap(), None);
        for identity in ["sensor-1", "gerät/7 ✓"] {
            assert_eq!(
                decode_cursor(&encode_cursor(identity)).unwrap().as_deref(),
                Some(identity)
            );
        }
        for forged in ["zz", "0a", &"61".repeat(MAX_IDENTITY_BYTES + 1)] {
            assert_eq!(
                decode_cursor(forged).unwrap_err().to_string(),
                "cursor: not a cursor this server issued"
            );
        }
    }

    #[test]
    fn requests() {
        let register = RegisterRequest {
            identity: "sensor-1".into(),
            metadata: Some(json::to_struct(&json!({"floor": 1}))),
            ttl_seconds: 60,
        };
        let r = Registration::from_request(&register).unwrap();
        assert_eq!(r.metadata, json!({"floor": 1}));
        assert_eq!(r.ttl, Some(Duration::from_secs(60)));
        assert_eq!(r.expires_at_ms(1_000), Some(61_000));
        let bare = Registration::from_request(&RegisterRequest {
            identity: "a".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(bare.expires_at_ms(1_000), None);
        assert_eq!((bare.metadata, bare.ttl), (json!({}), None));

        let q = EnumerateQuery::from_request(&EnumerateRequest {
            filter: Some(json::to_struct(&json!({"floor": {"$gte": 1}}))),
            cursor: encode_cursor("b"),
            ..Default::default()
        })
        .unwrap();
        assert!(q.filter.matches(&json!({"floor": 2})));
        assert_eq!((q.limit, q.after.as_deref()), (DEFAULT_PAGE, Some("b")));
        let bad = EnumerateQuery::from_request(&EnumerateRequest {
            filter: Some(json::to_struct(&json!({"floor": {"$near": 1}}))),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(bad.field, "filter.floor");
        assert!(bad.problem.contains("$near"), "{bad}");

        let order = MulticastOrder::from_request(
            &MulticastRequest {
                payload: vec![0; 10],
                ..Default::default()
            },
            10,
        )
        .unwrap();
        assert!(order.filter.matches(&json!({})));
        assert_eq!(order.timeout, DEFAULT_TIMEOUT);
        let big = MulticastRequest {
            payload: vec![0; 11],
            ..Default::default()
        };
        assert_eq!(
            MulticastOrder::from_request(&big, 10)
                .unwrap_err()
                .to_string(),
            "payload: 11 bytes exceeds the limit of 10 bytes (max_value_bytes)"
        );
        let reserved = MulticastRequest {
            metadata: [("traceparent".to_string(), "x".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(
            MulticastOrder::from_request(&reserved, 10)
                .unwrap_err()
                .field,
            "metadata"
        );
    }
}
