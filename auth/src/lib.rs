//! `prism-auth`: who is calling Prism.
//!
//! - [`http`]: the small HTTPS/HTTP client every OpenID Connect exchange goes
//!   through (discovery, JWKS, device-code and token endpoints), with bounded
//!   bodies and timeouts.
//! - [`keys`]: one trusted issuer's signing keys (discovery, JWKS cache,
//!   background refresh, rate-limited refetch on an unknown key id).
//! - [`verify`]: [`Verifier`] turns a bearer token into a [`Principal`],
//!   remembering tokens that passed until they expire.
//! - [`principal`]: who a caller is, and the names policies use for callers.
//! - [`error`]: the crate's one error type; [`Rejection`] says what is wrong
//!   with a token.

pub mod error;
pub mod http;
pub mod keys;
pub mod principal;
pub mod verify;

pub use error::{AuthError, Rejection};
pub use jsonwebtoken::Algorithm;
pub use keys::{IssuerSettings, KeyTiming};
pub use principal::{Principal, PrincipalKind, PrincipalName};
pub use verify::{IssuerStatus, Verifier, VerifierSettings};
