//! TLS on a listener ([`Acceptor`]): the handshake runs in the connection's
//! own task, bounded by the listener's handshake timeout, so a slow or
//! silent peer never holds up the accept loop; a peer that does not speak
//! TLS fails the handshake and is closed. With client CAs configured (mTLS),
//! a verified client certificate becomes a [`PeerIdentity`], which
//! [`WithPeer`] puts into the extensions of every request on that
//! connection for the auth layer to read.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::Request;
use rustls::{
    ServerConfig, crypto::CryptoProvider, server::WebPkiClientVerifier, sign::SingleCertAndKey,
};
use tokio::{net::TcpStream, sync::watch};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

use crate::config::{
    ClientAuth, ConfigError, ListenerName, TlsConfig,
    tls::{TlsMaterial, provider},
};

/// ALPN of the gRPC listeners (data, admin).
pub(crate) const ALPN_H2: &[u8] = b"h2";
/// ALPN of the metrics listener.
pub(crate) const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Who a client certificate says the peer is, once the certificate has been
/// verified against the configured client CAs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerIdentity {
    /// The subject as an RFC 4514 string, most specific part first:
    /// `CN=svc-a,O=Acme`.
    pub subject: String,
    /// The subject's (most specific) common name, when it has one.
    pub common_name: Option<String>,
}

impl PeerIdentity {
    /// The identity in a DER certificate; `None` when its subject cannot be
    /// parsed.
    pub(crate) fn from_der(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let common_name = subject
            .iter_common_name()
            .last()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string);
        // RFC 4514 writes the RDN sequence last to first.
        let rdns: Vec<String> = subject
            .iter_rdn()
            .map(|rdn| {
                rdn.iter()
                    .map(|attr| {
                        let value = match attr.as_str() {
                            Ok(s) => escape(s),
                            Err(_) => format!("#{}", hex(attr.as_slice())),
                        };
                        format!("{}={value}", short_name(&attr.attr_type().to_id_string()))
                    })
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect();
        let subject = rdns.into_iter().rev().collect::<Vec<_>>().join(",");
        Some(Self {
            subject,
            common_name,
        })
    }
}

/// RFC 4514's short names for the attribute types that have one; other
/// types are written as their dotted OID.
fn short_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        other => other,
    }
    .to_string()
}

/// Escapes a value as RFC 4514 §2.4 asks.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i == last && c == ' ');
        if c == '\0' {
            out.push_str("\\00");
            continue;
        }
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The TLS side of one listener.
#[derive(Clone)]
pub(crate) struct Acceptor {
    inner: TlsAcceptor,
}

impl Acceptor {
    /// The acceptor for `listener` when the config puts it under TLS.
    /// Errors name the `tls` field whose file cannot be used.
    pub(crate) fn for_listener(
        tls: Option<&TlsConfig>,
        listener: ListenerName,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(tls) = tls.filter(|tls| tls.serves(listener)) else {
            return Ok(None);
        };
        let provider = provider();
        let material = tls.load(&provider)?;
        let alpn = match listener {
            ListenerName::Data | ListenerName::Admin => ALPN_H2,
            ListenerName::Metrics => ALPN_HTTP1,
        };
        Self::new(&material, provider, alpn).map(Some)
    }

    fn new(
        material: &TlsMaterial,
        provider: Arc<CryptoProvider>,
        alpn: &[u8],
    ) -> Result<Self, ConfigError> {
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::invalid("tls", e.to_string()))?;
        let builder = match &material.client_roots {
            None => builder.with_no_client_auth(),
            Some((roots, auth)) => {
                let mut verifier =
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider);
                if *auth == ClientAuth::Optional {
                    verifier = verifier.allow_unauthenticated();
                }
                let verifier = verifier
                    .build()
                    .map_err(|e| ConfigError::invalid("tls.client_ca_file", e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(
            material.certified_key.clone(),
        )));
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(Self {
            inner: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// The bare handshake, for a connection that is only told why it is
    /// refused.
    pub(crate) fn accept(&self, stream: TcpStream) -> tokio_rustls::Accept<TcpStream> {
        self.inner.accept(stream)
    }

    /// Runs the handshake within `timeout` (or until `stop`). `None` when
    /// it failed: not TLS, a refused client certificate, too slow, or a
    /// verified certificate whose subject cannot be read.
    pub(crate) async fn handshake(
        &self,
        stream: TcpStream,
        timeout: Duration,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<(TlsStream<TcpStream>, Option<PeerIdentity>)> {
        let accepted = tokio::select! {
            accepted = tokio::time::timeout(timeout, self.inner.accept(stream)) => accepted,
            _ = stop.wait_for(|stop| *stop) => return None,
        };
        let stream = match accepted {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "connection closed: TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::debug!("connection closed: no TLS handshake within the timeout");
                return None;
            }
        };
        let peer = match stream.get_ref().1.peer_certificates() {
            Some([cert, ..]) => {
                let Some(peer) = PeerIdentity::from_der(cert) else {
                    tracing::warn!("connection closed: unreadable client certificate subject");
                    return None;
                };
                tracing::debug!(subject = %peer.subject, common_name = ?peer.common_name, "client certificate verified");
                Some(peer)
            }
            _ => None,
        };
        Some((stream, peer))
    }
}

/// A connection's service with its peer's identity (if any) added to every
/// request's extensions.
#[derive(Clone)]
pub(crate) struct WithPeer<S> {
    pub inner: S,
    pub peer: Option<PeerIdentity>,
}

impl<S, B> tower::Service<Request<B>> for WithPeer<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Some(peer) = &self.peer {
            request.extensions_mut().insert(peer.clone());
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests;
