//! Why a Redis call failed, and the one place that turns it into a gRPC
//! status ([`to_status`]).

use std::time::Duration;

use deadpool::managed::{PoolError, TimeoutType};
use prism_proto::FieldError;
use redis::{ErrorKind, ServerErrorKind};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field breaks one of the rules every edge shares.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// A call came before `Initialize` configured the backend.
    #[error("pattern is not initialized")]
    NotInitialized,
    #[error("key not found")]
    KeyNotFound,
    /// Every pooled connection stayed busy for the whole wait.
    #[error("all {pool_size} redis connections stayed busy for {waited:?} (pool_size)")]
    PoolBusy { pool_size: usize, waited: Duration },
    /// Opening a connection did not finish in time.
    #[error("connecting to redis timed out after {0:?} (connect_timeout_ms)")]
    ConnectTimeout(Duration),
    /// The pattern is stopping and has closed its pool.
    #[error("the redis connection pool is closed")]
    Closed,
    /// The pool misbehaved in a way it should not (no runtime, a hook failed).
    #[error("redis connection pool: {0}")]
    Pool(String),
    /// What the redis client or server said.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl Error {
    /// Translates a pool checkout failure, given the timeouts it ran under.
    pub(crate) fn from_pool(
        err: PoolError<redis::RedisError>,
        pool_size: usize,
        wait: Duration,
        connect: Duration,
    ) -> Self {
        match err {
            PoolError::Timeout(TimeoutType::Wait) => Self::PoolBusy {
                pool_size,
                waited: wait,
            },
            // Recycling never waits on the server (see `pool`), so a recycle
            // timeout is as good as a failed reconnect.
            PoolError::Timeout(TimeoutType::Create | TimeoutType::Recycle) => {
                Self::ConnectTimeout(connect)
            }
            PoolError::Backend(err) => Self::Redis(err),
            PoolError::Closed => Self::Closed,
            other @ (PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_)) => {
                Self::Pool(other.to_string())
            }
        }
    }

    /// True when the connection that saw this error should not be reused
    /// and a read may be retried on a fresh one.
    pub fn breaks_connection(&self) -> bool {
        match self {
            Self::Redis(err) => {
                err.is_io_error()
                    || err.is_timeout()
                    || err.is_connection_dropped()
                    || err.is_unrecoverable_error()
            }
            Self::ConnectTimeout(_) => true,
            Self::PoolBusy { .. }
            | Self::Closed
            | Self::Pool(_)
            | Self::Invalid(_)
            | Self::NotInitialized
            | Self::KeyNotFound => false,
        }
    }
}

/// The one mapping from Redis failures to gRPC status codes:
///
/// | failure | code |
/// |---|---|
/// | a request field breaks a rule (key, value, TTL, prefix, cursor) | `INVALID_ARGUMENT` |
/// | no such key | `NOT_FOUND` |
/// | called before `Initialize` | `UNAVAILABLE` |
/// | connection refused, reset, I/O error, timeout, pool busy or closed | `UNAVAILABLE` (retryable) |
/// | server loading, TRYAGAIN, MASTERDOWN, CLUSTERDOWN, READONLY (failover) | `UNAVAILABLE` |
/// | server out of memory (OOM) | `RESOURCE_EXHAUSTED` |
/// | key holds another type (WRONGTYPE) | `FAILED_PRECONDITION` |
/// | wrong credentials or ACL (NOAUTH, WRONGPASS, NOPERM) | `INTERNAL`: the operator must fix the config |
/// | anything else the server or client reports | `INTERNAL` |
pub(crate) fn to_status(err: &Error) -> Status {
    Status::new(code(err), err.to_string())
}

impl Error {
    /// True when the server cannot be reached or cannot serve right now
    /// (refused, reset, timed out, pool busy or closed, loading, failover):
    /// the failures [`to_status`] makes `UNAVAILABLE`, worth retrying later.
    pub fn is_unreachable(&self) -> bool {
        code(self) == Code::Unavailable
    }

    /// True when the server is out of memory (`OOM`).
    pub fn is_out_of_memory(&self) -> bool {
        code(self) == Code::ResourceExhausted
    }
}

fn code(err: &Error) -> Code {
    match err {
        Error::Invalid(_) => Code::InvalidArgument,
        Error::KeyNotFound => Code::NotFound,
        Error::NotInitialized
        | Error::PoolBusy { .. }
        | Error::ConnectTimeout(_)
        | Error::Closed => Code::Unavailable,
        Error::Pool(_) => Code::Internal,
        Error::Redis(err) => redis_code(err),
    }
}

