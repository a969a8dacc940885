//! A PubSub message on its way from the pattern to a subscriber, kept as
//! the bytes the pattern sent. The proxy adds two things on the way, by
//! appending fields (protobuf keeps the last value of a repeated scalar
//! field): the subscriber id the client's stream was opened with, and —
//! when its buffer dropped messages before this one — the count of drops in
//! `dropped_before`, added to what the pattern itself reported.

use std::sync::Arc;

use bytes::{BufMut, Bytes};
use prism_proto::{
    codec::{PrismCodec, PrismDecoder},
    pubsub::v1::{Message, SubscribeRequest},
    wire::{Fields, Value},
};
use prost::encoding::{WireType, encode_key, encode_varint};
use tonic::{
    Status,
    codec::{Codec, EncodeBuf, Encoder},
};

use crate::subscriptions::Queued;

/// `Message.message_id`, `dropped_before`, `subscriber_id`.
const MESSAGE_ID: u32 = 4;
const DROPPED_BEFORE: u32 = 7;
const SUBSCRIBER_ID: u32 = 9;

/// One message for one subscriber.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    /// The message as the pattern encoded it.
    bytes: Bytes,
    subscriber_id: Arc<str>,
    /// Messages this subscriber's buffer dropped just before this one.
    dropped: u64,
}

impl Delivered {
    pub(crate) fn new(bytes: Bytes, subscriber_id: Arc<str>) -> Self {
        Self {
            bytes,
            subscriber_id,
            dropped: 0,
        }
    }

    /// The message's id, for acknowledging it; `None` if the pattern sent
    /// none (or something unreadable, which the client's decoder reports).
    pub(crate) fn message_id(&self) -> Option<String> {
        last_field(&self.bytes, MESSAGE_ID).and_then(|value| match value {
            Value::Bytes(id) => std::str::from_utf8(id).ok().map(str::to_string),
            _ => None,
        })
    }

    /// Writes the message with the proxy's fields appended.
    fn encode_into(&self, dst: &mut impl BufMut) {
        dst.put_slice(&self.bytes);
        if self.dropped > 0 {
            let before = match last_field(&self.bytes, DROPPED_BEFORE) {
                Some(Value::Varint(n)) => n,
                _ => 0,
            };
            encode_key(DROPPED_BEFORE, WireType::Varint, dst);
            encode_varint(before.saturating_add(self.dropped), dst);
        }
        encode_key(SUBSCRIBER_ID, WireType::LengthDelimited, dst);
        encode_varint(self.subscriber_id.len() as u64, dst);
        dst.put_slice(self.subscriber_id.as_bytes());
    }
}

impl Queued for Delivered {
    fn count_dropped(&mut self, dropped: u64) {
        self.dropped += dropped;
    }
}

/// The last value of field `number` in an encoded message.
fn last_field(bytes: &[u8], number: u32) -> Option<Value<'_>> {
    Fields::new(bytes)
        .map_while(Result::ok)
        .filter(|f| f.number == number)
        .last()
        .map(|f| f.value)
}

/// Subscribe as the client sees it: a `SubscribeRequest` decoded (bad bytes
/// are `INVALID_ARGUMENT`, as everywhere), [`Delivered`] messages encoded.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SubscribeCodec;

impl Codec for SubscribeCodec {
    type Encode = Delivered;
    type Decode = SubscribeRequest;
    type Encoder = SubscribeCodec;
    type Decoder = PrismDecoder<SubscribeRequest>;

    fn encoder(&mut self) -> Self::Encoder {
        SubscribeCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        PrismCodec::<Message, SubscribeRequest>::default().decoder()
    }
}

impl Encoder for SubscribeCodec {
    type Item = Delivered;
    type Error = Status;

    fn encode(&mut self, item: Delivered, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode_into(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn delivered(message: &Message) -> Delivered {
        Delivered::new(Bytes::from(message.encode_to_vec()), "sub-1".into())
    }

    fn as_client_sees(d: &Delivered) -> Message {
        let mut buf = Vec::new();
        d.encode_into(&mut buf);
        Message::decode(&buf[..]).unwrap()
    }

    #[test]
    fn the_message_arrives_as_sent_with_the_subscriber_named() {
        let sent = Message {
            topic: "orders".into(),
            payload: vec![0, 255, 7],
            message_id: "m-1".into(),
            subscriber_id: "from-pattern".into(),
            timestamp_ms: 1_700_000_000_000,
            ..Default::default()
        };
        let d = delivered(&sent);
        assert_eq!(d.message_id().as_deref(), Some("m-1"));
        let seen = as_client_sees(&d);
        assert_eq!(
            seen,
            Message {
                subscriber_id: "sub-1".into(),
                ..sent
            }
        );
    }

    #[test]
    fn drops_add_to_what_the_pattern_reported() {
        let mut from_pattern = delivered(&Message {
            dropped_before: 3,
            ..Default::default()
        });
        from_pattern.count_dropped(2);
        from_pattern.count_dropped(1);
        assert_eq!(as_client_sees(&from_pattern).dropped_before, 6);
        let mut none_before = delivered(&Message::default());
        none_before.count_dropped(1000);
        assert_eq!(as_client_sees(&none_before).dropped_before, 1000);
        assert_eq!(
            as_client_sees(&delivered(&Message::default())).dropped_before,
            0
        );
    }
}
