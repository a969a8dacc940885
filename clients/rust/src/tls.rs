//! TLS towards the proxy: which scheme an address means, the CAs to trust
//! (a CA file, else the system's roots) and, for mTLS, the client's own
//! certificate and key; and connection errors told in full, so a refused
//! handshake says why.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::Error;

/// The TLS files as given to the builder.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsFiles {
    pub ca_file: Option<PathBuf>,
    /// Certificate and key.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl TlsFiles {
    /// Whether any TLS file was given (then a bare `host:port` means https).
    pub(crate) fn any(&self) -> bool {
        self.ca_file.is_some() || self.identity.is_some()
    }

    /// The client's TLS settings, files read.
    pub(crate) fn client_config(&self) -> Result<ClientTlsConfig, Error> {
        let config = match &self.ca_file {
            Some(path) => {
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("ca_file", path)?))
            }
            None => ClientTlsConfig::new().with_native_roots(),
        };
        Ok(match &self.identity {
            Some((cert, key)) => config.identity(Identity::from_pem(
                read("client certificate", cert)?,
                read("client key", key)?,
            )),
            None => config,
        })
    }
}

/// `path`'s bytes, refused unless they hold a PEM block.
fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    let failed = |reason: String| Error::Local {
        what,
        reason: format!("{}: {reason}", path.display()),
    };
    let bytes = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    // Never quote the content: it may be a private key.
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(failed("no PEM block in it".to_string()));
    }
    Ok(bytes)
}

/// The URI for `address`: its own scheme (`http` or `https`), else
/// `https` when TLS files are set and `http` when not.
pub(crate) fn uri(address: &str, tls: bool) -> Result<String, String> {
    match address.split_once("://") {
        None if tls => Ok(format!("https://{address}")),
        None => Ok(format!("http://{address}")),
        Some(("https", _)) => Ok(address.to_string()),
        Some(("http", _)) if tls => Err(
            "a CA file or client certificate is set but the address is http://; use https://"
                .to_string(),
        ),
        Some(("http", _)) => Ok(address.to_string()),
        Some((scheme, _)) => Err(format!(
            "unknown scheme {scheme:?}: use http:// or https://"
        )),
    }
}

/// `error` and every error under it, outermost first, each said once
/// ("transport error: … invalid peer certificate: UnknownIssuer").
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_address_means_https_only_with_tls_files() {
        assert_eq!(uri("h:1", false).unwrap(), "http://h:1");
        assert_eq!(uri("h:1", true).unwrap(), "https://h:1");
        assert_eq!(uri("https://h:1", false).unwrap(), "https://h:1");
        assert_eq!(uri("http://h:1", false).unwrap(), "http://h:1");
        assert!(uri("http://h:1", true).unwrap_err().contains("https://"));
        assert!(uri("ftp://h:1", false).unwrap_err().contains("\"ftp\""));
    }

    #[test]
    fn unreadable_or_non_pem_files_are_refused_naming_the_file_not_quoting_it() {
        let dir = std::env::temp_dir().join(format!("prism-client-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("key.pem");
        std::fs::write(&key, "secret-material").unwrap();
        let files = TlsFiles {
            ca_file: Some(dir.join("missing.crt")),
            identity: None,
        };
        let error = files.client_config().unwrap_err();
        assert!(error.to_string().contains("ca_file"), "{error}");
        assert!(error.to_string().contains("missing.crt"), "{error}");
        let files = TlsFiles {
            ca_file: None,
            identity: Some((key.clone(), key.clone())),
        };
        let error = files.client_config().unwrap_err().to_string();
        assert!(error.contains("no PEM block"), "{error}");
        assert!(!error.contains("secret-material"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_chain_names_every_cause_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("transport error")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let error = Outer(std::io::Error::other(
            "invalid peer certificate: UnknownIssuer",
        ));
        assert_eq!(
            chain(&error),
            "transport error: invalid peer certificate: UnknownIssuer"
        );
    }
}
