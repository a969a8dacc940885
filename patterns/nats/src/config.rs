//! The NATS pattern's config block; every field has a default, so a
//! namespace with no `config:` talks core NATS on `nats://127.0.0.1:4222`.

use std::time::Duration;

use async_nats::ServerAddr;
use prism_pattern_sdk::ConfigError;
use serde::Deserialize;

use crate::topic::{self, Subjects};

/// The largest message a NATS server can be configured to accept (64 MiB).
pub const NATS_MAX_PAYLOAD_LIMIT: usize = 64 * 1024 * 1024;
/// Per-subscription channel sizes beyond this only hide a stuck subscriber.
pub const MAX_SUBSCRIBER_BUFFER: usize = 1_000_000;

/// JetStream keeps at most this many copies of a stream.
pub const MAX_REPLICAS: usize = 5;

/// `url` as one string or a list of strings; a list is joined with commas,
/// the form [`NatsConfig::servers`] splits.
fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(deserializer) {
        Ok(OneOrMany::One(url)) => Ok(url),
        Ok(OneOrMany::Many(urls)) => Ok(urls.join(",")),
        Err(_) => Err(serde::de::Error::custom(
            "expected a server URL or a list of them",
        )),
    }
}

/// What the client logs in with; never printed.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    UserPassword { user: String, password: String },
    Token(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UserPassword { user, .. } => write!(f, "UserPassword({user}, ***)"),
            Self::Token(_) => f.write_str("Token(***)"),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// One server, or a cluster's servers as a comma-separated string or a
    /// YAML list (`nats://`, or `tls://` for TLS;
    /// `nats://user:pass@host:4222` carries credentials). The client picks
    /// one and moves to another when it goes away. A list is kept here
    /// joined with commas.
    #[serde(deserialize_with = "one_or_many")]
    pub url: String,
    /// At-least-once delivery through JetStream (durable consumers, acks,
    /// redelivery) instead of core NATS (at-most-once).
    pub jetstream: bool,
    /// The JetStream stream that stores the namespace's messages; created
    /// when missing. Default `PRISM_<NAMESPACE>` (upper case, `-` as `_`).
    pub stream: Option<String>,
    /// Subject prefix that keeps namespaces apart on one NATS server: topic
    /// `orders.eu` is subject `<prefix>.orders.eu`, and the stream captures
    /// `<prefix>.>`. Default `prism.<namespace>`; `""` publishes topics as
    /// subjects unchanged (core NATS only: a stream cannot capture `>`).
    pub subject_prefix: Option<String>,
    /// JetStream: how long a delivered message may stay unacknowledged
    /// before it is redelivered.
    pub ack_wait_ms: u64,
    /// JetStream: deliveries per message before it is given up; 0 = no limit.
    pub max_deliver: u32,
    /// JetStream: copies of the namespace's stream kept on different
    /// servers of a NATS cluster (1 on a single server; 3 survives the loss
    /// of one server). Applies when the stream is created.
    pub replicas: usize,
    /// Messages queued per subscription between NATS and the gRPC stream.
    /// Core NATS drops (and counts) what does not fit; JetStream stops
    /// pulling until there is room again.
    pub subscriber_buffer: usize,
    /// How long one attempt to connect to a server may take.
    pub connect_timeout_ms: u64,
    /// How long a publish (and a JetStream API call) may take before the
    /// call fails `UNAVAILABLE`; also how long an outage stays DEGRADED
    /// before health turns UNHEALTHY.
    pub request_timeout_ms: u64,
    /// Largest payload a Publish accepts (the NATS server's own
    /// `max_payload`, headers included, also applies).
    pub max_payload_bytes: usize,
}

/// Never prints the credentials `url` may carry.
impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &self.display_url())
            .field("credentials", &self.credentials())
            .field("jetstream", &self.jetstream)
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .field("ack_wait_ms", &self.ack_wait_ms)
            .field("max_deliver", &self.max_deliver)
            .field("replicas", &self.replicas)
            .field("subscriber_buffer", &self.subscriber_buffer)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .finish()
    }
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            jetstream: false,
            stream: None,
            subject_prefix: None,
            ack_wait_ms: 30_000,
            max_deliver: 0,
            replicas: 1,
            subscriber_buffer: 1024,
            connect_timeout_ms: 2_000,
            request_timeout_ms: 5_000,
            max_payload_bytes: 1024 * 1024,
        }
    }
}

