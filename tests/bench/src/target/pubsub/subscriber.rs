//! The subscribers of one path. Each has its own connection — through Prism
//! its own HTTP/2 connection, since a stream that is not read stalls the
//! others sharing a connection's flow-control window; on the `nats` path its
//! own NATS client — and a task that takes each delivery's arrival time and
//! counts it into its [`Tally`], until it is stopped or its stream ends.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use prism_proto::{
    limits::MAX_MESSAGE_BYTES,
    pubsub::v1::{Message, SubscribeRequest, pub_sub_client::PubSubClient},
};
use tokio::{sync::watch, task::JoinHandle, time::Instant};
use tonic::Streaming;

use super::{
    stamp::Clock,
    tally::{Delivery, Outcome, Tally},
};
use crate::{BenchError, stats::code_name, transport::Transport};

/// When the measured window starts, on the stamps' clock; messages sent
/// before it are warm-up. Unset (nothing measured) until load begins.
#[derive(Debug)]
pub(crate) struct Window(AtomicU64);

impl Default for Window {
    fn default() -> Self {
        Self(AtomicU64::new(u64::MAX))
    }
}

impl Window {
    pub(crate) fn set(&self, start_ns: u64) {
        self.0.store(start_ns, Ordering::Release);
    }

    pub(crate) fn start_ns(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn is_measured(&self, sent_ns: u64) -> bool {
        sent_ns >= self.start_ns()
    }
}

/// What the run can see of a subscriber while it runs.
#[derive(Debug, Default)]
struct Progress {
    probes: AtomicU64,
    /// Distinct measured messages received.
    measured: AtomicU64,
    ended: AtomicBool,
}

/// A subscription's stream of deliveries.
enum Source {
    /// Boxed: a tonic stream is ten times the size of a NATS subscriber.
    Grpc(Box<Streaming<Message>>),
    Nats(async_nats::Subscriber),
}

/// One delivery: its payload and the drops the server reported before it.
enum Received {
    Grpc(Message),
    Nats(async_nats::Message),
}

impl Received {
    fn payload(&self) -> &[u8] {
        match self {
            Self::Grpc(m) => &m.payload,
            Self::Nats(m) => &m.payload,
        }
    }

