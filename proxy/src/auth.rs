//! Authentication and authorization in the proxy. With `auth:` in the
//! config, every data-plane and admin call (but health checks and
//! reflection) must carry `authorization: Bearer <jwt>` — or come over a
//! verified client certificate — and its caller must hold the right the
//! method needs ([`policy`]). [`layer`] does it in front of the services, so
//! handlers only see calls that passed, with the caller in the request's
//! extensions ([`Caller`]); streams end when the caller's token expires
//! ([`expiry`]). The verifier and the policy are swapped whole on a config
//! reload.

pub(crate) mod expiry;
pub(crate) mod layer;
pub(crate) mod policy;

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use prism_auth::{AuthError, Principal, Rejection, Verifier, VerifierSettings};

use crate::{
    config::{Config, auth::AuthConfig},
    error::ProxyError,
};
use policy::Policy;

/// The authenticated caller of a call, put in its request extensions, with
/// its name (`sub:…`, `cert:…`) made once for the span, the pattern and the
/// audit.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub principal: Arc<Principal>,
    pub name: Arc<str>,
}

impl Caller {
    pub(crate) fn new(principal: Arc<Principal>) -> Self {
        let name = Arc::from(principal.name());
        Self { principal, name }
    }
}

/// What one config says about auth; absent when auth is off.
pub(crate) struct Enabled {
    pub config: AuthConfig,
    /// `None` when no issuer is configured (client certificates only).
    /// Shared with the next config's rules when its `auth` block is the
    /// same, so a reload keeps the fetched keys and remembered tokens.
    pub verifier: Option<Arc<Verifier>>,
    pub policy: Policy,
}

#[derive(Default)]
pub(crate) struct Auth {
    current: RwLock<Option<Arc<Enabled>>>,
}

impl Auth {
    /// Auth as `config` says. Must run inside a Tokio runtime (the issuers'
    /// keys are fetched in the background).
    pub(crate) fn from_config(config: &Config) -> Self {
        let auth = Self::default();
        auth.apply(config);
        auth
    }

    /// Takes a reloaded config: a changed `auth` block starts a new verifier
    /// (keys fetched afresh); the policy is always rebuilt, so access
    /// changes apply to the next call.
    pub(crate) fn apply(&self, config: &Config) {
        let mut current = self.current.write().expect("auth");
        let next = config.auth.as_ref().map(|auth_config| {
            let verifier = match current.as_ref() {
                Some(old) if old.config == *auth_config => old.verifier.clone(),
                _ => start_verifier(auth_config).map(Arc::new),
            };
            Arc::new(Enabled {
                config: auth_config.clone(),
                verifier,
                policy: Policy::from_config(config),
            })
        });
        *current = next;
    }

    /// The rules in force; `None` when auth is off.
    pub(crate) fn current(&self) -> Option<Arc<Enabled>> {
        self.current.read().expect("auth").clone()
    }
}

fn start_verifier(config: &AuthConfig) -> Option<Verifier> {
    if config.issuers.is_empty() {
        return None;
    }
    let settings = VerifierSettings {
        issuers: config
            .issuers
            .iter()
            .map(|i| prism_auth::IssuerSettings {
                issuer: i.issuer.clone(),
                audiences: i.audiences.clone(),
                jwks_uri: i.jwks_uri.clone(),
                ca_file: i.ca_file.clone(),
            })
            .collect(),
        algorithms: (0..config.algorithms.len())
            .filter_map(|i| config.algorithm(i).ok())
            .collect(),
        leeway: Duration::from_secs(config.leeway_seconds),
        groups_claim: config.groups_claim.clone(),
        scopes_claim: config.scopes_claim.clone(),
        timing: prism_auth::KeyTiming {
            refresh: Duration::from_millis(config.key_refresh_ms),
            refetch_min: Duration::from_millis(config.key_refetch_min_ms),
        },
        cache_capacity: config.token_cache_capacity,
    };
    match Verifier::start(settings) {
        Ok(verifier) => Some(verifier),
        Err(e) => {
            // Only a bad `ca_file` gets here; its issuer's tokens are then
            // refused as untrusted, and the log says why.
            tracing::error!(error = %e, "cannot use the configured issuers; tokens will be refused");
            None
        }
    }
}

impl Enabled {
    /// Who is calling: the bearer token if there is one, else the verified
    /// client certificate's common name.
    ///
    /// Errors: `Unauthenticated` for a missing or unacceptable token,
    /// `AuthUnavailable` when the token's issuer cannot be reached.
    pub(crate) async fn authenticate(
        &self,
        headers: &http::HeaderMap,
        certificate: Option<&str>,
    ) -> Result<Arc<Principal>, ProxyError> {
        let token = match headers.get(http::header::AUTHORIZATION) {
            Some(value) => bearer(value)?,
            None => {
                return match certificate {
                    Some(cn) => Ok(Arc::new(Principal::from_certificate(cn))),
                    None => Err(ProxyError::Unauthenticated(Rejection::Missing)),
                };
            }
        };
        let Some(verifier) = &self.verifier else {
            return Err(ProxyError::Unauthenticated(Rejection::UntrustedIssuer));
        };
        verifier.verify(token).await.map_err(|e| match e {
            AuthError::Rejected(r) => ProxyError::Unauthenticated(r),
            AuthError::Unavailable { issuer, reason } => {
                ProxyError::AuthUnavailable { issuer, reason }
            }
            other => ProxyError::AuthUnavailable {
                issuer: String::new(),
                reason: other.to_string(),
            },
        })
    }
}

/// The token of an `authorization: Bearer <token>` header.
fn bearer(value: &http::HeaderValue) -> Result<&str, ProxyError> {
    let text = value
        .to_str()
        .map_err(|_| ProxyError::Unauthenticated(Rejection::NotBearer))?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ProxyError::Unauthenticated(Rejection::NotBearer)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(issuer: &str, readers: &str) -> Config {
        Config::from_yaml(&format!(
            "auth:\n  issuers:\n    - {{issuer: '{issuer}', audiences: [prism]}}\nnamespaces:\n  - {{name: a, pattern: keyvalue, access: {{read: ['{readers}']}}}}\n"
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn a_reload_keeps_the_verifier_unless_the_auth_block_changed() {
        let auth = Auth::from_config(&config("http://127.0.0.1:1", "group:x"));
        let first = auth.current().unwrap();
        let same = |a: &Enabled, b: &Enabled| {
            Arc::ptr_eq(a.verifier.as_ref().unwrap(), b.verifier.as_ref().unwrap())
        };

        auth.apply(&config("http://127.0.0.1:1", "group:y"));
        let second = auth.current().unwrap();
        assert!(
            same(&first, &second),
            "only access changed: keys and tokens kept"
        );
        auth.apply(&config("http://127.0.0.1:2", "group:y"));
        assert!(
            !same(&second, &auth.current().unwrap()),
            "a new issuer: a new verifier"
        );

        auth.apply(&Config::default());
        assert!(auth.current().is_none(), "auth turned off by a reload");
    }

    #[test]
    fn only_bearer_headers_carry_a_token() {
        let v = |s: &'static str| http::HeaderValue::from_static(s);
        assert_eq!(bearer(&v("Bearer abc.def.ghi")).unwrap(), "abc.def.ghi");
        assert_eq!(bearer(&v("bearer  abc ")).unwrap(), "abc");
        for bad in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "abc.def.ghi"] {
            assert!(
                matches!(
                    bearer(&v(bad)),
                    Err(ProxyError::Unauthenticated(Rejection::NotBearer))
                ),
                "{bad}"
            );
        }
    }
}
