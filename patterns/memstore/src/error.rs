//! MemStore's errors and [`to_status`], the one place they become gRPC
//! statuses (the KeyValue and PubSub services both answer through it).

use prism_proto::FieldError;
use tonic::Status;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A request field breaks one of the rules every edge shares.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// A new key would go past the configured capacity.
    #[error("store is full: {max_keys} keys (max_keys)")]
    Full { max_keys: usize },
    #[error("key not found")]
    KeyNotFound,
    /// The call needs acknowledgements, which at-most-once delivery lacks.
    #[error("{0}: MemStore delivers at most once; there is nothing to acknowledge")]
    AtMostOnce(&'static str),
}

/// The one mapping from MemStore's errors to gRPC statuses.
pub(crate) fn to_status(err: Error) -> Status {
    let message = err.to_string();
    match err {
        Error::Invalid(_) => Status::invalid_argument(message),
        Error::Full { .. } => Status::resource_exhausted(message),
        Error::KeyNotFound => Status::not_found(message),
        Error::AtMostOnce(_) => Status::unimplemented(message),
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        to_status(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn every_variant_maps_to_its_code() {
        let cases = [
            (
                Error::Invalid(FieldError::new("metadata", "keys must not be empty")),
                Code::InvalidArgument,
            ),
            (Error::Full { max_keys: 3 }, Code::ResourceExhausted),
            (Error::KeyNotFound, Code::NotFound),
            (Error::AtMostOnce("manual_ack"), Code::Unimplemented),
        ];
        for (err, code) in cases {
            let text = err.to_string();
            let status = to_status(err);
            assert_eq!(status.code(), code, "{text}");
            assert_eq!(status.message(), text);
        }
    }

    #[test]
    fn messages_name_the_field_or_setting() {
        let full = to_status(Error::Full { max_keys: 3 });
        assert!(full.message().contains("max_keys"), "{}", full.message());
        let invalid = to_status(FieldError::new("subscriber_id", "must not be empty").into());
        assert_eq!(invalid.message(), "subscriber_id: must not be empty");
    }
}
