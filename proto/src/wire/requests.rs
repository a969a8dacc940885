//! The rules of each forwarded request, run on its encoding: each function
//! reads the fields its rules need (every field the `.proto` defines is
//! checked for its wire type and, for strings, UTF-8, as prost would), then
//! calls the same rule the typed path calls ([`Limits`], [`publish`],
//! [`batch`]), so a refusal reads the same whichever path made it.

use super::{Field, Fields, Refusal};
use crate::{batch, field::FieldError, limits::Limits, publish};

/// Runs `read` on every field of `buf`, in order.
fn each<'a>(
    buf: &'a [u8],
    mut read: impl FnMut(Field<'a>) -> Result<(), Refusal>,
) -> Result<(), Refusal> {
    for field in Fields::new(buf) {
        read(field?)?;
    }
    Ok(())
}

/// The whole request decoded, for rules that read most of it (the
/// registry's metadata and filters); prost's refusal becomes the same
/// `INVALID_ARGUMENT` the typed path gives.
pub fn decoded<T: prost::Message + Default>(buf: &[u8]) -> Result<T, Refusal> {
    T::decode(buf).map_err(|err| Refusal::Undecodable(err.to_string()))
}

/// `GetRequest`, `DeleteRequest`, `ExistsRequest`: `string key = 1`.
pub fn key(limits: &Limits, buf: &[u8]) -> Result<(), Refusal> {
    let mut key = "";
    each(buf, |f| {
        if f.number == 1 {
            key = f.string("key")?;
        }
        Ok(())
    })?;
    Ok(limits.check_key(key)?)
}

/// `SetRequest`: `string key = 1; bytes value = 2; int64 ttl_seconds = 3`.
pub fn set(limits: &Limits, buf: &[u8]) -> Result<(), Refusal> {
    let (mut key, mut value, mut ttl) = ("", &[][..], 0i64);
    each(buf, |f| {
        match f.number {
            1 => key = f.string("key")?,
            2 => value = f.bytes("value")?,
            3 => ttl = f.varint("ttl_seconds")? as i64,
            _ => {}
        }
        Ok(())
    })?;
    Ok(limits.check_set(key, value, ttl)?)
}

