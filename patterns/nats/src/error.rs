//! The pattern's errors: what async-nats reports, sorted into a few kinds
//! (the `From` impls), and [`to_status`], the one place they become gRPC
//! statuses.

use async_nats::jetstream::{
    self, ErrorCode,
    context::{CreateStreamErrorKind, PublishErrorKind as JsPublishErrorKind},
    stream::ConsumerErrorKind,
};
use tonic::{Code, Status};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatsError {
    /// A request field breaks a rule; the message names the field.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// No connection to any NATS server right now.
    #[error("NATS is not connected; retry once it is back")]
    NotConnected,
    /// NATS did not answer in time.
    #[error("NATS did not answer the {operation} in time")]
    Timeout { operation: &'static str },
    /// The call needs at-least-once delivery, which this namespace lacks.
    #[error("{0} needs at-least-once delivery (jetstream: true in the namespace's config)")]
    NeedsJetStream(&'static str),
    /// JetStream (or the namespace's stream) cannot serve right now.
    #[error("JetStream is unavailable: {0}")]
    JetStreamUnavailable(String),
    /// A JetStream limit (storage, consumers, pending acks) is reached.
    #[error("NATS limit reached: {0}")]
    LimitReached(String),
    /// Anything else NATS refused.
    #[error("NATS error: {0}")]
    Backend(String),
    /// Message `index` of a PublishBatch failed with `cause`; the messages
    /// before it were published.
    #[error("messages[{index}]: {cause} (the messages before it were published)")]
    InBatch { index: usize, cause: Box<NatsError> },
}

impl NatsError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The same error about message `index` of a batch: a field error names
    /// the message's field (`messages[3].payload`), anything else says
    /// which message NATS did not take.
    pub(crate) fn in_batch(self, index: usize) -> Self {
        match self {
            NatsError::InvalidArgument { field, reason } => NatsError::InvalidArgument {
                field: format!("{}.{field}", prism_proto::batch::message_field(index)),
                reason,
            },
            cause => NatsError::InBatch {
                index,
                cause: Box::new(cause),
            },
        }
    }
}

impl From<prism_proto::FieldError> for NatsError {
    fn from(err: prism_proto::FieldError) -> Self {
        Self::InvalidArgument {
            field: err.field,
            reason: err.problem,
        }
    }
}

/// The one mapping from the pattern's errors to gRPC statuses.
pub(crate) fn to_status(err: NatsError) -> Status {
    Status::new(code(&err), err.to_string())
}

fn code(err: &NatsError) -> Code {
    match err {
        NatsError::InvalidArgument { .. } => Code::InvalidArgument,
        NatsError::NotConnected
        | NatsError::Timeout { .. }
        | NatsError::JetStreamUnavailable(_) => Code::Unavailable,
        NatsError::NeedsJetStream(_) => Code::Unimplemented,
        NatsError::LimitReached(_) => Code::ResourceExhausted,
        NatsError::Backend(_) => Code::Internal,
        // A batch fails the way its failing message did.
        NatsError::InBatch { cause, .. } => code(cause),
    }
}

/// A JetStream API error, by its code.
fn api_error(err: &jetstream::Error) -> NatsError {
    match err.error_code() {
        ErrorCode::INSUFFICIENT_RESOURCES
        | ErrorCode::ACCOUNT_RESOURCES_EXCEEDED
        | ErrorCode::STORAGE_RESOURCES_EXCEEDED
        | ErrorCode::MEMORY_RESOURCES_EXCEEDED
        | ErrorCode::MAXIMUM_CONSUMERS_LIMIT
        | ErrorCode::MAXIMUM_STREAMS_LIMIT
        | ErrorCode::STREAM_LIMITS => NatsError::LimitReached(err.to_string()),
        ErrorCode::JETSTREAM_NOT_ENABLED
        | ErrorCode::JETSTREAM_NOT_ENABLED_FOR_ACCOUNT
        | ErrorCode::STREAM_NOT_FOUND => NatsError::JetStreamUnavailable(err.to_string()),
        _ if err.code() == 503 => NatsError::JetStreamUnavailable(err.to_string()),
        _ => NatsError::Backend(err.to_string()),
    }
}

fn payload_too_large(err: &dyn std::fmt::Display) -> NatsError {
    NatsError::invalid(
        "payload",
        format!("{err} (the NATS server's max_payload, headers included)"),
    )
}

impl From<async_nats::PublishError> for NatsError {
    fn from(err: async_nats::PublishError) -> Self {
        use async_nats::client::PublishErrorKind as K;
        match err.kind() {
            K::MaxPayloadExceeded => payload_too_large(&err),
            K::InvalidSubject => NatsError::invalid("topic", err.to_string()),
            K::Send => NatsError::NotConnected,
        }
    }
}

impl From<async_nats::SubscribeError> for NatsError {
    fn from(err: async_nats::SubscribeError) -> Self {
        use async_nats::client::SubscribeErrorKind as K;
        match err.kind() {
            K::InvalidSubject => NatsError::invalid("topic", err.to_string()),
            K::InvalidQueueName => NatsError::Backend(err.to_string()),
            K::Other => NatsError::NotConnected,
        }
    }
}

impl From<async_nats::client::FlushError> for NatsError {
    fn from(_: async_nats::client::FlushError) -> Self {
        // Both kinds mean the connection could not take or finish the flush.
        NatsError::NotConnected
    }
}

impl From<jetstream::context::PublishError> for NatsError {
    fn from(err: jetstream::context::PublishError) -> Self {
        match err.kind() {
            JsPublishErrorKind::StreamNotFound => {
                NatsError::JetStreamUnavailable("no stream captures the topic".into())
            }
            JsPublishErrorKind::TimedOut => NatsError::Timeout {
                operation: "publish",
            },
            JsPublishErrorKind::BrokenPipe => NatsError::NotConnected,
            JsPublishErrorKind::MaxAckPending => NatsError::LimitReached(err.to_string()),
            JsPublishErrorKind::MaxPayloadExceeded => payload_too_large(&err),
            JsPublishErrorKind::WrongLastMessageId
            | JsPublishErrorKind::WrongLastSequence
            | JsPublishErrorKind::Other => NatsError::Backend(err.to_string()),
        }
    }
}

impl From<jetstream::context::CreateStreamError> for NatsError {
    fn from(err: jetstream::context::CreateStreamError) -> Self {
        match err.kind() {
            CreateStreamErrorKind::JetStream(api) => api_error(&api),
            CreateStreamErrorKind::JetStreamUnavailable | CreateStreamErrorKind::NotFound => {
                NatsError::JetStreamUnavailable(err.to_string())
            }
            CreateStreamErrorKind::TimedOut => NatsError::Timeout {
                operation: "stream lookup",
            },
            CreateStreamErrorKind::EmptyStreamName
            | CreateStreamErrorKind::InvalidStreamName
            | CreateStreamErrorKind::DomainAndExternalSet
            | CreateStreamErrorKind::Response
            | CreateStreamErrorKind::ResponseParse => NatsError::Backend(err.to_string()),
        }
    }
}

impl From<jetstream::stream::ConsumerError> for NatsError {
    fn from(err: jetstream::stream::ConsumerError) -> Self {
        match err.kind() {
            ConsumerErrorKind::JetStream(api) => api_error(&api),
            ConsumerErrorKind::TimedOut => NatsError::Timeout {
                operation: "consumer request",
            },
            // A request that found no JetStream to answer it.
            ConsumerErrorKind::Request => NatsError::JetStreamUnavailable(err.to_string()),
            ConsumerErrorKind::InvalidConsumerType
            | ConsumerErrorKind::InvalidName
            | ConsumerErrorKind::Other => NatsError::Backend(err.to_string()),
        }
    }
}

impl From<jetstream::consumer::StreamError> for NatsError {
    fn from(err: jetstream::consumer::StreamError) -> Self {
        use jetstream::consumer::StreamErrorKind as K;
        match err.kind() {
            K::TimedOut => NatsError::Timeout {
                operation: "pull request",
            },
            K::Other => NatsError::NotConnected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_code() {
        let cases = [
            (
                NatsError::invalid("topic", "must not be empty"),
                Code::InvalidArgument,
            ),
            (NatsError::NotConnected, Code::Unavailable),
            (
                NatsError::Timeout {
                    operation: "publish",
                },
                Code::Unavailable,
            ),
            (NatsError::NeedsJetStream("manual_ack"), Code::Unimplemented),
            (
                NatsError::JetStreamUnavailable("x".into()),
                Code::Unavailable,
            ),
            (NatsError::LimitReached("x".into()), Code::ResourceExhausted),
            (NatsError::Backend("x".into()), Code::Internal),
            (NatsError::NotConnected.in_batch(3), Code::Unavailable),
            (
                NatsError::LimitReached("x".into()).in_batch(0),
                Code::ResourceExhausted,
            ),
        ];
        for (err, code) in cases {
            let text = err.to_string();
            let status = to_status(err);
            assert_eq!(status.code(), code, "{text}");
            assert_eq!(status.message(), text);
        }
    }

    #[test]
    fn shared_field_errors_keep_their_text() {
        let err = prism_proto::FieldError::new("metadata", "keys must not be empty");
        let text = err.to_string();
        let status = to_status(err.into());
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), text);
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let status = to_status(NatsError::invalid("payload", "10 bytes exceeds 5"));
        assert_eq!(status.message(), "payload: 10 bytes exceeds 5");
    }

    #[test]
    fn a_batch_error_names_the_message() {
        let status = to_status(NatsError::invalid("payload", "10 bytes exceeds 5").in_batch(7));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "messages[7].payload: 10 bytes exceeds 5");
        let err = NatsError::Timeout {
            operation: "publish",
        }
        .in_batch(2);
        assert_eq!(
            err.to_string(),
            "messages[2]: NATS did not answer the publish in time (the messages before it were published)"
        );
    }

    #[test]
    fn core_publish_errors() {
        use async_nats::client::PublishErrorKind as K;
        let too_big: NatsError =
            async_nats::PublishError::with_source(K::MaxPayloadExceeded, "limit of 10").into();
        assert!(matches!(&too_big, NatsError::InvalidArgument { field, .. } if field == "payload"));
        assert!(too_big.to_string().contains("max_payload"));
        assert_eq!(
            NatsError::from(async_nats::PublishError::new(K::Send)),
            NatsError::NotConnected
        );
        assert!(matches!(
            NatsError::from(async_nats::PublishError::new(K::InvalidSubject)),
            NatsError::InvalidArgument { .. }
        ));
    }

    #[test]
    fn subscribe_errors() {
        use async_nats::client::SubscribeErrorKind as K;
        assert_eq!(
            NatsError::from(async_nats::SubscribeError::new(K::Other)),
            NatsError::NotConnected
        );
        assert!(matches!(
            NatsError::from(async_nats::SubscribeError::new(K::InvalidSubject)),
            NatsError::InvalidArgument { .. }
        ));
    }

    #[test]
    fn flush_errors_mean_not_connected() {
        use async_nats::client::FlushErrorKind as K;
        for kind in [K::SendError, K::FlushError] {
            assert_eq!(
                NatsError::from(async_nats::client::FlushError::new(kind)),
                NatsError::NotConnected
            );
        }
    }

    #[test]
    fn jetstream_publish_errors() {
        let cases = [
            (JsPublishErrorKind::StreamNotFound, Code::Unavailable),
            (JsPublishErrorKind::TimedOut, Code::Unavailable),
            (JsPublishErrorKind::BrokenPipe, Code::Unavailable),
            (JsPublishErrorKind::MaxAckPending, Code::ResourceExhausted),
            (
                JsPublishErrorKind::MaxPayloadExceeded,
                Code::InvalidArgument,
            ),
            (JsPublishErrorKind::WrongLastMessageId, Code::Internal),
            (JsPublishErrorKind::WrongLastSequence, Code::Internal),
            (JsPublishErrorKind::Other, Code::Internal),
        ];
        for (kind, code) in cases {
            let err: NatsError = jetstream::context::PublishError::new(kind).into();
            assert_eq!(to_status(err).code(), code, "{kind:?}");
        }
    }

    #[test]
    fn jetstream_api_errors_by_code() {
        let api = |code: usize, err_code: u64| -> jetstream::Error {
            serde_json::from_value(serde_json::json!({
                "code": code, "err_code": err_code, "description": "d"
            }))
            .unwrap()
        };
        let consumer = |e| {
            to_status(jetstream::stream::ConsumerError::new(ConsumerErrorKind::JetStream(e)).into())
                .code()
        };
        assert_eq!(consumer(api(500, 10026)), Code::ResourceExhausted);
        assert_eq!(consumer(api(500, 10023)), Code::ResourceExhausted);
        assert_eq!(consumer(api(503, 10076)), Code::Unavailable);
        assert_eq!(consumer(api(503, 1)), Code::Unavailable);
        assert_eq!(consumer(api(400, 10999)), Code::Internal);
        let stream =
            |kind| to_status(jetstream::context::CreateStreamError::new(kind).into()).code();
        assert_eq!(
            stream(CreateStreamErrorKind::JetStream(api(404, 10059))),
            Code::Unavailable
        );
        assert_eq!(
            stream(CreateStreamErrorKind::JetStreamUnavailable),
            Code::Unavailable
        );
        assert_eq!(stream(CreateStreamErrorKind::NotFound), Code::Unavailable);
        assert_eq!(stream(CreateStreamErrorKind::TimedOut), Code::Unavailable);
        assert_eq!(
            stream(CreateStreamErrorKind::InvalidStreamName),
            Code::Internal
        );
        assert_eq!(stream(CreateStreamErrorKind::ResponseParse), Code::Internal);
    }

    #[test]
    fn consumer_and_pull_errors() {
        let consumer = |kind| to_status(jetstream::stream::ConsumerError::new(kind).into()).code();
        assert_eq!(consumer(ConsumerErrorKind::TimedOut), Code::Unavailable);
        assert_eq!(consumer(ConsumerErrorKind::Request), Code::Unavailable);
        assert_eq!(consumer(ConsumerErrorKind::InvalidName), Code::Internal);
        assert_eq!(
            consumer(ConsumerErrorKind::InvalidConsumerType),
            Code::Internal
        );
        assert_eq!(consumer(ConsumerErrorKind::Other), Code::Internal);
        use jetstream::consumer::StreamErrorKind as K;
        let pull = |kind| to_status(jetstream::consumer::StreamError::new(kind).into()).code();
        assert_eq!(pull(K::TimedOut), Code::Unavailable);
        assert_eq!(pull(K::Other), Code::Unavailable);
    }
}
