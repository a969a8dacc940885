//! The wire reader against prost: for encodings of real requests, damaged
//! by truncation, flipped bytes and inserted fields, and for arbitrary
//! bytes, the rules run on the encoding refuse exactly what prost cannot
//! decode, and on what it can they answer what the typed rules answer.

use std::collections::HashMap;

use prism_proto::{
    keyvalue::v1::{GetRequest, ScanRequest, SetRequest},
    limits::Limits,
    publish,
    pubsub::v1::{AckRequest, PublishBatchRequest, PublishRequest},
    wire::{Refusal, requests},
};
use proptest::prelude::*;
use prost::Message;

const LIMITS: Limits = Limits {
    max_key_bytes: 12,
    max_value_bytes: 24,
};
const PAYLOAD: (usize, &str) = (24, "max_value_bytes");

/// Damage to apply to a valid encoding.
#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    /// A whole field appended: a number the message may define, any wire
    /// type, then a plausible body for that type.
    Append(u8, u8, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::None),
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Damage::Flip(at, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..6))
            .prop_map(|(at, bytes)| Damage::Insert(at, bytes)),
        (1u8..5, 0u8..8, prop::collection::vec(any::<u8>(), 0..6))
            .prop_map(|(number, wire_type, body)| Damage::Append(number, wire_type, body)),
    ]
}

fn apply(mut buf: Vec<u8>, damage: &Damage) -> Vec<u8> {
    let at = |i: &usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
    match damage {
        Damage::None => {}
        Damage::Truncate(i) => buf.truncate(at(i, buf.len())),
        Damage::Flip(i, b) if !buf.is_empty() => {
            let i = i % buf.len();
            buf[i] ^= b;
        }
        Damage::Flip(..) => {}
        Damage::Insert(i, bytes) => {
            let i = at(i, buf.len());
            buf.splice(i..i, bytes.iter().copied());
        }
        Damage::Append(number, wire_type, body) => {
            buf.push(number << 3 | wire_type);
            match wire_type {
                0 => buf.push(body.first().copied().unwrap_or(0) & 0x7f),
                1 => buf.extend([0; 8]),
                2 => {
                    buf.push(body.len() as u8);
                    buf.extend(body);
                }
                5 => buf.extend([0; 4]),
                _ => buf.extend(body),
            }
        }
    }
    buf
}

/// What a rule answered, in a form both paths can be compared by: `Ok`, a
/// refused field (with its text when `exact`), or undecodable.
#[derive(Debug, PartialEq)]
enum Answer {
    Ok,
    Field(String),
    Undecodable,
}

fn typed<T: Message + Default>(
    buf: &[u8],
    check: impl Fn(&T) -> Result<(), prism_proto::FieldError>,
    exact: bool,
) -> Answer {
    match T::decode(buf) {
        Err(_) => Answer::Undecodable,
        Ok(request) => match check(&request) {
            Ok(()) => Answer::Ok,
            Err(err) if exact => Answer::Field(err.to_string()),
            Err(err) => Answer::Field(err.field),
        },
    }
}

fn wire(result: Result<(), Refusal>, exact: bool) -> Answer {
    match result {
        Ok(()) => Answer::Ok,
        Err(Refusal::Undecodable(_)) => Answer::Undecodable,
        Err(Refusal::Field(err)) if exact => Answer::Field(err.to_string()),
        Err(Refusal::Field(err)) => Answer::Field(err.field),
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z:.]{0,16}", ".{0,6}", Just("prism-x".to_string())]
}

