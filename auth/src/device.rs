//! The OAuth 2.0 device authorization grant (RFC 8628) for a public client
//! such as `prism-console login`: find the issuer's endpoints in its
//! discovery document, start a login (the code and address the user is
//! shown), poll the token endpoint until the user approves, and refresh the
//! tokens later with the refresh-token grant.
//!
//! What to do with each answer of the token endpoint is a pure function
//! ([`next_step`]); [`poll_until`] only sleeps and asks.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::{AuthError, LoginFailure, Secret, http::HttpClient, http::parse_url};

pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.2: the poll interval when the issuer names none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// RFC 8628 §3.5: how much longer to wait after each `slow_down`.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Where an issuer takes device logins and hands out tokens.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub issuer: String,
    pub token: String,
    pub device_authorization: Option<String>,
}

/// Reads `issuer`'s `/.well-known/openid-configuration`.
///
/// Errors: the document cannot be had, or it names another issuer or
/// unusable endpoint URLs.
pub async fn discover(http: &HttpClient, issuer: &str) -> Result<Endpoints, AuthError> {
    #[derive(Deserialize)]
    struct Document {
        issuer: String,
        token_endpoint: String,
        #[serde(default)]
        device_authorization_endpoint: Option<String>,
    }
    let issuer = issuer.trim_end_matches('/');
    let url = format!("{issuer}/.well-known/openid-configuration");
    let doc: Document = http.get_json(&url).await?.value;
    if doc.issuer.trim_end_matches('/') != issuer {
        return Err(AuthError::Json {
            url,
            reason: format!("it names the issuer {:?}", doc.issuer),
        });
    }
    parse_url(&doc.token_endpoint)?;
    if let Some(device) = &doc.device_authorization_endpoint {
        parse_url(device)?;
    }
    Ok(Endpoints {
        issuer: doc.issuer,
        token: doc.token_endpoint,
        device_authorization: doc.device_authorization_endpoint,
    })
}

/// A started login: show `user_code` and `verification_uri` to the user,
/// then [`DeviceClient::wait`].
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    /// How long the codes stay valid.
    pub expires_in: Duration,
    pub interval: Duration,
}

/// What a token endpoint handed out.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_in: Option<Duration>,
    pub scope: Option<String>,
}

/// One answer of the token endpoint to a device-code poll.
#[derive(Debug)]
pub enum PollAnswer {
    Tokens(Tokens),
    Pending,
    SlowDown,
    Denied,
    Expired,
    /// Another OAuth error code.
    Refused(String),
}

/// Where a poll stands: the current interval and when to give up.
#[derive(Debug, Clone)]
pub struct PollState {
    pub interval: Duration,
    pub deadline: Instant,
    pub timeout: Duration,
}

impl PollState {
    pub fn new(interval: Duration, timeout: Duration, now: Instant) -> Self {
        Self {
            interval,
            deadline: now + timeout,
            timeout,
        }
    }
}

#[derive(Debug)]
pub enum Step {
    /// Ask again after this long.
    Wait(Duration),
    Done(Tokens),
    Fail(LoginFailure),
}

/// What to do after `answer`, at `now`.
pub fn next_step(state: &mut PollState, answer: PollAnswer, now: Instant) -> Step {
    match answer {
        PollAnswer::Tokens(tokens) => return Step::Done(tokens),
        PollAnswer::Pending => {}
        PollAnswer::SlowDown => state.interval += SLOW_DOWN_STEP,
        PollAnswer::Denied => return Step::Fail(LoginFailure::Denied),
        PollAnswer::Expired => return Step::Fail(LoginFailure::Expired),
        PollAnswer::Refused(code) => return Step::Fail(LoginFailure::Refused(code)),
    }
    if now + state.interval > state.deadline {
        Step::Fail(LoginFailure::TimedOut(state.timeout))
    } else {
        Step::Wait(state.interval)
    }
}

/// Asks `ask` every interval (waiting one interval first, as RFC 8628
/// wants) until it yields tokens, a final refusal, or `timeout` passes.
pub async fn poll_until<F, Fut>(
    interval: Duration,
    timeout: Duration,
    mut ask: F,
) -> Result<Tokens, AuthError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<PollAnswer, AuthError>>,
{
    let mut state = PollState::new(interval, timeout, Instant::now());
    let mut wait = state.interval;
    loop {
        tokio::time::sleep(wait).await;
        let answer = ask().await?;
        match next_step(&mut state, answer, Instant::now()) {
            Step::Wait(next) => wait = next,
            Step::Done(tokens) => return Ok(tokens),
            Step::Fail(failure) => return Err(failure.into()),
        }
    }
}

