//! What auth costs: the token the bench sends and the issuer it trusts.
//!
//! The `proxy-auth` paths start a proxy with `auth:` on, trusting an issuer
//! the bench serves in-process ([`prism_harness::jwt::TestIssuer`]), whose
//! namespace lets the bench's subject read and write. `proxy-auth` sends one
//! token on every call (checked once, then remembered by the proxy);
//! `proxy-auth-fresh` sends a token never seen before on every call, all
//! minted before the path starts so signing is not measured. `--token`
//! sends a given token on every gRPC path instead, for a proxy started by
//! hand. Tokens never reach the output: [`Secret`] hides them from `Debug`.

use std::{fmt, str::FromStr, sync::Arc, time::Duration};

use prism_harness::jwt::{SigningKey, TestIssuer};
use serde::Serialize;
use serde_json::{Value, json};
use tonic::metadata::{Ascii, MetadataValue};

use crate::BenchError;

/// The subject of the bench's tokens, granted read and write.
pub(crate) const SUBJECT: &str = "prism-bench";
/// How long the bench's tokens are valid: longer than any run.
const TOKEN_TTL: Duration = Duration::from_secs(6 * 3600);
/// Most fresh tokens minted for one path (RS256 signs about a thousand a
/// second per core); calls beyond reuse them, which the proxy then knows.
pub(crate) const MAX_FRESH_TOKENS: u64 = 100_000;

/// The algorithm the bench's issuer signs with (`--token-alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TokenAlg {
    /// RSA 2048, what most issuers (Dex among them) sign with.
    #[default]
    Rs256,
    /// ECDSA P-256.
    Es256,
    /// Ed25519.
    Eddsa,
}

impl TokenAlg {
    fn algorithm(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::Eddsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// A bearer token: sent, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// `raw` trimmed (a token file ends with a newline); it must be a
    /// non-empty visible-ASCII header value.
    pub fn new(raw: &str, source: &str) -> Result<Self, BenchError> {
        let token = raw.trim();
        if token.is_empty() {
            return Err(BenchError::Usage(format!("{source}: the token is empty")));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BenchError::Usage(format!(
                "{source}: the token must be printable ASCII without spaces"
            )));
        }
        Ok(Self(token.to_string()))
    }

    /// Checks a token taken by [`FromStr`], as [`Secret::new`] does.
    pub fn checked(self, source: &str) -> Result<Self, BenchError> {
        Self::new(&self.0, source)
    }

