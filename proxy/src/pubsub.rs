//! The PubSub data plane. Publish, PublishBatch, Ack and Unsubscribe are
//! unary calls forwarded by [`dataplane::unary`]; a batch is refused whole
//! when any of its messages would be. Subscribe opens the pattern's stream
//! and pumps it through the subscriber's [`Buffer`] (see
//! [`crate::subscriptions`] for the slow-consumer policy) into the client's
//! stream. If the pattern's stream ends without the client asking — the
//! pattern was restarted or hot-reloaded — the pump subscribes again on the
//! namespace's new process, so a client's subscription outlives its pattern.
//! For at-least-once backends the proxy acknowledges each message once it is
//! handed to the client's stream, unless the client asked for `manual_ack`.

use std::{convert::Infallible, pin::Pin, sync::Arc, time::Duration};

use delivered::{Delivered, SubscribeCodec};
use prism_proto::{
    codec::PrismCodec,
    publish::{self, check_subscription},
    pubsub::v1::{
        AckRequest, SubscribeRequest, UnsubscribeRequest, UnsubscribeResponse,
        pub_sub_client::PubSubClient,
    },
    wire::requests,
};
use prost::Message as _;
use rand::Rng;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status, Streaming, body::Body};
use tower::service_fn;

use crate::{
    channel::PatternChannel,
    config::PatternKind::{self, Pubsub},
    dataplane,
    error::{self, ProxyError},
    forward::{self, Method, Raw, Table, method},
    namespace::{Namespace, State},
    state::ProxyState,
    subscriptions::{Buffer, Policy},
};

mod delivered;

const SERVICE: &str = "prism.pubsub.v1.PubSub";
pub(crate) const SUBSCRIBE_PATH: &str = "/prism.pubsub.v1.PubSub/Subscribe";
pub(crate) const UNSUBSCRIBE_PATH: &str = "/prism.pubsub.v1.PubSub/Unsubscribe";
/// The config field that limits a payload here, named in refusals.
const PAYLOAD_SETTING: &str = "max_value_bytes";
/// Waits between attempts to subscribe again after the pattern went away.
const RESUBSCRIBE_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(20), Duration::from_secs(1));
/// Acknowledgements sent to the pattern in one call, at most.
const ACK_BATCH: usize = 256;

struct PubSubProxy {
    state: Arc<ProxyState>,
}

fn client(channel: PatternChannel) -> PubSubClient<PatternChannel> {
    PubSubClient::new(channel)
        .max_decoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
}

/// Whether a failed (re)subscription is worth another try.
fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled | Code::Aborted
    )
}

/// Publish, PublishBatch and Ack are forwarded as encoded; Subscribe and
/// Unsubscribe are served by [`streams`].
pub(crate) struct PubSubTable;

impl Table for PubSubTable {
    const SERVICE: &'static str = SERVICE;
    const METHODS: &'static [Method] = &[
        method!(
            "prism.pubsub.v1.PubSub",
            "Publish",
            Pubsub,
            |limits, buf| { requests::publish(buf, (limits.max_value_bytes, PAYLOAD_SETTING)) }
        ),
        method!(
            "prism.pubsub.v1.PubSub",
            "PublishBatch",
            Pubsub,
            |limits, buf| {
                requests::publish_batch(buf, (limits.max_value_bytes, PAYLOAD_SETTING))
            }
        ),
        method!("prism.pubsub.v1.PubSub", "Ack", Pubsub, |_, buf| {
            requests::ack(buf)
        }),
    ];
}

/// The PubSub calls the proxy handles as messages: Subscribe (its stream
/// outlives pattern restarts, through a buffer) and Unsubscribe (it also
/// ends the proxy's own streams).
pub(crate) fn streams(state: Arc<ProxyState>) -> impl forward::Typed {
    let proxy = Arc::new(PubSubProxy { state });
    service_fn(move |request: http::Request<Body>| {
        let proxy = proxy.clone();
        async move {
            let response = match request.uri().path() {
                SUBSCRIBE_PATH => {
                    let subscribe = service_fn(move |r| {
                        let proxy = proxy.clone();
                        async move { proxy.subscribe(r).await }
                    });
                    forward::serve_stream(SubscribeCodec, subscribe, request).await
                }
                UNSUBSCRIBE_PATH => {
                    let unsubscribe = service_fn(move |r| {
                        let proxy = proxy.clone();
                        async move { proxy.unsubscribe(r).await }
                    });
                    let codec = PrismCodec::<UnsubscribeResponse, UnsubscribeRequest>::default();
                    forward::serve_unary(codec, unsubscribe, request).await
                }
                _ => forward::unimplemented(),
            };
            Ok::<_, Infallible>(response)
        }
    })
}

type SubscribeStream = Pin<Box<dyn Stream<Item = Result<Delivered, Status>> + Send>>;

