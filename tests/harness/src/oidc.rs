//! A real OpenID provider on a free port: `tests/oidc/provider.mjs`, the
//! certified `oidc-provider` package under Node.js. It issues JWT access
//! tokens (audience `prism`, claims `sub`, `scope`, `groups`, and `email`
//! for users) through the client-credentials grant and the device-code flow,
//! signs them with keys it keeps in its folder, and can rotate them.
//!
//! The device flow needs no browser: [`OidcProvider::approve`] posts to the
//! script's test-only `/test/device` endpoint, which records the approval on
//! the pending device code as the provider's own confirmation page would.
//!
//! Its store is in memory: a restart (also [`OidcProvider::rotate_keys`])
//! forgets issued refresh tokens and pending device codes; tokens already
//! issued stay valid for whoever verifies them with the keys they name.
//!
//! `NODE` names the node binary (else `node` on `PATH`); `PRISM_OIDC_MODULES`
//! the `node_modules` folder holding `oidc-provider` (`scripts/tools.sh`
//! installs it from `tests/oidc/package-lock.json` and exports it).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use prism_auth::http::HttpClient;
use serde_json::{Value, json};

use crate::{
    HarnessError,
    server::{Launch, ServerProcess},
};

mod flows;

pub use flows::{DeviceAuthorization, TokenResponse};

/// A running provider; see [`ServerProcess`] for kill, restart and its log.
pub type OidcProvider = ServerProcess<Oidc>;

/// The confidential client of the first tenant: groups `orders-writers`,
/// scopes `orders.read orders.write` allowed.
pub const SERVICE_CLIENT: (&str, &str) = ("prism-service", "prism-service-secret");
/// The second tenant's client: groups `billing-writers`.
pub const TENANT_B_CLIENT: (&str, &str) = ("tenant-b-service", "tenant-b-service-secret");
/// Admin-plane roles by client: groups `prism-viewers`, `prism-operators`,
/// `prism-admins`.
pub const VIEWER_CLIENT: (&str, &str) = ("viewer-service", "viewer-service-secret");
pub const OPERATOR_CLIENT: (&str, &str) = ("operator-service", "operator-service-secret");
pub const ADMIN_CLIENT: (&str, &str) = ("admin-service", "admin-service-secret");
/// A client named by its subject (`sub:svc-reporting`) and scope
/// (`orders.read`), in no group.
pub const REPORTING_CLIENT: (&str, &str) = ("svc-reporting", "svc-reporting-secret");
/// A valid client with no group and no scope: authenticated, allowed nothing.
pub const NOBODY_CLIENT: (&str, &str) = ("nobody-service", "nobody-service-secret");
/// The public client of the console's device-code login.
pub const CLI_CLIENT: &str = "prism-cli";
/// The device-flow user: groups `prism-admins`.
pub const DEV_ACCOUNT: &str = "dev@local.prism";
/// Device-flow users with lesser roles: groups `prism-viewers`, `prism-operators`.
pub const VIEWER_ACCOUNT: &str = "viewer@local.prism";
pub const OPERATOR_ACCOUNT: &str = "operator@local.prism";
/// The audience of every access token.
pub const AUDIENCE: &str = "prism";

const KEYS_FILE: &str = "jwks.json";

/// The algorithm of the provider's signing keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningAlg {
    #[default]
    Rs256,
    Es256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
        }
    }
}

/// A client the provider knows.
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub id: String,
    /// `None`: a public client for the device-code and refresh grants;
    /// otherwise a confidential client for the client-credentials grant.
    pub secret: Option<String>,
    /// The `groups` claim of its client-credentials tokens.
    pub groups: Vec<String>,
    /// The scopes it may ask for, space-separated.
    pub scope: String,
}

impl OidcClient {
    pub fn service(id: &str, secret: &str, groups: &[&str], scope: &str) -> Self {
        Self {
            id: id.to_string(),
            secret: Some(secret.to_string()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            scope: scope.to_string(),
        }
    }

    pub fn public(id: &str) -> Self {
        Self {
            id: id.to_string(),
            secret: None,
            groups: Vec::new(),
            scope: String::new(),
        }
    }
}

/// A user who can approve a device-code login.
#[derive(Debug, Clone)]
pub struct OidcAccount {
    /// The `sub` claim.
    pub id: String,
    pub email: String,
    pub groups: Vec<String>,
    /// Scopes added to this user's access tokens, space-separated.
    pub scope: String,
}

impl OidcAccount {
    pub fn new(email: &str, groups: &[&str]) -> Self {
        Self {
            id: email.to_string(),
            email: email.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            scope: String::new(),
        }
    }
}

/// How the provider is run. The default has every client and account named
/// by this module's constants, RS256 keys and access tokens valid for ten
/// minutes.
#[derive(Debug, Clone)]
pub struct Oidc {
    pub alg: SigningAlg,
    /// The issuer's path after the host (e.g. `/dex`); empty: none.
    pub path: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub clients: Vec<OidcClient>,
    pub accounts: Vec<OidcAccount>,
}

impl Default for Oidc {
    fn default() -> Self {
        Self {
            alg: SigningAlg::default(),
            path: String::new(),
            access_token_ttl: Duration::from_secs(600),
            refresh_token_ttl: Duration::from_secs(86_400),
            clients: vec![
                OidcClient::service(
                    SERVICE_CLIENT.0,
                    SERVICE_CLIENT.1,
                    &["orders-writers"],
                    "orders.read orders.write",
                ),
                OidcClient::service(
                    TENANT_B_CLIENT.0,
                    TENANT_B_CLIENT.1,
                    &["billing-writers"],
                    "billing.read billing.write",
                ),
                OidcClient::service(VIEWER_CLIENT.0, VIEWER_CLIENT.1, &["prism-viewers"], ""),
                OidcClient::service(
                    OPERATOR_CLIENT.0,
                    OPERATOR_CLIENT.1,
                    &["prism-operators"],
                    "",
                ),
                OidcClient::service(ADMIN_CLIENT.0, ADMIN_CLIENT.1, &["prism-admins"], ""),
                OidcClient::service(REPORTING_CLIENT.0, REPORTING_CLIENT.1, &[], "orders.read"),
                OidcClient::service(NOBODY_CLIENT.0, NOBODY_CLIENT.1, &[], ""),
                OidcClient::public(CLI_CLIENT),
            ],
            accounts: vec![
                OidcAccount::new(DEV_ACCOUNT, &["prism-admins"]),
                OidcAccount::new(VIEWER_ACCOUNT, &["prism-viewers"]),
                OidcAccount::new(OPERATOR_ACCOUNT, &["prism-operators"]),
            ],
        }
    }
}

impl Oidc {
    /// Starts it on a free port and waits until its discovery document
    /// answers.
    pub async fn start(self) -> Result<OidcProvider, HarnessError> {
        ServerProcess::launch(self).await
    }

