//! At-least-once delivery on JetStream.
//!
//! One stream per namespace captures `<subject_prefix>.>` (interest
//! retention: a message is kept until every consumer that wants it has
//! acknowledged it, and not at all when nobody subscribes). It is created
//! on first use, and again if it disappears. Each (subscriber id, topic)
//! pair is a durable pull consumer that starts at new messages, so a
//! subscriber that reconnects resumes where it left off. Pulls come in
//! batches no larger than the room in the subscriber's channel, so a slow
//! subscriber pushes back on the server instead of piling up here.
//!
//! A publish waits for the stream's acknowledgement; a batch sends all its
//! messages before awaiting any acknowledgement, so it costs about one round
//! trip, not one per message.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use async_nats::jetstream::{
    self, Context, ContextBuilder,
    consumer::{AckPolicy, Consumer, DeliverPolicy, pull},
    context::{PublishAckFuture, PublishError, PublishErrorKind},
    message::PublishMessage,
    stream::{self, RetentionPolicy, StorageType},
};
use tokio::sync::{Mutex, Semaphore, watch};

use crate::{
    config::NatsConfig,
    delivery::{self, Exit, Outlet},
    error::NatsError,
    headers::Outgoing,
    link::Online,
    topic::{self, Subjects},
};

/// Consumers of subscribers whose id the server picked are removed after
/// being unused this long (nobody can be expected to resume them).
pub(crate) const GENERATED_ID_INACTIVE: Duration = Duration::from_secs(300);
/// Most messages requested per pull.
pub(crate) const MAX_BATCH: usize = 256;
/// Publish acknowledgements awaited at once, at most (async-nats makes a
/// publish wait for room beyond this).
const ACKS_IN_FLIGHT: usize = 5000;
/// The share of [`ACKS_IN_FLIGHT`] batches may hold together. A batch
/// reserves room for all its messages before sending the first, so one that
/// has sent some of them never waits for room that only batches stuck the
/// same way could free.
const BATCH_ACKS_IN_FLIGHT: usize = 4000;
const _: () = assert!(prism_proto::batch::MAX_MESSAGES <= BATCH_ACKS_IN_FLIGHT);
const _: () = assert!(BATCH_ACKS_IN_FLIGHT <= ACKS_IN_FLIGHT);
/// Waits before re-opening a consumer that went away.
const REOPEN_BACKOFF: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// The consumer settings every subscription of a namespace shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSettings {
    pub ack_wait: Duration,
    /// `-1`: no limit.
    pub max_deliver: i64,
    pub batch: usize,
}

impl ConsumerSettings {
    pub fn from_config(config: &NatsConfig) -> Self {
        Self {
            ack_wait: config.ack_wait(),
            max_deliver: match config.max_deliver {
                0 => -1,
                n => i64::from(n),
            },
            batch: config.subscriber_buffer.clamp(1, MAX_BATCH),
        }
    }

    /// The durable consumer of `subscriber_id` on `subject` (`topic` mapped).
    pub(crate) fn consumer_config(
        &self,
        subscriber_id: &str,
        topic: &str,
        subject: String,
        generated_id: bool,
    ) -> pull::Config {
        let name = topic::consumer_name(subscriber_id, topic);
        pull::Config {
            durable_name: Some(name),
            description: Some(format!("prism subscriber {subscriber_id:?} on {topic:?}")),
            deliver_policy: DeliverPolicy::New,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver: self.max_deliver,
            filter_subject: subject,
            inactive_threshold: if generated_id {
                GENERATED_ID_INACTIVE
            } else {
                Duration::ZERO
            },
            ..Default::default()
        }
    }
}

/// The subject and the JetStream message `message` is sent as.
fn publish_message(message: Outgoing) -> (String, PublishMessage) {
    let publish = PublishMessage::build()
        .payload(message.payload.into())
        .headers(message.headers);
    (message.subject, publish)
}

