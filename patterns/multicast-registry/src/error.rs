//! The registry pattern's failures and their one map to gRPC status.

use prism_proto::FieldError;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A request field breaks a rule.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// Get or Receive of an identity that is not registered (or expired).
    #[error("identity `{}` is not registered", prism_proto::field::quote(.0))]
    NotRegistered(String),
    /// A new identity past `max_identities`, or an inbox or buffer that is full.
    #[error("{0}")]
    Exhausted(String),
    /// A slot's backend cannot be reached; `backend` names it (`redis`, `nats`).
    #[error("{backend} unreachable: {reason}")]
    Unreachable {
        backend: &'static str,
        reason: String,
    },
    /// A call before Start or after Stop.
    #[error(transparent)]
    Lifecycle(#[from] prism_pattern_sdk::LifecycleError),
    /// Data in a backend this pattern did not write (or a bug); never the client's fault.
    #[error("{0}")]
    Internal(String),
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        let code = match &err {
            Error::Lifecycle(_) => {
                let Error::Lifecycle(lifecycle) = err else {
                    unreachable!("matched above")
                };
                return lifecycle.into();
            }
            Error::Field(_) => Code::InvalidArgument,
            Error::NotRegistered(_) => Code::NotFound,
            Error::Exhausted(_) => Code::ResourceExhausted,
            Error::Unreachable { .. } => Code::Unavailable,
            Error::Internal(_) => Code::Internal,
        };
        Status::new(code, err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_code() {
        let cases = [
            (
                Error::Field(FieldError::new("identity", "must not be empty")),
                Code::InvalidArgument,
                "identity: must not be empty",
            ),
            (
                Error::NotRegistered("sensor-9".into()),
                Code::NotFound,
                "identity `sensor-9` is not registered",
            ),
            (
                Error::Exhausted("max_identities (10) reached".into()),
                Code::ResourceExhausted,
                "max_identities (10) reached",
            ),
            (
                Error::Unreachable {
                    backend: "redis",
                    reason: "connection refused".into(),
                },
                Code::Unavailable,
                "redis unreachable: connection refused",
            ),
            (
                Error::Internal("bad record".into()),
                Code::Internal,
                "bad record",
            ),
        ];
        for (err, code, message) in cases {
            let status = Status::from(err);
            assert_eq!((status.code(), status.message()), (code, message));
        }
    }
}
