//! The HTTP client behind every OpenID Connect exchange: one request per
//! connection (issuers are asked rarely), HTTPS through rustls with the
//! system's roots plus an optional extra CA, `http` for loopback issuers,
//! answers capped at [`MAX_BODY_BYTES`] and bounded by a timeout.

use std::{
    path::Path,
    sync::{Arc, OnceLock},
    time::Duration,
};

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use url::Url;

use crate::AuthError;

/// Discovery documents and key sets are small; anything bigger is refused.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default bound on one whole request: connect, send, read the answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// An answer and how long its sender says it may be cached.
#[derive(Debug, Clone)]
pub struct Fetched<T> {
    pub value: T,
    /// From `Cache-Control: max-age`, when the server sent one.
    pub max_age: Option<Duration>,
}

#[derive(Clone)]
pub struct HttpClient {
    tls: Arc<ClientConfig>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client trusting the system's root certificates.
    pub fn new() -> Self {
        Self {
            tls: Arc::new(tls_config(system_roots().clone())),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A client trusting the system's roots and the PEM certificates in
    /// `ca_file` (a private issuer's CA).
    ///
    /// Errors: the file cannot be read or holds no usable certificate.
    pub fn with_ca_file(ca_file: &Path) -> Result<Self, AuthError> {
        let file_error = |source| AuthError::File {
            path: ca_file.display().to_string(),
            source,
        };
        let pem = std::fs::read(ca_file).map_err(file_error)?;
        let mut roots = system_roots().clone();
        let mut added = 0;
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
            let cert: rustls::pki_types::CertificateDer<'static> = cert.map_err(|e| {
                file_error(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    e.to_string(),
                ))
            })?;
            if roots.add(cert).is_ok() {
                added += 1;
            }
        }
        if added == 0 {
            return Err(file_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "no usable PEM certificate",
            )));
        }
        Ok(Self {
            tls: Arc::new(tls_config(roots)),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// GETs `url` and decodes its JSON answer.
    ///
    /// Errors: [`AuthError::Http`] (no connection), [`AuthError::Timeout`],
    /// [`AuthError::Status`] (not 2xx), [`AuthError::Json`] (not the JSON
    /// expected, or bigger than [`MAX_BODY_BYTES`]).
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<Fetched<T>, AuthError> {
        let (status, max_age, body) = self.send(Method::GET, url, None).await?;
        check_status(url, status, &body)?;
        Ok(Fetched {
            value: decode(url, &body)?,
            max_age,
        })
    }

    /// POSTs `form` (`application/x-www-form-urlencoded`) to `url` and
    /// decodes its JSON answer. A 4xx answer carrying an OAuth `error` code
    /// comes back as [`AuthError::Status`] with that code (the device-code
    /// flow's `authorization_pending` arrives that way).
    pub async fn post_form<T: DeserializeOwned>(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<T, AuthError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let (status, _, answer) = self.send(Method::POST, url, Some(body)).await?;
        check_status(url, status, &answer)?;
        decode(url, &answer)
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        form: Option<String>,
    ) -> Result<(u16, Option<Duration>, Bytes), AuthError> {
        let parsed = parse_url(url)?;
        tokio::time::timeout(self.timeout, self.exchange(method, &parsed, form))
            .await
            .map_err(|_| AuthError::Timeout {
                url: url.to_string(),
                timeout: self.timeout,
            })?
    }

    async fn exchange(
        &self,
        method: Method,
        url: &Url,
        form: Option<String>,
    ) -> Result<(u16, Option<Duration>, Bytes), AuthError> {
        let failed = |reason: String| AuthError::Http {
            url: url.to_string(),
            reason,
        };
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let tcp = TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| failed(format!("cannot connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        // Origin form (`/path?query`): the absolute form is for proxies, and
        // not every issuer's server takes it.
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(target)
            .header(header::HOST, host_header(url))
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("prism/", env!("CARGO_PKG_VERSION")),
            );
        if form.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let request = request
            .body(Full::new(Bytes::from(form.unwrap_or_default())))
            .map_err(|e| failed(e.to_string()))?;
        let response = if url.scheme() == "https" {
            let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|e| failed(format!("bad server name: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| failed(format!("TLS: {e}")))?;
            round_trip(TokioIo::new(tls), request).await
        } else {
            round_trip(TokioIo::new(tcp), request).await
        }
        .map_err(failed)?;
        let status = response.status().as_u16();
        let max_age = response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| AuthError::Json {
                url: url.to_string(),
                reason: format!("reading the answer: {e}"),
            })?
            .to_bytes();
        Ok((status, max_age, body))
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

async fn round_trip<IO>(
    io: IO,
    request: Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())
}

/// Only `http` and `https` URLs with a host.
pub fn parse_url(url: &str) -> Result<Url, AuthError> {
    let bad = |reason: &str| AuthError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("must be an http or https URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(parsed)
}

/// Whether `url` points at this machine (127.0.0.0/8, ::1, `localhost`):
/// the only place plain `http` is allowed for an issuer.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

fn check_status(url: &str, status: u16, body: &[u8]) -> Result<(), AuthError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct OAuthError {
        error: String,
    }
    let error = serde_json::from_slice::<OAuthError>(body)
        .ok()
        .map(|e| e.error.chars().take(64).collect());
    Err(AuthError::Status {
        url: url.to_string(),
        status,
        error,
    })
}

fn decode<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, AuthError> {
    serde_json::from_slice(body).map_err(|e| AuthError::Json {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

/// `max-age=N` from a `Cache-Control` value.
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|part| {
        let (name, seconds) = part.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| seconds.trim().parse().ok().map(Duration::from_secs))?
    })
}

fn tls_config(roots: RootCertStore) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The system's roots, read once per process (unreadable ones are skipped:
/// an issuer they were needed for fails with a TLS error naming it).
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        roots
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(max_age("max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(
            max_age("public, MAX-AGE = 60, must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }

    #[test]
    fn loopback_is_127_8_ipv6_1_and_localhost() {
        let l = |u: &str| is_loopback(&parse_url(u).unwrap());
        assert!(l("http://127.0.0.1:5556/dex"));
        assert!(l("http://127.9.9.9/"));
        assert!(l("http://[::1]:80/"));
        assert!(l("http://LOCALHOST:8080/"));
        assert!(!l("http://10.0.0.1/"));
        assert!(!l("https://issuer.example.com/"));
    }

    #[test]
    fn refuses_urls_that_are_not_http() {
        assert!(parse_url("ftp://example.com/").is_err());
        assert!(parse_url("not a url").is_err());
        assert!(parse_url("https://example.com/x").is_ok());
    }

    #[tokio::test]
    async fn a_closed_port_is_an_http_error_naming_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        drop(listener);
        let err = HttpClient::new()
            .get_json::<serde_json::Value>(&url)
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::Http { .. }), "{err:?}");
        assert!(err.to_string().contains(&url), "{err}");
    }

    #[tokio::test]
    async fn requests_use_the_origin_form_and_name_the_host() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            let body = "{}";
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        HttpClient::new()
            .get_json::<serde_json::Value>(&format!("http://{addr}/dex/keys?x=1"))
            .await
            .unwrap();
        let request = server.await.unwrap();
        assert!(
            request.starts_with("GET /dex/keys?x=1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains(&format!("host: {addr}")),
            "{request}"
        );
    }

    #[tokio::test]
    async fn an_oauth_error_body_is_kept_as_its_code() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await.unwrap();
            let body = r#"{"error":"authorization_pending"}"#;
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(answer.as_bytes()).await.unwrap();
        });
        let err = HttpClient::new()
            .post_form::<serde_json::Value>(&url, &[("grant_type", "x")])
            .await
            .unwrap_err();
        match err {
            AuthError::Status { status, error, .. } => {
                assert_eq!(status, 400);
                assert_eq!(error.as_deref(), Some("authorization_pending"));
            }
            other => panic!("{other:?}"),
        }
    }
}
