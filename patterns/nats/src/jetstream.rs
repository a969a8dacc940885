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

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use async_nats::{
    HeaderMap,
    jetstream::{
        self, Context, ContextBuilder,
        consumer::{AckPolicy, Consumer, DeliverPolicy, pull},
        context::PublishErrorKind,
        message::PublishMessage,
        stream::{self, RetentionPolicy, StorageType},
    },
};
use tokio::sync::{Mutex, watch};

use crate::{
    config::NatsConfig,
    delivery::{self, Exit, Outlet},
    error::NatsError,
    link::Online,
    topic::{self, Subjects},
};

/// Consumers of subscribers whose id the server picked are removed after
/// being unused this long (nobody can be expected to resume them).
pub const GENERATED_ID_INACTIVE: Duration = Duration::from_secs(300);
/// Most messages requested per pull.
pub const MAX_BATCH: usize = 256;
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
    pub fn consumer_config(
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

fn stream_missing(e: &jetstream::stream::ConsumerError) -> bool {
    matches!(e.kind(), jetstream::stream::ConsumerErrorKind::JetStream(api)
        if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// The namespace's stream: `<prefix>.>`, on disk, interest retention.
pub fn stream_config(name: &str, subjects: &Subjects, namespace: &str) -> stream::Config {
    stream::Config {
        name: name.to_string(),
        description: Some(format!("Prism namespace {namespace}")),
        subjects: vec![subjects.stream_subjects()],
        retention: RetentionPolicy::Interest,
        storage: StorageType::File,
        ..Default::default()
    }
}

pub struct JetStream {
    context: Context,
    stream: stream::Config,
    pub consumers: ConsumerSettings,
    /// Set once the stream is known to exist; cleared when it goes missing.
    ready: AtomicBool,
    /// One creation at a time.
    creating: Mutex<()>,
    problem: std::sync::Mutex<Option<String>>,
}

impl JetStream {
    pub fn new(
        client: async_nats::Client,
        config: &NatsConfig,
        namespace: &str,
        subjects: &Subjects,
    ) -> Self {
        Self {
            context: ContextBuilder::new()
                .timeout(config.request_timeout())
                .build(client),
            stream: stream_config(&config.stream_name(namespace), subjects, namespace),
            consumers: ConsumerSettings::from_config(config),
            ready: AtomicBool::new(false),
            creating: Mutex::new(()),
            problem: std::sync::Mutex::new(None),
        }
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
    pub async fn publish(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Vec<u8>,
    ) -> Result<(), NatsError> {
        self.ensure_stream().await?;
        let message = PublishMessage::build()
            .payload(payload.into())
            .headers(headers);
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
    ) -> Result<(), jetstream::context::PublishError> {
        let ack = self.context.send_publish(subject, message).await?;
        ack.await.map(|_| ())
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
    pub async fn deliver(
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
        let config = stream_config("PRISM_ORDERS", &Subjects::new("prism.orders"), "orders");
        assert_eq!(config.name, "PRISM_ORDERS");
        assert_eq!(config.subjects, vec!["prism.orders.>".to_string()]);
        assert_eq!(config.retention, RetentionPolicy::Interest);
        assert_eq!(config.storage, StorageType::File);
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
