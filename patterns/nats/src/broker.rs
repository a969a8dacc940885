//! The pattern's work on NATS: one connection per process, and the PubSub
//! operations on it (publish, publish a batch, subscribe, unsubscribe, ack),
//! each taking a validated domain request.
//!
//! The client connects in the background and reconnects forever, so a NATS
//! server that is down at start or goes away later never stops the process;
//! calls fail fast with `UNAVAILABLE` until it is back, and subscriptions
//! resume by themselves (async-nats re-subscribes; pull consumers re-pull).

use std::{
    collections::HashMap,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use async_nats::connection::State;
use prism_proto::pubsub::v1::Message;
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_stream::{Stream, wrappers::WatchStream};
use tonic::Status;
use tracing::Instrument;

use crate::{
    client::{self, Connected},
    config::NatsConfig,
    delivery::{self, Outlet, Stats},
    error::NatsError,
    headers::{self, Outgoing},
    jetstream::JetStream,
    link::{Link, Online},
    subscriptions::{Key, Registry},
    telemetry,
    topic::{self, Subjects},
};

/// What `Initialize` settled: the config and what derives from the namespace.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub config: NatsConfig,
    pub namespace: String,
    pub subjects: Subjects,
}

impl Setup {
    pub(crate) fn new(config: NatsConfig, namespace: &str) -> Self {
        Self {
            subjects: config.subjects(namespace),
            namespace: namespace.to_string(),
            config,
        }
    }
}

/// A validated Publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publish {
    pub topic: String,
    pub payload: Vec<u8>,
    pub metadata: HashMap<String, String>,
}

/// A validated Subscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscribe {
    pub topic: String,
    pub subscriber_id: String,
    /// The server picked `subscriber_id`.
    pub generated_id: bool,
    pub manual_ack: bool,
}

pub(crate) struct Connection {
    pub client: async_nats::Client,
    pub jetstream: Option<Arc<JetStream>>,
    pub setup: Arc<Setup>,
    pub link: Arc<Link>,
    online: Online,
    /// Re-checks the JetStream stream after every (re)connect.
    keeper: Option<JoinHandle<()>>,
}