impl PubSubProxy {
    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<SubscribeStream>, Status> {
        let setup = self.state.drain.enter()?;
        let namespace = self
            .state
            .namespaces
            .get(dataplane::namespace_of(request.metadata().as_ref())?)?;
        let subject = dataplane::subject_of(&request);
        let mut subscribe = request.into_inner();
        prism_proto::topic::check("topic", &subscribe.topic, true).map_err(ProxyError::from)?;
        publish::check_subscriber_id(&subscribe.subscriber_id, false).map_err(ProxyError::from)?;
        if subscribe.subscriber_id.is_empty() {
            subscribe.subscriber_id = format!("{:032x}", rand::rng().random::<u128>());
        }
        let at_least_once = namespace.status().capabilities.iter().any(|c| c == "ack");
        if subscribe.manual_ack && !at_least_once {
            return Err(ProxyError::AtMostOnce(namespace.name().to_string()).into());
        }
        let upstream = open(&namespace, &subscribe, subject.as_deref()).await?;
        let capacity = namespace.spec().config.limits.subscriber_buffer;
        let policy = if at_least_once {
            Policy::Backpressure
        } else {
            Policy::DropOldest
        };
        let buffer = Arc::new(Buffer::<Delivered>::new(capacity, policy));
        let id = self.state.subscriptions.register(
            (namespace.name(), PatternKind::Pubsub),
            &subscribe.topic,
            &subscribe.subscriber_id,
            buffer.clone(),
        );
        let acks = (at_least_once && !subscribe.manual_ack)
            .then(|| spawn_acker(namespace.clone(), subscribe.clone()));
        let patience = self.state.resubscribe_timeout;
        tokio::spawn(pump(
            namespace,
            (subscribe, subject),
            upstream,
            buffer.clone(),
            patience,
        ));
        drop(setup);
        let delivery = Delivery {
            buffer,
            acks,
            _registration: Registration {
                state: self.state.clone(),
                id,
            },
        };
        Ok(Response::new(Box::pin(delivery.into_stream())))
    }

    async fn unsubscribe(
        &self,
        request: Request<UnsubscribeRequest>,
    ) -> Result<Response<UnsubscribeResponse>, Status> {
        let namespace = dataplane::namespace_of(request.metadata().as_ref())?.to_string();
        let named = request.get_ref();
        check_subscription(&named.topic, &named.subscriber_id).map_err(ProxyError::from)?;
        // Local streams end first, so their pumps do not subscribe again.
        let closed = self
            .state
            .subscriptions
            .close(&namespace, &named.topic, &named.subscriber_id);
        let mut response = dataplane::unary(
            &self.state,
            PatternKind::Pubsub,
            (SERVICE, "Unsubscribe"),
            request,
            // Checked above, before any local stream was closed.
            |_, _| Ok::<(), ProxyError>(()),
            |ch, r| async move { client(ch).unsubscribe(r).await },
        )
        .await?;
        response.get_mut().unsubscribed |= closed > 0;
        Ok(response)
    }
}

/// Opens the pattern's stream for `subscribe` on the namespace's current process.
async fn open(
    namespace: &Namespace,
    subscribe: &SubscribeRequest,
    subject: Option<&str>,
) -> Result<Streaming<Raw>, Status> {
    // The route's call count is for unary calls a hot reload waits for; a
    // stream must not hold it, so it is released once the stream is open.
    let channel = namespace.route(PatternKind::Pubsub)?.channel;
    let mut request = Request::new(Raw(subscribe.encode_to_vec().into()));
    let _span = dataplane::client_span(
        (SERVICE, "Subscribe"),
        namespace.name(),
        PatternKind::Pubsub,
        subject,
        &mut request,
    );
    forward::open_stream(channel, SUBSCRIBE_PATH, request)
        .await
        .map_err(|status| error::from_pattern(namespace.name(), status))
}

