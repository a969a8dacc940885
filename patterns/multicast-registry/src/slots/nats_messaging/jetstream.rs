//! JetStream delivery: at-least-once inboxes.
//!
//! One stream per namespace, `PRISM_REGISTRY_<namespace>`, captures every
//! inbox subject. It is a work queue: a message stays until the identity's
//! consumer acknowledges it, for at most `inbox_max_age_ms`, and at most
//! `inbox_max_msgs` per identity (a delivery beyond that is refused and
//! reported FAILED "inbox full", never silently dropped). Every process
//! creates the stream with the same settings, so creating it is idempotent.
//!
//! `deliver` publishes with `Nats-Msg-Id` (the message id and a hash of the
//! identity: the stream de-duplicates across identities) and waits for
//! the PubAck (stored), then asks the identity's presence subject whether a
//! receiver is attached anywhere: an answer is DELIVERED, none is PENDING.
//!
//! A receiver pulls from the identity's durable consumer (what is pending
//! first, in order), no more than its queue has room for, and answers
//! presence requests while attached. Each message is acknowledged when the
//! service calls `Incoming.ack`, after writing it to the client; one that
//! is dropped unacknowledged (the client went away) is NAKed, so it comes
//! again at once to the next receiver rather than after `ack_wait_ms`.

use std::time::Duration;

use async_nats::{
    Request,
    client::RequestErrorKind,
    jetstream::{
        self, AckKind,
        consumer::{AckPolicy, Consumer, DeliverPolicy, pull},
        stream::{self, DiscardPolicy, RetentionPolicy, StorageType},
    },
};
use bytes::Bytes;
use futures_util::StreamExt;
use prism_nats::{error::NatsError, headers::Outgoing, jetstream::JetStream, link::Online};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{
    Attached, Live,
    core::new_id,
    options::Options,
    subscribe_confirmed, unreachable, until_ended,
    wire::{self, Names},
};
use crate::{
    error::Error,
    slots::{Envelope, Inbox, Incoming, Outcome},
};

/// How long one pull waits on the server; it also bounds how long a
/// receiver that left keeps reading its last pull to give those messages
/// back.
const PULL_EXPIRES: Duration = Duration::from_secs(3);
/// Consumers the inbox stream may hold (one per identity that has attached
/// a receiver): the same explicit cap as PubSub's streams.
const MAX_CONSUMERS: i32 = prism_nats::jetstream::MAX_CONSUMERS;
/// Most messages asked for per pull.
const MAX_BATCH: usize = 256;
/// Waits between attempts to pull again after a failure.
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// The namespace's inbox stream.
pub(super) fn stream_config(names: &Names, options: &Options, namespace: &str) -> stream::Config {
    stream::Config {
        name: names.stream().to_string(),
        description: Some(format!("Prism registry inboxes of namespace {namespace}")),
        subjects: vec![names.all_inboxes()],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        max_age: options.inbox_max_age,
        max_messages_per_subject: options.inbox_max_msgs,
        discard: DiscardPolicy::New,
        discard_new_per_subject: true,
        max_consumers: MAX_CONSUMERS,
        ..Default::default()
    }
}

