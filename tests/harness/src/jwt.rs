//! A token issuer the tests control completely: keys generated at run time
//! (by the `openssl` command: RSA, P-256, Ed25519), a discovery document and
//! a JWKS served on a free port, and tokens minted with any claims, header or
//! key — so every way a token can be wrong can be produced on purpose. (The
//! real OpenID provider in [`crate::oidc`] is for the flows; this is for the
//! negative matrix and the bench.)

use std::{
    path::Path,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::HarnessError;

/// The audience the tests' proxy configs accept.
pub const AUDIENCE: &str = "prism";

/// A private key the tests sign with, and its public JWK.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// The public key as PEM: what an "HMAC with the public key" attack signs with.
    pub public_pem: Vec<u8>,
    jwk: Value,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} {:?})", self.kid, self.alg)
    }
}

impl SigningKey {
    /// A fresh key for `alg` (RS256, ES256 or EdDSA) named `kid`.
    pub fn generate(alg: Algorithm, kid: &str) -> Result<Self, HarnessError> {
        let dir = tempfile::tempdir().map_err(|e| HarnessError::io("temp dir for a key", e))?;
        let private = dir.path().join("key.pem");
        let public = dir.path().join("pub.pem");
        let algorithm: &[&str] = match alg {
            Algorithm::RS256 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Algorithm::ES256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Algorithm::EdDSA => &["-algorithm", "ED25519"],
            other => {
                return Err(HarnessError::io(
                    format!("generating a {other:?} key"),
                    std::io::Error::other("only RS256, ES256 and EdDSA"),
                ));
            }
        };
        openssl(&[&["genpkey"], algorithm, &["-out", path(&private)]].concat())?;
        openssl(&[
            "pkey",
            "-in",
            path(&private),
            "-pubout",
            "-out",
            path(&public),
        ])?;
        let read = |p: &Path| std::fs::read(p).map_err(|e| HarnessError::io("reading a key", e));
        let pem = read(&private)?;
        let bad = |e: jsonwebtoken::errors::Error| {
            HarnessError::io("loading a key", std::io::Error::other(e.to_string()))
        };
        let encoding = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        }
        .map_err(bad)?;
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).map_err(bad)?;
        jwk.common.key_id = Some(kid.to_string());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(Self {
            kid: kid.to_string(),
            alg,
            encoding,
            public_pem: read(&public)?,
            jwk: serde_json::to_value(jwk).expect("a JWK serializes"),
        })
    }

    /// Signs `claims` with this key, `kid` and `alg` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signing with a test key")
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn openssl(args: &[&str]) -> Result<(), HarnessError> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| HarnessError::io("running openssl (is it installed?)", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(HarnessError::io(
            format!("openssl {}", args.join(" ")),
            std::io::Error::other(String::from_utf8_lossy(&out.stderr).into_owned()),
        ))
    }
}

struct Shared {
    issuer: String,
    published: Mutex<Vec<Value>>,
    down: AtomicBool,
    jwks_fetches: AtomicU64,
}

/// An issuer on a free loopback port.
pub struct TestIssuer {
    shared: Arc<Shared>,
    signer: Mutex<SigningKey>,
    server: JoinHandle<()>,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestIssuer {
    /// Serves discovery and a JWKS holding `key`, which signs from now on.
    pub async fn start(key: SigningKey) -> Result<Self, HarnessError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::io("binding the test issuer", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::io("test issuer address", e))?;
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}"),
            published: Mutex::new(vec![key.jwk.clone()]),
            down: AtomicBool::new(false),
            jwks_fetches: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            shared,
            signer: Mutex::new(key),
            server,
        })
    }

    /// The `iss` its tokens carry and the URL its discovery document is under.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// Signs `claims` with the current key.
    pub fn mint(&self, claims: &Value) -> String {
        self.signer.lock().expect("signer").sign(claims)
    }

    /// A token for `sub` with the usual claims (this issuer, audience
    /// [`AUDIENCE`], valid for `ttl`) plus `extra` (groups, scope, email…).
    pub fn token(&self, sub: &str, ttl: Duration, extra: Value) -> String {
        self.mint(&self.claims(sub, ttl, extra))
    }

    pub fn claims(&self, sub: &str, ttl: Duration, extra: Value) -> Value {
        let now = unix_now();
        let mut claims = json!({
            "iss": self.issuer(),
            "aud": AUDIENCE,
            "sub": sub,
            "iat": now,
            "exp": now + ttl.as_secs(),
        });
        if let (Some(map), Value::Object(more)) = (claims.as_object_mut(), extra) {
            map.extend(more);
        }
        claims
    }

    /// Publishes `key` beside the current ones and signs with it from now
    /// on (a rotation); `drop_old` removes the previous keys from the JWKS.
    pub fn rotate(&self, key: SigningKey, drop_old: bool) {
        let mut published = self.shared.published.lock().expect("jwks");
        if drop_old {
            published.clear();
        }
        published.push(key.jwk.clone());
        *self.signer.lock().expect("signer") = key;
    }

    /// While down, every request is answered 503.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> u64 {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

async fn discovery(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if shared.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Json(json!({
        "issuer": shared.issuer,
        "jwks_uri": format!("{}/jwks", shared.issuer),
    }))
    .into_response()
}

async fn jwks(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if shared.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys = shared.published.lock().expect("jwks").clone();
    (
        [(axum::http::header::CACHE_CONTROL, "max-age=300")],
        Json(json!({ "keys": keys })),
    )
        .into_response()
}
