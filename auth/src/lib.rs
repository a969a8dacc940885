//! `prism-auth`: who is calling Prism.
//!
//! - [`http`]: the small HTTPS/HTTP client every OpenID Connect exchange goes
//!   through (discovery, JWKS, device-code and token endpoints), with bounded
//!   bodies and timeouts.
//! - [`device`]: the device-code login (RFC 8628) and token refresh of a
//!   public client such as the console.
//! - [`token_cache`]: the login's cache (`~/.prism/token`) and
//!   [`TokenProvider`], the token a client sends, kept fresh.
//! - [`secret`]: [`Secret`], a token that never prints itself.
//! - [`error`]: the crate's one error type.

pub mod device;
pub mod error;
pub mod http;
pub mod secret;
pub mod token_cache;

pub use error::{AuthError, LoginFailure};
pub use secret::Secret;
pub use token_cache::TokenProvider;
