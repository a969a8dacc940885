//! What a message carries in its NATS headers besides the payload: the
//! application's metadata, Prism's own fields (`prism-message-id`,
//! `prism-timestamp-ms`, `Nats-Msg-Id` for JetStream de-duplication) and the
//! W3C trace context, plus the carriers the OpenTelemetry propagator reads
//! and writes through, and [`Outgoing`], a message ready to publish, which
//! both the core and the JetStream paths send. Pure functions.

use std::{collections::HashMap, str::FromStr};

use async_nats::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};

use crate::error::NatsError;

/// A message ready for NATS: the subject its topic maps to, the headers
/// (metadata, id, time, trace context) and the payload.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Vec<u8>,
}

pub const MESSAGE_ID: &str = "prism-message-id";
pub const TIMESTAMP_MS: &str = "prism-timestamp-ms";
/// JetStream drops a second message with the same id inside its window.
pub const NATS_MSG_ID: &str = "Nats-Msg-Id";

/// Keys the application may not set: Prism's, NATS's and trace context.
fn reserved(key: &str) -> bool {
    prism_proto::publish::reserved_key(key)
}

/// Headers of a message being published. `metadata` must have passed
/// `prism_proto::publish::check_metadata`, the rules every backend shares
/// (anything invalid is left out, never a panic).
pub fn encode(
    metadata: &HashMap<String, String>,
    message_id: &str,
    timestamp_ms: i64,
    jetstream: bool,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (key, value) in metadata {
        set(&mut headers, key, value);
    }
    set(&mut headers, MESSAGE_ID, message_id);
    set(&mut headers, TIMESTAMP_MS, &timestamp_ms.to_string());
    if jetstream {
        set(&mut headers, NATS_MSG_ID, message_id);
    }
    headers
}

/// Bytes a message takes against the NATS server's `max_payload`: the
/// header block as it goes on the wire (`NATS/1.0`, one `key: value` line
/// per value, a blank line) plus the payload.
pub fn wire_size(headers: &HeaderMap, payload_len: usize) -> usize {
    if headers.is_empty() {
        return payload_len;
    }
    let lines: usize = headers
        .iter()
        .map(|(name, values)| {
            let name: &str = name.as_ref();
            values
                .iter()
                .map(|v| name.len() + ": ".len() + v.as_str().len() + "\r\n".len())
                .sum::<usize>()
        })
        .sum();
    "NATS/1.0\r\n".len() + lines + "\r\n".len() + payload_len
}

/// `INVALID_ARGUMENT` naming `payload` when a message of `headers` and
/// `payload_len` bytes would not fit the NATS server's `max_payload`.
pub fn check_wire_size(
    headers: &HeaderMap,
    payload_len: usize,
    max_payload: usize,
) -> Result<(), NatsError> {
    let size = wire_size(headers, payload_len);
    if size > max_payload {
        return Err(NatsError::invalid(
            "payload",
            format!(
                "{size} bytes with headers exceeds the limit of {max_payload} bytes (the NATS server's max_payload)"
            ),
        ));
    }
    Ok(())
}

fn set(headers: &mut HeaderMap, key: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (HeaderName::from_str(key), HeaderValue::from_str(value)) {
        headers.insert(name, value);
    }
}

/// What a received message's headers say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The application's metadata: every header that is not reserved.
    pub metadata: HashMap<String, String>,
    /// Prism's id, or JetStream's `Nats-Msg-Id` from a foreign publisher.
    pub message_id: Option<String>,
    pub timestamp_ms: Option<i64>,
}

