//! `prism-auth`: who is calling Prism.
//!
//! - [`http`]: the small HTTPS/HTTP client every OpenID Connect exchange goes
//!   through (discovery, JWKS, device-code and token endpoints), with bounded
//!   bodies and timeouts.
//! - [`keys`]: one trusted issuer's signing keys (discovery, JWKS cache,
//!   background refresh, rate-limited refetch on an unknown key id).
//! - [`verify`]: [`Verifier`] turns a bearer token into a [`Principal`],
//!   remembering tokens that passed until they expire.
//! - `ring_crypto`: signatures checked with ring, installed by the verifier.
//! - [`principal`]: who a caller is, and the names policies use for callers.
//! - [`device`]: the device-code login (RFC 8628) and token refresh of a
//!   public client such as the console.
//! - [`token_cache`]: the login's cache (`~/.prism/token`) and
//!   [`TokenProvider`], the token a client sends, kept fresh.
//! - [`secret`]: [`Secret`], a token that never prints itself.
//! - [`error`]: the crate's one error type; [`Rejection`] says what is wrong
//!   with a token.

pub mod device;
pub mod error;
pub mod http;
pub mod keys;
pub mod principal;
mod ring_crypto;
pub mod secret;
pub mod token_cache;
pub mod verify;

pub use error::{AuthError, LoginFailure, Rejection};
pub use jsonwebtoken::Algorithm;
pub use keys::{IssuerSettings, KeyTiming};
pub use principal::{Principal, PrincipalKind, PrincipalName};
pub use ring_crypto::install as install_crypto;
pub use secret::Secret;
pub use token_cache::TokenProvider;
pub use verify::{IssuerStatus, Verifier, VerifierSettings};
