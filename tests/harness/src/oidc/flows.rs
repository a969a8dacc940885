//! What a test does with a running provider: get tokens (client credentials,
//! device code, refresh), approve or deny a device login, read and rotate
//! the signing keys, stop and start it on the same port.

use prism_auth::{AuthError, http::HttpClient};
use serde::Deserialize;
use serde_json::Value;

use super::{KEYS_FILE, OidcProvider, issuer_url, node, script};
use crate::HarnessError;

/// A token endpoint's answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// The device authorization endpoint's answer (RFC 8628 §3.2).
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    /// Seconds between polls; RFC 8628's default is 5.
    #[serde(default)]
    pub interval: Option<u64>,
}

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn failed(context: impl Into<String>) -> impl FnOnce(AuthError) -> HarnessError {
    let context = context.into();
    move |e| HarnessError::Request {
        context,
        detail: e.to_string(),
    }
}

impl OidcProvider {
    /// `http://127.0.0.1:PORT[/PATH]`: the `iss` of its tokens and the base
    /// of its discovery document.
    pub fn issuer(&self) -> String {
        issuer_url(self.port(), &self.launcher().path)
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer())
    }

    fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer())
    }

    /// An access token for a confidential client (client-credentials
    /// grant), asking for `scope` (space-separated) if given.
    ///
    /// Errors: the provider refused (wrong secret, a scope the client may
    /// not have) or did not answer.
    pub async fn client_credentials(
        &self,
        client: &str,
        secret: &str,
        scope: Option<&str>,
    ) -> Result<String, HarnessError> {
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let answer: TokenResponse = HttpClient::new()
            .post_form(&self.token_endpoint(), &form)
            .await
            .map_err(failed(format!("client credentials for {client}")))?;
        Ok(answer.access_token)
    }

    /// Starts a device-code login for a public client.
    pub async fn device_authorization(
        &self,
        client: &str,
        scope: &str,
    ) -> Result<DeviceAuthorization, HarnessError> {
        HttpClient::new()
            .post_form(
                &format!("{}/device/auth", self.issuer()),
                &[("client_id", client), ("scope", scope)],
            )
            .await
            .map_err(failed(format!("device authorization for {client}")))
    }

    /// One poll of the token endpoint for a device code: `Ok(Err(code))`
    /// carries the OAuth error (`authorization_pending`, `access_denied`,
    /// `expired_token`, …).
    pub async fn device_token(
        &self,
        client: &str,
        device_code: &str,
    ) -> Result<Result<TokenResponse, String>, HarnessError> {
        let form = [
            ("grant_type", DEVICE_GRANT),
            ("client_id", client),
            ("device_code", device_code),
        ];
        match HttpClient::new()
            .post_form(&self.token_endpoint(), &form)
            .await
        {
            Ok(answer) => Ok(Ok(answer)),
            Err(AuthError::Status {
                error: Some(code), ..
            }) => Ok(Err(code)),
            Err(e) => Err(failed("device token")(e)),
        }
    }

    /// New tokens for a public client's refresh token.
    pub async fn refresh(
        &self,
        client: &str,
        refresh_token: &str,
    ) -> Result<TokenResponse, HarnessError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("refresh_token", refresh_token),
        ];
        HttpClient::new()
            .post_form(&self.token_endpoint(), &form)
            .await
            .map_err(failed("refresh"))
    }

    /// Approves the pending device login `user_code` as `account`, as the
    /// user would in a browser.
    pub async fn approve(&self, user_code: &str, account: &str) -> Result<(), HarnessError> {
        self.device_decision(&[
            ("user_code", user_code),
            ("account", account),
            ("decision", "approve"),
        ])
        .await
    }

    /// Denies the pending device login `user_code`: its poll then answers
    /// `access_denied`.
    pub async fn deny(&self, user_code: &str) -> Result<(), HarnessError> {
        self.device_decision(&[("user_code", user_code), ("decision", "deny")])
            .await
    }

    async fn device_decision(&self, form: &[(&str, &str)]) -> Result<(), HarnessError> {
        HttpClient::new()
            .post_form::<Value>(&format!("{}/test/device", self.issuer()), form)
            .await
            .map(drop)
            .map_err(failed("device decision"))
    }

    /// The public key set it serves.
    pub async fn jwks(&self) -> Result<Value, HarnessError> {
        HttpClient::new()
            .get_json(&self.jwks_uri())
            .await
            .map(|fetched| fetched.value)
            .map_err(failed("JWKS"))
    }

    /// The key id new tokens are signed with.
    pub fn signing_kid(&self) -> Result<String, HarnessError> {
        let path = self.dir().join(KEYS_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| HarnessError::io(format!("reading {}", path.display()), e))?;
        let keys: Value = serde_json::from_str(&text).map_err(|e| HarnessError::Request {
            context: format!("parsing {}", path.display()),
            detail: e.to_string(),
        })?;
        keys["keys"][0]["kid"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| HarnessError::Request {
                context: format!("parsing {}", path.display()),
                detail: "no key".to_string(),
            })
    }

    /// A new signing key, the old ones dropped: the provider starts again on
    /// the same port, so the issuer URL does not change. Tokens signed with
    /// an old key no longer verify against its JWKS.
    pub async fn rotate_keys(&mut self) -> Result<(), HarnessError> {
        self.rotate(false).await
    }

    /// A new signing key first, the old ones still published after it.
    pub async fn rotate_keys_keeping_old(&mut self) -> Result<(), HarnessError> {
        self.rotate(true).await
    }

    async fn rotate(&mut self, keep_old: bool) -> Result<(), HarnessError> {
        let mut command = tokio::process::Command::new(node());
        command
            .arg(script())
            .arg("rotate")
            .arg("--keys")
            .arg(self.dir().join(KEYS_FILE))
            .args(["--alg", self.launcher().alg.as_str()]);
        if keep_old {
            command.arg("--keep-old");
        }
        let output = command
            .output()
            .await
            .map_err(|e| HarnessError::io("running provider.mjs rotate", e))?;
        if !output.status.success() {
            return Err(HarnessError::Request {
                context: "provider.mjs rotate".to_string(),
                detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        self.restart().await
    }

    /// Stops it (SIGKILL): the issuer is down until [`Self::restart`]
    /// starts it again on the same port with the same keys.
    pub fn stop(&mut self) {
        self.kill();
    }
}
