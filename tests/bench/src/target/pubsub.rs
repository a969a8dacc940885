//! The PubSub target: publish calls (`Publish`, or `PublishBatch` of
//! `--batch` messages) go out on the load's schedule while `--subscribers`
//! subscribers receive on the same topic. Message `seq` of a run is the
//! `seq % batch`-th message of publish call `seq / batch`, and carries its
//! [`Stamp`] (sequence number and send time), so each subscriber measures
//! publish→deliver latency and finds what it lost.
//!
//! Before load, every subscriber must show it is subscribed: probe messages
//! are published until each has received one (polled, with a deadline).
//! After load, the run waits until each subscriber has every message or
//! nothing more arrives.
//!
//! With `--backend nats` the `nats` path does the same straight through
//! NATS with async-nats: core NATS publishes (a call's messages, then one
//! flush) and subscriptions on the topic as subject. With `--backend
//! nats-cluster` its publishers connect to the first node and its
//! subscribers to the second, so every message crosses a route between
//! nodes; the pattern gets every node's URL and publishes and subscribes
//! over its one connection, to whichever node it chose.
//!
//! Modules: [`stamp`] (payload layout, clock), [`tally`] (per-subscriber
//! counts and the summary), [`subscriber`] (the subscriber tasks).

pub(crate) mod stamp;
pub(crate) mod subscriber;
pub(crate) mod tally;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use prism_proto::{
    limits::MAX_MESSAGE_BYTES,
    pubsub::v1::{PublishBatchRequest, PublishRequest, pub_sub_client::PubSubClient},
};
pub(crate) use stamp::STAMP_BYTES;
use tonic::transport::Channel;

use self::{
    stamp::{Clock, Payloads, Stamp},
    subscriber::{Subscribers, Window},
    tally::SeqSet,
};
use crate::{
    BenchError,
    config::{Backend, PubsubSettings},
    load::Req,
    report::PubsubReport,
    stats::code_name,
    transport::{NatsPool, Transport, nats_code_name},
};

/// The most messages one `PublishBatch` may carry.
pub(crate) const MAX_BATCH: usize = 1000;
/// How long the subscribers may take to show they are subscribed.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(10);
/// After load: how long no subscriber may receive anything before what is
/// missing counts as lost.
const QUIET: Duration = Duration::from_millis(500);

pub(crate) struct PubsubTarget {
    settings: PubsubSettings,
    payloads: Payloads,
    clock: Clock,
    /// The NATS of `--backend nats` (or every node of the cluster of
    /// `nats-cluster`), once it is up.
    nats_urls: Vec<String>,
}

impl PubsubTarget {
    pub(crate) fn new(settings: PubsubSettings) -> Self {
        Self {
            payloads: Payloads::new(settings.payload_size),
            settings,
            clock: Clock::new(),
            nats_urls: Vec::new(),
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        self.settings.backend
    }

    pub(crate) fn subscribers(&self) -> usize {
        self.settings.subscribers
    }

    pub(crate) fn set_nats_urls(&mut self, urls: &[String]) {
        self.nats_urls = urls.to_vec();
    }

    pub(crate) fn nats_urls(&self) -> &[String] {
        &self.nats_urls
    }

    /// `prism-nats` on NATS or a NATS cluster, else `prism-memstore` (the
    /// flags refuse Redis for PubSub).
    pub(crate) fn pattern_binary(&self) -> &'static str {
        if self.settings.backend.is_nats() {
            "prism-nats"
        } else {
            "prism-memstore"
        }
    }

    /// The NATS pattern's config: where NATS is (every node of a cluster,
    /// comma separated), core NATS only.
    fn nats_config(&self) -> serde_json::Value {
        serde_json::json!({
            "url": self.nats_urls.join(","),
            "jetstream": false,
        })
    }

    /// The config of the pattern run by hand on the `pattern` path; `None`:
    /// its defaults.
    pub(crate) fn pattern_config(&self) -> Option<serde_json::Value> {
        self.settings.backend.is_nats().then(|| self.nats_config())
    }

    pub(crate) fn describe(&self) -> String {
        let s = &self.settings;
        let (call, plural) = match (s.batch, s.subscribers) {
            (1, n) => ("unary Publish".to_string(), if n == 1 { "" } else { "s" }),
            (b, n) => (
                format!("PublishBatch of {b}"),
                if n == 1 { "" } else { "s" },
            ),
        };
        format!(
            "{call}, {}-byte messages, {} subscriber{plural}, topic {}, on {}",
            s.payload_size,
            s.subscribers,
            s.topic,
            s.backend.title()
        )
    }

