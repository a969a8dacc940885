//! Auth through the real proxy (ACCEPTANCE.md "Auth"): tokens minted by an
//! issuer the tests control, served over HTTP on a free port, checked by a
//! real `prism-proxy`.
//!
//! - `matrix`: every way a token can be wrong is UNAUTHENTICATED, a good
//!   token without the right is PERMISSION_DENIED naming the namespace and
//!   the permission, and no message holds the token.
//! - `tenants`: two tenants on one proxy cannot touch each other's
//!   namespaces.
//! - `admin`: viewer, operator and admin roles on the admin API, WhoAmI,
//!   and the audit of admin actions.
//! - `certs`: a verified client certificate (mTLS) is the principal
//!   `cert:<common name>`; a token on the same connection wins.
//! - `keys`: key rotation without a restart, an issuer down at start-up then
//!   up, unknown-key refetches rate-limited, access changed by a reload.
//! - `streams`: a Subscribe stream ends UNAUTHENTICATED when its token
//!   expires; the caller reaches the pattern's spans, not its token.
//! - `provider`: the same against a real OpenID provider (`oidc-provider`):
//!   its tokens, tenants, admin roles, key rotation and outage.
//! - `secrets`: no token in logs, spans, metrics or admin output.

mod admin;
mod certs;
mod keys;
mod matrix;
mod provider;
mod secrets;
mod streams;
mod tenants;

use std::time::Duration;

use jsonwebtoken::Algorithm;
use prism_harness::jwt::{SigningKey, TestIssuer};
use prism_tests::{Proxy, auth::auth_block};
use serde_json::json;

/// A KeyValue Set of `value` at key `k`.
pub(crate) fn set(value: &str) -> prism_proto::keyvalue::v1::SetRequest {
    prism_proto::keyvalue::v1::SetRequest {
        key: "k".into(),
        value: value.as_bytes().to_vec(),
        ttl_seconds: 0,
    }
}

/// A proxy trusting a fresh test issuer.
pub(crate) struct Setup {
    pub issuer: TestIssuer,
    pub proxy: Proxy,
}

/// `orders` (KeyValue: readers and writers by group) and `events`
/// (PubSub: readers by scope, writers by subject).
pub(crate) const NAMESPACES: &str = r#"namespaces:
  - name: orders
    pattern: keyvalue
    access:
      read: ["group:orders-readers", "group:orders-writers"]
      write: ["group:orders-writers"]
  - name: events
    pattern: pubsub
    access:
      read: ["scope:events.read"]
      write: ["sub:publisher"]
"#;

impl Setup {
    /// `auth_extra` goes inside `auth:` (two-space indented lines).
    pub(crate) async fn start(auth_extra: &str, namespaces: &str) -> Self {
        Self::start_with_env(auth_extra, namespaces, &[]).await
    }

    pub(crate) async fn start_with_env(
        auth_extra: &str,
        namespaces: &str,
        env: &[(String, String)],
    ) -> Self {
        let key = SigningKey::generate(Algorithm::ES256, "key-1").expect("key");
        let issuer = TestIssuer::start(key).await.expect("issuer");
        let yaml = format!("{}{namespaces}", auth_block(issuer.issuer(), auth_extra));
        let proxy = Proxy::start_with_config_env(&yaml, env).await;
        Self { issuer, proxy }
    }

    /// A token for `sub` valid for an hour, with `extra` claims.
    pub(crate) fn token(&self, sub: &str, extra: serde_json::Value) -> String {
        self.issuer.token(sub, Duration::from_secs(3600), extra)
    }

    pub(crate) fn writer(&self) -> String {
        self.token("svc-writer", json!({"groups": ["orders-writers"]}))
    }
}