impl Connection {
    /// Starts connecting in the background; returns once connected, or
    /// after `connect_timeout_ms` with the client still trying.
    pub(crate) async fn open(setup: Arc<Setup>) -> Result<Self, NatsError> {
        let config = &setup.config;
        let Connected {
            client,
            link,
            connects: mut connected,
        } = client::connect(config, format!("prism-nats {}", setup.namespace)).await?;
        let first = connected.clone();
        let jetstream = config.jetstream.then(|| {
            Arc::new(JetStream::new(
                client.clone(),
                config,
                &setup.namespace,
                &setup.subjects,
            ))
        });
        let keeper = jetstream.clone().map(|js| {
            tokio::spawn(async move {
                while connected.changed().await.is_ok() {
                    js.recheck();
                    if let Err(e) = js.ensure_stream().await {
                        tracing::warn!(error = %e, stream = %js.stream_name(), "cannot create the JetStream stream yet; retried on first use");
                    }
                }
            })
        });
        Ok(Self {
            online: Online::new(client.clone(), first),
            client,
            jetstream,
            setup,
            link,
            keeper,
        })
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    fn check_connected(&self) -> Result<(), NatsError> {
        if self.is_connected() {
            Ok(())
        } else {
            Err(NatsError::NotConnected)
        }
    }

    fn config(&self) -> &NatsConfig {
        &self.setup.config
    }

    /// Publishes under a PRODUCER span whose context travels in the
    /// headers; returns the message id subscribers will see.
    pub(crate) async fn publish(&self, req: Publish) -> Result<String, NatsError> {
        self.check_connected()?;
        let id = delivery::new_message_id();
        let span = telemetry::producer_span(&req.topic, &id);
        let message = self.outgoing(req, &id, &telemetry::Carrier::of(&span));
        let sent = async {
            match &self.jetstream {
                Some(js) => js.publish(message).await,
                None => self.send_core(message, self.deadline()).await,
            }
        }
        .instrument(span.clone())
        .await;
        if sent.is_err() {
            telemetry::record_error(&span);
        }
        sent.map(|()| id)
    }

    /// Publishes `batch` in order under one PRODUCER span, whose context
    /// every message carries; returns the ids in the same order. Core NATS
    /// takes the messages one after another into the connection's buffer;
    /// JetStream gets them all before any acknowledgement is awaited.
    ///
    /// Nothing is published when a message would not fit the server's
    /// `max_payload`. Otherwise it fails at the first message NATS did not
    /// take ([`NatsError::InBatch`] names it); the messages before it are
    /// published.
    pub(crate) async fn publish_batch(
        &self,
        batch: Vec<Publish>,
    ) -> Result<Vec<String>, NatsError> {
        self.check_connected()?;
        let span = {
            let first = batch.first().map(|p| p.topic.as_str());
            let topic = first.filter(|t| batch.iter().all(|p| p.topic == *t));
            telemetry::batch_producer_span(topic, batch.len())
        };
        let ids: Vec<String> = batch.iter().map(|_| delivery::new_message_id()).collect();
        let carrier = telemetry::Carrier::of(&span);
        let messages: Vec<Outgoing> = batch
            .into_iter()
            .zip(&ids)
            .map(|(req, id)| self.outgoing(req, id, &carrier))
            .collect();
        let max_payload = self.client.max_payload();
        for (index, message) in messages.iter().enumerate() {
            headers::check_wire_size(&message.headers, message.payload.len(), max_payload)
                .map_err(|e| e.in_batch(index))?;
        }
        let sent = async {
            match &self.jetstream {
                Some(js) => js.publish_batch(messages).await,
                None => {
                    let deadline = self.deadline();
                    for (index, message) in messages.into_iter().enumerate() {
                        self.send_core(message, deadline)
                            .await
                            .map_err(|e| e.in_batch(index))?;
                    }
                    Ok(())
                }
            }
        }
        .instrument(span.clone())
        .await;
        if sent.is_err() {
            telemetry::record_error(&span);
        }
        sent.map(|()| ids)
    }

    /// `req` as NATS will carry it: published as `id` now, in `carrier`'s trace.
    fn outgoing(&self, req: Publish, id: &str, carrier: &telemetry::Carrier) -> Outgoing {
        let mut headers = headers::encode(
            &req.metadata,
            id,
            delivery::now_ms(),
            self.jetstream.is_some(),
        );
        carrier.write(&mut headers);
        Outgoing {
            subject: self.setup.subjects.subject(&req.topic),
            headers,
            payload: req.payload,
        }
    }

    /// When a publish that starts now has to be in the connection's hands.
    fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.config().request_timeout()
    }

    /// Hands one message to core NATS (buffered: it is on its way once the
    /// connection has it), unless `deadline` passes first.
    async fn send_core(
        &self,
        message: Outgoing,
        deadline: tokio::time::Instant,
    ) -> Result<(), NatsError> {
        tokio::time::timeout_at(
            deadline,
            self.client.publish_with_headers(
                message.subject,
                message.headers,
                message.payload.into(),
            ),
        )
        .await
        .map_err(|_| NatsError::Timeout {
            operation: "publish",
        })?
        .map_err(NatsError::from)
    }

    /// Opens a subscription; by the time this returns NATS has it, so a
    /// message published afterwards is delivered.
    pub(crate) async fn subscribe(
        &self,
        req: Subscribe,
        registry: &Arc<Registry>,
        stats: &Arc<Stats>,
    ) -> Result<SubscriptionStream, NatsError> {
        if req.manual_ack && self.jetstream.is_none() {
            return Err(NatsError::NeedsJetStream("manual_ack"));
        }
        self.check_connected()?;
        let subject = self.setup.subjects.subject(&req.topic);
        let key = Key {
            topic: req.topic.clone(),
            subscriber_id: req.subscriber_id.clone(),
        };
        let (tx, rx) = mpsc::channel(self.config().subscriber_buffer);
        let outlet = |handle| Outlet {
            tx,
            handle,
            registry: registry.clone(),
            subjects: self.setup.subjects.clone(),
            subscriber_id: req.subscriber_id.clone(),
            stats: stats.clone(),
            link: self.link.clone(),
        };
        let stop = match &self.jetstream {
            None => {
                let subscriber = self.client.subscribe(subject).await?;
                // A round trip makes sure the server holds the interest.
                crate::client::round_trip(&self.client, self.config().request_timeout())
                    .await
                    .map_err(|_| NatsError::Timeout {
                        operation: "subscribe",
                    })?;
                let (handle, stop) = registry.add(key);
                tokio::spawn(delivery::pump_core(
                    subscriber,
                    outlet(handle),
                    stop.clone(),
                ));
                stop
            }
            Some(js) => {
                let config = js.consumers.consumer_config(
                    &req.subscriber_id,
                    &req.topic,
                    subject,
                    req.generated_id,
                );
                let consumer = js.consumer(config.clone()).await?;
                let (handle, stop) = registry.add(key);
                let outlet = outlet(handle);
                let (js, task_stop, online) = (js.clone(), stop.clone(), self.online.clone());
                tokio::spawn(async move {
                    js.deliver(consumer, config, outlet, task_stop, online)
                        .await
                });
                stop
            }
        };
        Ok(SubscriptionStream::new(rx, stop))
    }

