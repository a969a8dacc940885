//! The steady load of the soak, through the proxy: KeyValue lanes on the
//! MemStore and Redis namespaces (each lane writes its own keys, one call at
//! a time, alternating `Set` and `Get`), a JetStream publisher, and a
//! durable subscriber that acknowledges what it gets and subscribes again
//! whenever its stream breaks. Every call goes to the [`CallLog`]; every
//! outcome that matters to the end check goes to the ledgers. A failed call
//! is not retried as is: the lane moves on, as a client under an outage
//! would, and the next call tries again.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use prism_proto::{
    keyvalue::v1::{GetRequest, SetRequest, key_value_client::KeyValueClient},
    pubsub::v1::{AckRequest, PublishRequest, SubscribeRequest, pub_sub_client::PubSubClient},
};
use tokio::time::{Instant, MissedTickBehavior};
use tonic::{Code, Request, transport::Channel};

use super::{
    calls::{CallLog, Surface},
    ledger::{self, KvLedger, StreamLedger},
};
use crate::{stats::code_name, transport::NAMESPACE_HEADER};

/// The longest a call may take; a call cut off is in doubt, like a failure.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys per KeyValue lane that are overwritten round after round.
const OVERWRITTEN_KEYS: u64 = 50;
/// Pause before a broken subscription is opened again.
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(250);
/// How often the subscriber looks up from a quiet stream.
const QUIET_POLL: Duration = Duration::from_millis(500);
/// Silence after which the subscriber subscribes again.
const QUIET_LIMIT: Duration = Duration::from_secs(5);
/// The durable subscriber's name.
pub const SUBSCRIBER_ID: &str = "chaos-durable";
pub const TOPIC: &str = "chaos.events";

/// What the load tasks share.
pub struct Shared {
    pub log: CallLog,
    pub memstore: Mutex<KvLedger>,
    pub redis: Mutex<KvLedger>,
    pub jetstream: Mutex<StreamLedger>,
    /// Load stops (publishers and KeyValue lanes).
    pub stop: AtomicBool,
    /// The subscriber stops (after the end check's drain).
    pub stop_subscriber: AtomicBool,
}

impl Shared {
    pub fn new(log: CallLog) -> Self {
        Self {
            log,
            memstore: Mutex::default(),
            redis: Mutex::default(),
            jetstream: Mutex::default(),
            stop: AtomicBool::new(false),
            stop_subscriber: AtomicBool::new(false),
        }
    }

    pub fn kv_ledger(&self, surface: Surface) -> &Mutex<KvLedger> {
        match surface {
            Surface::Redis => &self.redis,
            _ => &self.memstore,
        }
    }
}

/// A request to `namespace` with the call timeout.
pub fn request<T>(namespace: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = namespace.parse() {
        request.metadata_mut().insert(NAMESPACE_HEADER, value);
    }
    request.set_timeout(CALL_TIMEOUT);
    request
}

/// One call's outcome as a code name; NOT_FOUND on a Get is an answer.
fn outcome<T>(result: &Result<T, tonic::Status>) -> Option<&'static str> {
    match result {
        Ok(_) => None,
        Err(status) => Some(code_name(status.code())),
    }
}

/// Runs `call` cut off at [`CALL_TIMEOUT`] (a hung connection also ends).
async fn bounded<T>(
    call: impl Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    tokio::time::timeout(CALL_TIMEOUT + Duration::from_secs(1), call)
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("call timed out")))
}

fn ticker(every: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// The key of call `seq` on `lane`: half the `Set`s overwrite one of a few
/// keys (last value wins), half write a key of their own (so a write lost
/// early in the run cannot be hidden by a later one); a `Get` reads the key
/// the `Set` before it wrote.
fn key_for(lane: usize, seq: u64) -> String {
    let set = if seq % 2 == 1 { seq } else { seq - 1 };
    if set % 4 == 1 {
        format!("chaos-{lane}-o{}", (set / 4) % OVERWRITTEN_KEYS)
    } else {
        format!("chaos-{lane}-u{set}")
    }
}

/// A KeyValue lane: `Set` a fresh value, then `Get` it, every `every`.
pub async fn kv_lane(
    shared: Arc<Shared>,
    channel: Channel,
    namespace: String,
    surface: Surface,
    lane: usize,
    every: Duration,
) {
    let mut client = KeyValueClient::new(channel);
    let mut ticker = ticker(every);
    let mut seq: u64 = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        seq += 1;
        let key = key_for(lane, seq);
        let start = shared.log.now_ms();
        if seq % 2 == 1 {
            let value = format!("v-{lane}-{seq}");
            let result = bounded(client.set(request(
                &namespace,
                SetRequest {
                    key: key.clone(),
                    value: value.clone().into_bytes(),
                    ttl_seconds: 0,
                },
            )))
            .await;
            shared.log.record(surface, start, outcome(&result));
            if let Ok(mut ledger) = shared.kv_ledger(surface).lock() {
                match result {
                    Ok(_) => ledger.acked(&key, &value),
                    Err(_) => ledger.in_doubt(&key, &value),
                }
            }
        } else {
            let result = bounded(client.get(request(&namespace, GetRequest { key }))).await;
            let error = match &result {
                Err(status) if status.code() == Code::NotFound => None,
                other => outcome(other),
            };
            shared.log.record(surface, start, error);
        }
    }
}