    pub(crate) fn proxy_config_yaml(&self, namespace: &str) -> String {
        // A JSON string is a valid YAML double-quoted scalar, and a JSON
        // object a valid YAML flow mapping.
        let name = serde_json::to_string(namespace).expect("a string serializes");
        let (backend, config) = if self.settings.backend.is_nats() {
            ("nats", self.nats_config())
        } else {
            ("memstore", serde_json::json!({}))
        };
        format!(
            "namespaces:\n  - name: {name}\n    pattern: pubsub\n    backend: {backend}\n    config: {config}\n"
        )
    }

    /// Opens the subscribers over `subscribers` (one connection each) and
    /// waits until each has received a probe published over `publishers`.
    pub(crate) async fn prepare(
        &self,
        publishers: &Transport,
        subscribers: &Transport,
    ) -> Result<Session, BenchError> {
        let window = Arc::new(Window::default());
        let subs = Subscribers::open(
            subscribers,
            &self.settings.topic,
            self.clock,
            window.clone(),
        )
        .await?;
        let deadline = tokio::time::Instant::now() + SUBSCRIBE_TIMEOUT;
        let mut delay = Duration::from_millis(5);
        loop {
            let probe = vec![self.payloads.make(Stamp::probe())];
            let published = self.publish(publishers, 0, probe).await;
            tokio::time::sleep(delay).await;
            let subscribed = subs.subscribed()?;
            if subscribed == subs.len() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BenchError::NotReady {
                    what: "the subscribers".into(),
                    timeout: SUBSCRIBE_TIMEOUT,
                    detail: format!(
                        "{subscribed} of {} received a probe message (last probe publish: {})",
                        subs.len(),
                        published.err().unwrap_or("OK")
                    ),
                });
            }
            delay = (delay * 2).min(Duration::from_millis(100));
        }
        Ok(Session {
            clock: self.clock,
            window,
            acked: Mutex::default(),
            subscribers: Mutex::new(Some(subs)),
        })
    }

    /// Sends publish call `req` (its `batch` messages); on success in the
    /// measured window, notes them as published. A failure is the name of
    /// its status code.
    pub(crate) async fn call(
        &self,
        transport: &Transport,
        session: &Session,
        req: Req,
    ) -> Result<(), &'static str> {
        let batch = self.settings.batch as u64;
        let first = req.seq * batch;
        let sent_ns = self.clock.ns(req.at);
        let messages = (first..first + batch)
            .map(|seq| self.payloads.make(Stamp { seq, sent_ns }))
            .collect();
        self.publish(transport, req.conn, messages).await?;
        if session.window.is_measured(sent_ns) {
            session
                .acked
                .lock()
                .expect("acked lock")
                .insert_range(first, batch);
        }
        Ok(())
    }

    /// One publish call on connection `conn`: one message is a `Publish`,
    /// more a `PublishBatch`; on NATS, that many publishes and a flush.
    async fn publish(
        &self,
        transport: &Transport,
        conn: usize,
        mut payloads: Vec<Vec<u8>>,
    ) -> Result<(), &'static str> {
        match transport {
            Transport::Grpc(pool) => {
                let mut client = client(pool.channel(conn));
                let message = |payload| PublishRequest {
                    topic: self.settings.topic.clone(),
                    payload,
                    metadata: HashMap::new(),
                };
                let result = if payloads.len() == 1 {
                    let payload = payloads.pop().expect("one payload");
                    client
                        .publish(pool.request(message(payload)))
                        .await
                        .map(drop)
                } else {
                    let messages = payloads.into_iter().map(message).collect();
                    client
                        .publish_batch(pool.request(PublishBatchRequest { messages }))
                        .await
                        .map(drop)
                };
                result.map_err(|status| code_name(status.code()))
            }
            Transport::Nats(pool) => self.publish_nats(pool, conn, payloads).await,
            Transport::Redis(_) => Err("UNIMPLEMENTED"),
        }
    }

    async fn publish_nats(
        &self,
        pool: &NatsPool,
        conn: usize,
        payloads: Vec<Vec<u8>>,
    ) -> Result<(), &'static str> {
        let client = pool.client(conn);
        let subject = async_nats::Subject::from(self.settings.topic.as_str());
        let sent = async {
            for payload in payloads {
                client
                    .publish(subject.clone(), payload.into())
                    .await
                    .map_err(|e| nats_code_name(&e))?;
            }
            client.flush().await.map_err(|_| "UNAVAILABLE")
        };
        tokio::time::timeout(pool.timeout(), sent)
            .await
            .unwrap_or(Err("DEADLINE_EXCEEDED"))
    }
}

