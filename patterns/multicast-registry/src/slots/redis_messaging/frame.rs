//! What travels in one Redis Pub/Sub message: a small binary frame, so a
//! payload of any bytes needs no escaping. Lengths and numbers are
//! big-endian.
//!
//! ```text
//! 'M'  u32 len, message_id  u32 len, multicast_id  u32 len, traceparent
//!      i64 sent_at_ms  u32 count, count × (u32 len, key  u32 len, value)
//!      payload: every remaining byte
//! 'F'  (nothing): the identity was forgotten; its receivers end
//! ```
//!
//! Decoding never panics: a frame that is short or not UTF-8 where text is
//! expected is an error naming the part.

use std::{collections::HashMap, sync::Arc};

use super::super::Envelope;

const MESSAGE: u8 = b'M';
const FORGET: u8 = b'F';

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Frame {
    Message(Envelope),
    Forget,
}

pub(super) fn encode(envelope: &Envelope) -> Vec<u8> {
    let text = [
        &envelope.message_id,
        &envelope.multicast_id,
        &envelope.traceparent,
    ];
    let metadata: usize = envelope
        .metadata
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len())
        .sum();
    let mut out = Vec::with_capacity(
        1 + text.iter().map(|t| 4 + t.len()).sum::<usize>()
            + 12
            + metadata
            + envelope.payload.len(),
    );
    out.push(MESSAGE);
    for part in text {
        put_bytes(&mut out, part.as_bytes());
    }
    out.extend_from_slice(&envelope.sent_at_ms.to_be_bytes());
    put_len(&mut out, envelope.metadata.len());
    for (key, value) in envelope.metadata.iter() {
        put_bytes(&mut out, key.as_bytes());
        put_bytes(&mut out, value.as_bytes());
    }
    out.extend_from_slice(&envelope.payload);
    out
}

pub(super) fn forget() -> Vec<u8> {
    vec![FORGET]
}

pub(super) fn decode(bytes: &[u8]) -> Result<Frame, String> {
    let mut r = Reader(bytes);
    match r.take(1, "kind")?[0] {
        FORGET => Ok(Frame::Forget),
        MESSAGE => {
            let message_id = r.text("message_id")?;
            let multicast_id = r.text("multicast_id")?;
            let traceparent = r.text("traceparent")?;
            let sent_at_ms =
                i64::from_be_bytes(r.take(8, "sent_at_ms")?.try_into().expect("took 8 bytes"));
            let count = r.len("metadata count")?;
            // Each entry takes at least 8 bytes: no allocation past the frame.
            let mut metadata = HashMap::with_capacity(count.min(r.0.len() / 8));
            for _ in 0..count {
                let key = r.text("metadata key")?;
                let value = r.text("metadata value")?;
                metadata.insert(key, value);
            }
            Ok(Frame::Message(Envelope {
                message_id,
                multicast_id,
                payload: Arc::from(r.0),
                metadata: Arc::new(metadata),
                sent_at_ms,
                traceparent,
            }))
        }
        other => Err(format!("unknown frame kind {other:#04x}")),
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("frame parts are bounded far below 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("frame ends inside {what}"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn len(&mut self, what: &str) -> Result<usize, String> {
        let bytes = self.take(4, what)?;
        let len = u32::from_be_bytes(bytes.try_into().expect("took 4 bytes"));
        Ok(usize::try_from(len).unwrap_or(usize::MAX))
    }

    fn text(&mut self, what: &str) -> Result<String, String> {
        let len = self.len(what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn envelope(payload: &[u8], metadata: &[(&str, &str)]) -> Envelope {
        Envelope {
            message_id: "m-1".into(),
            multicast_id: "mc-9".into(),
            payload: Arc::from(payload),
            metadata: Arc::new(
                metadata
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            sent_at_ms: 1_700_000_000_123,
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
        }
    }

    #[test]
    fn a_message_round_trips() {
        for e in [
            envelope(b"", &[]),
            envelope(b"\x00\xffM F", &[("k", "v"), ("ü", "")]),
            envelope(&[7; 70_000], &[("a", "b")]),
        ] {
            assert_eq!(decode(&encode(&e)), Ok(Frame::Message(e)));
        }
        assert_eq!(decode(&forget()), Ok(Frame::Forget));
    }

    #[test]
    fn every_truncation_is_an_error_naming_the_part() {
        let bytes = encode(&envelope(b"", &[("key", "value")]));
        // The payload may be empty, so the whole frame decodes.
        for cut in 0..bytes.len() {
            let err = decode(&bytes[..cut]).unwrap_err();
            assert!(err.starts_with("frame ends inside "), "{cut}: {err}");
        }
        assert_eq!(
            decode(b"X").unwrap_err(),
            "unknown frame kind 0x58",
            "unknown kind"
        );
        let mut bad = vec![b'M'];
        bad.extend_from_slice(&2u32.to_be_bytes());
        bad.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(decode(&bad).unwrap_err(), "message_id is not UTF-8");
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn any_envelope_round_trips(
            payload in proptest::collection::vec(any::<u8>(), 0..512),
            metadata in proptest::collection::hash_map(".{0,8}", ".{0,8}", 0..5),
            id in ".{0,40}",
            sent_at_ms in any::<i64>(),
        ) {
            let e = Envelope {
                message_id: id.clone(),
                multicast_id: id,
                payload: Arc::from(payload),
                metadata: Arc::new(metadata),
                sent_at_ms,
                traceparent: String::new(),
            };
            prop_assert_eq!(decode(&encode(&e)), Ok(Frame::Message(e)));
        }
    }
}