/// The durable consumer of one identity's inbox.
fn consumer_config(live: &Live, identity: &str) -> pull::Config {
    pull::Config {
        durable_name: Some(live.names.consumer(identity)),
        description: Some("Prism registry inbox".to_string()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: live.options.nats.ack_wait(),
        max_deliver: -1,
        filter_subject: live.names.inbox(identity),
        memory_storage: live.options.memory_consumers,
        ..Default::default()
    }
}

pub(super) async fn deliver(
    live: &Live,
    js: &JetStream,
    identity: &str,
    envelope: &Envelope,
) -> Result<Outcome, Error> {
    let message = Outgoing {
        subject: live.names.inbox(identity),
        headers: wire::encode(
            envelope,
            Some(&live.names.dedupe_id(identity, &envelope.message_id)),
        ),
        payload: envelope.payload.to_vec(),
    };
    if let Err(e) = js.publish(message).await {
        return if inbox_full(&e) {
            Ok(Outcome::Failed(format!(
                "inbox full: {} messages pending (inbox_max_msgs)",
                live.options.inbox_max_msgs
            )))
        } else {
            Err(from_nats(e))
        };
    }
    // Stored. Whether it is also DELIVERED depends on a receiver being
    // attached somewhere right now.
    let presence = Request::new().timeout(Some(live.options.nats.request_timeout()));
    match live
        .client
        .send_request(live.names.presence(identity), presence)
        .await
    {
        Ok(_) => Ok(Outcome::Delivered),
        Err(e) if e.kind() == RequestErrorKind::NoResponders => Ok(Outcome::Pending),
        Err(e) => {
            tracing::debug!(error = %e, "presence unknown; the stored message counts as pending");
            Ok(Outcome::Pending)
        }
    }
}

/// The server refuses a message past `max_messages_per_subject` with
/// discard-new-per-subject; it has no error code of its own.
fn inbox_full(err: &NatsError) -> bool {
    let text = err.to_string();
    text.contains("maximum messages per subject") || text.contains("maximum messages exceeded")
}

fn from_nats(err: NatsError) -> Error {
    match err {
        NatsError::LimitReached(reason) => Error::Exhausted(reason),
        NatsError::InvalidArgument { reason, .. } => Error::Internal(reason),
        other => unreachable(other.to_string()),
    }
}

pub(super) async fn attach(live: &Live, js: &JetStream, identity: &str) -> Result<Inbox, Error> {
    let config = consumer_config(live, identity);
    let consumer = js.consumer(config).await.map_err(from_nats)?;
    // Once NATS holds the presence subscription, a delivery from any
    // process reports DELIVERED.
    let mut presence = subscribe_confirmed(live, live.names.presence(identity)).await?;
    let (tx, rx) = mpsc::channel(live.options.receiver_buffer);
    let mut attached = live.receivers.join(identity);
    let client = live.client.clone();
    let answer_tx = tx.clone();
    let mut ended = attached.ended.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = until_ended(&mut ended) => break,
                _ = answer_tx.closed() => break,
                msg = presence.next() => match msg {
                    Some(msg) => if let Some(reply) = msg.reply {
                        let _ = client.publish(reply, Bytes::new()).await;
                    },
                    None => break,
                },
            }
        }
        let _ = presence.unsubscribe().await;
    });
    let stream_name = js.stream_name().to_string();
    let context = js.context().clone();
    let name = live.names.consumer(identity);
    let online = live.online.clone();
    tokio::spawn(async move {
        pump(
            consumer,
            &tx,
            &mut attached,
            online,
            &context,
            &stream_name,
            &name,
        )
        .await;
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// Pulls from the consumer into `tx` until the receiver leaves or is ended,
/// or the consumer is deleted (the identity was forgotten, here or by
/// another process).
async fn pump(
    consumer: Consumer<pull::Config>,
    tx: &mpsc::Sender<Result<Incoming, Error>>,
    attached: &mut Attached,
    mut online: Online,
    context: &jetstream::Context,
    stream: &str,
    name: &str,
) {
    let mut failures = 0usize;
    loop {
        tokio::select! {
            _ = attached.wait_ended() => return,
            _ = tx.closed() => return,
            _ = online.wait() => {}
        }
        // Never ask for more than the queue has room for: what is not
        // pulled stays in the inbox, not in this process.
        if tx.capacity() == 0 {
            tokio::select! {
                _ = attached.wait_ended() => return,
                permit = tx.reserve() => match permit {
                    Ok(permit) => drop(permit),
                    Err(_) => return,
                },
            }
        }
        let room = tx.capacity().clamp(1, MAX_BATCH);
        let pulled = consumer
            .batch()
            .max_messages(room)
            .expires(PULL_EXPIRES)
            .messages()
            .await;
        let failed = match pulled {
            Ok(mut batch) => loop {
                let item = tokio::select! {
                    _ = attached.wait_ended() => {
                        tokio::spawn(give_back(batch));
                        return;
                    }
                    _ = tx.closed() => {
                        tokio::spawn(give_back(batch));
                        return;
                    }
                    item = batch.next() => item,
                };
                match item {
                    None => break false,
                    Some(Ok(msg)) => {
                        failures = 0;
                        let incoming = incoming(msg);
                        // The pull asked for no more than the room there was,
                        // and this task is the only sender: no wait here.
                        if tx.send(Ok(incoming)).await.is_err() {
                            tokio::spawn(give_back(batch));
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "inbox pull ended");
                        break true;
                    }
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "inbox pull failed");
                true
            }
        };
        if !failed {
            continue;
        }
        let wait = BACKOFF[failures.min(BACKOFF.len() - 1)];
        failures += 1;
        tokio::select! {
            _ = attached.wait_ended() => return,
            _ = tx.closed() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        if consumer_gone(context, stream, name).await {
            let _ = tx
                .send(Err(unreachable(
                    "the identity's inbox consumer is gone (unregistered, expired, or NATS restarted with consumer_storage: memory); call Receive again",
                )))
                .await;
            return;
        }
    }
}

/// True only when JetStream says the consumer does not exist (not when it
/// cannot be asked).
async fn consumer_gone(context: &jetstream::Context, stream: &str, name: &str) -> bool {
    let Ok(stream) = context.get_stream_no_info(stream).await else {
        return false;
    };
    match stream.consumer_info(name).await {
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            jetstream::context::ConsumerInfoErrorKind::NotFound
                | jetstream::context::ConsumerInfoErrorKind::StreamNotFound
        ),
    }
}

/// The message for the receiver; acknowledging it acks the JetStream
/// message, dropping it unacknowledged NAKs it for redelivery now.
fn incoming(msg: jetstream::Message) -> Incoming {
    let envelope = wire::decode(msg.message.headers.as_ref(), &msg.message.payload, new_id);
    let mut held = Held(Some(msg));
    Incoming {
        envelope,
        ack: Some(Box::new(move || {
            if let (Some(msg), Ok(runtime)) = (held.0.take(), tokio::runtime::Handle::try_current())
            {
                runtime.spawn(async move {
                    if let Err(e) = msg.ack().await {
                        tracing::debug!(error = %e, "ack failed; the message comes again after ack_wait_ms");
                    }
                });
            }
        })),
    }
}

/// A message handed out and not yet acknowledged.
struct Held(Option<jetstream::Message>);

impl Drop for Held {
    fn drop(&mut self) {
        if let (Some(msg), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move { nak(&msg).await });
        }
    }
}

async fn nak(msg: &jetstream::Message) {
    if let Err(e) = msg.ack_with(AckKind::Nak(None)).await {
        tracing::debug!(error = %e, "could not NAK; the message comes again after ack_wait_ms");
    }
}

/// Reads a pull that was outstanding when its receiver left to its end and
/// NAKs what it still brings, so those messages do not wait out
/// `ack_wait_ms` in an inbox nobody reads.
async fn give_back(mut batch: pull::Batch) {
    while let Some(item) = batch.next().await {
        if let Ok(msg) = item {
            nak(&msg).await;
        }
    }
}

/// Deletes the identity's consumer and drops what its inbox still holds.
pub(super) async fn forget(live: &Live, js: &JetStream, identity: &str) -> Result<(), Error> {
    js.delete_consumer(&live.names.consumer(identity))
        .await
        .map_err(from_nats)?;
    let stream = js
        .context()
        .get_stream_no_info(js.stream_name())
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    stream
        .purge()
        .filter(live.names.inbox(identity))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_a_bounded_work_queue_over_every_inbox() {
        let options = Options::parse(&serde_json::json!({
            "url": "nats://127.0.0.1:4222",
            "jetstream": true,
            "inbox_max_msgs": 7,
            "inbox_max_age_ms": 60_000,
        }))
        .unwrap();
        let c = stream_config(&Names::new("iot"), &options, "iot");
        assert_eq!(c.name, "PRISM_REGISTRY_iot");
        assert_eq!(c.subjects, vec!["prism.registry.iot.inbox.>".to_string()]);
        assert_eq!(c.retention, RetentionPolicy::WorkQueue);
        assert_eq!(c.max_messages_per_subject, 7);
        assert_eq!(c.max_age, Duration::from_secs(60));
        assert_eq!(c.discard, DiscardPolicy::New);
        assert!(c.discard_new_per_subject);
        // More identities than the server's default of 1,000 consumers.
        assert!(c.max_consumers > 1_000_000, "{}", c.max_consumers);
    }

    #[test]
    fn only_a_full_inbox_reads_as_full() {
        assert!(inbox_full(&NatsError::Backend(
            "maximum messages per subject exceeded".into()
        )));
        assert!(!inbox_full(&NatsError::NotConnected));
    }
}