pub fn decode(headers: Option<&HeaderMap>) -> Incoming {
    let Some(headers) = headers else {
        return Incoming::default();
    };
    let mut incoming = Incoming::default();
    let mut nats_msg_id = None;
    for (name, values) in headers.iter() {
        let name: &str = name.as_ref();
        let Some(value) = values.last().map(HeaderValue::as_str) else {
            continue;
        };
        if name.eq_ignore_ascii_case(MESSAGE_ID) {
            incoming.message_id = Some(value.to_string());
        } else if name.eq_ignore_ascii_case(TIMESTAMP_MS) {
            incoming.timestamp_ms = value.parse().ok();
        } else if name.eq_ignore_ascii_case(NATS_MSG_ID) {
            nats_msg_id = Some(value.to_string());
        } else if !reserved(name) {
            incoming
                .metadata
                .insert(name.to_string(), value.to_string());
        }
    }
    incoming.message_id = incoming.message_id.or(nats_msg_id);
    incoming
}

/// Lets the propagator write `traceparent`/`tracestate` into NATS headers.
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        set(self.0, key, &value);
    }
}

/// Lets the propagator read trace context from NATS headers (names compare
/// case-insensitively, as in HTTP).
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| AsRef::<str>::as_ref(*name).eq_ignore_ascii_case(key))
            .and_then(|(_, values)| values.last())
            .map(HeaderValue::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let metadata = meta(&[("content-type", "text/plain"), ("X-Tenant", "acme")]);
        let headers = encode(&metadata, "id-1", 1_700_000_000_123, true);
        assert_eq!(headers.get(NATS_MSG_ID).unwrap().as_str(), "id-1");
        let incoming = decode(Some(&headers));
        assert_eq!(incoming.metadata, metadata);
        assert_eq!(incoming.message_id.as_deref(), Some("id-1"));
        assert_eq!(incoming.timestamp_ms, Some(1_700_000_000_123));
    }

    #[test]
    fn the_wire_size_counts_the_header_block() {
        assert_eq!(wire_size(&HeaderMap::new(), 10), 10);
        let headers = encode(&meta(&[("k", "v")]), "id", 7, false);
        // NATS/1.0\r\n + k: v\r\n + prism-message-id: id\r\n
        // + prism-timestamp-ms: 7\r\n + \r\n
        let block = 10 + 6 + 22 + 23 + 2;
        assert_eq!(wire_size(&headers, 10), block + 10);
        assert!(check_wire_size(&headers, 10, block + 10).is_ok());
        match check_wire_size(&headers, 11, block + 10) {
            Err(NatsError::InvalidArgument { field, reason }) => {
                assert_eq!(field, "payload");
                assert!(
                    reason.contains(&format!("limit of {}", block + 10)),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn core_messages_skip_the_dedup_header() {
        let headers = encode(&HashMap::new(), "id-2", 1, false);
        assert!(headers.get(NATS_MSG_ID).is_none());
        assert_eq!(decode(Some(&headers)).message_id.as_deref(), Some("id-2"));
    }

    #[test]
    fn foreign_messages_decode_too() {
        assert_eq!(decode(None), Incoming::default());
        let mut headers = HeaderMap::new();
        set(&mut headers, NATS_MSG_ID, "theirs");
        set(&mut headers, TIMESTAMP_MS, "not a number");
        set(&mut headers, "traceparent", "00-x-y-01");
        set(&mut headers, "app", "v");
        let incoming = decode(Some(&headers));
        assert_eq!(incoming.message_id.as_deref(), Some("theirs"));
        assert_eq!(incoming.timestamp_ms, None);
        assert_eq!(
            incoming.metadata,
            meta(&[("app", "v")]),
            "trace context is not metadata"
        );
    }

    #[test]
    fn carriers_write_and_read_trace_context() {
        let mut headers = HeaderMap::new();
        HeaderInjector(&mut headers).set("traceparent", "00-abc-def-01".into());
        HeaderInjector(&mut headers).set("bad key", "ignored".into());
        HeaderInjector(&mut headers).set("tracestate", "bad\nvalue".into());
        let extractor = HeaderExtractor(&headers);
        assert_eq!(extractor.get("traceparent"), Some("00-abc-def-01"));
        assert_eq!(extractor.get("TraceParent"), Some("00-abc-def-01"));
        assert_eq!(extractor.get("tracestate"), None);
        assert_eq!(extractor.keys(), vec!["traceparent"]);
    }
}
