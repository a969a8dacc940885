//! `prism-auth`: who is calling Prism.
//!
//! - [`http`]: the small HTTPS/HTTP client every OpenID Connect exchange goes
//!   through (discovery, JWKS, device-code and token endpoints), with bounded
//!   bodies and timeouts.
//! - [`error`]: the crate's one error type.

pub mod error;
pub mod http;

pub use error::AuthError;