    /// The `--config` JSON `provider.mjs serve` takes.
    fn config_json(&self) -> Value {
        let clients: Vec<Value> = self
            .clients
            .iter()
            .map(|c| match &c.secret {
                Some(secret) => json!({
                    "client_id": c.id, "client_secret": secret,
                    "groups": c.groups, "scope": c.scope,
                }),
                None => json!({ "client_id": c.id, "public": true }),
            })
            .collect();
        let accounts: Vec<Value> = self
            .accounts
            .iter()
            .map(|a| json!({ "id": a.id, "email": a.email, "groups": a.groups, "scope": a.scope }))
            .collect();
        json!({
            "ttl": {
                "access_token": self.access_token_ttl.as_secs().max(1),
                "refresh_token": self.refresh_token_ttl.as_secs().max(1),
            },
            "clients": clients,
            "accounts": accounts,
        })
    }
}

/// `tests/oidc/provider.mjs` of this checkout.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../oidc/provider.mjs")
}

fn node() -> String {
    std::env::var("NODE").unwrap_or_else(|_| "node".to_string())
}

fn issuer_url(port: u16, path: &str) -> String {
    format!("http://127.0.0.1:{port}{path}")
}

impl Launch for Oidc {
    const NAME: &'static str = "oidc-provider";
    // Node loads the package and generates an RSA key on a loaded machine.
    const READY_TIMEOUT: Duration = Duration::from_secs(30);

    fn binary(&self) -> String {
        node()
    }

    fn args(&self, command: &mut Command, port: u16, dir: &Path, log: &Path) {
        command
            .arg(script())
            .arg("serve")
            .args(["--port", &port.to_string()])
            .arg("--keys")
            .arg(dir.join(KEYS_FILE))
            .args(["--alg", self.alg.as_str()])
            .args(["--config", &self.config_json().to_string()])
            .arg("--log")
            .arg(log);
        if !self.path.is_empty() {
            command.args(["--path", &self.path]);
        }
    }

    fn ready(&self, port: u16) -> impl Future<Output = bool> + Send {
        let issuer = issuer_url(port, &self.path);
        let url = format!("{issuer}/.well-known/openid-configuration");
        async move {
            HttpClient::new()
                .get_json::<Value>(&url)
                .await
                .is_ok_and(|doc| doc.value["issuer"] == issuer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_of(oidc: &Oidc) -> Vec<String> {
        let mut command = Command::new("node");
        oidc.args(&mut command, 7000, Path::new("/d"), Path::new("/d/log"));
        command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_script_gets_the_port_keys_algorithm_and_clients() {
        let oidc = Oidc {
            alg: SigningAlg::Es256,
            access_token_ttl: Duration::from_secs(3),
            ..Oidc::default()
        };
        let args = args_of(&oidc);
        let joined = args.join(" ");
        assert!(
            joined.contains("serve --port 7000 --keys /d/jwks.json --alg ES256"),
            "{joined}"
        );
        assert!(!joined.contains("--path"), "{joined}");
        let config: Value =
            serde_json::from_str(&args[args.iter().position(|a| a == "--config").unwrap() + 1])
                .unwrap();
        assert_eq!(config["ttl"]["access_token"], 3);
        let clients = config["clients"].as_array().unwrap();
        assert_eq!(clients[0]["client_id"], SERVICE_CLIENT.0);
        assert_eq!(clients[0]["client_secret"], SERVICE_CLIENT.1);
        assert_eq!(clients[0]["groups"], json!(["orders-writers"]));
        let cli = clients
            .iter()
            .find(|c| c["client_id"] == CLI_CLIENT)
            .unwrap();
        assert_eq!(cli, &json!({ "client_id": CLI_CLIENT, "public": true }));
        assert_eq!(config["accounts"][0]["groups"], json!(["prism-admins"]));

        let with_path = Oidc {
            path: "/dex".to_string(),
            ..Oidc::default()
        };
        assert!(args_of(&with_path).join(" ").contains("--path /dex"));
    }
}
