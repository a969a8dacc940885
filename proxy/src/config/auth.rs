//! The `auth:` block and each namespace's `access:`: who the proxy trusts to
//! vouch for callers (issuers, audiences, algorithms, claim names) and what
//! callers may do (per-namespace read/write, admin roles). Off when `auth:`
//! is absent. Checked here; turned into a verifier and a policy in
//! [`crate::auth`].

use prism_auth::{Algorithm, PrincipalName, http};
use serde::Deserialize;

use super::{ConfigError, ranges::in_range};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Who may vouch for a caller. Empty: only client certificates (mTLS)
    /// authenticate.
    pub issuers: Vec<IssuerConfig>,
    /// Accepted token algorithms: RS256/384/512, PS256/384/512, ES256/384,
    /// EdDSA. `none` and HMAC (HS*) are never accepted.
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// The claim listing a caller's groups.
    pub groups_claim: String,
    /// The claim listing a caller's scopes.
    pub scopes_claim: String,
    /// Background key refresh when the issuer's JWKS says no `max-age`.
    pub key_refresh_ms: u64,
    /// A token naming an unknown key refetches the JWKS at most this often.
    pub key_refetch_min_ms: u64,
    /// Tokens remembered as valid at once (each later call with one is a
    /// hash lookup instead of a signature check).
    pub token_cache_capacity: usize,
    pub admin: AdminRolesConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
            leeway_seconds: 30,
            groups_claim: "groups".into(),
            scopes_claim: "scope".into(),
            key_refresh_ms: 300_000,
            key_refetch_min_ms: 10_000,
            token_cache_capacity: 10_000,
            admin: AdminRolesConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Exactly the `iss` its tokens carry; `https`, or `http` on loopback.
    pub issuer: String,
    /// A token's `aud` must hold one of these.
    pub audiences: Vec<String>,
    /// Default: from `<issuer>/.well-known/openid-configuration`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// An extra CA (PEM) for reaching the issuer over HTTPS.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Development stacks only: fetch this issuer's keys over plain `http`
    /// from a host that is not loopback (compose's Dex at `http://dex:5556`).
    /// Anyone on the path could then hand the proxy keys of their own.
    #[serde(default)]
    pub allow_http: bool,
}

/// Admin-plane roles by principal name; each role can do what the one
/// before it can, and more.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminRolesConfig {
    /// List, watch, latency, events.
    pub viewer: Vec<String>,
    /// + restart and hot-reload patterns.
    pub operator: Vec<String>,
    /// + reload the config (anything that changes namespaces).
    pub admin: Vec<String>,
}

/// Who may use a namespace when auth is on; nobody when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// Get, Exists, Scan, Subscribe, Unsubscribe, registry Get, Enumerate, Receive.
    pub read: Vec<String>,
    /// Set, Delete, Publish, PublishBatch, Ack, Register, Unregister, Multicast.
    pub write: Vec<String>,
}

/// The algorithms a config may name.
pub const ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl AuthConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for (i, issuer) in self.issuers.iter().enumerate() {
            issuer.validate(&format!("auth.issuers[{i}]"))?;
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::invalid(
                "auth.algorithms",
                "at least one algorithm is needed",
            ));
        }
        for (i, _) in self.algorithms.iter().enumerate() {
            self.algorithm(i)?;
        }
        in_range("auth.leeway_seconds", self.leeway_seconds, 0, 600)?;
        for (field, value) in [
            ("auth.groups_claim", &self.groups_claim),
            ("auth.scopes_claim", &self.scopes_claim),
        ] {
            if value.is_empty() || value.len() > 128 {
                return Err(ConfigError::invalid(field, "must be 1 to 128 characters"));
            }
        }
        in_range(
            "auth.key_refresh_ms",
            self.key_refresh_ms,
            1_000,
            super::ranges::MAX_DURATION_MS,
        )?;
        in_range(
            "auth.key_refetch_min_ms",
            self.key_refetch_min_ms,
            0,
            super::ranges::MAX_DURATION_MS,
        )?;
        in_range(
            "auth.token_cache_capacity",
            self.token_cache_capacity,
            1,
            10_000_000,
        )?;
        for (role, names) in [
            ("viewer", &self.admin.viewer),
            ("operator", &self.admin.operator),
            ("admin", &self.admin.admin),
        ] {
            principals(&format!("auth.admin.{role}"), names)?;
        }
        Ok(())
    }

    /// The `i`th algorithm, checked.
    pub(crate) fn algorithm(&self, i: usize) -> Result<Algorithm, ConfigError> {
        let name = &self.algorithms[i];
        let field = format!("auth.algorithms[{i}]");
        if name.eq_ignore_ascii_case("none") || name.to_ascii_uppercase().starts_with("HS") {
            return Err(ConfigError::invalid(
                field,
                format!("`{name}` is never accepted: tokens must be signed with an asymmetric key"),
            ));
        }
        if !ALGORITHMS.contains(&name.as_str()) {
            return Err(ConfigError::invalid(
                field,
                format!("`{name}` is not one of {}", ALGORITHMS.join(", ")),
            ));
        }
        name.parse()
            .map_err(|_| ConfigError::invalid(field, format!("`{name}` is not supported")))
    }
}

impl IssuerConfig {
    fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        url(&format!("{prefix}.issuer"), &self.issuer, self.allow_http)?;
        if let Some(jwks) = &self.jwks_uri {
            url(&format!("{prefix}.jwks_uri"), jwks, self.allow_http)?;
        }
        if self.audiences.is_empty() {
            return Err(ConfigError::invalid(
                format!("{prefix}.audiences"),
                "at least one audience is needed (the `aud` its tokens carry for Prism)",
            ));
        }
        if let Some(i) = self.audiences.iter().position(String::is_empty) {
            return Err(ConfigError::invalid(
                format!("{prefix}.audiences[{i}]"),
                "must not be empty",
            ));
        }
        Ok(())
    }
}

