//! TLS and mTLS on a real proxy, with certificates made at test time: the
//! data plane, the admin API and `/metrics` over TLS; a plaintext client
//! refused while the proxy keeps serving; client certificates required
//! (none, or one from another CA, is refused) or optional; bad files
//! refused at start-up (exit 64) and on reload, naming the field.

use std::time::Duration;

use prism_harness::TestPki;
use prism_proto::{
    admin::v1::ReloadConfigRequest,
    keyvalue::v1::{GetRequest, key_value_client::KeyValueClient},
};
use prism_tests::{ProxyBuilder, proxy::NamespaceHeader, tls::ClientTls};
use tonic::{Code, transport::Channel};

use crate::{blackbox::grpcurl, config_safety::assert_exit_64_naming, keyvalue::set_v};

/// Generous: a refused client must get an answer, not hang, but the
/// machine may be busy.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

const KV: &str = "{name: kv, pattern: keyvalue, backend: memstore}";

fn pki() -> TestPki {
    TestPki::generate().unwrap()
}

/// Sets then gets `key` on namespace `kv` over `channel`.
async fn set_and_get(channel: Channel, key: &str) -> Result<Vec<u8>, tonic::Status> {
    let mut kv = KeyValueClient::with_interceptor(channel, NamespaceHeader::new("kv"));
    kv.set(set_v(key)).await?;
    let got = kv.get(GetRequest { key: key.into() }).await?;
    Ok(got.into_inner().value)
}

