//! Bounds on a data-plane request body while it arrives, before tonic
//! buffers it: each gRPC message's declared length (its 5-byte prefix) is
//! checked against the namespace's limits ([`message_cap`]), and the bytes of
//! a message still arriving hold their share of the namespace's in-flight
//! budget (`limits.max_in_flight_bytes`), so stalled half-sent messages
//! cannot hold more memory than that budget.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderMap, Request};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use prism_proto::{
    limits::{Limits, MAX_MESSAGE_BYTES},
    registry::MAX_METADATA_BYTES,
};
use tonic::Status;

use crate::{dataplane, error::ProxyError, namespace::Namespace, state::ProxyState};

/// Room for everything a message carries besides its key and value
/// (metadata, topic, TTL, framing).
pub(crate) const MESSAGE_OVERHEAD_BYTES: usize = 1024 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest message `method` may declare on a namespace with `limits`, and
/// how that is made up: a batch may carry up to the transport's limit; a
/// registry call without a value [`MESSAGE_OVERHEAD_BYTES`], a Register its
/// metadata and that; any other call (a Multicast too: its filter and
/// headers count as the key) one key, one value and
/// [`MESSAGE_OVERHEAD_BYTES`].
pub(crate) fn message_cap(limits: &Limits, method: &str) -> (usize, &'static str) {
    match method {
        "PublishBatch" => return (MAX_MESSAGE_BYTES, "the largest gRPC message"),
        // The registry's calls that carry no value: an identity, or a filter
        // and a cursor, in room that is plenty for what their rules allow.
        "Unregister" | "Get" | "Receive" | "Enumerate" => {
            return (MESSAGE_OVERHEAD_BYTES, "1 MiB for a call without a value");
        }
        // Metadata is limited as JSON; its Struct encoding is larger, but
        // within the overhead.
        "Register" => {
            return (
                MAX_METADATA_BYTES + MESSAGE_OVERHEAD_BYTES,
                "64 KiB of metadata + 1 MiB",
            );
        }
        _ => {}
    }
    let cap = limits
        .max_value_bytes
        .saturating_add(limits.max_key_bytes)
        .saturating_add(MESSAGE_OVERHEAD_BYTES);
    if cap > MAX_MESSAGE_BYTES {
        return (MAX_MESSAGE_BYTES, "the largest gRPC message");
    }
    (cap, "limits.max_value_bytes + limits.max_key_bytes + 1 MiB")
}

/// Follows the gRPC length-prefixed framing of a body across data frames.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    header: [u8; 5],
    have: usize,
    remaining: usize,
}

impl FrameReader {
    /// Reads `data`; `Err(declared)` as soon as a message's prefix declares
    /// more than `cap` bytes.
    pub(crate) fn feed(&mut self, mut data: &[u8], cap: usize) -> Result<(), usize> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == 5 {
                self.have = 0;
                let [_, a, b, c, d] = self.header;
                let declared = u32::from_be_bytes([a, b, c, d]) as usize;
                if declared > cap {
                    return Err(declared);
                }
                self.remaining = declared;
            }
        }
        Ok(())
    }

    /// Whether part of a message has arrived and the rest has not.
    pub(crate) fn mid_message(&self) -> bool {
        self.have > 0 || self.remaining > 0
    }
}

/// The limits one call's body is held to.
struct Bound {
    namespace: Arc<Namespace>,
    cap: usize,
    rule: &'static str,
    budget: usize,
    reader: FrameReader,
    /// Budget bytes held for the message arriving now.
    held: usize,
}

impl Bound {
    fn release(&mut self) {
        self.namespace.release(std::mem::take(&mut self.held));
    }

