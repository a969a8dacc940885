//! The TLS handshake in process: real sockets, a rustls client, test
//! certificates made at run time ([`crate::config::tls_tests::Pki`]).

use std::{convert::Infallible, sync::Arc, time::Duration};

use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
};
use tokio::{io::AsyncWriteExt, net::TcpListener, sync::watch};
use tokio_rustls::TlsConnector;
use tower::{Service, ServiceExt};

use super::*;
use crate::config::{Config, tls_tests::Pki};

const TIMEOUT: Duration = Duration::from_secs(10);

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

fn acceptor(pki: &Pki, extra: &str, listener: ListenerName) -> Acceptor {
    let config = Config::from_yaml(&pki.yaml(extra)).unwrap();
    Acceptor::for_listener(config.tls.as_ref(), listener)
        .unwrap()
        .unwrap()
}

fn mtls_block(pki: &Pki, auth: &str) -> String {
    format!(
        "  client_ca_file: {}\n  client_auth: {auth}\n",
        pki.path("ca.crt").display()
    )
}

/// A client trusting the test CA, showing `identity` (cert PEM, key PEM).
fn client(pki: &Pki, identity: Option<&(String, String)>, alpn: &[u8]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(der(&pki.ca_pem)).unwrap();
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![der(cert)],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// What the server's side of one handshake gives: `None` when refused,
/// else the negotiated ALPN and the peer.
async fn server_side(
    acceptor: &Acceptor,
    connector: TlsConnector,
) -> Option<(Option<Vec<u8>>, Option<PeerIdentity>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (decided, server_decided) = tokio::sync::oneshot::channel::<()>();
    let client = tokio::spawn(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        // The client's view does not matter here (with TLS 1.3 a refused
        // certificate shows up on the client only later); keep the socket
        // open until the server has decided.
        let stream = connector.connect(name, tcp).await;
        let _ = server_decided.await;
        drop(stream);
    });
    let (tcp, _) = listener.accept().await.unwrap();
    let (_stop_tx, mut stop) = watch::channel(false);
    let result = acceptor.handshake(tcp, TIMEOUT, &mut stop).await;
    let _ = decided.send(());
    let result =
        result.map(|(stream, peer)| (stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec), peer));
    client.await.unwrap();
    result
}

#[test]
fn the_subject_reads_most_specific_first_with_its_common_name() {
    let pki = Pki::new();
    let peer = PeerIdentity::from_der(&der(&pki.client.0)).unwrap();
    assert_eq!(peer.subject, "CN=svc-a,O=Acme");
    assert_eq!(peer.common_name.as_deref(), Some("svc-a"));
    assert_eq!(PeerIdentity::from_der(b"not a certificate"), None);
}

#[test]
fn special_characters_are_escaped() {
    assert_eq!(escape("a,b+c"), "a\\,b\\+c");
    assert_eq!(escape("#x "), "\\#x\\ ");
    assert_eq!(escape(" lead"), "\\ lead");
    assert_eq!(escape("q\"<>;\\"), "q\\\"\\<\\>\\;\\\\");
    assert_eq!(escape("plain-name.1"), "plain-name.1");
}

