//! The device-code login and the token cache (`prism_auth::device`,
//! `prism_auth::token_cache`) against the real OpenID provider: a login
//! approved by the user leaves a private cache whose token is refreshed
//! before it expires; a denied login says so; `prism-console login` does
//! the whole flow as a user would.

use std::{os::unix::fs::PermissionsExt, path::Path, process::Stdio, time::Duration};

use prism_auth::{
    AuthError, LoginFailure, TokenProvider,
    device::DeviceClient,
    http::HttpClient,
    token_cache::{self, CachedToken},
};
use prism_harness::oidc::{CLI_CLIENT, DEV_ACCOUNT, Oidc, OidcProvider};
use prism_tests::{bins, eventually};
use tokio::io::{AsyncBufReadExt, BufReader};

const SCOPE: &str = "openid offline_access";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn sub_of(token: &str) -> String {
    let claims: serde_json::Value = jsonwebtoken::dangerous::insecure_decode_claims(token).unwrap();
    claims["sub"].as_str().unwrap().to_string()
}

async fn cli(provider: &OidcProvider) -> DeviceClient {
    DeviceClient::discover(HttpClient::new(), &provider.issuer(), CLI_CLIENT)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_login_caches_a_private_token_that_is_refreshed_before_expiry() {
    let provider = Oidc {
        access_token_ttl: Duration::from_secs(6),
        ..Oidc::default()
    }
    .start()
    .await
    .unwrap();
    let client = cli(&provider).await;
    let login = client.start(SCOPE).await.unwrap();
    assert!(login.verification_uri.starts_with(&provider.issuer()));
    provider
        .approve(&login.user_code, DEV_ACCOUNT)
        .await
        .unwrap();
    let tokens = client.wait(&login).await.unwrap();
    assert!(tokens.refresh_token.is_some(), "offline_access asked for");

    let home = tempfile::tempdir().unwrap();
    let path = token_cache::default_path(home.path());
    let now = token_cache::unix_now();
    let first = CachedToken::from_tokens(client.issuer(), CLI_CLIENT, tokens, now, None);
    token_cache::write(&path, &first).unwrap();
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&path), 0o600);

    let provider_of_tokens = TokenProvider::from_cache(path.clone(), HttpClient::new())
        .unwrap()
        .expect("the cache exists");
    let old = first.access_token.expose().to_string();
    assert_eq!(sub_of(&old), DEV_ACCOUNT);
    // Fresh: the cached token as is. Past half its six seconds: a new one,
    // before the old one expires.
    let fresh = provider_of_tokens.token().await.unwrap();
    assert_eq!(fresh.expose(), old);
    let (new, seen_at) = eventually(Duration::from_secs(20), "a refreshed token", || {
        let provider_of_tokens = &provider_of_tokens;
        let old = &old;
        async move {
            let token = provider_of_tokens.token().await.unwrap();
            (token.expose() != old).then(|| (token, token_cache::unix_now()))
        }
    })
    .await;
    assert!(
        seen_at < first.expires_at.unwrap(),
        "refreshed at {seen_at}, the old token expired at {:?}",
        first.expires_at
    );
    assert_eq!(sub_of(new.expose()), DEV_ACCOUNT);

    let cached = token_cache::read(&path).unwrap().unwrap();
    assert_eq!(cached.access_token, new);
    assert!(cached.issued_at >= first.issued_at);
    assert_eq!(mode(&path), 0o600, "still private after the refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_login_fails_with_a_clear_reason() {
    let provider = Oidc::default().start().await.unwrap();
    let client = cli(&provider).await;
    let login = client.start(SCOPE).await.unwrap();
    provider.deny(&login.user_code).await.unwrap();
    let err = client.wait(&login).await.unwrap_err();
    assert!(
        matches!(err, AuthError::Login(LoginFailure::Denied)),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prism_console_login_caches_the_approved_token_in_home() {
    let provider = Oidc::default().start().await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut console = tokio::process::Command::new(bins::bin("prism-console"))
        .args(["login", "--issuer", &provider.issuer()])
        .env("HOME", home.path())
        .env_remove("PRISM_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(console.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let user_code = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            printed.push(line.clone());
            if let Some(code) = line.strip_prefix("and enter the code ") {
                return code.trim().to_string();
            }
        }
        panic!("the console ended without a code: {printed:?}");
    })
    .await
    .expect("the console prints the code to enter");
    assert!(
        printed.iter().any(|l| l.contains(&provider.issuer())),
        "the verification address: {printed:?}"
    );

    provider.approve(&user_code, DEV_ACCOUNT).await.unwrap();
    let rest = tokio::time::timeout(Duration::from_secs(60), async {
        let mut rest = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            rest.push(line);
        }
        rest
    })
    .await
    .expect("the login ends once approved");
    let output = console.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "{rest:?} {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let path = home.path().join(".prism/token");
    assert_eq!(mode(home.path().join(".prism").as_path()), 0o700);
    assert_eq!(mode(&path), 0o600);
    let cached = token_cache::read(&path)
        .unwrap()
        .expect("the cache is written");
    assert_eq!(cached.issuer, provider.issuer());
    assert_eq!(cached.client_id, CLI_CLIENT);
    assert!(cached.refresh_token.is_some());
    assert_eq!(sub_of(cached.access_token.expose()), DEV_ACCOUNT);
    let said = format!("{printed:?} {rest:?}");
    assert!(said.contains("Token cached in"), "{said}");
    assert!(
        !said.contains(cached.access_token.expose()),
        "the token is never printed"
    );
}
