//! MemStore's PubSub gRPC service over the in-memory [`Broker`]: validate,
//! trace (a PRODUCER span on publish, a CONSUMER span per delivery in the
//! publisher's trace), fan out, stream.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{SystemTime, UNIX_EPOCH},
};

use prism_observability::propagation;
use prism_pattern_sdk::Gate;
use prism_proto::pubsub::v1::{
    AckRequest, AckResponse, Message, PublishRequest, PublishResponse, SubscribeRequest,
    UnsubscribeRequest, UnsubscribeResponse, pub_sub_server::PubSub,
};
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{
    broker::{Delivery, SubscriptionGuard},
    pattern::MemStore,
};

/// Messages queued per subscription before it starts losing them.
pub const SUBSCRIBER_QUEUE: usize = 1024;

pub struct PubSubService {
    memstore: Arc<MemStore>,
    gate: Gate,
}

impl PubSubService {
    pub fn new(memstore: Arc<MemStore>, gate: Gate) -> Self {
        Self { memstore, gate }
    }
}

fn messaging_span(kind: &'static str, topic: &str, message_id: &str) -> tracing::Span {
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
    )
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
        prism_proto::topic::check("topic", &req.topic, false)?;
        let max = self.memstore.config().max_value_bytes;
        if req.payload.len() > max {
            return Err(Status::invalid_argument(format!(
                "payload: {} bytes exceeds the limit of {max} bytes (max_value_bytes)",
                req.payload.len()
            )));
        }
        let message_id = new_message_id();
        let span = messaging_span("producer", &req.topic, &message_id);
        let delivered = {
            let _entered = span.enter();
            self.memstore.broker().publish(&Delivery {
                topic: req.topic,
                payload: req.payload,
                metadata: req.metadata.into_iter().collect(),
                message_id: message_id.clone(),
                timestamp_ms: now_ms(),
                traceparent: propagation::traceparent_of(&span),
                dropped_before: 0,
            })
        };
        tracing::debug!(delivered, "published");
        Ok(Response::new(PublishResponse { message_id }))
    }

    async fn publish_batch(
        &self,
        _: Request<prism_proto::pubsub::v1::PublishBatchRequest>,
    ) -> Result<Response<prism_proto::pubsub::v1::PublishBatchResponse>, Status> {
        Err(Status::unimplemented("PublishBatch: not yet served"))
    }

    type SubscribeStream = Deliveries;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        self.gate.check()?;
        let req = request.into_inner();
        prism_proto::topic::check("topic", &req.topic, true)?;
        if req.manual_ack {
            return Err(Status::unimplemented(
                "manual_ack: MemStore delivers at most once; there is nothing to acknowledge",
            ));
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
            _guard: guard,
        }))
    }

    async fn unsubscribe(
        &self,
        request: Request<UnsubscribeRequest>,
    ) -> Result<Response<UnsubscribeResponse>, Status> {
        self.gate.check()?;
        let req = request.into_inner();
        prism_proto::topic::check("topic", &req.topic, true)?;
        let unsubscribed = self
            .memstore
            .broker()
            .unsubscribe(&req.topic, &req.subscriber_id);
        Ok(Response::new(UnsubscribeResponse { unsubscribed }))
    }

    async fn ack(&self, _: Request<AckRequest>) -> Result<Response<AckResponse>, Status> {
        Err(Status::unimplemented(
            "MemStore delivers at most once; there is nothing to acknowledge",
        ))
    }
}

/// One subscription's stream; dropping it (the caller went away) unsubscribes.
pub struct Deliveries {
    receiver: mpsc::Receiver<Delivery>,
    subscriber_id: String,
    _guard: SubscriptionGuard,
}

impl Stream for Deliveries {
    type Item = Result<Message, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let delivery = match self.receiver.poll_recv(cx) {
            Poll::Ready(Some(delivery)) => delivery,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        let span = messaging_span("consumer", &delivery.topic, &delivery.message_id);
        if let Some(parent) = &delivery.traceparent {
            let _ = span.set_parent(propagation::from_traceparent(parent));
        }
        let traceparent = propagation::traceparent_of(&span).unwrap_or_default();
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