#[test]
fn only_the_listeners_named_get_an_acceptor() {
    let pki = Pki::new();
    let config = Config::from_yaml(&pki.yaml("  listeners: [admin]\n")).unwrap();
    let get = |name| Acceptor::for_listener(config.tls.as_ref(), name).unwrap();
    assert!(get(ListenerName::Admin).is_some());
    assert!(get(ListenerName::Data).is_none());
    assert!(get(ListenerName::Metrics).is_none());
    assert!(
        Acceptor::for_listener(None, ListenerName::Data)
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn alpn_is_h2_for_grpc_and_http1_for_metrics() {
    let pki = Pki::new();
    let data = acceptor(&pki, "", ListenerName::Data);
    let (alpn, peer) = server_side(&data, client(&pki, None, ALPN_H2))
        .await
        .unwrap();
    assert_eq!(alpn.as_deref(), Some(ALPN_H2));
    assert_eq!(peer, None, "no client certificate asked for");
    let metrics = acceptor(&pki, "", ListenerName::Metrics);
    let (alpn, _) = server_side(&metrics, client(&pki, None, ALPN_HTTP1))
        .await
        .unwrap();
    assert_eq!(alpn.as_deref(), Some(ALPN_HTTP1));
}

#[tokio::test]
async fn required_client_auth_takes_only_certificates_from_the_ca() {
    let pki = Pki::new();
    let tls = acceptor(&pki, &mtls_block(&pki, "required"), ListenerName::Data);
    assert!(
        server_side(&tls, client(&pki, None, ALPN_H2))
            .await
            .is_none()
    );
    assert!(
        server_side(&tls, client(&pki, Some(&pki.stranger), ALPN_H2))
            .await
            .is_none()
    );
    let (_, peer) = server_side(&tls, client(&pki, Some(&pki.client), ALPN_H2))
        .await
        .unwrap();
    let peer = peer.unwrap();
    assert_eq!(peer.subject, "CN=svc-a,O=Acme");
    assert_eq!(peer.common_name.as_deref(), Some("svc-a"));
}

#[tokio::test]
async fn optional_client_auth_serves_anonymous_clients_but_checks_a_certificate_shown() {
    let pki = Pki::new();
    let tls = acceptor(&pki, &mtls_block(&pki, "optional"), ListenerName::Data);
    let (_, peer) = server_side(&tls, client(&pki, None, ALPN_H2))
        .await
        .unwrap();
    assert_eq!(peer, None);
    assert!(
        server_side(&tls, client(&pki, Some(&pki.stranger), ALPN_H2))
            .await
            .is_none()
    );
    let (_, peer) = server_side(&tls, client(&pki, Some(&pki.client), ALPN_H2))
        .await
        .unwrap();
    assert_eq!(peer.unwrap().common_name.as_deref(), Some("svc-a"));
}

#[tokio::test]
async fn plaintext_and_silent_peers_fail_the_handshake() {
    let pki = Pki::new();
    let tls = acceptor(&pki, "", ListenerName::Data);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop_tx, mut stop) = watch::channel(false);

    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let refused = tokio::time::timeout(TIMEOUT, tls.handshake(tcp, TIMEOUT, &mut stop))
        .await
        .expect("a plaintext peer is refused at once, not at the timeout");
    assert!(refused.is_none());

    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let started = std::time::Instant::now();
    let timed_out = tls
        .handshake(tcp, Duration::from_millis(200), &mut stop)
        .await;
    assert!(timed_out.is_none());
    assert!(started.elapsed() >= Duration::from_millis(200));

    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (tcp, _) = listener.accept().await.unwrap();
    let (stop_tx, mut stop) = watch::channel(false);
    let waiting = tokio::spawn({
        let tls = tls.clone();
        async move { tls.handshake(tcp, TIMEOUT, &mut stop).await.is_none() }
    });
    stop_tx.send(true).unwrap();
    let stopped = tokio::time::timeout(TIMEOUT, waiting).await.unwrap();
    assert!(stopped.unwrap(), "shutdown ends a pending handshake");
}

#[tokio::test]
async fn every_request_on_a_verified_connection_carries_the_peer() {
    let seen = tower::service_fn(|request: Request<()>| async move {
        Ok::<_, Infallible>(request.extensions().get::<PeerIdentity>().cloned())
    });
    let peer = PeerIdentity {
        subject: "CN=svc-a".into(),
        common_name: Some("svc-a".into()),
    };
    let mut with = WithPeer {
        inner: seen,
        peer: Some(peer.clone()),
    };
    for _ in 0..2 {
        let got = with.ready().await.unwrap().call(Request::new(())).await;
        assert_eq!(got.unwrap(), Some(peer.clone()));
    }
    let mut anonymous = WithPeer {
        inner: seen,
        peer: None,
    };
    let got = anonymous
        .ready()
        .await
        .unwrap()
        .call(Request::new(()))
        .await;
    assert_eq!(got.unwrap(), None);
}

/// A TLS listener serving gRPC health (SERVING) with room for one
/// connection; dropping the sender stops it.
async fn one_connection_listener(
    pki: &Pki,
    protocol: crate::listener::Protocol,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let name = match protocol {
        crate::listener::Protocol::Http2 => ListenerName::Data,
        crate::listener::Protocol::Http1 => ListenerName::Metrics,
    };
    let tls = acceptor(pki, "", name);
    let (_reporter, health) = tonic_health::server::health_reporter();
    let routes = tonic::service::Routes::new(health).prepare();
    let bounds = crate::config::ListenersConfig {
        max_connections: 1,
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(crate::listener::serve(
        "test",
        listener,
        bounds,
        protocol,
        Some(tls),
        routes,
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

#[tokio::test]
async fn a_grpc_client_past_the_connection_cap_is_told_why_over_tls() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig};
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let pki = Pki::new();
    let (addr, _stop) = one_connection_listener(&pki, crate::listener::Protocol::Http2).await;
    let channel = || async {
        Channel::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca_pem)))
            .unwrap()
            .connect()
            .await
            .unwrap()
    };
    let check = HealthCheckRequest {
        service: String::new(),
    };
    let mut first = HealthClient::new(channel().await);
    first.check(check.clone()).await.expect("served");
    let refused = HealthClient::new(channel().await)
        .check(check.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("max_connections = 1"),
        "{refused:?}"
    );
    first.check(check).await.expect("the first is still served");
}

