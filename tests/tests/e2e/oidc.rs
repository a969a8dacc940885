//! The real OpenID provider the auth suites run against (`prism_harness::oidc`):
//! its access tokens are JWTs signed by a key its JWKS publishes, carrying
//! the claims the policy names; the device flow completes once approved;
//! keys rotate behind the same issuer URL; the issuer goes down and comes
//! back on the same port.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
use prism_harness::oidc::{
    ADMIN_CLIENT, AUDIENCE, CLI_CLIENT, DEV_ACCOUNT, NOBODY_CLIENT, OPERATOR_ACCOUNT,
    OPERATOR_CLIENT, Oidc, OidcProvider, REPORTING_CLIENT, SERVICE_CLIENT, SigningAlg,
    TENANT_B_CLIENT, VIEWER_CLIENT,
};
use serde_json::Value;

/// Verifies `token` against the provider's published keys (issuer, audience,
/// signature, expiry) and returns its header's `kid` and its claims.
async fn verified(provider: &OidcProvider, token: &str) -> (String, Value) {
    let header = decode_header(token).unwrap();
    let kid = header.kid.clone().expect("the token names its key");
    let jwks: JwkSet = serde_json::from_value(provider.jwks().await.unwrap()).unwrap();
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the provider's JWKS"));
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[provider.issuer()]);
    let claims = decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the token verifies with the published key")
        .claims;
    (kid, claims)
}

