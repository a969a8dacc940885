//! What a call's gRPC status means to an operator: the one classification
//! that ERR%, the admin API's error figures, the `outcome` label of
//! `prism_requests_total` and the failure exemplars all use.
//!
//! - `error`: the server side failed, and a retry or a fix on the server is
//!   what helps — `UNKNOWN`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`,
//!   `ABORTED`, `INTERNAL`, `UNAVAILABLE`, `DATA_LOSS`.
//! - `client_error`: the call was answered as designed, and only the caller
//!   can change the outcome — `CANCELLED` (the caller gave up),
//!   `INVALID_ARGUMENT`, `NOT_FOUND` (a missing key is an answer),
//!   `ALREADY_EXISTS`, `PERMISSION_DENIED`, `UNAUTHENTICATED`,
//!   `FAILED_PRECONDITION`, `OUT_OF_RANGE`, and `UNIMPLEMENTED`: in Prism it
//!   means the namespace's backend lacks the capability asked for (a fixed
//!   property of the namespace, not a failure), so alerting on it would
//!   page for a caller's mistake.
//! - `ok`.
//!
//! `RESOURCE_EXHAUSTED` counts as an error even though the caller's own
//! load may cause it: the proxy answers it when its connection, stream or
//! in-flight bounds are full, which is capacity an operator has to see.

use tonic::Code;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Ok,
    /// The caller's mistake or a normal negative answer; not in ERR%.
    ClientError,
    /// A server-side failure; counted in ERR%.
    Error,
}

impl Outcome {
    /// The classification of `code`.
    pub const fn of(code: Code) -> Outcome {
        match code {
            Code::Ok => Outcome::Ok,
            Code::Cancelled
            | Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unimplemented => Outcome::ClientError,
            Code::Unknown
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss => Outcome::Error,
        }
    }

    /// The `outcome` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::Error => "error",
        }
    }
}

/// The canonical name of a gRPC status code, e.g. `NOT_FOUND`.
pub const fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_documented_outcome() {
        use Outcome::*;
        let table = [
            (Code::Ok, Ok),
            (Code::Cancelled, ClientError),
            (Code::Unknown, Error),
            (Code::InvalidArgument, ClientError),
            (Code::DeadlineExceeded, Error),
            (Code::NotFound, ClientError),
            (Code::AlreadyExists, ClientError),
            (Code::PermissionDenied, ClientError),
            (Code::ResourceExhausted, Error),
            (Code::FailedPrecondition, ClientError),
            (Code::Aborted, Error),
            (Code::OutOfRange, ClientError),
            (Code::Unimplemented, ClientError),
            (Code::Internal, Error),
            (Code::Unavailable, Error),
            (Code::DataLoss, Error),
            (Code::Unauthenticated, ClientError),
        ];
        // All seventeen codes, each once.
        assert_eq!(table.len(), 17);
        for (i, (code, want)) in table.iter().enumerate() {
            assert_eq!(*code as usize, i, "table in code order");
            assert_eq!(Outcome::of(*code), *want, "{code:?}");
        }
        assert_eq!(Outcome::of(Code::NotFound).as_str(), "client_error");
        assert_eq!(Outcome::of(Code::Unavailable).as_str(), "error");
        assert_eq!(Outcome::Ok.as_str(), "ok");
        assert_eq!(code_name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
        assert_eq!(code_name(Code::Ok), "OK");
    }
}