    fn accept(&mut self, data: &[u8]) -> Result<(), ProxyError> {
        if let Err(declared) = self.reader.feed(data, self.cap) {
            return Err(ProxyError::MessageTooLarge {
                namespace: self.namespace.name().to_string(),
                declared,
                limit: self.cap,
                rule: self.rule,
            });
        }
        self.namespace.reserve(data.len(), self.held, self.budget)?;
        self.held += data.len();
        if !self.reader.mid_message() {
            self.release();
        }
        Ok(())
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        self.release();
    }
}

/// A request body checked frame by frame; a refusal ends it with the
/// [`Status`] tonic then answers the call with.
pub(crate) struct BoundedBody {
    inner: Incoming,
    bound: Option<Bound>,
}

impl Body for BoundedBody {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let (Some(bound), Some(data)) = (self.bound.as_mut(), frame.data_ref())
            && let Err(e) = bound.accept(data)
        {
            // Dropping the bound gives its bytes back now, not when the
            // stream is finally reset.
            self.bound = None;
            return Poll::Ready(Some(Err(Box::new(Status::from(e)))));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Wraps the data-plane service so every KeyValue, PubSub and registry request body is
/// a [`BoundedBody`] held to its namespace's limits.
#[derive(Clone)]
pub(crate) struct MessageBounds<S> {
    inner: S,
    state: Arc<ProxyState>,
}

impl<S> MessageBounds<S> {
    pub(crate) fn new(inner: S, state: Arc<ProxyState>) -> Self {
        Self { inner, state }
    }

    fn bound(&self, path: &str, headers: &HeaderMap) -> Option<Bound> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        if !["prism.keyvalue.", "prism.pubsub.", "prism.registry."]
            .iter()
            .any(|prefix| service.starts_with(prefix))
        {
            return None;
        }
        // The call itself answers a bad header or unknown namespace.
        let name = dataplane::namespace_of(headers).ok()?;
        let namespace = self.state.namespaces.get(name).ok()?;
        let spec = namespace.spec();
        let (cap, rule) = message_cap(&spec.limits, method);
        Some(Bound {
            cap,
            rule,
            budget: spec.config.limits.max_in_flight_bytes,
            namespace,
            reader: FrameReader::default(),
            held: 0,
        })
    }
}

impl<S> tower::Service<Request<Incoming>> for MessageBounds<S>
where
    S: tower::Service<Request<BoundedBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let bound = self.bound(request.uri().path(), request.headers());
        self.inner
            .call(request.map(|inner| BoundedBody { inner, bound }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(len: u32) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&len.to_be_bytes());
        out
    }

    #[test]
    fn a_declared_length_over_the_cap_is_refused_from_the_prefix_alone() {
        let mut reader = FrameReader::default();
        let header = prefix(60 * 1024 * 1024);
        assert_eq!(reader.feed(&header[..2], 1000), Ok(()), "half a prefix");
        assert_eq!(reader.feed(&header[2..], 1000), Err(60 * 1024 * 1024));
    }

    #[test]
    fn messages_split_and_joined_across_frames_are_followed() {
        let mut reader = FrameReader::default();
        let mut body = prefix(3);
        body.extend_from_slice(b"abc");
        body.extend_from_slice(&prefix(0));
        body.extend_from_slice(&prefix(2));
        body.extend_from_slice(b"x");
        reader.feed(&body[..4], 10).unwrap();
        assert!(reader.mid_message());
        reader.feed(&body[4..], 10).unwrap();
        assert!(
            reader.mid_message(),
            "one byte of the third message missing"
        );
        reader.feed(b"y", 10).unwrap();
        assert!(!reader.mid_message());
        assert_eq!(reader.feed(&prefix(11), 10), Err(11));
    }

    #[test]
    fn the_cap_is_key_value_and_overhead_except_for_batches() {
        let limits = Limits {
            max_key_bytes: 100,
            max_value_bytes: 4 * 1024 * 1024,
        };
        let (cap, rule) = message_cap(&limits, "Set");
        assert_eq!(cap, 4 * 1024 * 1024 + 100 + MESSAGE_OVERHEAD_BYTES);
        assert!(rule.contains("max_value_bytes"), "{rule}");
        assert_eq!(message_cap(&limits, "PublishBatch").0, MAX_MESSAGE_BYTES);
        let huge = Limits {
            max_key_bytes: usize::MAX,
            max_value_bytes: usize::MAX,
        };
        assert_eq!(message_cap(&huge, "Set").0, MAX_MESSAGE_BYTES);
    }

