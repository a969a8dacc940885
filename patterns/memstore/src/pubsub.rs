//! MemStore's PubSub gRPC service over the in-memory [`Broker`]: validate
//! (by the rules `prism_proto::publish` shares with the proxy and NATS, so
//! a message this backend takes is one every backend takes), trace (a PRODUCER span on publish, one for a whole batch, and a CONSUMER
//! span per delivery in the publisher's trace), fan out, stream.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{SystemTime, UNIX_EPOCH},
};

use prism_observability::{propagation, sampling};
use prism_pattern_sdk::Gate;
use prism_proto::{
    publish::{self, check_publish, check_publish_batch},
    pubsub::v1::{
        AckRequest, AckResponse, Message, PublishBatchRequest, PublishBatchResponse,
        PublishRequest, PublishResponse, SubscribeRequest, UnsubscribeRequest, UnsubscribeResponse,
        pub_sub_server::PubSub,
    },
};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::{
    broker::{Delivery, SubscriptionGuard},
    error::Error,
    pattern::MemStore,
};

/// The config field that limits a payload here, named in refusals.
const PAYLOAD_SETTING: &str = "max_value_bytes";

/// Messages queued per subscription before it starts losing them.
pub(crate) const SUBSCRIBER_QUEUE: usize = 1024;

pub(crate) struct PubSubService {
    memstore: Arc<MemStore>,
    gate: Gate,
}

impl PubSubService {
    pub(crate) fn new(memstore: Arc<MemStore>, gate: Gate) -> Self {
        Self { memstore, gate }
    }

    fn max_payload(&self) -> usize {
        self.memstore.config().max_value_bytes
    }

    /// Hands one checked message to the broker as `message_id`, carrying the
    /// publisher's trace context; returns how many subscribers took it.
    fn deliver(
        &self,
        req: PublishRequest,
        message_id: String,
        traceparent: Option<String>,
    ) -> usize {
        self.memstore.broker().publish(&Delivery {
            topic: req.topic,
            payload: req.payload,
            metadata: req.metadata.into_iter().collect(),
            message_id,
            timestamp_ms: now_ms(),
            traceparent,
            dropped_before: 0,
        })
    }
}

/// A PRODUCER or CONSUMER span; none inside a call that is not sampled. A
/// PRODUCER span is given its message's id; a CONSUMER span's id or message
/// count is recorded by the run it opens (see [`propagation::ConsumerRuns`]).
fn messaging_span(kind: &'static str, topic: &str, message_id: Option<&str>) -> tracing::Span {
    if kind == "producer" && sampling::current_is_unsampled() {
        return tracing::Span::none();
    }
    let (name_suffix, operation) = match kind {
        "producer" => ("publish", "publish"),
        _ => ("receive", "receive"),
    };
    tracing::info_span!(
        target: "prism::memstore",
        "memstore.messaging",
        otel.name = %format_args!("{topic} {name_suffix}"),
        otel.kind = kind,
        messaging.system = "memstore",
        messaging.destination.name = topic,
        messaging.operation.type = operation,
        messaging.message.id = message_id,
        messaging.batch.message_count = tracing::field::Empty,
    )
}

/// The PRODUCER span of a whole batch; every message carries its context.
/// It names the topic when all the messages share one.
fn batch_span(topic: Option<&str>, count: usize) -> tracing::Span {
    if sampling::current_is_unsampled() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        target: "prism::memstore",
        "memstore.messaging",
        otel.name = %topic.map_or_else(|| "publish".to_string(), |t| format!("{t} publish")),
        otel.kind = "producer",
        messaging.system = "memstore",
        messaging.destination.name = topic,
        messaging.operation.type = "publish",
        messaging.batch.message_count = count,
    )
}

/// The topic every message of a batch is published to, if they share one.
fn common_topic(batch: &[PublishRequest]) -> Option<&str> {
    let first = batch.first()?.topic.as_str();
    batch.iter().all(|m| m.topic == first).then_some(first)
}

fn new_message_id() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

#[tonic::async_trait]
impl PubSub for PubSubService {
    async fn publish(
        &self,
        request: Request<PublishRequest>,
    ) -> Result<Response<PublishResponse>, Status> {
        self.gate.check()?;
        let req = request.into_inner();
        check_publish(&req, self.max_payload(), PAYLOAD_SETTING).map_err(Error::from)?;
        let message_id = new_message_id();
        let span = messaging_span("producer", &req.topic, Some(&message_id));
        let delivered = span
            .in_scope(|| self.deliver(req, message_id.clone(), propagation::traceparent_of(&span)));
        tracing::debug!(delivered, "published");
        Ok(Response::new(PublishResponse { message_id }))
    }

