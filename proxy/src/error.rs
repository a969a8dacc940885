//! The proxy's errors and the one place they become gRPC statuses. Client
//! input shows in a message only through [`quote`], so an error about a
//! huge header or field stays small.

use std::sync::Arc;

use prism_proto::{
    field::{FieldError, quote},
    wire::Refusal,
};
use tonic::Status;

use crate::{config::ConfigError, supervisor::SupervisorError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// A request field breaks one of the rules every edge shares.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// A forwarded request whose encoding is broken (the text is the
    /// codec's: `the request could not be decoded: …`).
    #[error("{0}")]
    Undecodable(String),
    #[error("namespace `{}` not found", quote(.0))]
    UnknownNamespace(String),
    #[error("namespace `{namespace}` is unavailable: {reason}")]
    NamespaceUnavailable { namespace: String, reason: String },
    #[error("namespace `{namespace}`: backend {backend} unreachable ({reason})")]
    BackendUnreachable {
        namespace: String,
        backend: String,
        reason: String,
    },
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
    #[error("restart of `{namespace}` failed: {source}")]
    RestartFailed {
        namespace: String,
        source: SupervisorError,
    },
    #[error("hot reload of `{namespace}` failed: {source}")]
    ReloadFailed {
        namespace: String,
        source: SupervisorError,
    },
    /// No token, or one that is not acceptable (never quoted).
    #[error("unauthenticated: {0}")]
    Unauthenticated(prism_auth::Rejection),
    #[error("{caller} may not {permission} namespace `{}`", quote(.namespace))]
    PermissionDenied {
        caller: String,
        namespace: String,
        permission: &'static str,
    },
    #[error("{method} needs the {needed} role; {caller} has {held}")]
    RoleRequired {
        caller: String,
        method: String,
        needed: &'static str,
        held: &'static str,
    },
    #[error("cannot check the token: issuer {issuer} is unavailable ({reason})")]
    AuthUnavailable { issuer: String, reason: String },
    #[error("config not reloaded: {0}")]
    ConfigNotReloaded(ConfigRejected),
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
    /// `manual_ack` on a namespace that has nothing to acknowledge.
    #[error("manual_ack: namespace `{0}` delivers at most once")]
    AtMostOnce(String),
    /// The pattern closed a Subscribe stream without an error (it is
    /// stopping); the subscription is taken up again like after a crash.
    #[error("the pattern ended the stream")]
    PatternEndedStream,
    /// A service this port does not serve; the message says where it is.
    #[error("{service} is {elsewhere}")]
    WrongPort {
        service: &'static str,
        elsewhere: String,
    },
    #[error("connection limit reached (listeners.max_connections = {0}); retry later")]
    TooManyConnections(usize),
    #[error("too many open requests on this listener (listeners.max_open_streams = {0})")]
    TooManyOpenRequests(usize),
    /// ApplyNamespace or DeleteNamespace with a namespace (or a result) the
    /// config loader refuses; the message names the field.
    #[error("namespace not applied: {0}")]
    NamespaceRejected(String),
    /// The config file cannot be edited now (there is none, or its layout).
    #[error("config file not edited: {0}")]
    ConfigFileNotEditable(String),
    #[error("cannot write the config file {path}: {reason}")]
    ConfigWriteFailed { path: String, reason: String },
}

/// Why a config reload was refused. [`ConfigError`] is neither `Clone` nor
/// `Eq` (it may hold an I/O error), so it is shared and compared by message.
#[derive(Debug, Clone)]
pub struct ConfigRejected(pub Arc<ConfigError>);

impl From<ConfigError> for ConfigRejected {
    fn from(err: ConfigError) -> Self {
        Self(Arc::new(err))
    }
}

impl PartialEq for ConfigRejected {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for ConfigRejected {}

impl std::fmt::Display for ConfigRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Refusal> for ProxyError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Field(err) => Self::Invalid(err),
            undecodable @ Refusal::Undecodable(_) => Self::Undecodable(undecodable.to_string()),
        }
    }
}

impl From<ProxyError> for Status {
    fn from(err: ProxyError) -> Self {
        let message = err.to_string();
        match err {
            ProxyError::Invalid(_) | ProxyError::Undecodable(_) => {
                Status::invalid_argument(message)
            }
            ProxyError::UnknownNamespace(_) => Status::not_found(message),
            ProxyError::NamespaceUnavailable { .. }
            | ProxyError::BackendUnreachable { .. }
            | ProxyError::PatternUnreachable { .. }
            | ProxyError::PatternEndedStream
            | ProxyError::TooManyConnections(_)
            | ProxyError::Draining => Status::unavailable(message),
            ProxyError::DeadlineExceeded(_) => Status::deadline_exceeded(message),
            ProxyError::BadHeader { .. } | ProxyError::MessageTooLarge { .. } => {
                Status::invalid_argument(message)
            }
            ProxyError::WrongPattern { .. }
            | ProxyError::AtMostOnce(_)
            | ProxyError::WrongPort { .. } => Status::unimplemented(message),
            ProxyError::Overloaded { .. } | ProxyError::TooManyOpenRequests(_) => {
                Status::resource_exhausted(message)
            }
            ProxyError::RestartFailed { source, .. } | ProxyError::ReloadFailed { source, .. } => {
                match source {
                    SupervisorError::UnknownNamespace(_) => Status::not_found(message),
                    SupervisorError::Stopped => Status::unavailable(message),
                    SupervisorError::Start(_)
                    | SupervisorError::SuccessorNotStarted(_)
                    | SupervisorError::SuccessorNotHealthy { .. } => Status::aborted(message),
                }
            }
            ProxyError::ConfigNotReloaded(_) => Status::invalid_argument(message),
            ProxyError::Unauthenticated(_) => Status::unauthenticated(message),
            ProxyError::PermissionDenied { .. } | ProxyError::RoleRequired { .. } => {
                Status::permission_denied(message)
            }
            ProxyError::AuthUnavailable { .. } => Status::unavailable(message),
            ProxyError::NamespaceRejected(_) => Status::invalid_argument(message),
            ProxyError::ConfigFileNotEditable(_) => Status::failed_precondition(message),
            ProxyError::ConfigWriteFailed { .. } => Status::internal(message),
        }
    }
}

