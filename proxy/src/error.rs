//! The proxy's errors and the one place they become gRPC statuses.

use tonic::Status;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("namespace `{0}` not found")]
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
    #[error(
        "message: {declared} bytes declared exceeds the limit of {limit} bytes on namespace `{namespace}` ({rule})"
    )]
    MessageTooLarge {
        namespace: String,
        declared: usize,
        limit: usize,
        /// How the limit is made up, in config terms.
        rule: &'static str,
    },
    #[error("namespace `{namespace}` serves {serves}, not {called}")]
    WrongPattern {
        namespace: String,
        serves: &'static str,
        called: &'static str,
    },
}

impl From<ProxyError> for Status {
    fn from(err: ProxyError) -> Self {
        let message = err.to_string();
        match err {
            ProxyError::UnknownNamespace(_) => Status::not_found(message),
            ProxyError::NamespaceUnavailable { .. }
            | ProxyError::PatternUnreachable { .. }
            | ProxyError::Draining => Status::unavailable(message),
            ProxyError::DeadlineExceeded(_) => Status::deadline_exceeded(message),
            ProxyError::BadHeader { .. } | ProxyError::MessageTooLarge { .. } => {
                Status::invalid_argument(message)
            }
            ProxyError::WrongPattern { .. } => Status::unimplemented(message),
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
                ProxyError::MessageTooLarge {
                    namespace: "kv".into(),
                    declared: 60,
                    limit: 50,
                    rule: "r",
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
        ];
        for (err, code) in cases {
            let text = err.to_string();
            let status = Status::from(err);
            assert_eq!(status.code(), code, "{text}");
            assert_eq!(status.message(), text);
        }
    }
}
