//! The client's one error type: a variant per gRPC code a caller may want to
//! match on, each carrying the proxy's message and the call's
//! `x-prism-trace-id` (the id to look the call up by in the trace store).

use std::fmt;

use prism_observability::grpc::TRACE_ID_HEADER;
use tonic::Code;
use tonic::metadata::MetadataMap;

/// What the proxy said about a failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    /// The proxy's message, as sent.
    pub message: String,
    /// `x-prism-trace-id` of the call, when the proxy answered at all.
    pub trace_id: Option<String>,
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.trace_id {
            Some(id) => write!(f, "{} (trace id {id})", self.message),
            None => write!(f, "{} (no trace id)", self.message),
        }
    }
}

/// Every way a call through [`PrismClient`](crate::PrismClient) fails.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found: {0}")]
    NotFound(Detail),
    #[error("invalid argument: {0}")]
    InvalidArgument(Detail),
    #[error("unauthenticated: {0}")]
    Unauthenticated(Detail),
    #[error("permission denied: {0}")]
    PermissionDenied(Detail),
    #[error("unavailable: {0}")]
    Unavailable(Detail),
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(Detail),
    #[error("resource exhausted: {0}")]
    ResourceExhausted(Detail),
    #[error("failed precondition: {0}")]
    FailedPrecondition(Detail),
    #[error("unimplemented: {0}")]
    Unimplemented(Detail),
    #[error("cancelled: {0}")]
    Cancelled(Detail),
    #[error("internal: {0}")]
    Internal(Detail),
    /// Any other gRPC code.
    #[error("{code:?}: {detail}")]
    Other { code: Code, detail: Detail },
    /// The address could not be parsed or connected to.
    #[error("cannot connect to {address}: {reason}")]
    Connect { address: String, reason: String },
    /// The token provider had no token to send.
    #[error("no token to send: {0}")]
    Token(#[from] prism_auth::AuthError),
    /// A namespace, token or argument that cannot travel as gRPC metadata.
    #[error("invalid {what}: {reason}")]
    Local { what: &'static str, reason: String },
}

impl Error {
    /// The gRPC code of a failed call; `None` for failures before the call.
    pub fn code(&self) -> Option<Code> {
        Some(match self {
            Self::NotFound(_) => Code::NotFound,
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::Unauthenticated(_) => Code::Unauthenticated,
            Self::PermissionDenied(_) => Code::PermissionDenied,
            Self::Unavailable(_) => Code::Unavailable,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::Unimplemented(_) => Code::Unimplemented,
            Self::Cancelled(_) => Code::Cancelled,
            Self::Internal(_) => Code::Internal,
            Self::Other { code, .. } => *code,
            Self::Connect { .. } | Self::Token(_) | Self::Local { .. } => return None,
        })
    }

    /// The proxy's answer, for errors the proxy (or the transport) returned.
    pub fn detail(&self) -> Option<&Detail> {
        match self {
            Self::NotFound(d)
            | Self::InvalidArgument(d)
            | Self::Unauthenticated(d)
            | Self::PermissionDenied(d)
            | Self::Unavailable(d)
            | Self::DeadlineExceeded(d)
            | Self::ResourceExhausted(d)
            | Self::FailedPrecondition(d)
            | Self::Unimplemented(d)
            | Self::Cancelled(d)
            | Self::Internal(d)
            | Self::Other { detail: d, .. } => Some(d),
            Self::Connect { .. } | Self::Token(_) | Self::Local { .. } => None,
        }
    }

    /// The call's `x-prism-trace-id`, to paste into the trace store.
    pub fn trace_id(&self) -> Option<&str> {
        self.detail().and_then(|d| d.trace_id.as_deref())
    }

    /// The error for `status`; `fallback_trace_id` is used when the status
    /// itself has none (a stream that fails after its headers).
    pub(crate) fn from_status(status: &tonic::Status, fallback_trace_id: Option<&str>) -> Self {
        // A transport failure (a refused TLS handshake, a reset) arrives as
        // a status whose source says what happened; keep it in the message.
        let mut message = status.message().to_string();
        if let Some(source) = std::error::Error::source(status) {
            let cause = crate::tls::chain(source);
            if cause.starts_with(&message) {
                message = cause;
            } else if !message.contains(&cause) {
                message = format!("{message}: {cause}");
            }
        }
        let detail = Detail {
            message,
            trace_id: trace_id(status.metadata()).or_else(|| fallback_trace_id.map(str::to_string)),
        };
        match status.code() {
            Code::NotFound => Self::NotFound(detail),
            Code::InvalidArgument => Self::InvalidArgument(detail),
            Code::Unauthenticated => Self::Unauthenticated(detail),
            Code::PermissionDenied => Self::PermissionDenied(detail),
            Code::Unavailable => Self::Unavailable(detail),
            Code::DeadlineExceeded => Self::DeadlineExceeded(detail),
            Code::ResourceExhausted => Self::ResourceExhausted(detail),
            Code::FailedPrecondition => Self::FailedPrecondition(detail),
            Code::Unimplemented => Self::Unimplemented(detail),
            Code::Cancelled => Self::Cancelled(detail),
            Code::Internal => Self::Internal(detail),
            code => Self::Other { code, detail },
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Self::from_status(&status, None)
    }
}

/// `x-prism-trace-id` in `metadata`, if present and printable.
pub(crate) fn trace_id(metadata: &MetadataMap) -> Option<String> {
    metadata
        .get(TRACE_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: Code, trace: Option<&str>) -> tonic::Status {
        let mut metadata = MetadataMap::new();
        if let Some(id) = trace {
            metadata.insert(TRACE_ID_HEADER, id.parse().unwrap());
        }
        tonic::Status::with_metadata(code, "the proxy's words", metadata)
    }

    #[test]
    fn every_mapped_code_keeps_its_code_message_and_trace_id() {
        let codes = [
            Code::NotFound,
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::PermissionDenied,
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
            Code::FailedPrecondition,
            Code::Unimplemented,
            Code::Cancelled,
            Code::Internal,
            Code::Aborted,
            Code::Unknown,
        ];
        for code in codes {
            let error = Error::from(status(code, Some("abc123")));
            assert_eq!(error.code(), Some(code));
            let detail = error.detail().unwrap();
            assert_eq!(detail.message, "the proxy's words");
            assert_eq!(error.trace_id(), Some("abc123"));
            let shown = error.to_string();
            assert!(shown.contains("the proxy's words"), "{shown}");
            assert!(shown.contains("trace id abc123"), "{shown}");
        }
        assert!(matches!(
            Error::from(status(Code::NotFound, None)),
            Error::NotFound(_)
        ));
    }

    #[test]
    fn a_transport_failure_keeps_its_cause_in_the_message_once() {
        let cause = |text: &str| -> std::sync::Arc<dyn std::error::Error + Send + Sync> {
            std::sync::Arc::new(std::io::Error::other(text.to_string()))
        };
        let mut status = tonic::Status::unknown("transport error");
        status.set_source(cause("received fatal alert: CertificateRequired"));
        let error = Error::from(status);
        assert_eq!(
            error.detail().unwrap().message,
            "transport error: received fatal alert: CertificateRequired"
        );
        // A cause that already starts with the message replaces it.
        let mut status = tonic::Status::cancelled("operation was canceled");
        status.set_source(cause("operation was canceled: connection closed"));
        assert_eq!(
            Error::from(status).detail().unwrap().message,
            "operation was canceled: connection closed"
        );
    }

    #[test]
    fn a_stream_error_without_its_own_trace_id_takes_the_calls() {
        let error = Error::from_status(&status(Code::Unavailable, None), Some("from-headers"));
        assert_eq!(error.trace_id(), Some("from-headers"));
        let error = Error::from_status(&status(Code::Unavailable, Some("own")), Some("headers"));
        assert_eq!(error.trace_id(), Some("own"));
        let error = Error::from(status(Code::Internal, None));
        assert!(error.to_string().contains("no trace id"), "{error}");
    }
}
