//! Checking a bearer token: its header (an allowed asymmetric algorithm —
//! never `none`, never HMAC), its issuer (one of the trusted ones), its
//! signature (with the issuer's key for its `kid`), then `exp`, `nbf`
//! (within the leeway), `iss` and `aud`; the claims become a [`Principal`].
//! A token that passed is remembered until it expires, so each later call
//! with it costs one hash lookup.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::Engine;
use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation, errors::ErrorKind};
use serde_json::{Map, Value};
use tokio::task::JoinHandle;

use crate::{
    AuthError,
    error::Rejection,
    keys::{IssuerKeys, IssuerSettings, KeyTiming},
    principal::{Principal, PrincipalKind},
};

/// Longest token accepted; anything longer is refused before any work.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Everything a [`Verifier`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierSettings {
    pub issuers: Vec<IssuerSettings>,
    /// Accepted `alg`s; only asymmetric ones are allowed.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// The claim holding group names (an array of strings, or one string).
    pub groups_claim: String,
    /// The claim holding scopes (space-separated, or an array).
    pub scopes_claim: String,
    pub timing: KeyTiming,
    /// Tokens remembered as valid at once.
    pub cache_capacity: usize,
}

impl Default for VerifierSettings {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
            leeway: Duration::from_secs(30),
            groups_claim: "groups".into(),
            scopes_claim: "scope".into(),
            timing: KeyTiming::default(),
            cache_capacity: 10_000,
        }
    }
}

/// The state of one trusted issuer, for logs and the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerStatus {
    pub issuer: String,
    pub keys: usize,
    pub last_error: Option<String>,
}

pub struct Verifier {
    issuers: Vec<Arc<IssuerKeys>>,
    settings: VerifierSettings,
    valid: Mutex<HashMap<Arc<str>, Arc<Principal>>>,
    refreshers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuers", &self.settings.issuers)
            .finish_non_exhaustive()
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        for task in &self.refreshers {
            task.abort();
        }
    }
}

impl Verifier {
    /// Starts fetching every issuer's keys in the background (an issuer
    /// that cannot be reached does not stop this; its tokens are
    /// `Unavailable` until it can). Must run inside a Tokio runtime.
    ///
    /// Errors: an issuer's `ca_file` cannot be used.
    pub fn start(settings: VerifierSettings) -> Result<Self, AuthError> {
        crate::ring_crypto::install();
        let issuers = settings
            .issuers
            .iter()
            .map(|s| IssuerKeys::new(s.clone(), settings.timing).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let refreshers = issuers
            .iter()
            .map(|issuer| tokio::spawn(issuer.clone().refresh_forever()))
            .collect();
        Ok(Self {
            issuers,
            settings,
            valid: Mutex::new(HashMap::new()),
            refreshers,
        })
    }

    pub fn settings(&self) -> &VerifierSettings {
        &self.settings
    }

    pub fn issuers(&self) -> Vec<IssuerStatus> {
        self.issuers
            .iter()
            .map(|i| {
                let (keys, last_error) = i.status();
                IssuerStatus {
                    issuer: i.settings.issuer.clone(),
                    keys,
                    last_error,
                }
            })
            .collect()
    }

    /// Who `token` belongs to.
    ///
    /// Errors: [`AuthError::Rejected`] saying what is wrong with the token;
    /// [`AuthError::Unavailable`] when its issuer's keys cannot be had.
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        if let Some(known) = self.remembered(token) {
            return known;
        }
        let principal = Arc::new(self.check(token).await?);
        self.remember(token, &principal);
        Ok(principal)
    }

    fn remembered(&self, token: &str) -> Option<Result<Arc<Principal>, AuthError>> {
        let mut valid = self.valid.lock().expect("token cache");
        let principal = valid.get(token)?;
        if principal
            .expires_at
            .is_some_and(|at| SystemTime::now() >= at)
        {
            valid.remove(token);
            return Some(Err(Rejection::Expired.into()));
        }
        Some(Ok(principal.clone()))
    }