/// What a client with `tls` gets for a Set/Get on the data port: the value,
/// or why it failed (at connect or at the call).
async fn try_as(tls: &ClientTls, addr: std::net::SocketAddr, key: &str) -> Result<Vec<u8>, String> {
    let attempt = async {
        let channel = tls.channel(addr).await?;
        set_and_get(channel, key)
            .await
            .map_err(|s| format!("{s:?}"))
    };
    tokio::time::timeout(ANSWER_WITHIN, attempt)
        .await
        .expect("a refused client is answered, not left hanging")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_admin_and_metrics_are_served_over_tls_and_plaintext_is_refused() {
    let pki = pki();
    let proxy = ProxyBuilder::new()
        .namespace(KV)
        .tls(&pki.tls_yaml(None), ClientTls::anonymous(&pki))
        .start()
        .await;
    // ListPatterns over TLS, polled until the pattern runs.
    let info = proxy.wait_healthy("kv").await;
    assert!(info.pid > 0);

    let mut kv = proxy.kv("kv").await;
    kv.set(set_v("over-tls")).await.unwrap();
    let got = kv
        .get(GetRequest {
            key: "over-tls".into(),
        })
        .await
        .unwrap();
    assert_eq!(got.into_inner().value, b"v");

    let metrics = proxy.metrics().await;
    assert!(
        metrics.contains("prism_pattern_up{namespace=\"kv\""),
        "{metrics}"
    );

    // A plaintext gRPC client on the TLS data port: an error, not a hang.
    let plaintext = async {
        let channel = Channel::from_shared(format!("http://{}", proxy.data_addr))
            .unwrap()
            .connect()
            .await
            .map_err(|e| format!("{e:?}"))?;
        set_and_get(channel, "plain")
            .await
            .map_err(|s| format!("{s:?}"))
    };
    let refused = tokio::time::timeout(ANSWER_WITHIN, plaintext)
        .await
        .expect("a plaintext client is answered, not left hanging");
    assert!(refused.is_err(), "plaintext was served: {refused:?}");
    // Plain HTTP on the HTTPS metrics port: closed, nothing served.
    let mut raw = tokio::net::TcpStream::connect(proxy.metrics_addr)
        .await
        .unwrap();
    let plain_http = async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        raw.write_all(b"GET /metrics HTTP/1.1\r\nHost: prism\r\n\r\n")
            .await?;
        let mut seen = Vec::new();
        raw.read_to_end(&mut seen).await?;
        Ok::<_, std::io::Error>(seen)
    };
    let seen = tokio::time::timeout(ANSWER_WITHIN, plain_http)
        .await
        .expect("closed, not left hanging")
        .unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&seen).contains("prism_pattern_up"),
        "metrics served in plaintext"
    );

    // The proxy keeps serving, over TLS, on fresh connections too.
    assert_eq!(
        try_as(&ClientTls::anonymous(&pki), proxy.data_addr, "after")
            .await
            .unwrap(),
        b"v"
    );
    assert_eq!(proxy.list().await.patterns.len(), 1);
    assert!(
        prism_harness::procs::alive(proxy.pid()),
        "the proxy is still running"
    );
    let log = proxy.log();
    assert!(!log.contains("panicked"), "{log}");
    let key = std::fs::read_to_string(pki.path("server.key")).unwrap();
    for secret in key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!log.contains(secret), "key material in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_required_serves_only_clients_with_a_certificate_from_the_ca() {
    let pki = pki();
    let good = ClientTls::with_identity(&pki, &pki.client);
    let proxy = ProxyBuilder::new()
        .namespace(KV)
        .tls(&pki.tls_yaml(Some("required")), good.clone())
        .env("RUST_LOG", "info,prism_proxy::listener::tls=debug")
        .start()
        .await;
    proxy.wait_healthy("kv").await;

    let anonymous = try_as(&ClientTls::anonymous(&pki), proxy.data_addr, "a").await;
    assert!(anonymous.is_err(), "served without a certificate");
    let stranger = ClientTls::with_identity(&pki, &pki.stranger);
    let foreign = try_as(&stranger, proxy.data_addr, "b").await;
    assert!(foreign.is_err(), "served a certificate from another CA");
    assert_eq!(try_as(&good, proxy.data_addr, "c").await.unwrap(), b"v");
    // The peer identity the auth layer is handed, read from the certificate.
    prism_tests::eventually(
        Duration::from_secs(10),
        "the verified subject logged",
        || {
            let logged = proxy
                .log()
                .contains("subject=CN=svc-a,O=Acme common_name=Some(\"svc-a\")");
            async move { logged.then_some(()) }
        },
    )
    .await;

    // The admin and metrics listeners ask for the certificate too.
    let admin_anonymous = ClientTls::anonymous(&pki).channel(proxy.admin_addr).await;
    if let Ok(channel) = admin_anonymous {
        let listed = prism_proto::admin::v1::admin_client::AdminClient::new(channel)
            .list_patterns(prism_proto::admin::v1::ListPatternsRequest {})
            .await;
        assert!(listed.is_err(), "admin served without a certificate");
    }
    assert!(
        ClientTls::anonymous(&pki)
            .https_get(proxy.metrics_addr, "/metrics")
            .await
            .is_err(),
        "metrics served without a certificate"
    );
    assert!(proxy.metrics().await.contains("prism_pattern_up"));
    assert!(!proxy.log().contains("panicked"), "{}", proxy.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_optional_serves_anonymous_clients_and_checks_certificates_shown() {
    let pki = pki();
    let proxy = ProxyBuilder::new()
        .namespace(KV)
        .tls(&pki.tls_yaml(Some("optional")), ClientTls::anonymous(&pki))
        .start()
        .await;
    proxy.wait_healthy("kv").await;
    let anonymous = ClientTls::anonymous(&pki);
    assert_eq!(
        try_as(&anonymous, proxy.data_addr, "a").await.unwrap(),
        b"v"
    );
    let good = ClientTls::with_identity(&pki, &pki.client);
    assert_eq!(try_as(&good, proxy.data_addr, "b").await.unwrap(), b"v");
    let stranger = ClientTls::with_identity(&pki, &pki.stranger);
    assert!(try_as(&stranger, proxy.data_addr, "c").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_files_exit_64_naming_the_field() {
    let pki = pki();
    let missing = pki.path("missing.pem");
    let block = |cert: &std::path::Path, key: &std::path::Path| {
        format!(
            "tls:\n  cert_file: {}\n  key_file: {}\n",
            cert.display(),
            key.display()
        )
    };
    let cert = pki.path("server.crt");
    let key = pki.path("server.key");
    let cases = [
        (block(&missing, &key), "tls.cert_file"),
        (block(&key, &key), "tls.cert_file"),
        (block(&cert, &missing), "tls.key_file"),
        (block(&cert, &cert), "tls.key_file"),
        (
            format!("{}  client_auth: optional\n", block(&cert, &key)),
            "tls.client_auth",
        ),
    ];
    assert_exit_64_naming(&cases, &["--metrics-listen", "off"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_refuses_bad_tls_files_and_says_a_tls_change_needs_a_restart() {
    let pki = pki();
    let tls = pki.tls_yaml(None);
    let base = format!("watch_config: false\n{tls}namespaces:\n  - {KV}\n");
    let proxy = ProxyBuilder::new()
        .namespace(KV)
        .tls(
            &format!("watch_config: false\n{tls}"),
            ClientTls::anonymous(&pki),
        )
        .start()
        .await;
    proxy.wait_healthy("kv").await;
    let mut admin = proxy.admin().await;

    let gone = base.replace("server.key", "gone.key");
    std::fs::write(proxy.config_path(), gone).unwrap();
    let err = admin
        .reload_config(ReloadConfigRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("tls.key_file") && err.message().contains("file missing"),
        "{}",
        err.message()
    );

    let changed = base.replace("namespaces:", "  listeners: [data, admin]\nnamespaces:");
    std::fs::write(proxy.config_path(), changed).unwrap();
    let reply = admin
        .reload_config(ReloadConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(reply.message.contains("tls"), "{reply:?}");
    // Still served as started: metrics over HTTPS until a restart.
    assert!(proxy.metrics().await.contains("prism_pattern_up"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_calls_through_mtls_as_the_readme_shows() {
    let pki = pki();
    let proxy = ProxyBuilder::new()
        .namespace(KV)
        .tls(
            &pki.tls_yaml(Some("required")),
            ClientTls::with_identity(&pki, &pki.client),
        )
        .start()
        .await;
    proxy.wait_healthy("kv").await;
    let cert = pki.path("client.crt");
    let key = pki.path("client.key");
    std::fs::write(&cert, &pki.client.cert_pem).unwrap();
    std::fs::write(&key, &pki.client.key_pem).unwrap();
    let (ca, cert, key) = (
        pki.ca_file().display().to_string(),
        cert.display().to_string(),
        key.display().to_string(),
    );
    let addr = proxy.data_addr.to_string();
    let tls = ["-cacert", &ca, "-cert", &cert, "-key", &key];
    let call = |extra: &[&str], method: &str, body: &str| {
        let mut args = extra.to_vec();
        args.extend(["-H", "x-prism-namespace: kv", "-d", body, &addr, method]);
        grpcurl(&args)
    };
    // "aGVsbG8=" is base64 for "hello".
    let (ok, out) = call(
        &tls,
        "prism.keyvalue.v1.KeyValue/Set",
        r#"{"key": "greeting", "value": "aGVsbG8="}"#,
    );
    assert!(ok, "{out}");
    let (ok, out) = call(
        &tls,
        "prism.keyvalue.v1.KeyValue/Get",
        r#"{"key": "greeting"}"#,
    );
    assert!(ok && out.contains("aGVsbG8="), "{out}");
    // grpcurl retries a refused connection until its connect timeout.
    let (ok, out) = call(
        &["-connect-timeout", "3", "-cacert", &ca],
        "prism.keyvalue.v1.KeyValue/Get",
        r#"{"key": "greeting"}"#,
    );
    assert!(!ok, "served without a client certificate: {out}");
    let (ok, out) = call(
        &["-connect-timeout", "3", "-plaintext"],
        "prism.keyvalue.v1.KeyValue/Get",
        r#"{"key": "greeting"}"#,
    );
    assert!(!ok, "served in plaintext: {out}");
}
