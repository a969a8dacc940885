//! The lifecycle server's errors and the one place they become gRPC
//! statuses. A pattern's data-plane services map their own errors; they meet
//! this enum only through [`Gate::check`](crate::Gate::check).

use tonic::Status;

use crate::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("pattern is not started yet")]
    NotStarted,
    #[error("pattern is stopping")]
    Stopping,
    #[error("Initialize must come first")]
    NotInitialized,
    #[error("pattern is already started; a new config needs a new process")]
    AlreadyStarted,
    /// The pattern refused its namespace's config; the proxy shows the message.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl From<LifecycleError> for Status {
    fn from(err: LifecycleError) -> Self {
        let message = err.to_string();
        match err {
            LifecycleError::NotStarted | LifecycleError::Stopping => Status::unavailable(message),
            LifecycleError::NotInitialized | LifecycleError::AlreadyStarted => {
                Status::failed_precondition(message)
            }
            LifecycleError::Config(_) => Status::invalid_argument(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn every_variant_maps_to_its_code() {
        let cases = [
            (LifecycleError::NotStarted, Code::Unavailable),
            (LifecycleError::Stopping, Code::Unavailable),
            (LifecycleError::NotInitialized, Code::FailedPrecondition),
            (LifecycleError::AlreadyStarted, Code::FailedPrecondition),
            (
                LifecycleError::Config(ConfigError::new("address", "not a redis:// URL")),
                Code::InvalidArgument,
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