fn publish_request() -> impl Strategy<Value = PublishRequest> {
    (
        text(),
        prop::collection::vec(any::<u8>(), 0..32),
        prop::collection::hash_map(text(), text(), 0..3),
    )
        .prop_map(|(topic, payload, metadata)| PublishRequest {
            topic,
            payload,
            metadata,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn key_requests_agree(key in text(), damage in damage()) {
        let buf = apply(GetRequest { key }.encode_to_vec(), &damage);
        prop_assert_eq!(
            wire(requests::key(&LIMITS, &buf), true),
            typed::<GetRequest>(&buf, |r| LIMITS.check_key(&r.key), true)
        );
    }

    #[test]
    fn set_requests_agree(
        key in text(),
        value in prop::collection::vec(any::<u8>(), 0..32),
        ttl_seconds in prop_oneof![Just(0i64), -5i64..5, any::<i64>()],
        damage in damage(),
    ) {
        let buf = apply(SetRequest { key, value, ttl_seconds }.encode_to_vec(), &damage);
        prop_assert_eq!(
            wire(requests::set(&LIMITS, &buf), true),
            typed::<SetRequest>(&buf, |r| LIMITS.check_set(&r.key, &r.value, r.ttl_seconds), true)
        );
    }

    #[test]
    fn scan_requests_agree(prefix in text(), limit in any::<u32>(), cursor in text(), damage in damage()) {
        let buf = apply(ScanRequest { prefix, limit, cursor }.encode_to_vec(), &damage);
        prop_assert_eq!(
            wire(requests::scan(&LIMITS, &buf), true),
            typed::<ScanRequest>(&buf, |r| LIMITS.check_scan(&r.prefix, &r.cursor), true)
        );
    }

    // Metadata is a map on one side and entries in order on the other: when
    // two entries break rules, each may name a different one first, so these
    // compare the refused field, not its text.
    #[test]
    fn publish_requests_agree(request in publish_request(), damage in damage()) {
        let buf = apply(request.encode_to_vec(), &damage);
        prop_assert_eq!(
            wire(requests::publish(&buf, PAYLOAD), false),
            typed::<PublishRequest>(&buf, |r| publish::check_publish(r, PAYLOAD.0, PAYLOAD.1), false)
        );
    }

    #[test]
    fn publish_batches_agree(
        messages in prop::collection::vec(publish_request(), 0..4),
        damage in damage(),
    ) {
        let buf = apply(PublishBatchRequest { messages }.encode_to_vec(), &damage);
        prop_assert_eq!(
            wire(requests::publish_batch(&buf, PAYLOAD), false),
            typed::<PublishBatchRequest>(
                &buf,
                |r| publish::check_publish_batch(r, PAYLOAD.0, PAYLOAD.1),
                false,
            )
        );
    }

    #[test]
    fn acks_agree(
        topic in text(),
        subscriber_id in text(),
        message_ids in prop::collection::vec(text(), 0..3),
        damage in damage(),
    ) {
        let buf = apply(AckRequest { topic, subscriber_id, message_ids }.encode_to_vec(), &damage);
        let check = |r: &AckRequest| {
            publish::check_subscription(&r.topic, &r.subscriber_id)?;
            publish::check_ack_ids(r.message_ids.len())
        };
        prop_assert_eq!(wire(requests::ack(&buf), true), typed::<AckRequest>(&buf, check, true));
    }

    #[test]
    fn arbitrary_bytes_agree(buf in prop::collection::vec(any::<u8>(), 0..48)) {
        prop_assert_eq!(
            wire(requests::set(&LIMITS, &buf), true),
            typed::<SetRequest>(&buf, |r| LIMITS.check_set(&r.key, &r.value, r.ttl_seconds), true)
        );
        prop_assert_eq!(
            wire(requests::publish(&buf, PAYLOAD), false),
            typed::<PublishRequest>(&buf, |r| publish::check_publish(r, PAYLOAD.0, PAYLOAD.1), false)
        );
    }
}

#[test]
fn a_metadata_map_reads_as_its_entries() {
    let request = PublishRequest {
        topic: "t".into(),
        payload: vec![],
        metadata: HashMap::from([("a".to_string(), "b\nc".to_string())]),
    };
    let err = requests::publish(&request.encode_to_vec(), PAYLOAD).unwrap_err();
    assert_eq!(
        err.to_string(),
        "metadata: the value of `a` must not contain CR or LF"
    );
}
