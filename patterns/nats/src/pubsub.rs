//! The `prism.pubsub.v1.PubSub` gRPC service: admit, decode and validate
//! into a domain request, run it on the connection, encode.

use std::sync::Arc;

use prism_pattern_sdk::Gate;
use prism_proto::{
    publish::{self, check_publish, check_publish_batch},
    pubsub::v1::{
        AckRequest, AckResponse, PublishBatchRequest, PublishBatchResponse, PublishRequest,
        PublishResponse, SubscribeRequest, UnsubscribeRequest, UnsubscribeResponse,
        pub_sub_server::PubSub,
    },
};
use tonic::{Request, Response, Status};

use crate::{
    broker::{Publish, Subscribe, SubscriptionStream},
    error::{NatsError, to_status},
    pattern::Nats,
    subscriptions::Key,
    topic,
};

/// The config field that limits a payload here, named in refusals.
const PAYLOAD_SETTING: &str = "max_payload_bytes";

pub(crate) struct PubSubService {
    nats: Arc<Nats>,
    gate: Gate,
}

impl PubSubService {
    pub(crate) fn new(nats: Arc<Nats>, gate: Gate) -> Self {
        Self { nats, gate }
    }
}

fn decode_publish(req: PublishRequest, max_payload_bytes: usize) -> Result<Publish, NatsError> {
    check_publish(&req, max_payload_bytes, PAYLOAD_SETTING)?;
    Ok(Publish {
        topic: req.topic,
        payload: req.payload,
        metadata: req.metadata,
    })
}

/// Every message decoded as by Publish, or the first refusal naming its
/// message (`messages[3].payload`): nothing of a bad batch reaches NATS.
fn decode_publish_batch(
    req: PublishBatchRequest,
    max_payload_bytes: usize,
) -> Result<Vec<Publish>, NatsError> {
    check_publish_batch(&req, max_payload_bytes, PAYLOAD_SETTING)?;
    Ok(req
        .messages
        .into_iter()
        .map(|m| Publish {
            topic: m.topic,
            payload: m.payload,
            metadata: m.metadata,
        })
        .collect())
}

fn check_subscriber_id(id: &str, required: bool) -> Result<(), NatsError> {
    Ok(publish::check_subscriber_id(id, required)?)
}

fn decode_subscribe(req: SubscribeRequest) -> Result<Subscribe, NatsError> {
    topic::check_subscribed_topic(&req.topic)?;
    check_subscriber_id(&req.subscriber_id, false)?;
    let generated_id = req.subscriber_id.is_empty();
    let subscriber_id = if generated_id {
        format!("sub-{:016x}", rand::random::<u64>())
    } else {
        req.subscriber_id
    };
    Ok(Subscribe {
        topic: req.topic,
        subscriber_id,
        generated_id,
        manual_ack: req.manual_ack,
    })
}

fn decode_key(topic: String, subscriber_id: String) -> Result<Key, NatsError> {
    topic::check_subscribed_topic(&topic)?;
    check_subscriber_id(&subscriber_id, true)?;
    Ok(Key {
        topic,
        subscriber_id,
    })
}

fn decode_ack(req: AckRequest) -> Result<(Key, Vec<String>), NatsError> {
    let key = decode_key(req.topic, req.subscriber_id)?;
    publish::check_ack_ids(req.message_ids.len())?;
    Ok((key, req.message_ids))
}