/// A public client's device logins and refreshes at one issuer.
#[derive(Debug, Clone)]
pub struct DeviceClient {
    http: HttpClient,
    endpoints: Endpoints,
    client_id: String,
}

impl DeviceClient {
    /// Finds `issuer`'s endpoints (see [`discover`]).
    pub async fn discover(
        http: HttpClient,
        issuer: &str,
        client_id: &str,
    ) -> Result<Self, AuthError> {
        let endpoints = discover(&http, issuer).await?;
        Ok(Self {
            http,
            endpoints,
            client_id: client_id.to_string(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.endpoints.issuer
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Starts a login asking for `scope` (e.g. `openid offline_access`, the
    /// latter for a refresh token).
    pub async fn start(&self, scope: &str) -> Result<DeviceAuthorization, AuthError> {
        #[derive(Deserialize)]
        struct Answer {
            device_code: Secret,
            user_code: String,
            verification_uri: String,
            #[serde(default)]
            verification_uri_complete: Option<String>,
            expires_in: u64,
            #[serde(default)]
            interval: Option<u64>,
        }
        let url = self
            .endpoints
            .device_authorization
            .as_deref()
            .ok_or(LoginFailure::NoDeviceEndpoint)?;
        let answer: Answer = self
            .http
            .post_form(url, &[("client_id", &self.client_id), ("scope", scope)])
            .await?;
        Ok(DeviceAuthorization {
            device_code: answer.device_code,
            user_code: answer.user_code,
            verification_uri: answer.verification_uri,
            verification_uri_complete: answer.verification_uri_complete,
            expires_in: Duration::from_secs(answer.expires_in),
            interval: answer
                .interval
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_INTERVAL),
        })
    }

    /// Polls until the user approves the login (or denies it, or its code
    /// expires).
    pub async fn wait(&self, login: &DeviceAuthorization) -> Result<Tokens, AuthError> {
        poll_until(login.interval, login.expires_in, || self.poll(login)).await
    }

    async fn poll(&self, login: &DeviceAuthorization) -> Result<PollAnswer, AuthError> {
        let form = [
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", &self.client_id),
            ("device_code", login.device_code.expose()),
        ];
        match self.http.post_form(&self.endpoints.token, &form).await {
            Ok(answer) => Ok(PollAnswer::Tokens(tokens(&self.endpoints.token, answer)?)),
            Err(AuthError::Status {
                error: Some(code), ..
            }) => Ok(match code.as_str() {
                "authorization_pending" => PollAnswer::Pending,
                "slow_down" => PollAnswer::SlowDown,
                "access_denied" => PollAnswer::Denied,
                "expired_token" => PollAnswer::Expired,
                _ => PollAnswer::Refused(code),
            }),
            Err(e) => Err(e),
        }
    }

    /// New tokens for a refresh token (the refresh-token grant).
    ///
    /// Errors: [`AuthError::Status`] with `invalid_grant` when the refresh
    /// token is no longer valid: the user has to log in again.
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<Tokens, AuthError> {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", &self.client_id),
            ("refresh_token", refresh_token.expose()),
        ];
        let answer = self.http.post_form(&self.endpoints.token, &form).await?;
        tokens(&self.endpoints.token, answer)
    }
}

/// The token response's fields, read one by one so that no error message
/// ever quotes a value of it.
fn tokens(url: &str, answer: Value) -> Result<Tokens, AuthError> {
    let bad = |reason: &str| AuthError::Json {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let access_token = answer["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("no access_token"))?;
    if let Some(kind) = answer.get("token_type")
        && !kind
            .as_str()
            .is_some_and(|k| k.eq_ignore_ascii_case("bearer"))
    {
        return Err(bad("token_type is not Bearer"));
    }
    Ok(Tokens {
        access_token: Secret::new(access_token),
        refresh_token: answer["refresh_token"].as_str().map(Secret::new),
        expires_in: answer["expires_in"].as_u64().map(Duration::from_secs),
        scope: answer["scope"].as_str().map(str::to_string),
    })
}

#[cfg(test)]
mod tests;
