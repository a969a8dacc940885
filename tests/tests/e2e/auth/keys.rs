//! The issuer's keys as they change under a running proxy: rotation, an
//! issuer that is down when the proxy starts, unknown key ids that must
//! not turn into a flood of JWKS fetches — and access rules changed by a
//! config reload, which apply without restarting anything.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use prism_harness::jwt::{SigningKey, TestIssuer};
use prism_proto::{admin::v1::ReloadConfigRequest, keyvalue::v1::GetRequest};
use prism_tests::{Proxy, auth::auth_block, eventually};
use serde_json::json;
use tonic::Code;

use super::{NAMESPACES, Setup, set};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_picked_up_without_a_restart() {
    let setup = Setup::start("", NAMESPACES).await;
    setup.proxy.wait_serving("orders").await;
    let before = setup.writer();
    setup
        .proxy
        .kv_as("orders", Some(&before))
        .await
        .set(set("v"))
        .await
        .expect("the first key signs");

    setup.issuer.rotate(
        SigningKey::generate(Algorithm::EdDSA, "key-2").unwrap(),
        true,
    );
    let after = setup.writer();
    assert_ne!(before, after);
    setup
        .proxy
        .kv_as("orders", Some(&after))
        .await
        .set(set("v"))
        .await
        .expect("a token signed with the new key, unknown at first, is accepted at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_ids_refetch_the_jwks_at_most_once_per_interval() {
    let setup = Setup::start("  key_refetch_min_ms: 60000\n", NAMESPACES).await;
    setup.proxy.wait_serving("orders").await;
    let good = setup.writer();
    setup
        .proxy
        .kv_as("orders", Some(&good))
        .await
        .set(set("v"))
        .await
        .unwrap();
    let stranger = SigningKey::generate(Algorithm::ES256, "made-up").unwrap();
    let before = setup.issuer.jwks_fetches();
    for _ in 0..20 {
        let token = stranger.sign(&setup.issuer.claims(
            "attacker",
            Duration::from_secs(60),
            json!({"groups": ["orders-writers"]}),
        ));
        let status = setup
            .proxy
            .kv_as("orders", Some(&token))
            .await
            .set(set("v"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }
    let fetched = setup.issuer.jwks_fetches() - before;
    assert!(
        fetched <= 1,
        "20 unknown key ids caused {fetched} JWKS fetches (at most one per minute)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_down_at_start_is_unavailable_then_heals() {
    let key = SigningKey::generate(Algorithm::ES256, "key-1").unwrap();
    let issuer = TestIssuer::start(key).await.unwrap();
    issuer.set_down(true);
    let proxy =
        Proxy::start_with_config(&format!("{}{NAMESPACES}", auth_block(issuer.issuer(), ""))).await;
    proxy.wait_serving("orders").await;
    let token = issuer.token(
        "svc-writer",
        Duration::from_secs(3600),
        json!({"groups": ["orders-writers"]}),
    );
    let status = proxy
        .kv_as("orders", Some(&token))
        .await
        .set(set("v"))
        .await
        .expect_err("the issuer's keys cannot be had");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("issuer") && status.message().contains(issuer.issuer()),
        "names the issuer: {status:?}"
    );

    issuer.set_down(false);
    eventually(Duration::from_secs(30), "the issuer's keys", || async {
        proxy
            .kv_as("orders", Some(&token))
            .await
            .set(set("v"))
            .await
            .ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_changed_by_a_reload_applies_to_the_next_call_without_a_restart() {
    let setup = Setup::start("  admin:\n    admin: [\"sub:root\"]\n", NAMESPACES).await;
    setup.proxy.wait_serving("orders").await;
    let reader = setup.token("svc-reader", json!({"groups": ["orders-readers"]}));
    let root = setup.token("root", json!({}));
    let denied = setup
        .proxy
        .kv_as("orders", Some(&reader))
        .await
        .set(set("v"))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let mut admin = setup.proxy.admin_as(Some(&root)).await;
    let pid_before = {
        let list = admin
            .list_patterns(prism_proto::admin::v1::ListPatternsRequest {})
            .await
            .unwrap()
            .into_inner();
        list.patterns
            .iter()
            .find(|p| p.namespace == "orders")
            .unwrap()
            .pid
    };
    let config = std::fs::read_to_string(setup.proxy.config_path()).unwrap();
    let widened = config.replace(
        r#"write: ["group:orders-writers"]"#,
        r#"write: ["group:orders-writers", "group:orders-readers"]"#,
    );
    assert_ne!(config, widened);
    std::fs::write(setup.proxy.config_path(), widened).unwrap();
    let changes = admin
        .reload_config(ReloadConfigRequest {})
        .await
        .expect("reload")
        .into_inner();
    assert!(
        changes.changed.is_empty(),
        "access is no process change: {changes:?}"
    );
    setup
        .proxy
        .kv_as("orders", Some(&reader))
        .await
        .set(set("v"))
        .await
        .expect("readers may write now");
    let value = setup
        .proxy
        .kv_as("orders", Some(&reader))
        .await
        .get(GetRequest { key: "k".into() })
        .await
        .unwrap();
    assert_eq!(value.into_inner().value, b"v");
    let list = admin
        .list_patterns(prism_proto::admin::v1::ListPatternsRequest {})
        .await
        .unwrap()
        .into_inner();
    let pid_after = list
        .patterns
        .iter()
        .find(|p| p.namespace == "orders")
        .unwrap()
        .pid;
    assert_eq!(
        pid_before, pid_after,
        "the pattern process was not replaced"
    );
}