    fn remember(&self, token: &str, principal: &Arc<Principal>) {
        let mut valid = self.valid.lock().expect("token cache");
        if valid.len() >= self.settings.cache_capacity {
            let now = SystemTime::now();
            valid.retain(|_, p| p.expires_at.is_none_or(|at| now < at));
            if valid.len() >= self.settings.cache_capacity {
                valid.clear();
            }
        }
        valid.insert(Arc::from(token), principal.clone());
    }

    async fn check(&self, token: &str) -> Result<Principal, AuthError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::Malformed("longer than 16 KiB").into());
        }
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Rejection::Malformed("not three dot-separated parts").into());
        };
        let header = json_part(header, "header")?;
        let alg = self.algorithm(&header)?;
        let kid = header.get("kid").and_then(Value::as_str);
        let unverified = json_part(claims, "claims")?;
        let iss = unverified
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(Rejection::MissingClaim("iss"))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.settings.issuer == iss)
            .ok_or(Rejection::UntrustedIssuer)?;
        let key = issuer.key(kid).await?;
        if key.family != alg.family() || key.alg.is_some_and(|pinned| pinned != alg) {
            return Err(
                Rejection::Algorithm(format!("{alg:?} (not the algorithm of its key)")).into(),
            );
        }
        let mut validation = Validation::new(alg);
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[iss]);
        validation.set_audience(&issuer.settings.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
            .map_err(|e| rejection(e.kind()))?;
        Ok(self.principal(iss, &data.claims))
    }

    fn algorithm(&self, header: &Map<String, Value>) -> Result<Algorithm, Rejection> {
        let name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(Rejection::Malformed("the header has no `alg`"))?;
        let shown: String = name.chars().take(16).collect();
        let alg = name
            .parse::<Algorithm>()
            .map_err(|_| Rejection::Algorithm(shown.clone()))?;
        if alg.family() == AlgorithmFamily::Hmac || !self.settings.algorithms.contains(&alg) {
            return Err(Rejection::Algorithm(shown));
        }
        Ok(alg)
    }

    fn principal(&self, issuer: &str, claims: &Map<String, Value>) -> Principal {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
        let list = |name: &str| match claims.get(name) {
            Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .map(|exp| UNIX_EPOCH + Duration::from_secs(exp) + self.settings.leeway);
        Principal {
            subject: text("sub").unwrap_or_default(),
            issuer: Some(issuer.to_string()),
            email: text("email"),
            groups: list(&self.settings.groups_claim),
            scopes: list(&self.settings.scopes_claim),
            expires_at,
            kind: PrincipalKind::Token,
        }
    }
}

fn json_part(part: &str, what: &'static str) -> Result<Map<String, Value>, Rejection> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| {
            Rejection::Malformed(match what {
                "header" => "the header is not base64url",
                _ => "the claims are not base64url",
            })
        })?;
    serde_json::from_slice(&bytes).map_err(|_| {
        Rejection::Malformed(match what {
            "header" => "the header is not a JSON object",
            _ => "the claims are not a JSON object",
        })
    })
}

fn rejection(kind: &ErrorKind) -> Rejection {
    match kind {
        ErrorKind::ExpiredSignature => Rejection::Expired,
        ErrorKind::ImmatureSignature => Rejection::NotYetValid,
        ErrorKind::InvalidAudience => Rejection::WrongAudience,
        ErrorKind::InvalidIssuer => Rejection::UntrustedIssuer,
        ErrorKind::MissingRequiredClaim(claim) => Rejection::MissingClaim(match claim.as_str() {
            "exp" => "exp",
            "aud" => "aud",
            "sub" => "sub",
            "iss" => "iss",
            _ => "required",
        }),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            Rejection::Algorithm("not the algorithm of its key".into())
        }
        ErrorKind::InvalidClaimFormat(_) => Rejection::Malformed("a claim has the wrong type"),
        ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_)
        | ErrorKind::InvalidToken => Rejection::Malformed("cannot be decoded"),
        _ => Rejection::BadSignature,
    }
}
