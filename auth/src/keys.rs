//! One trusted issuer's signing keys: found through its discovery document
//! (or a configured `jwks_uri`), cached, refreshed in the background before
//! the JWKS's `max-age` runs out, and refetched at most once per
//! `refetch_min` when a token names a key id the cache does not hold (the
//! issuer rotated). While no key set was ever fetched, calls get
//! [`AuthError::Unavailable`] naming the issuer and the last failure.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, RwLock},
    time::Duration,
};

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, jwk::Jwk};
use serde::Deserialize;
use tokio::time::Instant;

use crate::{
    AuthError,
    error::Rejection,
    http::{self, HttpClient},
};

/// A trusted issuer as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSettings {
    /// Exactly the `iss` claim its tokens carry.
    pub issuer: String,
    /// A token's `aud` must hold one of these.
    pub audiences: Vec<String>,
    /// Where its keys are; default: from its discovery document.
    pub jwks_uri: Option<String>,
    /// An extra CA to trust when fetching from it over HTTPS.
    pub ca_file: Option<PathBuf>,
}

/// How often keys are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTiming {
    /// Background refresh when the JWKS answer has no `max-age`.
    pub refresh: Duration,
    /// Unknown-key refetches are at most this frequent per issuer.
    pub refetch_min: Duration,
}

impl Default for KeyTiming {
    fn default() -> Self {
        Self {
            refresh: Duration::from_secs(300),
            refetch_min: Duration::from_secs(10),
        }
    }
}

/// A verification key from the JWKS.
pub(crate) struct Key {
    pub decoding: DecodingKey,
    /// The JWK's `alg`, when it pins one.
    pub alg: Option<Algorithm>,
    pub family: AlgorithmFamily,
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<Key>>,
    /// Keys without a `kid`: usable only by tokens without one.
    anonymous: Vec<Arc<Key>>,
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    jwks_uri: Option<String>,
    /// When the JWKS was last asked for (success or not).
    last_attempt: Option<Instant>,
    /// When a token's unknown key id last made us ask again: these are
    /// rate-limited on their own, so a rotation just after a scheduled
    /// fetch is still picked up at once.
    last_refetch: Option<Instant>,
    last_error: Option<String>,
    /// From the last answer's `Cache-Control: max-age`.
    max_age: Option<Duration>,
    /// Bumped by every fetch, so callers queued behind one do not repeat it.
    generation: u64,
}

pub(crate) struct IssuerKeys {
    pub settings: IssuerSettings,
    timing: KeyTiming,
    http: HttpClient,
    state: RwLock<State>,
    fetching: tokio::sync::Mutex<()>,
}

/// Waits between attempts while an issuer cannot be reached: 1 s doubling
/// to 30 s.
fn retry_backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(5)).min(Duration::from_secs(30))
}

/// When to refresh after a good fetch: at 80% of the answer's `max-age`
/// (within 30 s..1 h), else at the configured interval.
pub(crate) fn refresh_after(max_age: Option<Duration>, timing: KeyTiming) -> Duration {
    match max_age {
        Some(age) => age
            .mul_f64(0.8)
            .clamp(Duration::from_secs(30), Duration::from_secs(3600)),
        None => timing.refresh,
    }
}