/// Moves messages from the pattern into the buffer until the client leaves;
/// subscribes again when the pattern's stream ends under it, for up to
/// `patience` — or ends the client's stream with UNAVAILABLE sooner if the
/// namespace turns FAILED or is removed.
async fn pump(
    namespace: Arc<Namespace>,
    (subscribe, subject): (SubscribeRequest, Option<Arc<str>>),
    mut upstream: Streaming<Raw>,
    buffer: Arc<Buffer<Delivered>>,
    patience: Duration,
) {
    let subscriber_id: Arc<str> = subscribe.subscriber_id.as_str().into();
    loop {
        let next = tokio::select! {
            next = upstream.message() => next,
            _ = buffer.closed() => return,
        };
        let ended = match next {
            Ok(Some(Raw(message))) => {
                if !buffer
                    .push(Delivered::new(message, subscriber_id.clone()))
                    .await
                {
                    return;
                }
                continue;
            }
            Ok(None) => ProxyError::PatternEndedStream.into(),
            Err(status) => status,
        };
        if !retryable(&ended) {
            buffer.fail(error::from_pattern(namespace.name(), ended));
            return;
        }
        tracing::debug!(namespace = namespace.name(), topic = %subscribe.topic, reason = %ended.message(), "subscribing again");
        let mut delay = RESUBSCRIBE_BACKOFF.0;
        let deadline = tokio::time::Instant::now() + patience;
        upstream = loop {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = buffer.closed() => return,
            }
            match open(&namespace, &subscribe, subject.as_deref()).await {
                Ok(stream) => break stream,
                Err(status) if retryable(&status) => {
                    let status = namespace.status();
                    let waited_out = tokio::time::Instant::now() >= deadline;
                    if let Some(reason) =
                        give_up(status.state, &status.last_error, waited_out, patience)
                    {
                        buffer.fail(
                            ProxyError::NamespaceUnavailable {
                                namespace: namespace.name().to_string(),
                                reason,
                            }
                            .into(),
                        );
                        return;
                    }
                    delay = (delay * 2).min(RESUBSCRIBE_BACKOFF.1);
                }
                Err(status) => {
                    buffer.fail(status);
                    return;
                }
            }
        };
    }
}

/// Why a subscription waiting for its pattern should end now, if it should:
/// the namespace is FAILED or gone, or it has waited `patience` already.
fn give_up(
    state: State,
    last_error: &Option<String>,
    waited_out: bool,
    patience: Duration,
) -> Option<String> {
    let last = last_error.as_deref().unwrap_or("unknown error");
    match state {
        State::Failed => Some(format!(
            "FAILED ({last}); subscribe again once it has recovered"
        )),
        State::Stopped | State::Draining => Some("stopped; the subscription ended".to_string()),
        _ if waited_out => Some(format!(
            "no pattern took the subscription back within {} ms (supervisor.resubscribe_timeout_ms); last error: {last}",
            patience.as_millis()
        )),
        _ => None,
    }
}

/// Sends acknowledgements for messages handed to the client, in batches.
fn spawn_acker(
    namespace: Arc<Namespace>,
    subscribe: SubscribeRequest,
) -> mpsc::UnboundedSender<String> {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut message_ids = vec![first];
            while message_ids.len() < ACK_BATCH {
                match rx.try_recv() {
                    Ok(id) => message_ids.push(id),
                    Err(_) => break,
                }
            }
            let Ok(routed) = namespace.route(PatternKind::Pubsub) else {
                continue; // unacknowledged messages come back by redelivery
            };
            let ack = AckRequest {
                topic: subscribe.topic.clone(),
                subscriber_id: subscribe.subscriber_id.clone(),
                message_ids,
            };
            if let Err(status) = client(routed.channel).ack(ack).await {
                tracing::debug!(namespace = namespace.name(), error = %status.message(), "ack failed; the backend will redeliver");
            }
        }
    });
    tx
}

/// The client's side of one subscription.
struct Delivery {
    buffer: Arc<Buffer<Delivered>>,
    acks: Option<mpsc::UnboundedSender<String>>,
    _registration: Registration,
}

impl Delivery {
    fn into_stream(self) -> impl Stream<Item = Result<Delivered, Status>> + Send {
        futures_util::stream::unfold(self, |delivery| async move {
            let item = delivery.buffer.pop().await?;
            if let (Ok(message), Some(acks)) = (&item, &delivery.acks)
                && let Some(id) = message.message_id()
            {
                let _ = acks.send(id);
            }
            Some((item, delivery))
        })
    }
}

/// Unregisters (and so stops the pump) when the client's stream is dropped.
struct Registration {
    state: Arc<ProxyState>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.state.subscriptions.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_subscription_ends_when_its_namespace_cannot_take_it_back() {
        let patience = Duration::from_secs(10);
        let crash = Some("pattern process 7 exited (exit code 1)".to_string());
        assert_eq!(give_up(State::Restarting, &crash, false, patience), None);
        assert_eq!(give_up(State::Running, &None, false, patience), None);
        let failed = give_up(State::Failed, &crash, false, patience).unwrap();
        assert!(failed.starts_with("FAILED (pattern process 7"), "{failed}");
        let removed = give_up(State::Stopped, &None, false, patience).unwrap();
        assert!(removed.contains("stopped"), "{removed}");
        let late = give_up(State::Restarting, &crash, true, patience).unwrap();
        assert!(late.contains("10000 ms"), "{late}");
        assert!(late.contains("resubscribe_timeout_ms"), "{late}");
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(retryable(&Status::unavailable("restarting")));
        assert!(!retryable(&Status::invalid_argument("topic")));
        assert!(!retryable(&Status::unimplemented("manual_ack")));
    }
}