async fn service_token(provider: &OidcProvider, scope: Option<&str>) -> String {
    provider
        .client_credentials(SERVICE_CLIENT.0, SERVICE_CLIENT.1, scope)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_tokens_are_jwts_with_the_policy_claims() {
    let provider = Oidc::default().start().await.unwrap();

    let token = service_token(&provider, Some("orders.read")).await;
    let header = decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let (kid, claims) = verified(&provider, &token).await;
    assert_eq!(kid, provider.signing_kid().unwrap());
    assert_eq!(claims["sub"], SERVICE_CLIENT.0);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["scope"], "orders.read");
    assert_eq!(claims["groups"], serde_json::json!(["orders-writers"]));
    assert!(claims.get("email").is_none(), "{claims}");

    // The second tenant's client carries its own groups.
    let token = provider
        .client_credentials(TENANT_B_CLIENT.0, TENANT_B_CLIENT.1, None)
        .await
        .unwrap();
    let (_, claims) = verified(&provider, &token).await;
    assert_eq!(claims["sub"], TENANT_B_CLIENT.0);
    assert_eq!(claims["groups"], serde_json::json!(["billing-writers"]));

    // Clients for the admin roles and the policy's other principals.
    for ((id, secret), groups) in [
        (VIEWER_CLIENT, vec!["prism-viewers"]),
        (OPERATOR_CLIENT, vec!["prism-operators"]),
        (ADMIN_CLIENT, vec!["prism-admins"]),
        (NOBODY_CLIENT, vec![]),
    ] {
        let token = provider.client_credentials(id, secret, None).await.unwrap();
        let (_, claims) = verified(&provider, &token).await;
        assert_eq!(claims["sub"], id);
        assert_eq!(claims["groups"], serde_json::json!(groups), "{id}");
    }
    let token = provider
        .client_credentials(REPORTING_CLIENT.0, REPORTING_CLIENT.1, Some("orders.read"))
        .await
        .unwrap();
    let (_, claims) = verified(&provider, &token).await;
    assert_eq!(
        (&claims["sub"], &claims["scope"]),
        (
            &serde_json::json!("svc-reporting"),
            &serde_json::json!("orders.read")
        )
    );

    // A wrong secret and a scope the client may not have are refused.
    let wrong = provider
        .client_credentials(SERVICE_CLIENT.0, "not-the-secret", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("invalid_client"), "{wrong}");
    let scope = provider
        .client_credentials(TENANT_B_CLIENT.0, TENANT_B_CLIENT.1, Some("orders.read"))
        .await
        .unwrap_err()
        .to_string();
    assert!(scope.contains("invalid_scope"), "{scope}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_keys_and_a_short_token_lifetime() {
    let provider = Oidc {
        alg: SigningAlg::Es256,
        access_token_ttl: Duration::from_secs(3),
        ..Oidc::default()
    }
    .start()
    .await
    .unwrap();
    let token = service_token(&provider, None).await;
    assert_eq!(decode_header(&token).unwrap().alg, Algorithm::ES256);
    let (_, claims) = verified(&provider, &token).await;
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 3, "{claims}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_flow_gives_the_approving_user_a_token_and_a_refresh_token() {
    let provider = Oidc::default().start().await.unwrap();
    let scope = "openid offline_access";

    let device = provider
        .device_authorization(CLI_CLIENT, scope)
        .await
        .unwrap();
    assert!(
        device.verification_uri.starts_with(&provider.issuer()),
        "{}",
        device.verification_uri
    );
    let pending = provider
        .device_token(CLI_CLIENT, &device.device_code)
        .await
        .unwrap();
    assert_eq!(pending.unwrap_err(), "authorization_pending");

    provider
        .approve(&device.user_code, DEV_ACCOUNT)
        .await
        .unwrap();
    let tokens = provider
        .device_token(CLI_CLIENT, &device.device_code)
        .await
        .unwrap()
        .expect("approved");
    let (_, claims) = verified(&provider, &tokens.access_token).await;
    assert_eq!(claims["sub"], DEV_ACCOUNT);
    assert_eq!(claims["email"], DEV_ACCOUNT);
    assert_eq!(claims["groups"], serde_json::json!(["prism-admins"]));

    // The refresh grant gives a new access token for the same user.
    let refresh = tokens
        .refresh_token
        .expect("offline_access gives a refresh token");
    let refreshed = provider.refresh(CLI_CLIENT, &refresh).await.unwrap();
    assert_ne!(refreshed.access_token, tokens.access_token);
    let (_, claims) = verified(&provider, &refreshed.access_token).await;
    assert_eq!(claims["sub"], DEV_ACCOUNT);

    // Another user gets their own groups.
    let other = provider
        .device_authorization(CLI_CLIENT, scope)
        .await
        .unwrap();
    provider
        .approve(&other.user_code, OPERATOR_ACCOUNT)
        .await
        .unwrap();
    let tokens = provider
        .device_token(CLI_CLIENT, &other.device_code)
        .await
        .unwrap()
        .expect("approved");
    let (_, claims) = verified(&provider, &tokens.access_token).await;
    assert_eq!(claims["groups"], serde_json::json!(["prism-operators"]));

    // A denied login answers access_denied; a used code cannot be approved again.
    let denied = provider
        .device_authorization(CLI_CLIENT, scope)
        .await
        .unwrap();
    provider.deny(&denied.user_code).await.unwrap();
    let answer = provider
        .device_token(CLI_CLIENT, &denied.device_code)
        .await
        .unwrap();
    assert_eq!(answer.unwrap_err(), "access_denied");
    assert!(
        provider
            .approve(&device.user_code, DEV_ACCOUNT)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_signs_with_a_new_key_behind_the_same_issuer() {
    let mut provider = Oidc::default().start().await.unwrap();
    let issuer = provider.issuer();
    let old = verified(&provider, &service_token(&provider, None).await)
        .await
        .0;

    provider.rotate_keys_keeping_old().await.unwrap();
    let new = verified(&provider, &service_token(&provider, None).await)
        .await
        .0;
    assert_ne!(new, old);
    assert_eq!(provider.issuer(), issuer);
    let kids = published_kids(&provider).await;
    assert_eq!(
        kids,
        [new.clone(), old.clone()],
        "the new key first, the old kept"
    );

    provider.rotate_keys().await.unwrap();
    let newest = verified(&provider, &service_token(&provider, None).await)
        .await
        .0;
    assert_eq!(published_kids(&provider).await, vec![newest.clone()]);
    assert!(newest != new && newest != old);
}

async fn published_kids(provider: &OidcProvider) -> Vec<String> {
    let jwks = provider.jwks().await.unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_issuer_refuses_and_comes_back_on_the_same_port() {
    let mut provider = Oidc::default().start().await.unwrap();
    let (issuer, kid) = (provider.issuer(), provider.signing_kid().unwrap());

    provider.stop();
    let down = provider
        .client_credentials(SERVICE_CLIENT.0, SERVICE_CLIENT.1, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(down.contains("cannot connect"), "{down}");

    provider.restart().await.unwrap();
    assert_eq!(provider.issuer(), issuer);
    let (same_kid, _) = verified(&provider, &service_token(&provider, None).await).await;
    assert_eq!(same_kid, kid, "the keys survive a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_with_a_path_serves_everything_under_it() {
    let provider = Oidc {
        path: "/dex".to_string(),
        ..Oidc::default()
    }
    .start()
    .await
    .unwrap();
    let issuer = provider.issuer();
    assert!(issuer.ends_with("/dex"), "{issuer}");
    let (_, claims) = verified(&provider, &service_token(&provider, None).await).await;
    assert_eq!(claims["iss"], issuer.as_str());
    let discovery = prism_auth::device::discover(&prism_auth::http::HttpClient::new(), &issuer)
        .await
        .unwrap();
    assert_eq!(discovery.token, format!("{issuer}/token"));
    let device = provider
        .device_authorization(CLI_CLIENT, "openid offline_access")
        .await
        .unwrap();
    provider
        .approve(&device.user_code, DEV_ACCOUNT)
        .await
        .unwrap();
    let tokens = provider
        .device_token(CLI_CLIENT, &device.device_code)
        .await
        .unwrap()
        .expect("approved");
    let (_, claims) = verified(&provider, &tokens.access_token).await;
    assert_eq!(claims["sub"], DEV_ACCOUNT);
}
