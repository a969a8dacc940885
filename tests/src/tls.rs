//! Clients that speak TLS to the proxy: gRPC channels (tonic with the test
//! CA and, for mTLS, a client identity) and `GET` over HTTPS for
//! `/metrics`, by hand over tokio-rustls.

use std::{net::SocketAddr, sync::Arc};

use prism_harness::{TestPki, pki::Identity};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// What a client trusts (the test CA) and shows (an optional identity).
#[derive(Debug, Clone)]
pub struct ClientTls {
    pub ca_pem: String,
    pub identity: Option<Identity>,
}

impl ClientTls {
    /// Trusts `pki`'s CA and shows no certificate.
    pub fn anonymous(pki: &TestPki) -> Self {
        Self {
            ca_pem: pki.ca_pem.clone(),
            identity: None,
        }
    }

    /// Trusts `pki`'s CA and shows `identity`.
    pub fn with_identity(pki: &TestPki, identity: &Identity) -> Self {
        Self {
            identity: Some(identity.clone()),
            ..Self::anonymous(pki)
        }
    }

    pub fn tonic(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        match &self.identity {
            Some(id) => config.identity(tonic::transport::Identity::from_pem(
                &id.cert_pem,
                &id.key_pem,
            )),
            None => config,
        }
    }

    /// A gRPC channel to `https://addr`; the error (as text) when the
    /// connection is refused.
    pub async fn channel(&self, addr: SocketAddr) -> Result<Channel, String> {
        Channel::from_shared(format!("https://{addr}"))
            .map_err(|e| e.to_string())?
            .tls_config(self.tonic())
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("{e:?}"))
    }

    /// `GET path` over HTTPS (HTTP/1.1, `Connection: close`): the whole
    /// response, status line first.
    pub async fn https_get(&self, addr: SocketAddr, path: &str) -> std::io::Result<String> {
        let ca = CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).map_err(other)?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).map_err(other)?;
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(other)?
        .with_root_certificates(roots);
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(id.cert_pem.as_bytes()).map_err(other)?],
                    PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).map_err(other)?,
                )
                .map_err(other)?,
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::from(addr.ip());
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: prism\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut response = String::new();
        // A server that closes without TLS close_notify is fine once the
        // response is in.
        match stream.read_to_string(&mut response).await {
            Ok(_) => Ok(response),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {
                Ok(response)
            }
            Err(e) => Err(e),
        }
    }
}

fn other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