fn stream_missing(e: &jetstream::stream::ConsumerError) -> bool {
    matches!(e.kind(), jetstream::stream::ConsumerErrorKind::JetStream(api)
        if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// The namespace's stream: `<prefix>.>`, on disk, interest retention,
/// `replicas` copies.
pub(crate) fn stream_config(
    name: &str,
    subjects: &Subjects,
    namespace: &str,
    replicas: usize,
) -> stream::Config {
    stream::Config {
        num_replicas: replicas,
        name: name.to_string(),
        description: Some(format!("Prism namespace {namespace}")),
        subjects: vec![subjects.stream_subjects()],
        retention: RetentionPolicy::Interest,
        storage: StorageType::File,
        max_consumers: MAX_CONSUMERS,
        ..Default::default()
    }
}

/// Consumers a namespace's stream may hold: one per durable subscriber and
/// topic. Set explicitly because nats-server (2.15 on) gives a stream that
/// sets none a default of 1,000, and substitutes that default for any value
/// not above zero, so "unlimited" cannot be asked for.
pub const MAX_CONSUMERS: i32 = 10_000_000;

pub struct JetStream {
    context: Context,
    stream: stream::Config,
    pub consumers: ConsumerSettings,
    /// Set once the stream is known to exist; cleared when it goes missing.
    ready: AtomicBool,
    /// One creation at a time.
    creating: Mutex<()>,
    /// Room for the acknowledgements of batches in flight.
    batch_acks: Semaphore,
    problem: std::sync::Mutex<Option<String>>,
}

impl JetStream {
    pub(crate) fn new(
        client: async_nats::Client,
        config: &NatsConfig,
        namespace: &str,
        subjects: &Subjects,
    ) -> Self {
        Self::with_stream(
            client,
            config,
            stream_config(
                &config.stream_name(namespace),
                subjects,
                namespace,
                config.replicas,
            ),
        )
    }

    /// JetStream on `client` for the stream `stream` describes (created on
    /// first use, with `config`'s request timeout on every API call).
    /// `config`'s consumer settings serve [`JetStream::consumers`].
    pub fn with_stream(
        client: async_nats::Client,
        config: &NatsConfig,
        stream: stream::Config,
    ) -> Self {
        Self {
            context: ContextBuilder::new()
                .timeout(config.request_timeout())
                .max_ack_inflight(ACKS_IN_FLIGHT)
                .backpressure_on_inflight(true)
                .build(client),
            stream,
            consumers: ConsumerSettings::from_config(config),
            ready: AtomicBool::new(false),
            creating: Mutex::new(()),
            batch_acks: Semaphore::new(BATCH_ACKS_IN_FLIGHT),
            problem: std::sync::Mutex::new(None),
        }
    }

    /// The JetStream API, for what this type has no method for (purging a
    /// subject, reading stream state).
    pub fn context(&self) -> &Context {
        &self.context
    }

    pub fn stream_name(&self) -> &str {
        &self.stream.name
    }

    /// Forgets that the stream exists, so the next use checks again (after a
    /// reconnect the server may have lost it).
    pub fn recheck(&self) {
        self.ready.store(false, Ordering::Release);
    }

    /// Creates the stream unless it is known to exist.
    pub async fn ensure_stream(&self) -> Result<(), NatsError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one = self.creating.lock().await;
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let result = self.context.get_or_create_stream(self.stream.clone()).await;
        let mut problem = self.problem.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => {
                self.ready.store(true, Ordering::Release);
                *problem = None;
                tracing::info!(stream = %self.stream.name, "JetStream stream ready");
                Ok(())
            }
            Err(e) => {
                let e = NatsError::from(e);
                *problem = Some(format!("stream {}: {e}", self.stream.name));
                Err(e)
            }
        }
    }

    /// Why the stream could not be created, the last time it was tried and
    /// failed (cleared once it exists).
    pub fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Publishes and waits for the stream's acknowledgement; a stream that
    /// went missing is created again and the publish retried once.
    pub async fn publish(&self, message: Outgoing) -> Result<(), NatsError> {
        self.ensure_stream().await?;
        let (subject, message) = publish_message(message);
        match self.publish_once(subject.clone(), message.clone()).await {
            Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                self.ready.store(false, Ordering::Release);
                self.ensure_stream().await?;
                Ok(self.publish_once(subject, message).await?)
            }
            other => Ok(other?),
        }
    }

    async fn publish_once(
        &self,
        subject: String,
        message: PublishMessage,
    ) -> Result<(), PublishError> {
        let ack = self.context.send_publish(subject, message).await?;
        ack.await.map(|_| ())
    }

    /// Publishes `messages` in order: all are sent, then their
    /// acknowledgements are awaited in order. Fails at the first message the
    /// stream did not take, naming its index; the messages before it are
    /// stored. When the stream went missing it is created again and the
    /// messages from the first refused one on are sent once more (their
    /// `Nats-Msg-Id` lets the stream drop any it has already).
    pub(crate) async fn publish_batch(&self, messages: Vec<Outgoing>) -> Result<(), NatsError> {
        self.ensure_stream().await?;
        let reserve = messages.len().min(BATCH_ACKS_IN_FLIGHT) as u32;
        let _room = self
            .batch_acks
            .acquire_many(reserve)
            .await
            .map_err(|e| NatsError::Backend(e.to_string()))?;
        let messages: Vec<(String, PublishMessage)> =
            messages.into_iter().map(publish_message).collect();
        let mut from = 0;
        let mut retried = false;
        loop {
            match self.publish_pipelined(&messages[from..]).await {
                Ok(()) => return Ok(()),
                Err((i, e)) if e.kind() == PublishErrorKind::StreamNotFound && !retried => {
                    retried = true;
                    from += i;
                    self.ready.store(false, Ordering::Release);
                    self.ensure_stream().await.map_err(|e| e.in_batch(from))?;
                }
                Err((i, e)) => return Err(NatsError::from(e).in_batch(from + i)),
            }
        }
    }

    /// Sends every message, then awaits the acknowledgements in order; the
    /// first failure and the index of its message. A message that could not
    /// be sent fails only after the acknowledgements of those before it.
    async fn publish_pipelined(
        &self,
        messages: &[(String, PublishMessage)],
    ) -> Result<(), (usize, PublishError)> {
        let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(messages.len());
        let mut unsent = None;
        for (subject, message) in messages {
            match self
                .context
                .send_publish(subject.clone(), message.clone())
                .await
            {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    unsent = Some((acks.len(), e));
                    break;
                }
            }
        }
        for (i, ack) in acks.into_iter().enumerate() {
            ack.await.map_err(|e| (i, e))?;
        }
        unsent.map_or(Ok(()), Err)
    }

    /// Creates (or updates) the durable consumer `config` names; a stream
    /// that went missing is created again first.
    pub async fn consumer(
        &self,
        config: pull::Config,
    ) -> Result<Consumer<pull::Config>, NatsError> {
        self.ensure_stream().await?;
        match self
            .context
            .create_consumer_on_stream(config.clone(), self.stream_name())
            .await
        {
            Err(e) if stream_missing(&e) => {
                self.recheck();
                self.ensure_stream().await?;
                Ok(self
                    .context
                    .create_consumer_on_stream(config, self.stream_name())
                    .await?)
            }
            other => Ok(other?),
        }
    }

    /// Deletes a durable consumer; false when there was none.
    pub async fn delete_consumer(&self, name: &str) -> Result<bool, NatsError> {
        match self
            .context
            .delete_consumer_from_stream(name, self.stream_name())
            .await
        {
            Ok(status) => Ok(status.success),
            Err(e) => match e.kind() {
                jetstream::stream::ConsumerErrorKind::JetStream(api) if api.code() == 404 => {
                    Ok(false)
                }
                _ => Err(e.into()),
            },
        }
    }

    /// Delivers from the consumer `config` names until the stream is stopped
    /// or its subscriber leaves. When the consumer (or the stream) goes away
    /// meanwhile — a NATS server that lost its state, say — it is created
    /// again, with backoff.
    pub(crate) async fn deliver(
        &self,
        consumer: Consumer<pull::Config>,
        config: pull::Config,
        outlet: Outlet,
        mut stop: watch::Receiver<bool>,
        mut online: Online,
    ) {
        let mut consumer = Some(consumer);
        let mut failures = 0usize;
        loop {
            if let Some(consumer) = consumer.take() {
                let exit = delivery::pump_jetstream(
                    &consumer,
                    self.consumers.batch,
                    &outlet,
                    &mut stop,
                    &mut online,
                )
                .await;
                if exit != Exit::SourceEnded {
                    return;
                }
            }
            let wait = REOPEN_BACKOFF[failures.min(REOPEN_BACKOFF.len() - 1)];
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = outlet.tx.closed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            online.wait().await;
            if *stop.borrow() {
                return;
            }
            match self.consumer(config.clone()).await {
                Ok(reopened) => {
                    failures = 0;
                    consumer = Some(reopened);
                }
                Err(e) => {
                    failures += 1;
                    tracing::debug!(error = %e, "cannot re-open the JetStream consumer yet");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_captures_every_topic_of_the_namespace() {
        let config = stream_config("PRISM_ORDERS", &Subjects::new("prism.orders"), "orders", 3);
        assert_eq!(config.name, "PRISM_ORDERS");
        assert_eq!(config.subjects, vec!["prism.orders.>".to_string()]);
        assert_eq!(config.retention, RetentionPolicy::Interest);
        assert_eq!(config.storage, StorageType::File);
        assert_eq!(config.max_consumers, MAX_CONSUMERS);
        assert_eq!(config.num_replicas, 3);
    }

    #[test]
    fn consumers_are_durable_explicit_ack_and_start_at_new_messages() {
        let config = NatsConfig {
            ack_wait_ms: 1500,
            max_deliver: 0,
            subscriber_buffer: 10_000,
            ..NatsConfig::default()
        };
        let settings = ConsumerSettings::from_config(&config);
        assert_eq!(settings.max_deliver, -1, "0 means no limit");
        assert_eq!(settings.batch, MAX_BATCH);
        let c = settings.consumer_config("worker-1", "orders.*", "prism.ns.orders.*".into(), false);
        assert_eq!(
            c.durable_name.as_deref(),
            Some(topic::consumer_name("worker-1", "orders.*").as_str())
        );
        assert_eq!(c.filter_subject, "prism.ns.orders.*");
        assert_eq!(c.ack_policy, AckPolicy::Explicit);
        assert_eq!(c.deliver_policy, DeliverPolicy::New);
        assert_eq!(c.ack_wait, Duration::from_millis(1500));
        assert_eq!(c.inactive_threshold, Duration::ZERO, "kept for a reconnect");

        let generated = settings.consumer_config("sub-1", "t", "p.t".into(), true);
        assert_eq!(generated.inactive_threshold, GENERATED_ID_INACTIVE);

        let limited = ConsumerSettings::from_config(&NatsConfig {
            max_deliver: 3,
            subscriber_buffer: 4,
            ..NatsConfig::default()
        });
        assert_eq!(limited.max_deliver, 3);
        assert_eq!(limited.batch, 4);
    }
}