    fn header(&self) -> MetadataValue<Ascii> {
        bearer(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Takes the flag as given, so that a refused token is never echoed by the
/// flag parser; [`Secret::checked`] checks it.
impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

fn bearer(token: &str) -> MetadataValue<Ascii> {
    format!("Bearer {token}")
        .parse()
        .expect("tokens are checked or minted as ASCII")
}

/// Auth flags of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    pub token_alg: TokenAlg,
    /// Sent on every gRPC path but the `proxy-auth` ones.
    pub token: Option<Secret>,
}

impl AuthSettings {
    /// What the paths that do not mint their own tokens send.
    pub(crate) fn given(&self) -> Authorization {
        self.token
            .as_ref()
            .map_or(Authorization::None, |t| Authorization::Same(t.header()))
    }
}

/// The `authorization` header each call of a path carries.
#[derive(Clone, Default)]
pub(crate) enum Authorization {
    #[default]
    None,
    /// The same token on every call.
    Same(MetadataValue<Ascii>),
    /// Call `seq` of the load carries `calls[seq % len]`; getting ready
    /// (pre-populating) uses `setup`.
    Fresh {
        setup: MetadataValue<Ascii>,
        calls: Arc<Vec<MetadataValue<Ascii>>>,
    },
}

impl Authorization {
    /// The header of calls made while getting ready.
    pub(crate) fn setup(&self) -> Option<&MetadataValue<Ascii>> {
        match self {
            Self::None => None,
            Self::Same(v) | Self::Fresh { setup: v, .. } => Some(v),
        }
    }

    /// The header of load call `seq`.
    pub(crate) fn call(&self, seq: u64) -> Option<&MetadataValue<Ascii>> {
        match self {
            Self::Fresh { calls, .. } if !calls.is_empty() => {
                Some(&calls[(seq % calls.len() as u64) as usize])
            }
            other => other.setup(),
        }
    }
}

/// The in-process issuer of a `proxy-auth` path and the key it signs with.
pub(crate) struct BenchIssuer {
    issuer: TestIssuer,
    key: SigningKey,
}

impl BenchIssuer {
    /// Generates a key for `alg` (by `openssl`) and serves its JWKS.
    pub(crate) async fn start(alg: TokenAlg) -> Result<Self, BenchError> {
        let key = tokio::task::spawn_blocking(move || {
            SigningKey::generate(alg.algorithm(), &format!("bench-{alg:?}").to_lowercase())
        })
        .await
        .map_err(|e| BenchError::Load(format!("generating a signing key: {e}")))??;
        let issuer = TestIssuer::start(key.clone()).await?;
        Ok(Self { issuer, key })
    }

    /// `namespaces_yaml` (one namespace, as the targets write it) with
    /// `auth:` on, trusting this issuer, the bench's subject allowed to read
    /// and write that namespace and to view the admin plane (to see the
    /// pattern start).
    pub(crate) fn proxy_config_yaml(&self, namespaces_yaml: &str) -> String {
        let issuer = serde_json::to_string(self.issuer.issuer()).expect("a string serializes");
        let audience = prism_harness::jwt::AUDIENCE;
        let principal = format!("\"sub:{SUBJECT}\"");
        format!(
            "auth:\n  issuers:\n    - issuer: {issuer}\n      audiences: [{audience}]\n  admin:\n    viewer: [{principal}]\n\
             {namespaces_yaml}    access: {{read: [{principal}], write: [{principal}]}}\n"
        )
    }

    /// One token for the bench's subject.
    pub(crate) fn token(&self) -> MetadataValue<Ascii> {
        bearer(&self.key.sign(&self.claims(None)))
    }

    /// `count` distinct tokens, signed on blocking threads in parallel.
    pub(crate) async fn fresh_tokens(
        &self,
        count: u64,
    ) -> Result<Vec<MetadataValue<Ascii>>, BenchError> {
        let lanes = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let mut tasks = Vec::new();
        for lane in 0..lanes.min(count) {
            let key = self.key.clone();
            let claims: Vec<Value> = (lane..count)
                .step_by(lanes as usize)
                .map(|i| self.claims(Some(i)))
                .collect();
            tasks.push(tokio::task::spawn_blocking(move || {
                claims
                    .iter()
                    .map(|c| bearer(&key.sign(c)))
                    .collect::<Vec<_>>()
            }));
        }
        let mut lanes_out = Vec::with_capacity(tasks.len());
        for task in tasks {
            lanes_out.push(
                task.await
                    .map_err(|e| BenchError::Load(format!("signing tokens: {e}")))?,
            );
        }
        // Interleave back so token `i` is call `i`'s.
        let mut tokens = Vec::with_capacity(count as usize);
        let mut iters: Vec<_> = lanes_out.into_iter().map(Vec::into_iter).collect();
        'outer: loop {
            for lane in &mut iters {
                match lane.next() {
                    Some(token) => tokens.push(token),
                    None => break 'outer,
                }
            }
        }
        Ok(tokens)
    }

    /// The claims of a bench token; `jti: n` makes each fresh one unique.
    fn claims(&self, n: Option<u64>) -> Value {
        let extra = match n {
            Some(n) => json!({ "jti": format!("bench-{n}") }),
            None => json!({}),
        };
        self.issuer.claims(SUBJECT, TOKEN_TTL, extra)
    }
}

/// Fresh tokens a path needs: one per call of warm-up and measured time
/// at `rate`, plus a second's worth of margin; capped at
/// [`MAX_FRESH_TOKENS`] (the second value is the uncapped need).
pub(crate) fn fresh_token_count(rate: u64, warmup: Duration, duration: Duration) -> (u64, u64) {
    let seconds = (warmup + duration).as_secs_f64() + 1.0;
    let need = (rate as f64 * seconds).ceil() as u64;
    (need.min(MAX_FRESH_TOKENS), need)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_trimmed_checked_and_never_shown() {
        let secret = Secret::new("abc.def.ghi\n", "--token-file t").unwrap();
        assert_eq!(secret.0, "abc.def.ghi");
        assert!(!format!("{secret:?}").contains("abc"));
        let empty = Secret::new(" \n", "--token-file t")
            .unwrap_err()
            .to_string();
        assert!(
            empty.contains("--token-file t") && empty.contains("empty"),
            "{empty}"
        );
        assert!(Secret::new("a b", "--token").is_err());
        assert!(Secret::new("é", "--token").is_err());
    }

    #[test]
    fn fresh_calls_take_their_own_token_and_setup_another() {
        let calls: Vec<_> = (0..3).map(|i| bearer(&format!("t{i}"))).collect();
        let auth = Authorization::Fresh {
            setup: bearer("s"),
            calls: Arc::new(calls),
        };
        assert_eq!(auth.setup().unwrap(), "Bearer s");
        assert_eq!(auth.call(1).unwrap(), "Bearer t1");
        assert_eq!(auth.call(4).unwrap(), "Bearer t1");
        let same = Authorization::Same(bearer("x"));
        assert_eq!(same.call(7).unwrap(), "Bearer x");
        assert!(Authorization::None.call(0).is_none());
    }

    #[test]
    fn fresh_tokens_cover_the_run_and_are_capped() {
        let s = Duration::from_secs;
        assert_eq!(fresh_token_count(1000, s(2), s(10)), (13_000, 13_000));
        assert_eq!(
            fresh_token_count(50_000, s(2), s(10)),
            (MAX_FRESH_TOKENS, 650_000)
        );
    }
}