/// Publishes `chaos-SEQ` to the JetStream namespace every `every`.
pub async fn publisher(shared: Arc<Shared>, channel: Channel, namespace: String, every: Duration) {
    let mut client = PubSubClient::new(channel);
    let mut ticker = ticker(every);
    let mut seq: u64 = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        seq += 1;
        let start = shared.log.now_ms();
        let result = bounded(client.publish(request(
            &namespace,
            PublishRequest {
                topic: TOPIC.into(),
                payload: ledger::payload(seq),
                metadata: Default::default(),
            },
        )))
        .await;
        shared
            .log
            .record(Surface::Jetstream, start, outcome(&result));
        if let Ok(mut ledger) = shared.jetstream.lock() {
            match result {
                Ok(reply) => ledger.acked(seq, reply.into_inner().message_id),
                Err(_) => ledger.failed(),
            }
        }
    }
}

/// The durable subscriber: records each delivery, acknowledges it, and
/// subscribes again (same durable name, so JetStream resumes where it left
/// off and redelivers what was not acknowledged) whenever the stream ends.
pub async fn subscriber(shared: Arc<Shared>, channel: Channel, namespace: String) {
    let mut client = PubSubClient::new(channel);
    while !shared.stop_subscriber.load(Ordering::Relaxed) {
        let mut subscribe = request(
            &namespace,
            SubscribeRequest {
                topic: TOPIC.into(),
                subscriber_id: SUBSCRIBER_ID.into(),
                manual_ack: true,
            },
        );
        // A stream lives as long as it delivers; only the call has a deadline.
        subscribe.metadata_mut().remove("grpc-timeout");
        let mut stream = match bounded(client.subscribe(subscribe)).await {
            Ok(reply) => reply.into_inner(),
            Err(_) => {
                tokio::time::sleep(RESUBSCRIBE_DELAY).await;
                continue;
            }
        };
        let mut quiet = Duration::ZERO;
        loop {
            let next = tokio::time::timeout(QUIET_POLL, stream.message()).await;
            if shared.stop_subscriber.load(Ordering::Relaxed) {
                return;
            }
            let message = match next {
                // A stream silent for long while publishes flow may be one
                // nobody feeds any more: open a fresh one.
                Err(_) if quiet >= QUIET_LIMIT => break,
                Err(_) => {
                    quiet += QUIET_POLL;
                    continue;
                }
                Ok(Ok(Some(message))) => message,
                Ok(Ok(None) | Err(_)) => break,
            };
            quiet = Duration::ZERO;
            if let Some(seq) = ledger::parse_payload(&message.payload)
                && let Ok(mut ledger) = shared.jetstream.lock()
            {
                ledger.delivered(seq);
            }
            // A lost ack means a redelivery later, which the ledger counts.
            let _ = bounded(client.ack(request(
                &namespace,
                AckRequest {
                    topic: TOPIC.into(),
                    subscriber_id: SUBSCRIBER_ID.into(),
                    message_ids: vec![message.message_id],
                },
            )))
            .await;
        }
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_alternate_between_overwritten_and_own_keys_and_gets_follow() {
        assert_eq!(key_for(0, 1), "chaos-0-o0");
        assert_eq!(key_for(0, 2), "chaos-0-o0");
        assert_eq!(key_for(0, 3), "chaos-0-u3");
        assert_eq!(key_for(0, 4), "chaos-0-u3");
        assert_eq!(key_for(0, 5), "chaos-0-o1");
        assert_eq!(key_for(2, 4 * OVERWRITTEN_KEYS + 1), "chaos-2-o0");
    }
}
