//! A verified client certificate authenticates on its own: its common name
//! is the principal `cert:<CN>` that `access` lists name. A bearer token on
//! the same connection wins over the certificate.

use prism_harness::{TestPki, pki::CLIENT_CN};
use prism_proto::keyvalue::v1::GetRequest;
use prism_tests::{ProxyBuilder, auth::auth_block, tls::ClientTls};
use serde_json::json;
use tonic::Code;

use super::set;

use jsonwebtoken::Algorithm;
use prism_harness::jwt::{SigningKey, TestIssuer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_the_principal_cert_common_name() {
    let pki = TestPki::generate().expect("test certificates");
    let issuer = TestIssuer::start(SigningKey::generate(Algorithm::ES256, "k1").unwrap())
        .await
        .unwrap();
    let certified = ClientTls::with_identity(&pki, &pki.client);
    let proxy = ProxyBuilder::new()
        .tls(
            &format!(
                "{}{}",
                pki.tls_yaml(Some("optional")),
                auth_block(issuer.issuer(), "")
            ),
            certified.clone(),
        )
        .namespace(&format!(
            "{{name: devices, pattern: keyvalue, access: {{read: ['cert:{CLIENT_CN}'], write: ['cert:{CLIENT_CN}']}}}}"
        ))
        .namespace(
            "{name: tokens-only, pattern: keyvalue, access: {read: ['group:ops'], write: ['group:ops']}}",
        )
        .start()
        .await;
    proxy.wait_serving("devices").await;
    proxy.wait_serving("tokens-only").await;

    // The certificate alone: no token at all.
    let mut kv = proxy.kv_as("devices", None).await;
    kv.set(set("v")).await.expect("the certificate may write");
    assert_eq!(
        kv.get(GetRequest { key: "k".into() })
            .await
            .unwrap()
            .into_inner()
            .value,
        b"v"
    );
    let denied = proxy
        .kv_as("tokens-only", None)
        .await
        .set(set("v"))
        .await
        .expect_err("the certificate has no right there");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert_eq!(
        denied.message(),
        format!("cert:{CLIENT_CN} may not write namespace `tokens-only`")
    );

    // With a token as well, the token names the caller.
    let token = issuer.token(
        "operator",
        std::time::Duration::from_secs(600),
        json!({"groups": ["ops"]}),
    );
    proxy
        .kv_as("tokens-only", Some(&token))
        .await
        .set(set("v"))
        .await
        .expect("the token's group may write");
    let denied = proxy
        .kv_as("devices", Some(&token))
        .await
        .set(set("v"))
        .await
        .expect_err("the token, not the certificate, is the caller");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    // A TLS client without a certificate and without a token is nobody.
    let anonymous = ClientTls::anonymous(&pki)
        .channel(proxy.data_addr)
        .await
        .unwrap();
    let status = prism_proto::keyvalue::v1::key_value_client::KeyValueClient::with_interceptor(
        anonymous,
        prism_tests::auth::Credentials::new("devices", None),
    )
    .set(set("v"))
    .await
    .expect_err("no credentials");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}