impl NatsConfig {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.servers()?;
        if let Some(stream) = &self.stream {
            check_stream_name(stream).map_err(|reason| ConfigError::new("stream", reason))?;
        }
        if let Some(prefix) = &self.subject_prefix {
            if prefix.is_empty() && self.jetstream {
                return Err(ConfigError::new(
                    "subject_prefix",
                    "must not be empty with jetstream: true (the stream captures `<prefix>.>`)",
                ));
            }
            if !prefix.is_empty() {
                topic::check_prefix(prefix)
                    .map_err(|reason| ConfigError::new("subject_prefix", reason))?;
            }
        }
        for (field, value) in [
            ("ack_wait_ms", self.ack_wait_ms),
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::new(field, "must be at least 1"));
            }
        }
        if !(1..=MAX_REPLICAS).contains(&self.replicas) {
            return Err(ConfigError::new(
                "replicas",
                format!(
                    "{} is not between 1 and {MAX_REPLICAS} (JetStream's limit)",
                    self.replicas
                ),
            ));
        }
        if !(1..=MAX_SUBSCRIBER_BUFFER).contains(&self.subscriber_buffer) {
            return Err(ConfigError::new(
                "subscriber_buffer",
                format!("must be between 1 and {MAX_SUBSCRIBER_BUFFER}"),
            ));
        }
        if !(1..=NATS_MAX_PAYLOAD_LIMIT).contains(&self.max_payload_bytes) {
            return Err(ConfigError::new(
                "max_payload_bytes",
                format!("must be between 1 and {NATS_MAX_PAYLOAD_LIMIT} bytes"),
            ));
        }
        Ok(())
    }

    /// The servers of `url`, parsed.
    pub fn servers(&self) -> Result<Vec<ServerAddr>, ConfigError> {
        let mut servers = Vec::new();
        for part in self.url.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(ConfigError::new(
                    "url",
                    "needs a server, e.g. nats://127.0.0.1:4222",
                ));
            }
            let addr: ServerAddr = part
                .parse()
                .map_err(|e: std::io::Error| ConfigError::new("url", e.to_string()))?;
            if addr.is_websocket() {
                return Err(ConfigError::new(
                    "url",
                    format!("`{}`: use nats:// or tls://", addr.scheme()),
                ));
            }
            if addr.host().is_empty() {
                return Err(ConfigError::new("url", "needs a host"));
            }
            servers.push(addr);
        }
        Ok(servers)
    }

    /// How the client logs in: the user info of the first server in `url`
    /// that has one (`nats://user:password@host`, or `nats://token@host`).
    /// The client library does not take it from the URL by itself.
    pub fn credentials(&self) -> Option<Credentials> {
        let servers = self.servers().ok()?;
        let server = servers.iter().find(|s| s.username().is_some())?;
        let user = server.username()?.to_string();
        Some(match server.password() {
            Some(password) => Credentials::UserPassword {
                user,
                password: password.to_string(),
            },
            None => Credentials::Token(user),
        })
    }

    /// `url` without credentials, for health details and logs.
    pub fn display_url(&self) -> String {
        match self.servers() {
            Ok(servers) => servers
                .iter()
                .map(|s| format!("{}://{}:{}", s.scheme(), s.host(), s.port()))
                .collect::<Vec<_>>()
                .join(","),
            Err(_) => "(invalid)".into(),
        }
    }

    /// The stream name for `namespace`.
    pub fn stream_name(&self, namespace: &str) -> String {
        match &self.stream {
            Some(stream) => stream.clone(),
            None => format!(
                "PRISM_{}",
                topic::token(namespace)
                    .replace('-', "_")
                    .to_ascii_uppercase()
            ),
        }
    }

    /// How topics map to subjects for `namespace`.
    pub(crate) fn subjects(&self, namespace: &str) -> Subjects {
        match &self.subject_prefix {
            Some(prefix) => Subjects::new(prefix),
            None => Subjects::new(&format!("prism.{}", topic::token(namespace))),
        }
    }

    pub fn ack_wait(&self) -> Duration {
        Duration::from_millis(self.ack_wait_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// JetStream stream names: no whitespace, `.`, `*`, `>` or path separators.
fn check_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err("must be 1 to 255 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        return Err(format!("`{name}` must not contain {c:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prism_pattern_sdk::parse_config;
    use serde_json::json;

    fn parse(value: serde_json::Value) -> Result<NatsConfig, ConfigError> {
        let config: NatsConfig = parse_config(value)?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn credentials_come_from_the_url_and_never_print() {
        let config = |url: &str| NatsConfig {
            url: url.into(),
            ..NatsConfig::default()
        };
        assert_eq!(config("nats://127.0.0.1:4222").credentials(), None);
        let user = config("nats://127.0.0.1:1, nats://alice:s3cret@127.0.0.1:2").credentials();
        assert_eq!(
            user,
            Some(Credentials::UserPassword {
                user: "alice".into(),
                password: "s3cret".into()
            })
        );
        assert!(!format!("{user:?}").contains("s3cret"));
        let token = config("nats://t0ken@127.0.0.1:4222").credentials();
        assert_eq!(token, Some(Credentials::Token("t0ken".into())));
        assert!(!format!("{token:?}").contains("t0ken"));
        let whole = format!("{:?}", config("nats://alice:s3cret@127.0.0.1:2"));
        assert!(!whole.contains("s3cret"), "{whole}");
        assert!(whole.contains("nats://127.0.0.1:2"), "{whole}");
    }

    fn field_of(value: serde_json::Value) -> String {
        parse(value).unwrap_err().field
    }

    #[test]
    fn empty_config_is_core_nats_on_localhost() {
        let c = parse(json!({})).unwrap();
        assert_eq!(c, NatsConfig::default());
        assert!(!c.jetstream);
        assert_eq!(c.display_url(), "nats://127.0.0.1:4222");
    }

    #[test]
    fn every_field_is_read() {
        let c = parse(json!({
            "url": "nats://a:4223, tls://b:4224",
            "jetstream": true,
            "stream": "ORDERS",
            "subject_prefix": "shop.orders",
            "ack_wait_ms": 500,
            "max_deliver": 3,
            "subscriber_buffer": 8,
            "connect_timeout_ms": 100,
            "request_timeout_ms": 200,
            "max_payload_bytes": 1000,
        }))
        .unwrap();
        assert_eq!(c.servers().unwrap().len(), 2);
        assert_eq!(c.display_url(), "nats://a:4223,tls://b:4224");
        assert_eq!(c.stream_name("ns"), "ORDERS");
        assert_eq!(c.subjects("ns").subject("x"), "shop.orders.x");
        assert_eq!(c.ack_wait(), Duration::from_millis(500));
        assert_eq!(c.request_timeout(), Duration::from_millis(200));
        assert_eq!(c.connect_timeout(), Duration::from_millis(100));
    }

    #[test]
    fn names_derive_from_the_namespace() {
        let c = NatsConfig::default();
        assert_eq!(c.stream_name("order-events"), "PRISM_ORDER_EVENTS");
        assert_eq!(
            c.subjects("order-events").subject("eu.created"),
            "prism.order-events.eu.created"
        );
    }

    #[test]
    fn credentials_never_show() {
        let c = parse(json!({"url": "nats://alice:s3cret@127.0.0.1:4222"})).unwrap();
        assert_eq!(c.display_url(), "nats://127.0.0.1:4222");
    }

    #[test]
    fn a_cluster_is_a_comma_list_or_a_yaml_list() {
        let comma = parse(json!({"url": "nats://127.0.0.1:1, nats://127.0.0.1:2"})).unwrap();
        let list = parse(json!({"url": ["nats://127.0.0.1:1", "nats://127.0.0.1:2"]})).unwrap();
        for c in [&comma, &list] {
            assert_eq!(c.servers().unwrap().len(), 2);
            assert_eq!(c.display_url(), "nats://127.0.0.1:1,nats://127.0.0.1:2");
        }
        for url in [
            json!([]),
            json!(["nats://a:1", ""]),
            json!([4222]),
            json!(7),
        ] {
            assert_eq!(field_of(json!({ "url": url })), "url", "{url}");
        }
    }

    #[test]
    fn replicas_range_from_one_to_five() {
        assert_eq!(parse(json!({})).unwrap().replicas, 1);
        assert_eq!(parse(json!({"replicas": 3})).unwrap().replicas, 3);
        for bad in [0, 6] {
            assert_eq!(field_of(json!({ "replicas": bad })), "replicas", "{bad}");
        }
    }

    #[test]
    fn malformed_urls_are_rejected_by_name() {
        for url in [
            "",
            "http://127.0.0.1:4222",
            "nats://[::1",
            "nats://a:4222,,nats://b",
            "ws://127.0.0.1:80",
            "nats://:4222",
        ] {
            assert_eq!(field_of(json!({ "url": url })), "url", "{url:?}");
        }
    }

    #[test]
    fn bad_fields_are_named() {
        assert_eq!(field_of(json!({"stream": "a.b"})), "stream");
        assert_eq!(field_of(json!({"stream": ""})), "stream");
        assert_eq!(field_of(json!({"subject_prefix": "a.*"})), "subject_prefix");
        assert_eq!(
            field_of(json!({"subject_prefix": "a..b"})),
            "subject_prefix"
        );
        assert_eq!(
            field_of(json!({"subject_prefix": "", "jetstream": true})),
            "subject_prefix"
        );
        assert!(parse(json!({"subject_prefix": ""})).is_ok());
        assert_eq!(field_of(json!({"ack_wait_ms": 0})), "ack_wait_ms");
        assert_eq!(
            field_of(json!({"connect_timeout_ms": 0})),
            "connect_timeout_ms"
        );
        assert_eq!(
            field_of(json!({"request_timeout_ms": 0})),
            "request_timeout_ms"
        );
        assert_eq!(
            field_of(json!({"subscriber_buffer": 0})),
            "subscriber_buffer"
        );
        assert_eq!(
            field_of(json!({"max_payload_bytes": 0})),
            "max_payload_bytes"
        );
        assert_eq!(
            field_of(json!({"max_payload_bytes": NATS_MAX_PAYLOAD_LIMIT + 1})),
            "max_payload_bytes"
        );
        assert_eq!(field_of(json!({"jetstream": "yes"})), "jetstream");
        assert!(
            parse(json!({"urll": "x"}))
                .unwrap_err()
                .to_string()
                .contains("urll")
        );
    }
}
