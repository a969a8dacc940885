//! The Rust client over TLS to a real proxy with certificates made at test
//! time: a call over `https://` with the CA file, mTLS with a client
//! certificate, and refusals that say why (a CA that did not sign the
//! proxy's certificate, no client certificate where one is required).

use prism_client::{Error, PrismClient};
use prism_harness::TestPki;
use prism_tests::{Proxy, ProxyBuilder, tls::ClientTls};

use super::WAIT;

const KV: &str = "{name: kv, pattern: keyvalue, backend: memstore}";

async fn tls_proxy(pki: &TestPki, client_auth: Option<&str>) -> Proxy {
    let client = match client_auth {
        None => ClientTls::anonymous(pki),
        Some(_) => ClientTls::with_identity(pki, &pki.client),
    };
    let proxy = ProxyBuilder::new()
        .namespace(KV)
        .tls(&pki.tls_yaml(client_auth), client)
        .start()
        .await;
    proxy.wait_healthy("kv").await;
    proxy
}

/// Writes `identity`'s certificate and key into `pki`'s folder.
fn identity_files(
    pki: &TestPki,
    name: &str,
    identity: &prism_harness::pki::Identity,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        pki.path(&format!("{name}.crt")),
        pki.path(&format!("{name}.key")),
    );
    std::fs::write(&cert, &identity.cert_pem).unwrap();
    std::fs::write(&key, &identity.key_pem).unwrap();
    (cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_tls_works_and_a_wrong_ca_is_refused_saying_why() {
    let pki = TestPki::generate().unwrap();
    let proxy = tls_proxy(&pki, None).await;
    let address = format!("https://{}", proxy.data_addr);
    let client = PrismClient::builder(address.clone())
        .ca_file(pki.ca_file())
        .timeout(WAIT)
        .connect()
        .await
        .unwrap();
    let kv = client.kv("kv");
    kv.set("over-tls", "yes", None).await.unwrap();
    assert_eq!(kv.get("over-tls").await.unwrap(), b"yes");
    // A bare host:port with a CA file means https.
    let bare = PrismClient::builder(proxy.data_addr.to_string())
        .ca_file(pki.ca_file())
        .timeout(WAIT)
        .connect()
        .await
        .unwrap();
    assert_eq!(bare.kv("kv").get("over-tls").await.unwrap(), b"yes");

    // Another CA's certificate as the only trusted root.
    let other = TestPki::generate().unwrap();
    let refused = PrismClient::builder(address.clone())
        .ca_file(other.ca_file())
        .timeout(WAIT)
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::Connect { .. }), "{refused}");
    let shown = refused.to_string();
    assert!(shown.contains(&address), "{shown}");
    assert!(
        shown.contains("invalid peer certificate"),
        "the reason says the proxy's certificate is not trusted: {shown}"
    );

    // Plaintext to the TLS port: refused at connect or at the first call.
    let plaintext = async {
        let client = PrismClient::builder(proxy.data_addr.to_string())
            .timeout(WAIT)
            .connect()
            .await?;
        client.kv("kv").get("over-tls").await
    };
    assert!(plaintext.await.is_err(), "plaintext was served");
    let mixed = PrismClient::builder(format!("http://{}", proxy.data_addr))
        .ca_file(pki.ca_file())
        .connect()
        .await
        .unwrap_err();
    assert!(mixed.to_string().contains("https://"), "{mixed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_needs_the_client_certificate_from_the_proxys_ca() {
    let pki = TestPki::generate().unwrap();
    let proxy = tls_proxy(&pki, Some("required")).await;
    let address = format!("https://{}", proxy.data_addr);
    let (cert, key) = identity_files(&pki, "client", &pki.client);
    let client = PrismClient::builder(address.clone())
        .ca_file(pki.ca_file())
        .client_certificate(cert, key)
        .timeout(WAIT)
        .connect()
        .await
        .unwrap();
    client.kv("kv").set("mtls", "ok", None).await.unwrap();
    assert_eq!(client.kv("kv").get("mtls").await.unwrap(), b"ok");

    // No certificate, or one with the same subject from another CA: the
    // handshake or the first call fails; never served.
    let (stranger_cert, stranger_key) = identity_files(&pki, "stranger", &pki.stranger);
    for (what, identity) in [
        ("no certificate", None),
        ("another CA's", Some((stranger_cert, stranger_key))),
    ] {
        let attempt = async {
            let mut builder = PrismClient::builder(address.clone())
                .ca_file(pki.ca_file())
                .timeout(WAIT);
            if let Some((cert, key)) = identity {
                builder = builder.client_certificate(cert, key);
            }
            builder.connect().await?.kv("kv").get("mtls").await
        };
        let error = attempt.await.unwrap_err();
        // TLS 1.3 finishes the client's side of the handshake before the
        // proxy checks the certificate, so the refusal comes at connect or
        // with the first call: the proxy's alert (`CertificateRequired`)
        // or, when the close wins the race, the connection closed. Never
        // an answer from the proxy, so no trace id.
        assert!(
            matches!(
                error,
                Error::Connect { .. }
                    | Error::Cancelled(_)
                    | Error::Unavailable(_)
                    | Error::Other {
                        code: tonic::Code::Unknown,
                        ..
                    }
            ),
            "{what}: {error}"
        );
        assert_eq!(error.trace_id(), None, "{what}: {error}");
    }
}
