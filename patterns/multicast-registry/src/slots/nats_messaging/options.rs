//! The NATS messaging slot's options (the `messaging:` object but
//! `backend`). Connection settings are `prism-nats`'s own and checked by its
//! rules; the rest bounds the inboxes:
//!
//! ```yaml
//! messaging:
//!   backend: nats
//!   url: nats://user:pass@127.0.0.1:4222   # required; credentials as in prism-nats
//!   jetstream: true                        # default false: core NATS
//!   inbox_max_msgs: 1024                   # JetStream: messages kept per identity
//!   inbox_max_age_ms: 86400000             # JetStream: how long they are kept
//!   consumer_storage: file                 # JetStream: file | memory (see below)
//! ```
//!
//! `consumer_storage` is where NATS keeps each identity's consumer state
//! (what was delivered and acknowledged). `file` survives a NATS restart:
//! receivers carry on. `memory` makes a fan-out to many live receivers
//! several times faster (each delivery and ack otherwise writes consumer
//! state to disk) but a NATS restart drops the consumers: receivers' streams
//! end UNAVAILABLE, and on Receive again they get every message not yet
//! acknowledged (the inbox is a work queue, so acknowledged ones are gone;
//! nothing is lost). Messages themselves are on file either way.

use std::time::Duration;

use prism_nats::config::NatsConfig;
use prism_pattern_sdk::ConfigError;
use serde::Deserialize;
use serde_json::Value;

/// Every option the slot reads; anything else is refused by name.
const KNOWN: &[&str] = &[
    "url",
    "jetstream",
    "connect_timeout_ms",
    "request_timeout_ms",
    "ack_wait_ms",
    "receiver_buffer",
    "inbox_max_msgs",
    "inbox_max_age_ms",
    "consumer_storage",
];
/// More queued per receiver only hides a receiver that stopped reading.
const MAX_RECEIVER_BUFFER: usize = 65_536;
/// JetStream keeps at most this many messages per identity, whatever is asked.
const MAX_INBOX_MSGS: i64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Raw {
    url: Option<String>,
    jetstream: bool,
    connect_timeout_ms: u64,
    request_timeout_ms: u64,
    ack_wait_ms: u64,
    receiver_buffer: usize,
    inbox_max_msgs: i64,
    inbox_max_age_ms: u64,
    consumer_storage: ConsumerStorage,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ConsumerStorage {
    #[default]
    File,
    Memory,
}

impl Default for Raw {
    fn default() -> Self {
        let nats = NatsConfig::default();
        Self {
            url: None,
            jetstream: false,
            connect_timeout_ms: nats.connect_timeout_ms,
            request_timeout_ms: nats.request_timeout_ms,
            ack_wait_ms: nats.ack_wait_ms,
            receiver_buffer: 256,
            inbox_max_msgs: 1024,
            inbox_max_age_ms: 24 * 60 * 60 * 1000,
            consumer_storage: ConsumerStorage::File,
        }
    }
}

/// The slot's settings, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    /// url, jetstream, timeouts and `ack_wait_ms` (JetStream: how long a
    /// message handed to a receiver may stay unacknowledged before it is
    /// delivered again) in `prism-nats`'s form.
    pub nats: NatsConfig,
    /// Messages queued between NATS and one receiver's stream.
    pub receiver_buffer: usize,
    /// JetStream: messages an identity's inbox holds (unacknowledged ones
    /// included); a delivery beyond it is FAILED "inbox full".
    pub inbox_max_msgs: i64,
    /// JetStream: how long a message waits in an inbox before it is dropped.
    pub inbox_max_age: Duration,
    /// JetStream: consumer state in the server's memory, not on file.
    pub memory_consumers: bool,
}

