//! PubSub in one namespace: publish, subscriptions as a [`Stream`] of
//! messages whose errors carry the call's trace id, unsubscribe and ack.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::call::Incoming;
use crate::{Error, PrismClient};
use futures_util::Stream;
use prism_proto::pubsub::v1::{
    AckRequest, Message, PublishBatchRequest, PublishRequest, SubscribeRequest, UnsubscribeRequest,
};

const SERVICE: &str = "prism.pubsub.v1.PubSub";

/// PubSub in one namespace; from [`PrismClient::pubsub`]. `publish`,
/// `publish_batch` and `ack` are not retried (a retry could deliver a message twice, or ack
/// after a redelivery); opening a subscription and `unsubscribe` are.
///
/// Errors: each call fails with the [`Error`] variant of the proxy's status
/// (its message and trace id inside); [`Error::Token`] when the token
/// provider has no token; [`Error::DeadlineExceeded`] when the client's
/// timeout passes first.
#[derive(Clone, Debug)]
pub struct PubSub {
    client: PrismClient,
    namespace: String,
}

impl PubSub {
    pub(crate) fn new(client: PrismClient, namespace: String) -> Self {
        Self { client, namespace }
    }

    /// The namespace these calls go to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Publishes `payload` on `topic`; the message's id.
    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) -> Result<String, Error> {
        self.publish_with(topic, payload, HashMap::new()).await
    }

    /// Publishes `payload` with `metadata` on `topic`; the message's id.
    pub async fn publish_with(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        metadata: HashMap<String, String>,
    ) -> Result<String, Error> {
        let message = PublishRequest {
            topic: topic.to_string(),
            payload: payload.into(),
            metadata,
        };
        let response = self
            .client
            .unary(
                (SERVICE, "Publish"),
                &self.namespace,
                false,
                message,
                |r| async { self.client.pubsub_stub().publish(r).await },
            )
            .await?;
        Ok(response.message_id)
    }

    /// Publishes `(topic, payload)` pairs in one call, in order (at most
    /// `prism_proto::batch::MAX_MESSAGES`); their ids in the same order.
    pub async fn publish_batch<T, P>(
        &self,
        messages: impl IntoIterator<Item = (T, P)>,
    ) -> Result<Vec<String>, Error>
    where
        T: Into<String>,
        P: Into<Vec<u8>>,
    {
        let messages = messages
            .into_iter()
            .map(|(topic, payload)| PublishRequest {
                topic: topic.into(),
                payload: payload.into(),
                metadata: HashMap::new(),
            })
            .collect();
        let message = PublishBatchRequest { messages };
        let response = self
            .client
            .unary(
                (SERVICE, "PublishBatch"),
                &self.namespace,
                false,
                message,
                |r| async { self.client.pubsub_stub().publish_batch(r).await },
            )
            .await?;
        Ok(response.message_ids)
    }

    /// Messages on `topic` (wildcards as the pattern allows) from now on,
    /// under a subscriber id the proxy picks, acknowledged on delivery.
    pub async fn subscribe(&self, topic: &str) -> Result<Subscription, Error> {
        self.subscribe_as(topic, "", false).await
    }

    /// A subscription as `subscriber_id` (durable where the pattern keeps
    /// subscribers; empty: the proxy picks one); with `manual_ack`, messages
    /// not passed to [`Self::ack`] come back.
    pub async fn subscribe_as(
        &self,
        topic: &str,
        subscriber_id: &str,
        manual_ack: bool,
    ) -> Result<Subscription, Error> {
        let message = SubscribeRequest {
            topic: topic.to_string(),
            subscriber_id: subscriber_id.to_string(),
            manual_ack,
        };
        let subscription = self
            .client
            .server_stream(
                (SERVICE, "Subscribe"),
                &self.namespace,
                message,
                |r| async { self.client.pubsub_stub().subscribe(r).await },
            )
            .await?;
        Ok(Subscription(subscription))
    }

    /// Ends every stream of `subscriber_id` on `topic`; `true` when there
    /// was one.
    pub async fn unsubscribe(&self, topic: &str, subscriber_id: &str) -> Result<bool, Error> {
        let message = UnsubscribeRequest {
            topic: topic.to_string(),
            subscriber_id: subscriber_id.to_string(),
        };
        let response = self
            .client
            .unary(
                (SERVICE, "Unsubscribe"),
                &self.namespace,
                true,
                message,
                |r| async { self.client.pubsub_stub().unsubscribe(r).await },
            )
            .await?;
        Ok(response.unsubscribed)
    }

    /// Acknowledges `message_ids` of a `manual_ack` subscription; how many
    /// were acknowledged.
    pub async fn ack(
        &self,
        topic: &str,
        subscriber_id: &str,
        message_ids: Vec<String>,
    ) -> Result<u32, Error> {
        let message = AckRequest {
            topic: topic.to_string(),
            subscriber_id: subscriber_id.to_string(),
            message_ids,
        };
        let response = self
            .client
            .unary(
                (SERVICE, "Ack"),
                &self.namespace,
                false,
                message,
                |r| async { self.client.pubsub_stub().ack(r).await },
            )
            .await?;
        Ok(response.acked)
    }
}

/// An open subscription: a [`Stream`] of messages that ends when the proxy
/// ends it (an error item says why, with the subscription's trace id).
#[derive(Debug)]
pub struct Subscription(Incoming<Message>);

impl Subscription {
    /// The `x-prism-trace-id` of the Subscribe call.
    pub fn trace_id(&self) -> Option<&str> {
        self.0.trace_id()
    }
}

impl Stream for Subscription {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_next(cx)
    }
}