/// A status the pattern sent passes through (code, message and details, not
/// the pattern's own headers); one the transport made up (the connection
/// broke, the process died) means the pattern is unreachable.
pub(crate) fn from_pattern(namespace: &str, status: Status) -> Status {
    if std::error::Error::source(&status).is_some() {
        ProxyError::PatternUnreachable {
            namespace: namespace.to_string(),
            reason: status.message().to_string(),
        }
        .into()
    } else {
        Status::with_details(
            status.code(),
            status.message(),
            status.details().to_vec().into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::StartError;
    use std::time::Duration;
    use tonic::Code;

    #[test]
    fn every_variant_maps_to_its_code() {
        let cases = [
            (
                ProxyError::Invalid(FieldError::new("topic", "must not be empty")),
                Code::InvalidArgument,
            ),
            (
                Refusal::Undecodable("buffer underflow".into()).into(),
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
                ProxyError::BackendUnreachable {
                    namespace: "x".into(),
                    backend: "redis".into(),
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
                ProxyError::RestartFailed {
                    namespace: "x".into(),
                    source: SupervisorError::Start(StartError::ExitedEarly("exit code 1".into())),
                },
                Code::Aborted,
            ),
            (
                ProxyError::ReloadFailed {
                    namespace: "x".into(),
                    source: SupervisorError::SuccessorNotStarted(StartError::Rejected(
                        "address".into(),
                    )),
                },
                Code::Aborted,
            ),
            (
                ProxyError::ReloadFailed {
                    namespace: "x".into(),
                    source: SupervisorError::SuccessorNotHealthy {
                        pid: 7,
                        last: "UNHEALTHY".into(),
                    },
                },
                Code::Aborted,
            ),
            (
                ProxyError::RestartFailed {
                    namespace: "x".into(),
                    source: SupervisorError::UnknownNamespace("x".into()),
                },
                Code::NotFound,
            ),
            (
                ProxyError::ReloadFailed {
                    namespace: "x".into(),
                    source: SupervisorError::Stopped,
                },
                Code::Unavailable,
            ),
            (
                ProxyError::ConfigNotReloaded(
                    ConfigError::Invalid {
                        field: "namespaces[0].name".into(),
                        reason: "empty".into(),
                    }
                    .into(),
                ),
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
            (ProxyError::AtMostOnce("events".into()), Code::Unimplemented),
            (
                ProxyError::WrongPort {
                    service: "prism.admin.v1.Admin",
                    elsewhere: "served on the admin port 127.0.0.1:8981".into(),
                },
                Code::Unimplemented,
            ),
            (ProxyError::PatternEndedStream, Code::Unavailable),
            (ProxyError::TooManyConnections(10), Code::Unavailable),
            (ProxyError::TooManyOpenRequests(10), Code::ResourceExhausted),
            (
                ProxyError::NamespaceRejected("x".into()),
                Code::InvalidArgument,
            ),
            (
                ProxyError::ConfigFileNotEditable("x".into()),
                Code::FailedPrecondition,
            ),
            (
                ProxyError::ConfigWriteFailed {
                    path: "p".into(),
                    reason: "r".into(),
                },
                Code::Internal,
            ),
            (
                ProxyError::Unauthenticated(prism_auth::Rejection::Expired),
                Code::Unauthenticated,
            ),
            (
                ProxyError::PermissionDenied {
                    caller: "sub:a".into(),
                    namespace: "orders".into(),
                    permission: "write",
                },
                Code::PermissionDenied,
            ),
            (
                ProxyError::RoleRequired {
                    caller: "sub:a".into(),
                    method: "RestartPattern".into(),
                    needed: "operator",
                    held: "viewer",
                },
                Code::PermissionDenied,
            ),
            (
                ProxyError::AuthUnavailable {
                    issuer: "https://id".into(),
                    reason: "connection refused".into(),
                },
                Code::Unavailable,
            ),
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

    #[test]
    fn pattern_statuses_pass_through_but_transport_errors_are_unavailable() {
        let own = from_pattern("default", Status::not_found("key not found"));
        assert_eq!(own.code(), Code::NotFound);
        let broken = Status::from_error(Box::new(std::io::Error::other("connection reset")));
        let mapped = from_pattern("default", broken);
        assert_eq!(mapped.code(), Code::Unavailable);
        assert!(
            mapped.message().contains("`default`"),
            "{}",
            mapped.message()
        );
    }
}