impl Options {
    /// Reads the options; errors name the field as `messaging.<field>`.
    pub(crate) fn parse(options: &Value) -> Result<Self, ConfigError> {
        let in_slot = |e: ConfigError| ConfigError::new(format!("messaging.{}", e.field), e.reason);
        if let Value::Object(map) = options
            && let Some(unknown) = map.keys().find(|k| !KNOWN.contains(&k.as_str()))
        {
            return Err(ConfigError::new(
                format!("messaging.{unknown}"),
                format!(
                    "is not an option of the nats messaging slot (known: {})",
                    KNOWN.join(", ")
                ),
            ));
        }
        let raw: Raw = prism_pattern_sdk::parse_config(options.clone()).map_err(in_slot)?;
        let Some(url) = raw.url else {
            return Err(ConfigError::new(
                "messaging.url",
                "is required, e.g. nats://127.0.0.1:4222",
            ));
        };
        let nats = NatsConfig {
            url,
            jetstream: raw.jetstream,
            connect_timeout_ms: raw.connect_timeout_ms,
            request_timeout_ms: raw.request_timeout_ms,
            ack_wait_ms: raw.ack_wait_ms,
            ..NatsConfig::default()
        };
        nats.validate().map_err(in_slot)?;
        if !(1..=MAX_RECEIVER_BUFFER).contains(&raw.receiver_buffer) {
            return Err(ConfigError::new(
                "messaging.receiver_buffer",
                format!("must be between 1 and {MAX_RECEIVER_BUFFER}"),
            ));
        }
        if !(1..=MAX_INBOX_MSGS).contains(&raw.inbox_max_msgs) {
            return Err(ConfigError::new(
                "messaging.inbox_max_msgs",
                format!("must be between 1 and {MAX_INBOX_MSGS}"),
            ));
        }
        if raw.inbox_max_age_ms == 0 {
            return Err(ConfigError::new(
                "messaging.inbox_max_age_ms",
                "must be at least 1",
            ));
        }
        Ok(Self {
            nats,
            receiver_buffer: raw.receiver_buffer,
            inbox_max_msgs: raw.inbox_max_msgs,
            inbox_max_age: Duration::from_millis(raw.inbox_max_age_ms),
            memory_consumers: raw.consumer_storage == ConsumerStorage::Memory,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of(options: Value) -> String {
        Options::parse(&options).unwrap_err().field
    }

    #[test]
    fn only_the_url_is_needed() {
        let o = Options::parse(&json!({"url": "nats://127.0.0.1:4222"})).unwrap();
        assert!(!o.nats.jetstream);
        assert_eq!(o.inbox_max_msgs, 1024);
        assert_eq!(o.inbox_max_age, Duration::from_secs(86_400));
        assert_eq!(o.nats.request_timeout(), Duration::from_secs(5));
        assert!(
            !o.memory_consumers,
            "consumer state survives a NATS restart"
        );
        assert_eq!(field_of(json!({})), "messaging.url");
    }

    #[test]
    fn every_option_is_read() {
        let o = Options::parse(&json!({
            "url": "nats://alice:s3cret@h:1",
            "jetstream": true,
            "connect_timeout_ms": 100,
            "request_timeout_ms": 200,
            "ack_wait_ms": 300,
            "receiver_buffer": 4,
            "inbox_max_msgs": 5,
            "inbox_max_age_ms": 6,
            "consumer_storage": "memory",
        }))
        .unwrap();
        assert!(o.nats.jetstream);
        assert_eq!(o.nats.display_url(), "nats://h:1");
        assert!(o.nats.credentials().is_some());
        assert_eq!(o.nats.connect_timeout(), Duration::from_millis(100));
        assert_eq!(o.nats.request_timeout(), Duration::from_millis(200));
        assert_eq!(o.nats.ack_wait(), Duration::from_millis(300));
        assert_eq!(o.receiver_buffer, 4);
        assert_eq!(o.inbox_max_msgs, 5);
        assert_eq!(o.inbox_max_age, Duration::from_millis(6));
        assert!(o.memory_consumers);
    }

    #[test]
    fn refusals_name_the_option_in_the_slot() {
        let url = "nats://127.0.0.1:4222";
        for (options, field) in [
            (json!({"url": url, "stream": "X"}), "messaging.stream"),
            (json!({"url": url, "urll": 1}), "messaging.urll"),
            (json!({"url": "http://h:1"}), "messaging.url"),
            (json!({"url": 7}), "messaging.url"),
            (
                json!({"url": url, "jetstream": "yes"}),
                "messaging.jetstream",
            ),
            (
                json!({"url": url, "request_timeout_ms": 0}),
                "messaging.request_timeout_ms",
            ),
            (
                json!({"url": url, "receiver_buffer": 0}),
                "messaging.receiver_buffer",
            ),
            (
                json!({"url": url, "inbox_max_msgs": 0}),
                "messaging.inbox_max_msgs",
            ),
            (
                json!({"url": url, "inbox_max_age_ms": 0}),
                "messaging.inbox_max_age_ms",
            ),
            (
                json!({"url": url, "consumer_storage": "disk"}),
                "messaging.consumer_storage",
            ),
        ] {
            assert_eq!(field_of(options.clone()), field, "{options}");
        }
    }
}
