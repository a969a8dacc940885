//! Rules of `prism.pubsub.v1` beyond topics, shared by the proxy and every
//! PubSub pattern so a message is refused the same way whatever the
//! backend: payload size, metadata (what can travel as a header on any
//! backend), subscriber ids, acknowledgements, and whole `Publish` and
//! `PublishBatch` requests.

use std::collections::HashMap;

use crate::{
    batch,
    field::{FieldError, quote},
    pubsub::v1::{PublishBatchRequest, PublishRequest},
    topic,
};

/// Largest metadata map on a message, keys and values together.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Longest metadata key accepted, in bytes.
pub const MAX_METADATA_KEY_BYTES: usize = 256;
/// Longest subscriber id accepted, in bytes.
pub const MAX_SUBSCRIBER_ID_BYTES: usize = 256;
/// Most message ids one Ack may name.
pub const MAX_ACK_IDS: usize = 10_000;

/// Keys the application may not set: Prism's, NATS's and trace context
/// (compared without regard to case, as header names are).
pub fn reserved_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.starts_with("prism-")
        || key.starts_with("nats-")
        || key == "traceparent"
        || key == "tracestate"
}

/// Refuses a payload of `len` bytes over `limit`; `setting` names the
/// config field that sets the limit.
pub fn check_payload(len: usize, limit: usize, setting: &str) -> Result<(), FieldError> {
    if len > limit {
        return Err(FieldError::new(
            "payload",
            format!("{len} bytes exceeds the limit of {limit} bytes ({setting})"),
        ));
    }
    Ok(())
}

/// Refuses (naming `metadata`) a key that is empty, too long, reserved or
/// not a valid header name, a value holding CR or LF, or a map over
/// [`MAX_METADATA_BYTES`].
pub fn check_metadata(metadata: &HashMap<String, String>) -> Result<(), FieldError> {
    check_metadata_entries(metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// [`check_metadata`] over entries as they come (from the wire, where a
/// map is a sequence of entries).
pub fn check_metadata_entries<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), FieldError> {
    let invalid = |reason: String| FieldError::new("metadata", reason);
    let mut size = 0usize;
    for (key, value) in entries {
        if key.is_empty() {
            return Err(invalid("keys must not be empty".into()));
        }
        if key.len() > MAX_METADATA_KEY_BYTES {
            return Err(invalid(format!(
                "key of {} bytes exceeds the limit of {MAX_METADATA_KEY_BYTES} bytes",
                key.len()
            )));
        }
        if reserved_key(key) {
            return Err(invalid(format!(
                "key `{}` is reserved (prism-*, nats-*, traceparent, tracestate)",
                quote(key)
            )));
        }
        if key.chars().any(|c| !c.is_ascii_graphic() || c == ':') {
            return Err(invalid(format!(
                "key `{}` may only hold visible ASCII characters other than `:`",
                quote(key).to_string().escape_debug()
            )));
        }
        if value.contains(['\r', '\n']) {
            return Err(invalid(format!(
                "the value of `{}` must not contain CR or LF",
                quote(key)
            )));
        }
        size = size.saturating_add(key.len() + value.len());
    }
    if size > MAX_METADATA_BYTES {
        return Err(invalid(format!(
            "{size} bytes exceeds the limit of {MAX_METADATA_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Everything a `Publish` carries: a topic without wildcards, a payload
/// within `max_payload` (set by `setting`), valid metadata.
pub fn check_publish(
    request: &PublishRequest,
    max_payload: usize,
    setting: &str,
) -> Result<(), FieldError> {
    check_publish_parts(
        &request.topic,
        request.payload.len(),
        request
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
        (max_payload, setting),
    )
}

/// [`check_publish`] over a message's parts: its topic, its payload's
/// length and its metadata entries.
pub fn check_publish_parts<'a>(
    topic: &str,
    payload_len: usize,
    metadata: impl IntoIterator<Item = (&'a str, &'a str)>,
    (max_payload, setting): (usize, &str),
) -> Result<(), FieldError> {
    topic::check("topic", topic, false)?;
    check_payload(payload_len, max_payload, setting)?;
    check_metadata_entries(metadata)
}

/// A batch passes when its size is allowed and every message passes
/// [`check_publish`]; the refusal names the first message that does not.
pub fn check_publish_batch(
    request: &PublishBatchRequest,
    max_payload: usize,
    setting: &str,
) -> Result<(), FieldError> {
    batch::check_size(request.messages.len())?;
    batch::check_each(&request.messages, |m| {
        check_publish(m, max_payload, setting)
    })
}

/// The topic and subscriber an Unsubscribe or Ack names: both required,
/// the topic may hold wildcards (it names a subscription).
pub fn check_subscription(topic: &str, subscriber_id: &str) -> Result<(), FieldError> {
    topic::check("topic", topic, true)?;
    check_subscriber_id(subscriber_id, true)
}

/// Refuses a subscriber id that is too long or holds control characters
/// (it names durable state on some backends), or an empty one where the
/// call must name its subscriber (`required`).
pub fn check_subscriber_id(id: &str, required: bool) -> Result<(), FieldError> {
    let invalid = |reason: String| FieldError::new("subscriber_id", reason);
    if id.is_empty() && required {
        return Err(invalid("must not be empty".into()));
    }
    if id.len() > MAX_SUBSCRIBER_ID_BYTES {
        return Err(invalid(format!(
            "{} bytes exceeds the limit of {MAX_SUBSCRIBER_ID_BYTES} bytes",
            id.len()
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters".into()));
    }
    Ok(())
}

/// Refuses an Ack naming more than [`MAX_ACK_IDS`] messages.
pub fn check_ack_ids(count: usize) -> Result<(), FieldError> {
    if count > MAX_ACK_IDS {
        return Err(FieldError::new(
            "message_ids",
            format!("{count} ids exceeds the limit of {MAX_ACK_IDS}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