/// An issuer or key URL: `https`, or `http` only on loopback, where no
/// other machine can tamper with the keys on the way (unless `allow_http`).
fn url(field: &str, value: &str, allow_http: bool) -> Result<(), ConfigError> {
    let parsed = http::parse_url(value).map_err(|e| ConfigError::invalid(field, e.to_string()))?;
    if parsed.scheme() == "http" && !http::is_loopback(&parsed) && !allow_http {
        return Err(ConfigError::invalid(
            field,
            format!(
                "`{value}` must use https (http is allowed only for loopback issuers, or with allow_http: true on a development stack)"
            ),
        ));
    }
    Ok(())
}

/// Every entry of a principal list parses.
pub(crate) fn principals(field: &str, names: &[String]) -> Result<Vec<PrincipalName>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            name.parse()
                .map_err(|e: prism_auth::principal::BadPrincipalName| {
                    ConfigError::invalid(format!("{field}[{i}]"), e.to_string())
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn err(yaml: &str) -> String {
        Config::from_yaml(yaml).unwrap_err().to_string()
    }

    const NS: &str = "namespaces:\n  - {name: a, pattern: keyvalue}\n";

    #[test]
    fn the_issue_example_parses() {
        let c = Config::from_yaml(
            r#"
auth:
  issuers:
    - issuer: http://127.0.0.1:5556/dex
      audiences: [prism]
  admin:
    viewer: ["group:prism-viewers"]
    operator: ["group:prism-operators"]
    admin: ["group:prism-admins", "email:dev@local.prism"]
namespaces:
  - name: orders
    pattern: keyvalue
    backend: memstore
    access:
      read: ["group:orders-readers", "sub:svc-reporting", "scope:orders.read"]
      write: ["group:orders-writers"]
"#,
        )
        .unwrap();
        let auth = c.auth.unwrap();
        assert_eq!(auth.issuers[0].audiences, ["prism"]);
        assert_eq!(auth.admin.admin.len(), 2);
        assert_eq!(auth.algorithms, ["RS256", "ES256", "EdDSA"], "defaulted");
        assert_eq!(c.namespaces[0].access.read.len(), 3);
    }

    #[test]
    fn auth_is_off_without_the_block() {
        assert!(Config::from_yaml(NS).unwrap().auth.is_none());
        assert!(Config::default().auth.is_none());
    }

    #[test]
    fn plain_http_is_only_for_loopback_issuers() {
        let e = err(&format!(
            "auth: {{issuers: [{{issuer: 'http://id.example.com', audiences: [prism]}}]}}\n{NS}"
        ));
        assert!(e.starts_with("auth.issuers[0].issuer:"), "{e}");
        assert!(e.contains("https"), "{e}");
        let e = err(&format!(
            "auth: {{issuers: [{{issuer: 'https://id.example.com', audiences: [prism], jwks_uri: 'http://10.0.0.1/keys'}}]}}\n{NS}"
        ));
        assert!(e.starts_with("auth.issuers[0].jwks_uri:"), "{e}");
        Config::from_yaml(&format!(
            "auth: {{issuers: [{{issuer: 'http://localhost:5556/dex', audiences: [prism]}}]}}\n{NS}"
        ))
        .unwrap();
        Config::from_yaml(&format!(
            "auth: {{issuers: [{{issuer: 'http://localhost:5556/dex', audiences: [prism], jwks_uri: 'http://dex:5556/dex/keys', allow_http: true}}]}}\n{NS}"
        ))
        .unwrap();
    }

    #[test]
    fn an_issuer_needs_an_audience_and_a_url() {
        let e = err(&format!(
            "auth: {{issuers: [{{issuer: 'https://id.example.com', audiences: []}}]}}\n{NS}"
        ));
        assert!(e.starts_with("auth.issuers[0].audiences:"), "{e}");
        let e = err(&format!(
            "auth: {{issuers: [{{issuer: 'not a url', audiences: [prism]}}]}}\n{NS}"
        ));
        assert!(e.starts_with("auth.issuers[0].issuer:"), "{e}");
    }

    #[test]
    fn none_and_hmac_are_refused_by_name() {
        for alg in ["none", "HS256", "hs512"] {
            let e = err(&format!("auth: {{algorithms: [RS256, {alg}]}}\n{NS}"));
            assert!(e.starts_with("auth.algorithms[1]:"), "{e}");
            assert!(e.contains("never accepted"), "{e}");
        }
        let e = err(&format!("auth: {{algorithms: [RS999]}}\n{NS}"));
        assert!(e.contains("is not one of"), "{e}");
        let e = err(&format!("auth: {{algorithms: []}}\n{NS}"));
        assert!(e.starts_with("auth.algorithms:"), "{e}");
    }

    #[test]
    fn principal_names_are_checked_where_they_are() {
        let e = err(&format!(
            "auth: {{admin: {{operator: ['group:ops', 'ops']}}}}\n{NS}"
        ));
        assert!(e.starts_with("auth.admin.operator[1]:"), "{e}");
        let e = err("namespaces:\n  - {name: a, pattern: keyvalue, access: {write: ['user:x']}}\n");
        assert!(e.starts_with("namespaces[0].access.write[0]:"), "{e}");
    }

    #[test]
    fn numbers_have_ranges() {
        let e = err(&format!("auth: {{leeway_seconds: 601}}\n{NS}"));
        assert!(e.starts_with("auth.leeway_seconds:"), "{e}");
        let e = err(&format!("auth: {{token_cache_capacity: 0}}\n{NS}"));
        assert!(e.starts_with("auth.token_cache_capacity:"), "{e}");
    }
}