fn redis_code(err: &redis::RedisError) -> Code {
    match err.kind() {
        ErrorKind::Io => Code::Unavailable,
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
            | ServerErrorKind::TryAgain
            | ServerErrorKind::MasterDown
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::ReadOnly,
        ) => Code::Unavailable,
        ErrorKind::Extension => match err.code() {
            Some("OOM") => Code::ResourceExhausted,
            Some("WRONGTYPE") => Code::FailedPrecondition,
            _ => Code::Internal,
        },
        _ => Code::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    /// An I/O failure as the redis client reports it (refused, reset, timed out).
    fn io_error(kind: io::ErrorKind) -> Error {
        Error::Redis(io::Error::new(kind, "test").into())
    }

    fn general(kind: ErrorKind) -> Error {
        Error::Redis((kind, "test").into())
    }

    fn extension(code: &str) -> Error {
        Error::Redis(redis::make_extension_error(
            code.into(),
            Some("detail".into()),
        ))
    }

    #[test]
    fn every_failure_maps_to_its_code() {
        let ms = Duration::from_millis;
        let cases = [
            // The request is at fault.
            (
                Error::Invalid(FieldError::new("cursor", "not a cursor this server issued")),
                Code::InvalidArgument,
            ),
            (Error::KeyNotFound, Code::NotFound),
            (Error::NotInitialized, Code::Unavailable),
            // Unreachable or overloaded: retry later.
            (
                io_error(io::ErrorKind::ConnectionRefused),
                Code::Unavailable,
            ),
            (io_error(io::ErrorKind::ConnectionReset), Code::Unavailable),
            (io_error(io::ErrorKind::BrokenPipe), Code::Unavailable),
            (io_error(io::ErrorKind::UnexpectedEof), Code::Unavailable),
            (io_error(io::ErrorKind::TimedOut), Code::Unavailable),
            (io_error(io::ErrorKind::Other), Code::Unavailable),
            (general(ErrorKind::Io), Code::Unavailable),
            (
                Error::PoolBusy {
                    pool_size: 4,
                    waited: ms(10),
                },
                Code::Unavailable,
            ),
            (Error::ConnectTimeout(ms(10)), Code::Unavailable),
            (Error::Closed, Code::Unavailable),
            // The server cannot serve right now.
            (
                general(ErrorKind::Server(ServerErrorKind::BusyLoading)),
                Code::Unavailable,
            ),
            (
                general(ErrorKind::Server(ServerErrorKind::TryAgain)),
                Code::Unavailable,
            ),
            (
                general(ErrorKind::Server(ServerErrorKind::MasterDown)),
                Code::Unavailable,
            ),
            (
                general(ErrorKind::Server(ServerErrorKind::ClusterDown)),
                Code::Unavailable,
            ),
            (
                general(ErrorKind::Server(ServerErrorKind::ReadOnly)),
                Code::Unavailable,
            ),
            // The server refuses this request.
            (extension("OOM"), Code::ResourceExhausted),
            (extension("WRONGTYPE"), Code::FailedPrecondition),
            // Misconfiguration or a bug: nothing a client can do.
            (extension("NOAUTH"), Code::Internal),
            (extension("WRONGPASS"), Code::Internal),
            (general(ErrorKind::AuthenticationFailed), Code::Internal),
            (
                general(ErrorKind::Server(ServerErrorKind::NoPerm)),
                Code::Internal,
            ),
            (
                general(ErrorKind::Server(ServerErrorKind::ResponseError)),
                Code::Internal,
            ),
            (
                general(ErrorKind::Server(ServerErrorKind::ExecAbort)),
                Code::Internal,
            ),
            (general(ErrorKind::Parse), Code::Internal),
            (general(ErrorKind::UnexpectedReturnType), Code::Internal),
            (general(ErrorKind::InvalidClientConfig), Code::Internal),
            (general(ErrorKind::Client), Code::Internal),
            (Error::Pool("no runtime".into()), Code::Internal),
        ];
        for (err, code) in cases {
            let status = to_status(&err);
            assert_eq!(status.code(), code, "{err}");
            assert_eq!(status.message(), err.to_string());
            assert_eq!(err.is_unreachable(), code == Code::Unavailable, "{err}");
            assert_eq!(
                err.is_out_of_memory(),
                code == Code::ResourceExhausted,
                "{err}"
            );
        }
    }

    #[test]
    fn pool_failures_are_translated() {
        let (wait, connect) = (Duration::from_millis(7), Duration::from_millis(9));
        let from = |e| Error::from_pool(e, 3, wait, connect);
        assert!(matches!(
            from(PoolError::Timeout(TimeoutType::Wait)),
            Error::PoolBusy { pool_size: 3, waited } if waited == wait
        ));
        assert!(matches!(
            from(PoolError::Timeout(TimeoutType::Create)),
            Error::ConnectTimeout(d) if d == connect
        ));
        assert!(matches!(from(PoolError::Closed), Error::Closed));
        assert!(matches!(
            from(PoolError::NoRuntimeSpecified),
            Error::Pool(_)
        ));
        let refused: redis::RedisError = io::Error::from(io::ErrorKind::ConnectionRefused).into();
        assert!(matches!(from(PoolError::Backend(refused)), Error::Redis(_)));
    }

    #[test]
    fn pool_busy_names_the_setting() {
        let err = Error::PoolBusy {
            pool_size: 4,
            waited: Duration::from_millis(10),
        };
        assert!(to_status(&err).message().contains("pool_size"));
    }

    #[test]
    fn only_connection_failures_break_the_connection() {
        assert!(io_error(io::ErrorKind::ConnectionReset).breaks_connection());
        assert!(io_error(io::ErrorKind::TimedOut).breaks_connection());
        assert!(general(ErrorKind::Parse).breaks_connection());
        assert!(Error::ConnectTimeout(Duration::ZERO).breaks_connection());
        assert!(!extension("WRONGTYPE").breaks_connection());
        assert!(!general(ErrorKind::Server(ServerErrorKind::ResponseError)).breaks_connection());
        assert!(
            !Error::PoolBusy {
                pool_size: 1,
                waited: Duration::ZERO
            }
            .breaks_connection()
        );
    }
}