impl IssuerKeys {
    /// Errors: a bad `ca_file`.
    pub(crate) fn new(settings: IssuerSettings, timing: KeyTiming) -> Result<Self, AuthError> {
        let http = match &settings.ca_file {
            Some(ca) => HttpClient::with_ca_file(ca)?,
            None => HttpClient::new(),
        };
        Ok(Self {
            state: RwLock::new(State {
                jwks_uri: settings.jwks_uri.clone(),
                ..State::default()
            }),
            settings,
            timing,
            http,
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// The key a token with `kid` is checked with.
    ///
    /// Errors: `Rejected(UnknownKey | NoKeyId)` when the issuer's keys hold
    /// no such key even after a refetch; `Unavailable` while no key set
    /// could ever be fetched.
    pub(crate) async fn key(&self, kid: Option<&str>) -> Result<Arc<Key>, AuthError> {
        match self.lookup(kid) {
            Lookup::Found(key) => return Ok(key),
            Lookup::Missing(e) => {
                if !self.claim_refetch() {
                    return Err(e.into());
                }
            }
            Lookup::NoKeys if !self.may_fetch(Duration::from_secs(1)) => {
                return Err(self.unavailable());
            }
            Lookup::NoKeys => {}
        }
        let _ = self.fetch().await;
        match self.lookup(kid) {
            Lookup::Found(key) => Ok(key),
            Lookup::Missing(e) => Err(e.into()),
            Lookup::NoKeys => Err(self.unavailable()),
        }
    }

    fn lookup(&self, kid: Option<&str>) -> Lookup {
        let state = self.state.read().expect("issuer key state");
        let Some(keys) = &state.keys else {
            return Lookup::NoKeys;
        };
        match kid {
            Some(kid) => keys
                .by_kid
                .get(kid)
                .cloned()
                .map_or(Lookup::Missing(Rejection::UnknownKey), Lookup::Found),
            None => match (keys.anonymous.as_slice(), keys.by_kid.len()) {
                ([key], _) => Lookup::Found(key.clone()),
                ([], 1) => Lookup::Found(keys.by_kid.values().next().expect("one key").clone()),
                _ => Lookup::Missing(Rejection::NoKeyId),
            },
        }
    }

    /// Whether an unknown key id may refetch now (and if so, marks it done).
    fn claim_refetch(&self) -> bool {
        let mut state = self.state.write().expect("issuer key state");
        let allowed = state
            .last_refetch
            .is_none_or(|at| at.elapsed() >= self.timing.refetch_min);
        if allowed {
            state.last_refetch = Some(Instant::now());
        }
        allowed
    }

    fn may_fetch(&self, min_interval: Duration) -> bool {
        let state = self.state.read().expect("issuer key state");
        state
            .last_attempt
            .is_none_or(|at| at.elapsed() >= min_interval)
    }

    fn unavailable(&self) -> AuthError {
        let state = self.state.read().expect("issuer key state");
        AuthError::Unavailable {
            issuer: self.settings.issuer.clone(),
            reason: state
                .last_error
                .clone()
                .unwrap_or_else(|| "its keys have not been fetched yet".into()),
        }
    }

    /// Whether a key set is held, and the last fetch error if the last
    /// fetch failed.
    pub(crate) fn status(&self) -> (usize, Option<String>) {
        let state = self.state.read().expect("issuer key state");
        let keys = state
            .keys
            .as_ref()
            .map_or(0, |k| k.by_kid.len() + k.anonymous.len());
        (keys, state.last_error.clone())
    }

    /// Fetches the key set now (one fetch at a time; a caller that waited
    /// for another's fetch takes its result).
    pub(crate) async fn fetch(&self) -> Result<(), AuthError> {
        let generation = self.state.read().expect("issuer key state").generation;
        let _one = self.fetching.lock().await;
        {
            let state = self.state.read().expect("issuer key state");
            if state.generation != generation {
                return match &state.last_error {
                    None => Ok(()),
                    Some(reason) => Err(AuthError::Unavailable {
                        issuer: self.settings.issuer.clone(),
                        reason: reason.clone(),
                    }),
                };
            }
        }
        let result = self.fetch_keys().await;
        let mut state = self.state.write().expect("issuer key state");
        state.generation += 1;
        state.last_attempt = Some(Instant::now());
        match result {
            Ok((jwks_uri, keys, max_age)) => {
                if state.last_error.is_some() || state.keys.is_none() {
                    tracing::info!(issuer = %self.settings.issuer, keys = keys.by_kid.len() + keys.anonymous.len(), "issuer keys fetched");
                }
                state.jwks_uri = Some(jwks_uri);
                state.keys = Some(Arc::new(keys));
                state.max_age = max_age;
                state.last_error = None;
                Ok(())
            }
            Err(e) => {
                if state.last_error.is_none() {
                    tracing::warn!(issuer = %self.settings.issuer, error = %e, "cannot fetch the issuer's keys");
                }
                state.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    async fn fetch_keys(&self) -> Result<(String, KeySet, Option<Duration>), AuthError> {
        let known = self
            .state
            .read()
            .expect("issuer key state")
            .jwks_uri
            .clone();
        let jwks_uri = match known {
            Some(uri) => uri,
            None => self.discover().await?,
        };
        let fetched = self.http.get_json::<RawJwks>(&jwks_uri).await?;
        let keys = key_set(fetched.value);
        if keys.by_kid.is_empty() && keys.anonymous.is_empty() {
            return Err(AuthError::Json {
                url: jwks_uri,
                reason: "the JWKS holds no usable signing key".into(),
            });
        }
        Ok((jwks_uri, keys, fetched.max_age))
    }

    async fn discover(&self) -> Result<String, AuthError> {
        #[derive(Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let doc = self.http.get_json::<Discovery>(&url).await?.value;
        if doc.issuer != self.settings.issuer {
            return Err(AuthError::Json {
                url,
                reason: format!(
                    "its issuer is {:?}, not the configured {:?}",
                    doc.issuer, self.settings.issuer
                ),
            });
        }
        http::parse_url(&doc.jwks_uri)?;
        Ok(doc.jwks_uri)
    }

    /// Keeps the keys fresh until dropped (abort the task to stop it).
    pub(crate) async fn refresh_forever(self: Arc<Self>) {
        let mut failures = 0u32;
        loop {
            let wait = match self.fetch().await {
                Ok(()) => {
                    failures = 0;
                    let max_age = self.state.read().expect("issuer key state").max_age;
                    refresh_after(max_age, self.timing)
                }
                Err(_) => {
                    failures = failures.saturating_add(1);
                    retry_backoff(failures)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

enum Lookup {
    Found(Arc<Key>),
    Missing(Rejection),
    NoKeys,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

/// The usable signature keys of a JWKS: encryption keys, HMAC secrets and
/// keys this build cannot parse are left out (a JWKS may hold keys for
/// other uses).
fn key_set(raw: RawJwks) -> KeySet {
    let mut set = KeySet::default();
    for value in raw.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        if matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        ) {
            continue;
        }
        let Ok(decoding) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let family = decoding.family();
        if family == AlgorithmFamily::Hmac {
            continue;
        }
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<Algorithm>().ok());
        let key = Arc::new(Key {
            decoding,
            alg,
            family,
        });
        match jwk.common.key_id {
            Some(kid) => {
                set.by_kid.insert(kid, key);
            }
            None => set.anonymous.push(key),
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_is_before_max_age_within_bounds() {
        let t = KeyTiming::default();
        assert_eq!(refresh_after(None, t), Duration::from_secs(300));
        assert_eq!(
            refresh_after(Some(Duration::from_secs(600)), t),
            Duration::from_secs(480)
        );
        assert_eq!(
            refresh_after(Some(Duration::from_secs(1)), t),
            Duration::from_secs(30)
        );
        assert_eq!(
            refresh_after(Some(Duration::from_secs(86_400)), t),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn retries_back_off_from_1s_to_30s() {
        assert_eq!(retry_backoff(0), Duration::from_secs(1));
        assert_eq!(retry_backoff(1), Duration::from_secs(2));
        assert_eq!(retry_backoff(4), Duration::from_secs(16));
        assert_eq!(retry_backoff(5), Duration::from_secs(30));
        assert_eq!(retry_backoff(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn a_jwks_keeps_only_signature_keys() {
        let raw: RawJwks = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "weird", "kid": "w"}
        ]}))
        .unwrap();
        let set = key_set(raw);
        assert_eq!(set.by_kid.keys().collect::<Vec<_>>(), vec!["ed"]);
        let ed = &set.by_kid["ed"];
        assert_eq!(ed.alg, Some(Algorithm::EdDSA));
        assert_eq!(ed.family, AlgorithmFamily::Ed);
    }
}