fn client(channel: Channel) -> PubSubClient<Channel> {
    PubSubClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// One path's PubSub run: its subscribers, its measured window, and the
/// messages published in it.
pub(crate) struct Session {
    clock: Clock,
    window: Arc<Window>,
    /// Messages of the publish calls that succeeded in the measured window.
    acked: Mutex<SeqSet>,
    /// Taken when the run finishes.
    subscribers: Mutex<Option<Subscribers>>,
}

impl Session {
    /// Messages sent (open loop: due) from `measure_start` on are measured.
    pub(crate) fn begin(&self, measure_start: Instant) {
        self.window.set(self.clock.ns(measure_start));
    }

    /// Waits for the last deliveries (at most `timeout`), stops the
    /// subscribers, and adds up what they received. `publish_elapsed`: from
    /// the window's start to the last publish reply.
    pub(crate) async fn finish(
        &self,
        publish_elapsed: Duration,
        timeout: Duration,
    ) -> Result<PubsubReport, BenchError> {
        let subscribers = self
            .subscribers
            .lock()
            .expect("subscribers lock")
            .take()
            .ok_or_else(|| BenchError::Load("the PubSub run finished twice".into()))?;
        let acked = self.acked.lock().expect("acked lock").clone();
        subscribers
            .wait_delivered(acked.len(), QUIET, tokio::time::Instant::now() + timeout)
            .await;
        let outcomes = subscribers.stop().await;
        Ok(tally::summarize(
            &outcomes,
            &acked,
            publish_elapsed.as_secs_f64(),
            self.window.start_ns(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(backend: Backend, batch: usize) -> PubsubTarget {
        PubsubTarget::new(PubsubSettings {
            subscribers: 2,
            payload_size: 64,
            batch,
            topic: "bench.t".into(),
            backend,
        })
    }

    #[test]
    fn the_proxy_config_serves_pubsub_on_the_backend() {
        let yaml = target(Backend::Memstore, 1).proxy_config_yaml("bench");
        assert!(yaml.contains("name: \"bench\""), "{yaml}");
        assert!(yaml.contains("pattern: pubsub"), "{yaml}");
        assert!(yaml.contains("backend: memstore"), "{yaml}");
        let mut nats = target(Backend::Nats, 1);
        nats.set_nats_urls(&["nats://127.0.0.1:4333".to_string()]);
        let yaml = nats.proxy_config_yaml("bench");
        assert!(yaml.contains("backend: nats"), "{yaml}");
        assert!(
            yaml.contains(r#"config: {"jetstream":false,"url":"nats://127.0.0.1:4333"}"#),
            "{yaml}"
        );
        assert_eq!(nats.pattern_binary(), "prism-nats");
        assert_eq!(
            nats.pattern_config(),
            Some(serde_json::json!({"url": "nats://127.0.0.1:4333", "jetstream": false}))
        );
        assert_eq!(target(Backend::Memstore, 1).pattern_config(), None);
        let mut cluster = target(Backend::NatsCluster, 1);
        cluster
            .set_nats_urls(&["nats://127.0.0.1:4333", "nats://127.0.0.1:4334"].map(String::from));
        let yaml = cluster.proxy_config_yaml("bench");
        assert!(
            yaml.contains(
                r#"{"jetstream":false,"url":"nats://127.0.0.1:4333,nats://127.0.0.1:4334"}"#
            ),
            "{yaml}"
        );
        assert_eq!(cluster.pattern_binary(), "prism-nats");
        assert!(cluster.describe().ends_with("on a NATS cluster"));
    }

    #[test]
    fn describes_the_publish_call_and_subscribers() {
        assert_eq!(
            target(Backend::Memstore, 1).describe(),
            "unary Publish, 64-byte messages, 2 subscribers, topic bench.t, on MemStore"
        );
        assert!(
            target(Backend::Nats, 100)
                .describe()
                .starts_with("PublishBatch of 100,")
        );
    }
}