    async fn publish_batch(
        &self,
        request: Request<PublishBatchRequest>,
    ) -> Result<Response<PublishBatchResponse>, Status> {
        self.gate.check()?;
        let batch = request.into_inner();
        check_publish_batch(&batch, self.max_payload(), PAYLOAD_SETTING).map_err(Error::from)?;
        let messages = batch.messages;
        let span = batch_span(common_topic(&messages), messages.len());
        let traceparent = propagation::traceparent_of(&span);
        let message_ids: Vec<String> = span.in_scope(|| {
            messages
                .into_iter()
                .map(|req| {
                    let message_id = new_message_id();
                    self.deliver(req, message_id.clone(), traceparent.clone());
                    message_id
                })
                .collect()
        });
        tracing::debug!(messages = message_ids.len(), "published a batch");
        Ok(Response::new(PublishBatchResponse { message_ids }))
    }

    type SubscribeStream = Deliveries;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        self.gate.check()?;
        let req = request.into_inner();
        prism_proto::topic::check("topic", &req.topic, true).map_err(Error::from)?;
        publish::check_subscriber_id(&req.subscriber_id, false).map_err(Error::from)?;
        if req.manual_ack {
            return Err(Error::AtMostOnce("manual_ack").into());
        }
        let subscriber_id = if req.subscriber_id.is_empty() {
            new_message_id()
        } else {
            req.subscriber_id
        };
        let (guard, receiver) =
            self.memstore
                .broker()
                .subscribe(&req.topic, &subscriber_id, SUBSCRIBER_QUEUE);
        Ok(Response::new(Deliveries {
            receiver,
            subscriber_id,
            runs: propagation::ConsumerRuns::default(),
            _guard: guard,
        }))
    }

    async fn unsubscribe(
        &self,
        request: Request<UnsubscribeRequest>,
    ) -> Result<Response<UnsubscribeResponse>, Status> {
        self.gate.check()?;
        let req = request.into_inner();
        prism_proto::topic::check("topic", &req.topic, true).map_err(Error::from)?;
        publish::check_subscriber_id(&req.subscriber_id, true).map_err(Error::from)?;
        let unsubscribed = self
            .memstore
            .broker()
            .unsubscribe(&req.topic, &req.subscriber_id);
        Ok(Response::new(UnsubscribeResponse { unsubscribed }))
    }

    async fn ack(&self, _: Request<AckRequest>) -> Result<Response<AckResponse>, Status> {
        Err(Error::AtMostOnce("Ack").into())
    }
}

/// One subscription's stream; dropping it (the caller went away) unsubscribes.
pub(crate) struct Deliveries {
    receiver: mpsc::Receiver<Delivery>,
    subscriber_id: String,
    /// Messages taken in one go with one sampled context share a CONSUMER
    /// span; the run ends when nothing more is waiting.
    runs: propagation::ConsumerRuns,
    _guard: SubscriptionGuard,
}

impl Stream for Deliveries {
    type Item = Result<Message, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let delivery = match self.receiver.poll_recv(cx) {
            Poll::Ready(Some(delivery)) => delivery,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {
                self.runs.end();
                return Poll::Pending;
            }
        };
        // Built only when the delivery is sampled and starts a run.
        let (_span, traceparent) = self.runs.continue_message(
            delivery.traceparent.as_deref(),
            &delivery.message_id,
            || messaging_span("consumer", &delivery.topic, None),
        );
        let traceparent = traceparent.unwrap_or_default();
        Poll::Ready(Some(Ok(Message {
            topic: delivery.topic,
            payload: delivery.payload,
            metadata: delivery.metadata.into_iter().collect(),
            message_id: delivery.message_id,
            timestamp_ms: delivery.timestamp_ms,
            delivery_attempt: 1,
            dropped_before: delivery.dropped_before,
            traceparent,
            subscriber_id: self.subscriber_id.clone(),
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str, payload: usize) -> PublishRequest {
        PublishRequest {
            topic: topic.into(),
            payload: vec![0; payload],
            metadata: Default::default(),
        }
    }

    #[test]
    fn a_batch_names_its_topic_only_when_it_has_one() {
        assert_eq!(common_topic(&[publish("a", 1), publish("a", 2)]), Some("a"));
        assert_eq!(common_topic(&[publish("a", 1), publish("b", 1)]), None);
        assert_eq!(common_topic(&[]), None);
    }
}
