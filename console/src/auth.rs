//! The console's bearer token: where it comes from (`--token-file`,
//! `PRISM_TOKEN`, the login cache `~/.prism/token`), a task that keeps it
//! fresh, and the interceptor that puts it on every admin call.
//!
//! The interceptor is synchronous, so the token lives in a shared slot
//! ([`Bearer`]) that [`keep_fresh`] fills; the token provider refreshes a
//! cached token before it expires.

use std::{
    fmt,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::Duration,
};

use prism_auth::{Secret, TokenProvider, http::HttpClient, token_cache};
use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::Interceptor,
};

use crate::Error;

/// How often the token is asked for again; a cached token is refreshed
/// only when it is due, so this costs a file check.
pub(crate) const REFRESH_CHECK: Duration = Duration::from_secs(1);

/// The token for the admin calls, shared between [`keep_fresh`] and the
/// interceptor on every call. Empty: no `authorization` header (a proxy
/// with auth off needs none).
#[derive(Clone, Default)]
pub(crate) struct Bearer {
    header: Arc<RwLock<Option<Header>>>,
}

#[derive(Clone)]
enum Header {
    Value(MetadataValue<Ascii>),
    /// The token cannot travel in a header; every call says so.
    Unusable,
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*self
            .header
            .read()
            .expect("the token slot is never poisoned")
        {
            None => "none",
            Some(_) => "<redacted>",
        };
        f.debug_struct("Bearer").field("token", &state).finish()
    }
}

impl Bearer {
    pub(crate) fn set(&self, token: &Secret) {
        let header = match format!("Bearer {}", token.expose()).parse::<MetadataValue<Ascii>>() {
            Ok(mut value) => {
                value.set_sensitive(true);
                Header::Value(value)
            }
            Err(_) => Header::Unusable,
        };
        *self
            .header
            .write()
            .expect("the token slot is never poisoned") = Some(header);
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        match &*self
            .header
            .read()
            .expect("the token slot is never poisoned")
        {
            None => {}
            Some(Header::Value(value)) => {
                request
                    .metadata_mut()
                    .insert("authorization", value.clone());
            }
            Some(Header::Unusable) => {
                return Err(Status::unauthenticated(
                    "the token holds characters a header cannot carry",
                ));
            }
        }
        Ok(request)
    }
}

/// The token source the flags and environment name: `--token-file`, then
/// `PRISM_TOKEN`, then the login cache under `HOME` if there is one.
/// `None`: no token at all.
pub(crate) fn token_provider(
    token_file: Option<PathBuf>,
    env_token: Option<String>,
) -> Result<Option<TokenProvider>, Error> {
    TokenProvider::choose(
        token_file,
        env_token,
        token_cache::default_path_from_env(),
        HttpClient::new(),
    )
    .map_err(Error::Token)
}

/// Fills `bearer` now and then keeps it fresh for as long as the console
/// runs. A token that cannot be had leaves the last one in place: the proxy
/// then answers UNAUTHENTICATED, which the console shows with what to do.
pub(crate) async fn keep_fresh(tokens: TokenProvider, bearer: Bearer) {
    loop {
        if let Ok(token) = tokens.token().await {
            bearer.set(&token);
        }
        tokio::time::sleep(REFRESH_CHECK).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of(bearer: &mut Bearer) -> Result<Option<String>, Status> {
        let request = bearer.call(Request::new(()))?;
        Ok(request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string()))
    }

    #[test]
    fn every_call_carries_the_current_token() {
        let mut bearer = Bearer::default();
        assert_eq!(header_of(&mut bearer).unwrap(), None, "no token, no header");
        bearer.set(&Secret::new("first"));
        assert_eq!(header_of(&mut bearer).unwrap().unwrap(), "Bearer first");
        // A clone shares the slot: the refresh task and every client see one token.
        bearer.clone().set(&Secret::new("second"));
        assert_eq!(header_of(&mut bearer).unwrap().unwrap(), "Bearer second");
        assert!(!format!("{bearer:?}").contains("second"));
    }

    #[test]
    fn a_token_that_cannot_be_a_header_fails_the_call_without_quoting_it() {
        let mut bearer = Bearer::default();
        bearer.set(&Secret::new("bad\ntoken"));
        let status = header_of(&mut bearer).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        assert!(!status.message().contains("bad"), "{}", status.message());
    }
}
