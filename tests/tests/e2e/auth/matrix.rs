//! Every case of ACCEPTANCE.md's auth matrix, each asserted on its own.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use prism_harness::jwt::{SigningKey, unix_now};
use prism_proto::keyvalue::v1::GetRequest;
use prism_tests::auth::Credentials;
use serde_json::json;
use tonic::Code;

use super::{NAMESPACES, Setup, set};

/// A KeyValue Set with `credentials` on `orders`, as status.
async fn call(setup: &Setup, credentials: Credentials) -> tonic::Status {
    setup
        .proxy
        .kv_with(credentials)
        .await
        .set(set("v"))
        .await
        .expect_err("must be refused")
}

fn tamper(token: &str) -> String {
    let (head, signature) = token.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_unauthenticated_and_never_quoted() {
    let setup = Setup::start("", NAMESPACES).await;
    setup.proxy.wait_serving("orders").await;
    let iss = setup.issuer.issuer().to_string();
    let now = unix_now();
    let good = setup.writer();
    let claims = |extra: serde_json::Value| {
        setup
            .issuer
            .claims("svc-writer", Duration::from_secs(3600), extra)
    };
    let stranger = SigningKey::generate(Algorithm::ES256, "not-published").unwrap();
    let public_key = SigningKey::generate(Algorithm::RS256, "key-rsa").unwrap();
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    let hmac_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("key-1".into());
        jsonwebtoken::encode(
            &header,
            &claims(json!({})),
            &EncodingKey::from_secret(&public_key.public_pem),
        )
        .unwrap()
    };
    let mut no_sub = claims(json!({}));
    no_sub.as_object_mut().unwrap().remove("sub");

    let cases: Vec<(&str, Credentials, &str)> = vec![
        (
            "no token",
            Credentials::new("orders", None),
            "no bearer token",
        ),
        (
            "not bearer",
            Credentials::raw("orders", "Basic dXNlcjpwYXNz"),
            "not `Bearer",
        ),
        (
            "malformed",
            Credentials::new("orders", Some("abc.def")),
            "malformed token",
        ),
        (
            "alg none",
            Credentials::new("orders", Some(&alg_none)),
            "algorithm none is not allowed",
        ),
        (
            "expired",
            Credentials::new(
                "orders",
                Some(&setup.issuer.mint(&claims(json!({"exp": now - 120})))),
            ),
            "expired",
        ),
        (
            "not yet valid",
            Credentials::new(
                "orders",
                Some(&setup.issuer.mint(&claims(json!({"nbf": now + 3600})))),
            ),
            "not valid yet",
        ),
        (
            "wrong issuer",
            Credentials::new(
                "orders",
                Some(
                    &setup
                        .issuer
                        .mint(&claims(json!({"iss": "https://elsewhere.example"}))),
                ),
            ),
            "issuer is not trusted",
        ),
        (
            "wrong audience",
            Credentials::new(
                "orders",
                Some(&setup.issuer.mint(&claims(json!({"aud": "someone-else"})))),
            ),
            "audience",
        ),
        (
            "bad signature",
            Credentials::new("orders", Some(&tamper(&good))),
            "signature does not verify",
        ),
        (
            "unknown key",
            Credentials::new("orders", Some(&stranger.sign(&claims(json!({}))))),
            "key id is unknown",
        ),
        (
            "HMAC with the public key",
            Credentials::new("orders", Some(&hmac_with_public_key)),
            "algorithm HS256 is not allowed",
        ),
        (
            "no subject",
            Credentials::new("orders", Some(&setup.issuer.mint(&no_sub))),
            "lacks the `sub` claim",
        ),
    ];
    let _ = iss;
    for (case, credentials, expected) in cases {
        let status = call(&setup, credentials).await;
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        assert!(
            status.message().contains(expected),
            "{case}: {:?} should say {expected:?}",
            status.message()
        );
        assert!(
            !status.message().contains(&good[..40]) && status.message().len() < 200,
            "{case}: the message quotes no token: {:?}",
            status.message()
        );
    }
    // The good token still works after all that.
    setup
        .proxy
        .kv_as("orders", Some(&good))
        .await
        .set(set("v"))
        .await
        .expect("a good writer token sets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_token_without_the_right_is_permission_denied_naming_namespace_and_permission() {
    let setup = Setup::start("", NAMESPACES).await;
    setup.proxy.wait_serving("orders").await;
    let reader = setup.token("svc-reader", json!({"groups": ["orders-readers"]}));
    let nobody = setup.token("svc-nobody", json!({"groups": ["other"]}));

    let mut kv = setup.proxy.kv_as("orders", Some(&reader)).await;
    let missing = kv
        .get(GetRequest { key: "k".into() })
        .await
        .expect_err("nothing stored yet");
    assert_eq!(
        missing.code(),
        Code::NotFound,
        "a reader gets through: {missing:?}"
    );
    let denied = kv.set(set("v")).await.expect_err("a reader may not write");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert_eq!(
        denied.message(),
        "sub:svc-reader may not write namespace `orders`"
    );

    let denied = setup
        .proxy
        .kv_as("orders", Some(&nobody))
        .await
        .get(GetRequest { key: "k".into() })
        .await
        .expect_err("no entry, no access");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(
        denied.message().contains("may not read namespace `orders`"),
        "{denied:?}"
    );

    // A namespace that does not exist looks like one without access: its
    // existence is not revealed to callers without rights.
    let hidden = setup
        .proxy
        .kv_as("no-such-namespace", Some(&reader))
        .await
        .get(GetRequest { key: "k".into() })
        .await
        .expect_err("unknown namespace");
    assert_eq!(hidden.code(), Code::PermissionDenied, "{hidden:?}");

    // Health checks need no token (load balancers call them), nor does
    // reflection (it shows the schema, no data); a call through grpcurl
    // without a token is refused like any other.
    assert!(setup.proxy.serving_status("orders").await.is_ok());
    let addr = setup.proxy.data_addr.to_string();
    let (listed, services) = crate::blackbox::grpcurl(&["-plaintext", &addr, "list"]);
    assert!(listed, "{services}");
    assert!(
        services.contains("prism.keyvalue.v1.KeyValue"),
        "{services}"
    );
    let (called, answer) = crate::blackbox::grpcurl(&[
        "-plaintext",
        "-H",
        "x-prism-namespace: orders",
        "-d",
        r#"{"key": "k"}"#,
        &addr,
        "prism.keyvalue.v1.KeyValue/Get",
    ]);
    assert!(!called, "{answer}");
    assert!(answer.contains("Unauthenticated"), "{answer}");
}
