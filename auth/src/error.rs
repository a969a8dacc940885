//! The one error type of `prism-auth`. A server maps it to a status in its own
//! error map: [`AuthError::Rejected`] is the caller's fault (`UNAUTHENTICATED`),
//! [`AuthError::Unavailable`] the issuer's (`UNAVAILABLE`); the rest come from
//! talking to an issuer and say which URL failed and why — never a token.

use std::time::Duration;

/// Why a token was not accepted. The message names the problem, never the
/// token or its claims' values beyond the issuer and audience.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no bearer token: send `authorization: Bearer <token>`")]
    Missing,
    #[error("the authorization header is not `Bearer <token>`")]
    NotBearer,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token algorithm {0} is not allowed")]
    Algorithm(String),
    #[error("token has no key id (`kid`) and its issuer has more than one key")]
    NoKeyId,
    #[error("token key id is unknown to its issuer")]
    UnknownKey,
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not trusted")]
    UntrustedIssuer,
    #[error("token audience is not accepted by this issuer's configuration")]
    WrongAudience,
    #[error("token lacks the `{0}` claim")]
    MissingClaim(&'static str),
}

/// Why a device-code login (RFC 8628) ended without tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginFailure {
    #[error("the login was denied at the issuer")]
    Denied,
    #[error("the code expired before it was approved: log in again")]
    Expired,
    #[error("the login was not approved within {0:?}: log in again")]
    TimedOut(Duration),
    #[error("the issuer answered `{0}`")]
    Refused(String),
    #[error("the issuer has no device authorization endpoint")]
    NoDeviceEndpoint,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The caller's token (or its absence) is not acceptable.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The token names a trusted issuer whose keys cannot be had right now.
    #[error("issuer {issuer} is unavailable: {reason}")]
    Unavailable { issuer: String, reason: String },
    /// A request to `url` failed before an answer came back.
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
    /// `url` answered with an HTTP error status.
    #[error("{url}: HTTP {status}{}", error_suffix(.error))]
    Status {
        url: String,
        status: u16,
        /// The OAuth `error` code from the body, when it has one.
        error: Option<String>,
    },
    /// `url` answered something that is not the expected JSON.
    #[error("{url}: unexpected answer: {reason}")]
    Json { url: String, reason: String },
    /// `url` took longer than allowed.
    #[error("{url}: no answer within {0:?}", .timeout)]
    Timeout { url: String, timeout: Duration },
    /// A URL in configuration or in a discovery document is not usable.
    #[error("{url}: {reason}")]
    Url { url: String, reason: String },
    /// A device-code login did not complete.
    #[error("login failed: {0}")]
    Login(#[from] LoginFailure),
    /// There is no usable token: none given, or the cached one expired and
    /// could not be refreshed. The message says what to do.
    #[error("no usable token: {0}")]
    NoToken(String),
    /// Reading or writing a local file (token cache, CA bundle).
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

fn error_suffix(error: &Option<String>) -> String {
    error
        .as_ref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default()
}