    #[test]
    fn registry_calls_are_capped_by_what_they_carry() {
        let limits = Limits {
            max_key_bytes: 100,
            max_value_bytes: 4 * 1024 * 1024,
        };
        let (multicast, rule) = message_cap(&limits, "Multicast");
        assert_eq!(multicast, 4 * 1024 * 1024 + 100 + MESSAGE_OVERHEAD_BYTES);
        assert!(rule.contains("max_value_bytes"), "{rule}");
        let (register, rule) = message_cap(&limits, "Register");
        assert_eq!(register, 64 * 1024 + MESSAGE_OVERHEAD_BYTES);
        assert!(rule.contains("64 KiB"), "{rule}");
        for method in ["Unregister", "Get", "Receive", "Enumerate"] {
            let (cap, _) = message_cap(&limits, method);
            assert_eq!(cap, MESSAGE_OVERHEAD_BYTES, "{method}");
            assert!(cap < multicast, "a value-less call gets no value's room");
        }
        // Metadata at its JSON limit fits in Register's cap as a Struct.
        let metadata = serde_json::json!({ "blob": "x".repeat(MAX_METADATA_BYTES - 20) });
        let request = prism_proto::registry::v1::RegisterRequest {
            identity: "x".repeat(256),
            metadata: Some(prism_proto::json::to_struct(&metadata)),
            ttl_seconds: 1,
        };
        assert!(prost::Message::encoded_len(&request) < register);
    }

    fn namespace() -> Arc<Namespace> {
        use crate::{activity::Activity, config::NamespaceConfig, namespace::Spec};
        Arc::new(Namespace::new(
            Spec::new(NamespaceConfig::default_memstore(), "/x".into()),
            Arc::new(Activity::default()),
        ))
    }

    fn bound(namespace: &Arc<Namespace>, cap: usize, budget: usize) -> Bound {
        Bound {
            namespace: namespace.clone(),
            cap,
            rule: "test",
            budget,
            reader: FrameReader::default(),
            held: 0,
        }
    }

    #[test]
    fn stalled_half_sent_messages_hold_at_most_the_budget() {
        let ns = namespace();
        let mut first = bound(&ns, 1000, 100);
        first.accept(&prefix(500)).unwrap();
        first.accept(&[0; 95]).unwrap();
        let mut second = bound(&ns, 1000, 100);
        let err = second.accept(&prefix(500)).unwrap_err();
        assert_eq!(Status::from(err).code(), tonic::Code::ResourceExhausted);
        first
            .accept(&[0; 100])
            .expect("a call alone may pass the budget");
        drop(first);
        let mut third = bound(&ns, 1000, 100);
        third
            .accept(&prefix(500))
            .expect("a dropped call gave its bytes back");
    }

    #[test]
    fn a_complete_message_gives_its_arrival_bytes_back() {
        let ns = namespace();
        let mut call = bound(&ns, 1000, 100);
        let mut message = prefix(90);
        message.extend_from_slice(&[0; 90]);
        call.accept(&message).unwrap();
        assert_eq!(call.held, 0);
        let mut other = bound(&ns, 1000, 100);
        other.accept(&message).expect("nothing is held any more");
    }

    #[test]
    fn an_oversized_declaration_names_the_limit() {
        let ns = namespace();
        let mut call = bound(&ns, 1000, 100);
        let status = Status::from(call.accept(&prefix(60 * 1024 * 1024)).unwrap_err());
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("limit of 1000 bytes"),
            "{}",
            status.message()
        );
    }
}