    /// Ends every stream of `key` and, with JetStream, deletes its durable
    /// consumer. True when there was something to end.
    pub(crate) async fn unsubscribe(
        &self,
        key: &Key,
        registry: &Registry,
    ) -> Result<bool, NatsError> {
        let streams = registry.take(key);
        for handle in &streams {
            handle.stop();
        }
        let deleted = match &self.jetstream {
            Some(js) => {
                js.delete_consumer(&topic::consumer_name(&key.subscriber_id, &key.topic))
                    .await?
            }
            None => false,
        };
        Ok(!streams.is_empty() || deleted)
    }

    /// Acknowledges the pending messages among `ids`; returns how many.
    pub(crate) async fn ack(
        &self,
        key: &Key,
        ids: &[String],
        registry: &Registry,
    ) -> Result<u32, NatsError> {
        if self.jetstream.is_none() {
            return Err(NatsError::NeedsJetStream("Ack"));
        }
        let streams = registry.find(key);
        let mut acked = 0;
        for id in ids {
            if let Some(msg) = streams.iter().find_map(|h| h.release(id))
                && delivery::ack(&msg).await
            {
                acked += 1;
            }
        }
        Ok(acked)
    }

    /// Flushes what is buffered and closes the connection.
    pub(crate) async fn close(self) {
        if let Some(keeper) = &self.keeper {
            keeper.abort();
        }
        if self.is_connected() {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.client.flush()).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), self.client.drain()).await;
        }
    }
}

/// The stream a Subscribe call returns. It ends as soon as the subscription
/// is stopped (Unsubscribe or shutdown), even with messages still queued.
pub(crate) struct SubscriptionStream {
    rx: mpsc::Receiver<Result<Message, Status>>,
    stop: WatchStream<bool>,
    stopped: bool,
}

impl SubscriptionStream {
    fn new(
        rx: mpsc::Receiver<Result<Message, Status>>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            rx,
            stop: WatchStream::new(stop),
            stopped: false,
        }
    }
}

impl Stream for SubscriptionStream {
    type Item = Result<Message, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Polling the stop signal first also registers for its wake-up.
        while !self.stopped
            && let Poll::Ready(stop) = Pin::new(&mut self.stop).poll_next(cx)
        {
            self.stopped = stop != Some(false);
        }
        if self.stopped {
            return Poll::Ready(None);
        }
        self.rx.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_stream_ends_when_stopped_even_with_messages_queued() {
        use tokio_stream::StreamExt;
        let (tx, rx) = mpsc::channel(4);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut stream = SubscriptionStream::new(rx, stopped);
        tx.send(Ok(Message::default())).await.unwrap();
        assert!(stream.next().await.is_some());

        // A stream waiting for its next message wakes up to end.
        let waiting = tokio::spawn(async move {
            let first = stream.next().await;
            (first.is_none(), stream)
        });
        tokio::task::yield_now().await;
        stop.send_replace(true);
        let (ended, mut stream) = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the stop")
            .unwrap();
        assert!(ended);
        tx.send(Ok(Message::default())).await.unwrap();
        assert!(
            stream.next().await.is_none(),
            "queued messages are not delivered"
        );
    }

    #[test]
    fn setup_derives_subjects_from_the_namespace() {
        let setup = Setup::new(NatsConfig::default(), "orders");
        assert_eq!(setup.subjects.subject("eu"), "prism.orders.eu");
    }
}