    fn dropped_before(&self) -> u64 {
        match self {
            Self::Grpc(m) => m.dropped_before,
            Self::Nats(_) => 0,
        }
    }
}

impl Source {
    /// The next delivery; `Err` when the stream failed or ended.
    async fn next(&mut self) -> Result<Received, (&'static str, String)> {
        match self {
            Self::Grpc(stream) => match stream.message().await {
                Ok(Some(message)) => Ok(Received::Grpc(message)),
                Ok(None) => Err(("OK", "the server ended the stream".into())),
                Err(status) => Err((code_name(status.code()), status.message().to_string())),
            },
            Self::Nats(subscriber) => match subscriber.next().await {
                Some(message) => Ok(Received::Nats(message)),
                None => Err(("UNAVAILABLE", "the NATS subscription ended".into())),
            },
        }
    }
}

pub(crate) struct Subscribers {
    progress: Vec<Arc<Progress>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Outcome>>,
}

impl Subscribers {
    /// Subscribes to `topic` once per connection of `transport` (gRPC: the
    /// PubSub service; NATS: the subject `topic`) and starts counting.
    /// Fails with [`BenchError::Subscribe`] when a subscription is refused.
    pub(crate) async fn open(
        transport: &Transport,
        topic: &str,
        clock: Clock,
        window: Arc<Window>,
    ) -> Result<Self, BenchError> {
        let sources = match transport {
            Transport::Grpc(pool) => {
                let mut sources = Vec::with_capacity(pool.len());
                for i in 0..pool.len() {
                    let mut client = PubSubClient::new(pool.channel(i))
                        .max_decoding_message_size(MAX_MESSAGE_BYTES);
                    let request = pool.request(SubscribeRequest {
                        topic: topic.to_string(),
                        subscriber_id: format!("prism-bench-{}-{i}", std::process::id()),
                        manual_ack: false,
                    });
                    let stream = client.subscribe(request).await.map_err(|status| {
                        BenchError::Subscribe {
                            code: code_name(status.code()),
                            message: status.message().to_string(),
                        }
                    })?;
                    sources.push(Source::Grpc(Box::new(stream.into_inner())));
                }
                sources
            }
            Transport::Nats(pool) => {
                let mut sources = Vec::with_capacity(pool.len());
                for i in 0..pool.len() {
                    let client = pool.client(i);
                    let failed = |e: &dyn std::fmt::Display| BenchError::Subscribe {
                        code: "UNAVAILABLE",
                        message: e.to_string(),
                    };
                    let subscriber = client
                        .subscribe(topic.to_string())
                        .await
                        .map_err(|e| failed(&e))?;
                    client.flush().await.map_err(|e| failed(&e))?;
                    sources.push(Source::Nats(subscriber));
                }
                sources
            }
            Transport::Redis(_) => {
                return Err(BenchError::Load("Redis has no PubSub path here".into()));
            }
        };
        let (stop, stopped) = watch::channel(false);
        let mut progress = Vec::with_capacity(sources.len());
        let mut tasks = Vec::with_capacity(sources.len());
        for source in sources {
            let seen = Arc::new(Progress::default());
            progress.push(seen.clone());
            tasks.push(tokio::spawn(count(
                source,
                seen,
                clock,
                window.clone(),
                stopped.clone(),
            )));
        }
        Ok(Self {
            progress,
            stop,
            tasks,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.progress.len()
    }

    /// How many have received a probe; fails when a stream has ended.
    pub(crate) fn subscribed(&self) -> Result<usize, BenchError> {
        if self
            .progress
            .iter()
            .any(|p| p.ended.load(Ordering::Relaxed))
        {
            return Err(BenchError::Subscribe {
                code: "UNAVAILABLE",
                message: "a subscriber's stream ended before measuring".into(),
            });
        }
        Ok(self
            .progress
            .iter()
            .filter(|p| p.probes.load(Ordering::Relaxed) > 0)
            .count())
    }

    /// Polls until every subscriber has received `expected` measured
    /// messages, or none has received anything for `quiet` (the rest are
    /// lost), or `deadline`.
    pub(crate) async fn wait_delivered(&self, expected: u64, quiet: Duration, deadline: Instant) {
        let total = || -> u64 {
            self.progress
                .iter()
                .map(|p| p.measured.load(Ordering::Relaxed))
                .sum()
        };
        let done = || {
            self.progress.iter().all(|p| {
                p.measured.load(Ordering::Relaxed) >= expected || p.ended.load(Ordering::Relaxed)
            })
        };
        let (mut last, mut moved) = (total(), Instant::now());
        let mut delay = Duration::from_millis(1);
        while !done() {
            let now = Instant::now();
            if now >= deadline || now.duration_since(moved) >= quiet {
                return;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(50));
            let seen = total();
            if seen != last {
                (last, moved) = (seen, Instant::now());
            }
        }
    }

    /// Stops every subscriber (which unsubscribes) and returns what each saw.
    pub(crate) async fn stop(self) -> Vec<Outcome> {
        let _ = self.stop.send(true);
        let mut outcomes = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            outcomes.push(task.await.unwrap_or_else(|e| Outcome {
                tally: Tally::default(),
                error: Some(("INTERNAL", format!("subscriber task: {e}"))),
            }));
        }
        outcomes
    }
}

/// One subscriber's task: counts deliveries until stopped or the stream ends.
async fn count(
    mut source: Source,
    progress: Arc<Progress>,
    clock: Clock,
    window: Arc<Window>,
    mut stopped: watch::Receiver<bool>,
) -> Outcome {
    let mut tally = Tally::default();
    let error = loop {
        let next = tokio::select! {
            biased;
            _ = stopped.changed() => break None,
            next = source.next() => next,
        };
        let received_ns = clock.now_ns();
        match next {
            Ok(received) => {
                let delivery = tally.receive(
                    received.payload(),
                    received.dropped_before(),
                    received_ns,
                    window.start_ns(),
                );
                match delivery {
                    Delivery::Probe => {
                        progress.probes.fetch_add(1, Ordering::Relaxed);
                    }
                    Delivery::Measured => {
                        progress.measured.store(tally.seen.len(), Ordering::Relaxed);
                    }
                    Delivery::Warmup | Delivery::Duplicate | Delivery::Foreign => {}
                }
            }
            Err(error) => {
                progress.ended.store(true, Ordering::Relaxed);
                break Some(error);
            }
        }
    };
    Outcome { tally, error }
}