#[tonic::async_trait]
impl PubSub for PubSubService {
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        self.gate.check()?;
        let max_payload = self.nats.setup().config.max_payload_bytes;
        let req = decode_publish(request.into_inner(), max_payload).map_err(to_status)?;
        let connection = self.nats.connection().map_err(to_status)?;
        let message_id = connection.publish(req).await.map_err(to_status)?;
        Ok(Response::new(PublishResponse { message_id }))
    }

    async fn publish_batch(
        &self,
        request: Request<PublishBatchRequest>,
    ) -> Result<Response<PublishBatchResponse>, Status> {
        self.gate.check()?;
        let max_payload = self.nats.setup().config.max_payload_bytes;
        let messages =
            decode_publish_batch(request.into_inner(), max_payload).map_err(to_status)?;
        let connection = self.nats.connection().map_err(to_status)?;
        let message_ids = connection
            .publish_batch(messages)
            .await
            .map_err(to_status)?;
        Ok(Response::new(PublishBatchResponse { message_ids }))
    }

    type SubscribeStream = SubscriptionStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        self.gate.check()?;
        let req = decode_subscribe(request.into_inner()).map_err(to_status)?;
        let connection = self.nats.connection().map_err(to_status)?;
        let stream = connection
            .subscribe(req, &self.nats.registry, &self.nats.stats)
            .await
            .map_err(to_status)?;
        Ok(Response::new(stream))
    }

    async fn unsubscribe(
        &self,
        request: Request<UnsubscribeRequest>,
    ) -> Result<Response<UnsubscribeResponse>, Status> {
        self.gate.check()?;
        let req = request.into_inner();
        let key = decode_key(req.topic, req.subscriber_id).map_err(to_status)?;
        let connection = self.nats.connection().map_err(to_status)?;
        let unsubscribed = connection
            .unsubscribe(&key, &self.nats.registry)
            .await
            .map_err(to_status)?;
        Ok(Response::new(UnsubscribeResponse { unsubscribed }))
    }

    async fn ack(&self, request: Request<AckRequest>) -> Result<Response<AckResponse>, Status> {
        self.gate.check()?;
        let (key, ids) = decode_ack(request.into_inner()).map_err(to_status)?;
        let connection = self.nats.connection().map_err(to_status)?;
        let acked = connection
            .ack(&key, &ids, &self.nats.registry)
            .await
            .map_err(to_status)?;
        Ok(Response::new(AckResponse { acked }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prism_proto::{
        batch,
        publish::{MAX_ACK_IDS, MAX_SUBSCRIBER_ID_BYTES},
    };
    use std::collections::HashMap;

    fn field(err: NatsError) -> String {
        match err {
            NatsError::InvalidArgument { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    fn publish(topic: &str, payload: usize) -> PublishRequest {
        PublishRequest {
            topic: topic.into(),
            payload: vec![7; payload],
            metadata: HashMap::new(),
        }
    }

    #[test]
    fn publish_checks_topic_payload_and_metadata() {
        assert!(decode_publish(publish("a.b", 10), 10).is_ok());
        assert_eq!(
            field(decode_publish(publish("a.*", 1), 10).unwrap_err()),
            "topic"
        );
        let err = decode_publish(publish("a", 11), 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "payload: 11 bytes exceeds the limit of 10 bytes (max_payload_bytes)"
        );
        let mut req = publish("a", 1);
        req.metadata.insert("traceparent".into(), "x".into());
        assert_eq!(field(decode_publish(req, 10).unwrap_err()), "metadata");
    }

    #[test]
    fn a_batch_is_decoded_whole_or_refused_naming_the_message() {
        let request = |messages: Vec<PublishRequest>| PublishBatchRequest { messages };
        let decoded =
            decode_publish_batch(request(vec![publish("a", 1), publish("b", 2)]), 10).unwrap();
        assert_eq!(
            decoded.iter().map(|p| p.topic.as_str()).collect::<Vec<_>>(),
            ["a", "b"],
            "in request order"
        );
        assert_eq!(
            field(decode_publish_batch(request(vec![]), 10).unwrap_err()),
            "messages"
        );
        let err = decode_publish_batch(request(vec![publish("a", 1); batch::MAX_MESSAGES + 1]), 10)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "messages: 1001 messages exceeds the limit of 1000 messages"
        );
        let mut messages = vec![publish("a", 1); 5];
        messages[2] = publish("a", 11);
        messages[4] = publish("a.*", 1);
        let err = decode_publish_batch(request(messages), 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "messages[2].payload: 11 bytes exceeds the limit of 10 bytes (max_payload_bytes)"
        );
    }

    #[test]
    fn subscribe_allows_wildcards_and_picks_an_id() {
        let sub = decode_subscribe(SubscribeRequest {
            topic: "orders.>".into(),
            subscriber_id: String::new(),
            manual_ack: false,
        })
        .unwrap();
        assert!(sub.generated_id);
        assert!(sub.subscriber_id.starts_with("sub-"));
        let named = decode_subscribe(SubscribeRequest {
            topic: "orders.*".into(),
            subscriber_id: "worker".into(),
            manual_ack: true,
        })
        .unwrap();
        assert_eq!(named.subscriber_id, "worker");
        assert!(!named.generated_id && named.manual_ack);
        let long = decode_subscribe(SubscribeRequest {
            topic: "t".into(),
            subscriber_id: "x".repeat(MAX_SUBSCRIBER_ID_BYTES + 1),
            manual_ack: false,
        });
        assert_eq!(field(long.unwrap_err()), "subscriber_id");
    }

    #[test]
    fn unsubscribe_and_ack_need_a_subscriber_id() {
        assert_eq!(
            field(decode_key("t".into(), String::new()).unwrap_err()),
            "subscriber_id"
        );
        assert_eq!(
            field(decode_key("".into(), "s".into()).unwrap_err()),
            "topic"
        );
        let too_many = AckRequest {
            topic: "t".into(),
            subscriber_id: "s".into(),
            message_ids: vec![String::new(); MAX_ACK_IDS + 1],
        };
        assert_eq!(field(decode_ack(too_many).unwrap_err()), "message_ids");
    }
}
