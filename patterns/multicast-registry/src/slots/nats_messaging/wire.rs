//! What the NATS messaging slot puts on the wire: the names it derives from
//! the namespace and an identity (subjects, the JetStream stream and
//! consumer), and an [`Envelope`] as NATS headers plus the payload, in the
//! header scheme `prism-nats` uses (id, time and W3C trace context as
//! headers, the application's metadata as the rest). Pure functions.

use std::{str::FromStr, sync::Arc};

use async_nats::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::Extractor;
use prism_nats::headers::{self, HeaderExtractor};

use crate::slots::Envelope;

/// Which multicast a message belongs to (reserved: `prism-` keys are not
/// metadata).
pub(crate) const MULTICAST_ID: &str = "prism-multicast-id";
pub(crate) const TRACEPARENT: &str = "traceparent";
/// Consumer names longer than this are cut and a hash of the identity
/// appended (JetStream names are at most 255 bytes; shorter keeps the API
/// subjects that carry them small).
const MAX_CONSUMER_NAME: usize = 128;

/// The subjects, stream and consumer names of one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    /// `prism.registry.<namespace>`
    base: String,
    stream: String,
}

impl Names {
    pub(crate) fn new(namespace: &str) -> Self {
        let token = token(namespace);
        Self {
            base: format!("prism.registry.{token}"),
            stream: format!("PRISM_REGISTRY_{token}"),
        }
    }

    /// Where messages for `identity` go: `prism.registry.<ns>.inbox.<hex>`.
    pub(crate) fn inbox(&self, identity: &str) -> String {
        format!("{}.inbox.{}", self.base, hex(identity))
    }

    /// What every inbox subject of the namespace matches (the stream's).
    pub(crate) fn all_inboxes(&self) -> String {
        format!("{}.inbox.>", self.base)
    }

    /// Answered by each process with a receiver of `identity` attached
    /// (JetStream: is anyone reading the inbox right now?).
    pub(crate) fn presence(&self, identity: &str) -> String {
        format!("{}.presence.{}", self.base, hex(identity))
    }

    /// The JetStream de-duplication id of `message_id` sent to `identity`.
    /// The stream de-duplicates across all its subjects, so the identity
    /// is part of it: a message id reused for several identities (one per
    /// multicast, say) must not make the stream drop all but the first.
    pub(crate) fn dedupe_id(&self, identity: &str, message_id: &str) -> String {
        format!("{message_id}:{:016x}", fnv1a(identity.as_bytes()))
    }

    /// `PRISM_REGISTRY_<namespace>`
    pub(crate) fn stream(&self) -> &str {
        &self.stream
    }

    /// The durable consumer of `identity`'s inbox: `inbox_<hex>`, or for
    /// long identities the start of that and a hash of the whole identity.
    pub(crate) fn consumer(&self, identity: &str) -> String {
        let name = format!("inbox_{}", hex(identity));
        if name.len() <= MAX_CONSUMER_NAME {
            return name;
        }
        let hash = fnv1a(identity.as_bytes());
        format!("{}_{hash:016x}", &name[..MAX_CONSUMER_NAME - 17])
    }
}