#[tokio::test]
async fn https_past_the_connection_cap_is_a_503() {
    use tokio::io::AsyncReadExt;

    let pki = Pki::new();
    let (addr, _stop) = one_connection_listener(&pki, crate::listener::Protocol::Http1).await;
    let name = ServerName::try_from("localhost").unwrap();
    let open = |connector: TlsConnector| {
        let name = name.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            connector.connect(name, tcp).await.unwrap()
        }
    };
    // Holds the one slot: handshaken, then quiet.
    let _holder = open(client(&pki, None, ALPN_HTTP1)).await;
    let mut second = open(client(&pki, None, ALPN_HTTP1)).await;
    let mut answer = String::new();
    let read = second.read_to_string(&mut answer);
    let _ = tokio::time::timeout(TIMEOUT, read).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("max_connections = 1"), "{answer}");
}

#[tokio::test]
async fn the_listener_hands_each_request_the_verified_peer() {
    use tokio::io::AsyncReadExt;

    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = acceptor(&pki, &mtls_block(&pki, "optional"), ListenerName::Metrics);
    // Answers with who the listener says the peer is.
    let whoami = tower::service_fn(|request: Request<hyper::body::Incoming>| async move {
        let peer = request.extensions().get::<PeerIdentity>();
        let body = peer.map_or("anonymous".to_string(), |p| p.subject.clone());
        Ok::<_, Infallible>(http::Response::new(body))
    });
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(crate::listener::serve(
        "test",
        listener,
        Default::default(),
        crate::listener::Protocol::Http1,
        Some(tls),
        whoami,
        async move {
            let _ = stopped.await;
        },
    ));
    let ask = |identity: Option<&(String, String)>| {
        let connector = client(&pki, identity, ALPN_HTTP1);
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let mut stream = connector.connect(name, tcp).await.unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut answer = String::new();
            let _ = tokio::time::timeout(TIMEOUT, stream.read_to_string(&mut answer)).await;
            answer
        }
    };
    let answer = ask(Some(&pki.client)).await;
    assert_eq!(
        answer.matches("CN=svc-a,O=Acme").count(),
        2,
        "both requests on the connection: {answer}"
    );
    let answer = ask(None).await;
    assert_eq!(answer.matches("anonymous").count(), 2, "{answer}");
}

#[tokio::test]
async fn a_plaintext_peer_is_closed_and_frees_its_slot() {
    use tokio::io::AsyncReadExt;
    use tonic::transport::{Certificate, Channel, ClientTlsConfig};
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let pki = Pki::new();
    let (addr, _stop) = one_connection_listener(&pki, crate::listener::Protocol::Http2).await;
    // Kept open on this side: only the proxy closing it frees the one slot.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(TIMEOUT, plain.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the proxy closed the plaintext connection");
    let channel = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca_pem)))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let served = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    assert!(served.is_ok(), "the slot is free again: {served:?}");
}