/// `ScanRequest`: `string prefix = 1; uint32 limit = 2; string cursor = 3`.
pub fn scan(limits: &Limits, buf: &[u8]) -> Result<(), Refusal> {
    let (mut prefix, mut cursor) = ("", "");
    each(buf, |f| {
        match f.number {
            1 => prefix = f.string("prefix")?,
            2 => drop(f.varint("limit")?),
            3 => cursor = f.string("cursor")?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(limits.check_scan(prefix, cursor)?)
}

/// A `PublishRequest`'s parts, read and checked for encoding.
struct Publish<'a> {
    topic: &'a str,
    payload_len: usize,
    /// The whole message again, to walk its metadata entries.
    buf: &'a [u8],
}

/// `PublishRequest`: `string topic = 1; bytes payload = 2;
/// map<string, string> metadata = 3`.
fn read_publish(buf: &[u8]) -> Result<Publish<'_>, Refusal> {
    let mut publish = Publish {
        topic: "",
        payload_len: 0,
        buf,
    };
    each(buf, |f| {
        match f.number {
            1 => publish.topic = f.string("topic")?,
            2 => publish.payload_len = f.bytes("payload")?.len(),
            3 => drop(entry(f.bytes("metadata")?)?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(publish)
}

/// One `map<string, string>` entry: `key = 1`, `value = 2`, each empty when
/// absent.
fn entry(buf: &[u8]) -> Result<(&str, &str), Refusal> {
    let (mut key, mut value) = ("", "");
    each(buf, |f| {
        match f.number {
            1 => key = f.string("metadata.key")?,
            2 => value = f.string("metadata.value")?,
            _ => {}
        }
        Ok(())
    })?;
    Ok((key, value))
}

impl<'a> Publish<'a> {
    /// The metadata entries of a message [`read_publish`] accepted.
    fn metadata(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        Fields::new(self.buf)
            .filter_map(Result::ok)
            .filter(|f| f.number == 3)
            .filter_map(|f| entry(f.bytes("metadata").ok()?).ok())
    }

    fn check(&self, max_payload: (usize, &str)) -> Result<(), FieldError> {
        publish::check_publish_parts(self.topic, self.payload_len, self.metadata(), max_payload)
    }
}

/// A `PublishRequest` under [`publish::check_publish`]'s rules;
/// `max_payload` is the limit and the setting that sets it.
pub fn publish(buf: &[u8], max_payload: (usize, &str)) -> Result<(), Refusal> {
    Ok(read_publish(buf)?.check(max_payload)?)
}

/// `PublishBatchRequest`: `repeated PublishRequest messages = 1`, under
/// [`publish::check_publish_batch`]'s rules: the batch's size, then each
/// message in order, named by its place.
pub fn publish_batch(buf: &[u8], max_payload: (usize, &str)) -> Result<(), Refusal> {
    let mut messages = Vec::new();
    each(buf, |f| {
        if f.number == 1 {
            messages.push(read_publish(f.bytes("messages")?)?);
        }
        Ok(())
    })?;
    batch::check_size(messages.len())?;
    for (index, message) in messages.iter().enumerate() {
        message
            .check(max_payload)
            .map_err(|err| err.in_message(index))?;
    }
    Ok(())
}

/// `AckRequest`: `string topic = 1; string subscriber_id = 2;
/// repeated string message_ids = 3`: a topic and a subscriber are named,
/// and at most [`publish::MAX_ACK_IDS`] ids.
pub fn ack(buf: &[u8]) -> Result<(), Refusal> {
    let (mut topic, mut subscriber_id, mut ids) = ("", "", 0usize);
    each(buf, |f| {
        match f.number {
            1 => topic = f.string("topic")?,
            2 => subscriber_id = f.string("subscriber_id")?,
            3 => {
                f.string("message_ids")?;
                ids += 1;
            }
            _ => {}
        }
        Ok(())
    })?;
    publish::check_subscription(topic, subscriber_id)?;
    Ok(publish::check_ack_ids(ids)?)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use prost::Message;

    use super::*;
    use crate::{
        keyvalue::v1::{GetRequest, SetRequest},
        pubsub::v1::{PublishBatchRequest, PublishRequest},
    };

    const LIMITS: Limits = Limits {
        max_key_bytes: 8,
        max_value_bytes: 16,
    };
    const PAYLOAD: (usize, &str) = (16, "max_value_bytes");

    #[test]
    fn a_get_reads_its_key() {
        let ok = GetRequest { key: "k".into() }.encode_to_vec();
        key(&LIMITS, &ok).unwrap();
        let long = GetRequest { key: "k".repeat(9) }.encode_to_vec();
        let err = key(&LIMITS, &long).unwrap_err();
        assert_eq!(
            err.to_string(),
            "key: 9 bytes exceeds the limit of 8 bytes (max_key_bytes)"
        );
        let empty = key(&LIMITS, &[]).unwrap_err();
        assert_eq!(empty.to_string(), "key: must not be empty");
    }

    #[test]
    fn a_set_reads_key_value_and_ttl() {
        let set_of = |value: usize, ttl_seconds| {
            SetRequest {
                key: "k".into(),
                value: vec![0; value],
                ttl_seconds,
            }
            .encode_to_vec()
        };
        set(&LIMITS, &set_of(16, 5)).unwrap();
        assert!(
            set(&LIMITS, &set_of(17, 0))
                .unwrap_err()
                .to_string()
                .starts_with("value: 17 bytes")
        );
        assert!(
            set(&LIMITS, &set_of(1, -1))
                .unwrap_err()
                .to_string()
                .starts_with("ttl_seconds: -1 is negative")
        );
    }

    #[test]
    fn a_batch_names_the_message_it_refuses() {
        let message = |topic: &str, key: &str| PublishRequest {
            topic: topic.into(),
            payload: vec![1],
            metadata: HashMap::from([(key.to_string(), "v".to_string())]),
        };
        let batch = PublishBatchRequest {
            messages: vec![message("t", "a"), message("t", "prism-x")],
        }
        .encode_to_vec();
        let err = publish_batch(&batch, PAYLOAD).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("messages[1].metadata: key `prism-x` is reserved"),
            "{err}"
        );
        let empty = publish_batch(&[], PAYLOAD).unwrap_err();
        assert!(empty.to_string().starts_with("messages: "), "{empty}");
    }
}