/// Lower-case hex of the identity's UTF-8: identities may hold `.`, `*`,
/// `>` and spaces, which mean something in a subject.
pub(crate) fn hex(identity: &str) -> String {
    use std::fmt::Write;
    identity
        .bytes()
        .fold(String::with_capacity(identity.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `s` as one subject token and stream-name part: anything but ASCII
/// letters, digits, `-` and `_` becomes `_`.
fn token(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() { "_".into() } else { t }
}

/// FNV-1a, 64 bits: a fixed hash, so consumer names survive upgrades.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The headers `envelope` travels with. `dedupe`, for JetStream, becomes
/// `Nats-Msg-Id`, so a publish retried after a lost PubAck is stored once
/// (see [`Names::dedupe_id`]).
pub(crate) fn encode(envelope: &Envelope, dedupe: Option<&str>) -> HeaderMap {
    let mut map = headers::encode(
        &envelope.metadata,
        &envelope.message_id,
        envelope.sent_at_ms,
        false,
    );
    if let Some(id) = dedupe {
        set(&mut map, headers::NATS_MSG_ID, id);
    }
    set(&mut map, MULTICAST_ID, &envelope.multicast_id);
    if !envelope.traceparent.is_empty() {
        set(&mut map, TRACEPARENT, &envelope.traceparent);
    }
    map
}

fn set(map: &mut HeaderMap, key: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (HeaderName::from_str(key), HeaderValue::from_str(value)) {
        map.insert(name, value);
    }
}

/// The envelope a received message carries. A message some other NATS
/// client put on the subject still decodes: what is missing is empty, and
/// `fallback_id` stands in for the id.
pub(crate) fn decode(
    map: Option<&HeaderMap>,
    payload: &[u8],
    fallback_id: impl FnOnce() -> String,
) -> Envelope {
    let incoming = headers::decode(map);
    let get = |key: &str| {
        map.and_then(|m| HeaderExtractor(m).get(key).map(str::to_string))
            .unwrap_or_default()
    };
    Envelope {
        message_id: incoming.message_id.unwrap_or_else(fallback_id),
        multicast_id: get(MULTICAST_ID),
        payload: Arc::from(payload),
        metadata: Arc::new(incoming.metadata),
        sent_at_ms: incoming.timestamp_ms.unwrap_or_default(),
        traceparent: get(TRACEPARENT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn envelope() -> Envelope {
        Envelope {
            message_id: "m-1".into(),
            multicast_id: "mc-1".into(),
            payload: Arc::from(&b"on"[..]),
            metadata: Arc::new(HashMap::from([("kind".to_string(), "cmd".to_string())])),
            sent_at_ms: 1_700_000_000_123,
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        }
    }

    #[test]
    fn an_envelope_round_trips_through_headers() {
        let sent = envelope();
        for dedupe in [None, Some("m-1:00ff")] {
            let map = encode(&sent, dedupe);
            assert_eq!(map.get(headers::NATS_MSG_ID).map(|v| v.as_str()), dedupe);
            let got = decode(Some(&map), &sent.payload, || unreachable!("has an id"));
            assert_eq!(got, sent);
        }
    }

    #[test]
    fn reserved_headers_never_show_as_metadata() {
        let map = encode(&envelope(), Some("m-1:00ff"));
        let got = decode(Some(&map), b"", String::new);
        assert_eq!(got.metadata.keys().collect::<Vec<_>>(), vec!["kind"]);
    }

    #[test]
    fn a_foreign_message_decodes_with_blanks() {
        let got = decode(None, b"raw", || "fallback".into());
        assert_eq!(got.message_id, "fallback");
        assert_eq!(got.multicast_id, "");
        assert_eq!(got.traceparent, "");
        assert_eq!(&*got.payload, b"raw");
        assert!(got.metadata.is_empty());
    }

    #[test]
    fn no_traceparent_header_without_a_trace() {
        let mut e = envelope();
        e.traceparent.clear();
        assert!(encode(&e, None).get(TRACEPARENT).is_none());
    }

    #[test]
    fn names_keep_identities_out_of_subject_syntax() {
        let names = Names::new("iot fleet.eu");
        assert_eq!(names.stream(), "PRISM_REGISTRY_iot_fleet_eu");
        assert_eq!(names.all_inboxes(), "prism.registry.iot_fleet_eu.inbox.>");
        assert_eq!(
            names.inbox("a.b *>"),
            "prism.registry.iot_fleet_eu.inbox.612e62202a3e"
        );
        assert_eq!(
            names.presence("a"),
            "prism.registry.iot_fleet_eu.presence.61"
        );
        assert_eq!(names.consumer("sensor-1"), "inbox_73656e736f722d31");
        assert_eq!(hex("é"), "c3a9");
        assert_ne!(
            names.dedupe_id("a", "m-1"),
            names.dedupe_id("b", "m-1"),
            "one message id for several identities is several messages"
        );
        assert!(names.dedupe_id("a", "m-1").starts_with("m-1:"));
    }

    #[test]
    fn long_identities_get_bounded_distinct_consumer_names() {
        let names = Names::new("ns");
        let a = "x".repeat(256);
        let b = format!("{}y", "x".repeat(255));
        let (ca, cb) = (names.consumer(&a), names.consumer(&b));
        assert!(ca.len() <= MAX_CONSUMER_NAME, "{}", ca.len());
        assert_ne!(ca, cb);
        assert_eq!(ca, names.consumer(&a), "stable");
        assert!(ca.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
}
