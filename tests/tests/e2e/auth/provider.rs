//! The proxy against a real, certified OpenID provider (`oidc-provider`,
//! started by the harness): client-credentials tokens minted by it carry
//! the groups and scopes the policy names; two tenants stay apart; admin
//! roles come from its groups; its key rotation is picked up without a
//! restart; a proxy started while it is down serves once it is back.

use std::time::Duration;

use prism_harness::oidc::{
    ADMIN_CLIENT, NOBODY_CLIENT, Oidc, OidcProvider, REPORTING_CLIENT, SERVICE_CLIENT,
    TENANT_B_CLIENT, VIEWER_CLIENT,
};
use prism_proto::{
    admin::v1::{ReloadConfigRequest, RestartPatternRequest},
    keyvalue::v1::GetRequest,
};
use prism_tests::{Proxy, eventually};
use tonic::Code;

use super::set;

fn config(provider: &OidcProvider) -> String {
    format!(
        r#"auth:
  issuers:
    - issuer: {}
      audiences: [prism]
  admin:
    viewer: ["group:prism-viewers"]
    operator: ["group:prism-operators"]
    admin: ["group:prism-admins"]
namespaces:
  - name: orders
    pattern: keyvalue
    access:
      read: ["group:orders-writers", "scope:orders.read"]
      write: ["group:orders-writers"]
  - name: billing
    pattern: keyvalue
    access:
      read: ["group:billing-writers"]
      write: ["group:billing-writers"]
"#,
        provider.issuer()
    )
}

async fn token(provider: &OidcProvider, (client, secret): (&str, &str)) -> String {
    provider
        .client_credentials(client, secret, None)
        .await
        .unwrap_or_else(|e| panic!("a token for {client}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_a_real_provider_open_exactly_what_the_policy_grants() {
    let provider = Oidc::default().start().await.unwrap();
    let proxy = Proxy::start_with_config(&config(&provider)).await;
    proxy.wait_serving("orders").await;
    proxy.wait_serving("billing").await;
    let orders = token(&provider, SERVICE_CLIENT).await;
    let billing = token(&provider, TENANT_B_CLIENT).await;
    // A scope is granted when asked for.
    let reporting = provider
        .client_credentials(REPORTING_CLIENT.0, REPORTING_CLIENT.1, Some("orders.read"))
        .await
        .unwrap();
    let nobody = token(&provider, NOBODY_CLIENT).await;

    proxy
        .kv_as("orders", Some(&orders))
        .await
        .set(set("o"))
        .await
        .expect("orders-writers write orders");
    proxy
        .kv_as("billing", Some(&billing))
        .await
        .set(set("b"))
        .await
        .expect("billing-writers write billing");
    for (token, namespace) in [(&orders, "billing"), (&billing, "orders")] {
        let status = proxy
            .kv_as(namespace, Some(token))
            .await
            .get(GetRequest { key: "k".into() })
            .await
            .expect_err("the other tenant");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert!(status.message().contains(namespace), "{status:?}");
    }
    let mut as_reporting = proxy.kv_as("orders", Some(&reporting)).await;
    let value = as_reporting
        .get(GetRequest { key: "k".into() })
        .await
        .expect("the orders.read scope reads")
        .into_inner()
        .value;
    assert_eq!(value, b"o");
    let status = as_reporting.set(set("r")).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = proxy
        .kv_as("orders", Some(&nobody))
        .await
        .get(GetRequest { key: "k".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // Admin roles from the provider's groups.
    let viewer = token(&provider, VIEWER_CLIENT).await;
    let admin = token(&provider, ADMIN_CLIENT).await;
    let status = proxy
        .admin_as(Some(&viewer))
        .await
        .restart_pattern(RestartPatternRequest {
            namespace: "orders".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    proxy
        .admin_as(Some(&admin))
        .await
        .reload_config(ReloadConfigRequest {})
        .await
        .expect("prism-admins reload the config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_key_rotation_and_outage_need_no_proxy_restart() {
    let mut provider = Oidc::default().start().await.unwrap();
    let proxy = Proxy::start_with_config(&config(&provider)).await;
    proxy.wait_serving("orders").await;
    let before = token(&provider, SERVICE_CLIENT).await;
    proxy
        .kv_as("orders", Some(&before))
        .await
        .set(set("1"))
        .await
        .expect("the first key");
    let old_kid = provider.signing_kid().unwrap();

    provider.rotate_keys().await.unwrap();
    assert_ne!(provider.signing_kid().unwrap(), old_kid);
    let after = token(&provider, SERVICE_CLIENT).await;
    proxy
        .kv_as("orders", Some(&after))
        .await
        .set(set("2"))
        .await
        .expect("a token signed with the rotated key, at once");

    // The provider goes down: tokens already checked keep working (their
    // keys are cached), and a proxy started now waits for it.
    provider.stop();
    proxy
        .kv_as("orders", Some(&after))
        .await
        .get(GetRequest { key: "k".into() })
        .await
        .expect("cached keys outlive the provider's outage");
    let late = Proxy::start_with_config(&config(&provider)).await;
    late.wait_serving("orders").await;
    let status = late
        .kv_as("orders", Some(&after))
        .await
        .set(set("3"))
        .await
        .expect_err("no keys yet");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(status.message().contains(&provider.issuer()), "{status:?}");
    provider.restart().await.unwrap();
    eventually(Duration::from_secs(30), "the provider's keys", || async {
        late.kv_as("orders", Some(&after))
            .await
            .set(set("3"))
            .await
            .ok()
    })
    .await;
}
