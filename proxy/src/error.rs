//! The proxy's errors and the one place they become gRPC statuses. Client
//! input shows in a message only through [`quote`], so an error about a
//! huge header or field stays small.

use prism_proto::field::{FieldError, quote};
use tonic::Status;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// A request field breaks one of the rules every edge shares.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("namespace `{}` not found", quote(.0))]
    UnknownNamespace(String),
    #[error("namespace `{namespace}` is unavailable: {reason}")]
    NamespaceUnavailable { namespace: String, reason: String },
    #[error("namespace `{namespace}`: pattern unreachable: {reason}")]
    PatternUnreachable { namespace: String, reason: String },
    #[error("proxy is shutting down")]
    Draining,
    #[error("deadline exceeded after {0:?}")]
    DeadlineExceeded(std::time::Duration),
    #[error("header `{header}`: {reason}")]
    BadHeader {
        header: &'static str,
        reason: String,
    },
    #[error(
        "namespace `{namespace}`: {in_flight} bytes of calls already in flight; the limit is {limit} bytes (limits.max_in_flight_bytes)"
    )]
    Overloaded {
        namespace: String,
        in_flight: usize,
        limit: usize,
    },
    #[error("namespace `{namespace}` serves {serves}, not {called}")]
    WrongPattern {
        namespace: String,
        serves: &'static str,
        called: &'static str,
    },
    /// `manual_ack` on a namespace that has nothing to acknowledge.
    #[error("manual_ack: namespace `{0}` delivers at most once")]
    AtMostOnce(String),
}

impl From<ProxyError> for Status {
    fn from(err: ProxyError) -> Self {
        let message = err.to_string();
        match err {
            ProxyError::Invalid(_) => Status::invalid_argument(message),
            ProxyError::UnknownNamespace(_) => Status::not_found(message),
            ProxyError::NamespaceUnavailable { .. }
            | ProxyError::PatternUnreachable { .. }
            | ProxyError::Draining => Status::unavailable(message),
            ProxyError::DeadlineExceeded(_) => Status::deadline_exceeded(message),
            ProxyError::BadHeader { .. } => Status::invalid_argument(message),
            ProxyError::WrongPattern { .. } | ProxyError::AtMostOnce(_) => {
                Status::unimplemented(message)
            }
            ProxyError::Overloaded { .. } => Status::resource_exhausted(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tonic::Code;

    #[test]
    fn every_variant_maps_to_its_code() {
        let cases = [
            (
                ProxyError::Invalid(FieldError::new("topic", "must not be empty")),
                Code::InvalidArgument,
            ),
            (ProxyError::UnknownNamespace("x".into()), Code::NotFound),
            (
                ProxyError::NamespaceUnavailable {
                    namespace: "x".into(),
                    reason: "r".into(),
                },
                Code::Unavailable,
            ),
            (
                ProxyError::PatternUnreachable {
                    namespace: "x".into(),
                    reason: "r".into(),
                },
                Code::Unavailable,
            ),
            (ProxyError::Draining, Code::Unavailable),
            (
                ProxyError::Overloaded {
                    namespace: "x".into(),
                    in_flight: 10,
                    limit: 8,
                },
                Code::ResourceExhausted,
            ),
            (
                ProxyError::DeadlineExceeded(Duration::from_millis(5)),
                Code::DeadlineExceeded,
            ),
            (
                ProxyError::BadHeader {
                    header: "x-prism-namespace",
                    reason: "r".into(),
                },
                Code::InvalidArgument,
            ),
            (
                ProxyError::WrongPattern {
                    namespace: "events".into(),
                    serves: "pubsub",
                    called: "keyvalue",
                },
                Code::Unimplemented,
            ),
            (ProxyError::AtMostOnce("events".into()), Code::Unimplemented),
        ];
        for (err, code) in cases {
            let text = err.to_string();
            let status = Status::from(err);
            assert_eq!(status.code(), code, "{text}");
            assert_eq!(status.message(), text);
        }
    }

    #[test]
    fn field_errors_keep_their_text() {
        let status = Status::from(ProxyError::from(FieldError::new(
            "key",
            "must not be empty",
        )));
        assert_eq!(status.message(), "key: must not be empty");
    }

    #[test]
    fn an_unknown_namespace_is_quoted_briefly() {
        let name = "n".repeat(15_000);
        let status = Status::from(ProxyError::UnknownNamespace(name));
        assert_eq!(status.code(), Code::NotFound);
        assert!(status.message().len() < 100, "{}", status.message());
        assert!(status.message().contains('…'), "{}", status.message());
    }
}
