//! What a client sees when it sends something no rule allows: errors that
//! quote its input only briefly (a huge namespace name is still NOT_FOUND,
//! not a reply too big to read), undecodable bytes as INVALID_ARGUMENT,
//! and MemStore refusing on its own the metadata and subscriber ids NATS
//! refuses (the proxy checks them too, so MemStore is called directly).

use std::collections::HashMap;

use prism_proto::{
    keyvalue::v1::GetRequest,
    pubsub::v1::{
        PublishRequest, SubscribeRequest, UnsubscribeRequest, pub_sub_client::PubSubClient,
    },
};
use prism_tests::{Proxy, assert_invalid_field, pattern::PatternProcess, refusal::SHORT};
use prost::bytes::{Buf, BufMut};
use serde_json::json;
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_namespace_name_is_not_found_in_a_short_reply() {
    let proxy = Proxy::start_default().await;
    let name = "n".repeat(15_000);
    let mut kv = proxy.kv(&name).await;
    let err = kv
        .get(GetRequest { key: "k".into() })
        .await
        .expect_err("no such namespace");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().len() < SHORT, "{}", err.message());
    assert!(
        err.message().starts_with("namespace `nnnn"),
        "{}",
        err.message()
    );
    assert!(err.message().contains('…'), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_requests_are_invalid_argument() {
    let proxy = Proxy::start_default().await;
    let memstore = PatternProcess::start("prism-memstore", "raw", json!({}), &[]).await;
    // A field header announcing 100 bytes of a string that is not there.
    let garbage = vec![0x0a, 0x64, b'k'];
    for (server, channel) in [
        ("the proxy", proxy.channel().await),
        ("a pattern", memstore.channel().await),
    ] {
        for path in [
            "/prism.keyvalue.v1.KeyValue/Get",
            "/prism.pubsub.v1.PubSub/Publish",
        ] {
            let err = raw_call(channel.clone(), path, garbage.clone())
                .await
                .expect_err("garbage is refused");
            assert_eq!(
                err.code(),
                Code::InvalidArgument,
                "{server} {path}: {err:?}"
            );
            assert!(
                err.message().contains("could not be decoded"),
                "{server} {path}: {}",
                err.message()
            );
        }
    }
    let mut kv = proxy.kv("default").await;
    let err = kv.get(GetRequest { key: "k".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "the proxy serves on: {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memstore_refuses_what_nats_refuses() {
    let memstore = PatternProcess::start("prism-memstore", "events", json!({}), &[]).await;
    let mut ps = PubSubClient::new(memstore.channel().await);
    for (what, key) in [
        ("a newline", "a\nb".to_string()),
        ("60,000 bytes", "k".repeat(60_000)),
        ("a NATS header", "nats-expected-stream".to_string()),
    ] {
        let err = ps
            .publish(PublishRequest {
                topic: "t".into(),
                payload: vec![1],
                metadata: HashMap::from([(key, "v".to_string())]),
            })
            .await
            .expect_err(what);
        assert_invalid_field(&err, "metadata", what);
    }
    for (what, id) in [
        ("a newline", "worker\n1".to_string()),
        ("1 MB", "s".repeat(1 << 20)),
    ] {
        let err = ps
            .subscribe(SubscribeRequest {
                topic: "t".into(),
                subscriber_id: id,
                manual_ack: false,
            })
            .await
            .expect_err(what);
        assert_invalid_field(&err, "subscriber_id", what);
    }
    an_empty_subscriber_id_is_refused(&mut ps).await;
    // What every backend takes, MemStore takes.
    ps.publish(PublishRequest {
        topic: "t".into(),
        payload: vec![1],
        metadata: HashMap::from([("content-type".to_string(), "text/plain".to_string())]),
    })
    .await
    .expect("valid metadata is published");
}

/// Unsubscribing an empty subscriber id from topic `t` is INVALID_ARGUMENT
/// naming the field, whichever pattern `ps` reaches.
pub(crate) async fn an_empty_subscriber_id_is_refused(ps: &mut PubSubClient<Channel>) {
    let err = ps
        .unsubscribe(UnsubscribeRequest {
            topic: "t".into(),
            subscriber_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_invalid_field(&err, "subscriber_id", "an empty id");
}

/// One unary call to `path` whose body is `bytes` as they are, not an
/// encoded message; the answer's body is ignored.
async fn raw_call(channel: Channel, path: &'static str, bytes: Vec<u8>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    grpc.unary(
        tonic::Request::new(bytes),
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(|_| ())
}

/// Sends bytes as they are; reads whatever comes back as bytes.
#[derive(Clone, Copy)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(bytes.to_vec()))
    }
}
