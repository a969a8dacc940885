//! The `tls:` block: which listeners serve TLS, with which certificate, and
//! whether clients must show one of theirs (mTLS). [`TlsConfig::validate`]
//! checks the block's shape as text; [`TlsConfig::load`] reads the files and
//! refuses what a handshake could not use (a missing file, no certificate in
//! it, a key that does not match), naming the field. No message ever holds
//! key material: a key file's content is never quoted.

use std::{path::Path, path::PathBuf, sync::Arc};

use rustls::{
    RootCertStore,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    sign::CertifiedKey,
};
use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's own certificate first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, RSA or SEC1) matching the first certificate.
    pub key_file: PathBuf,
    /// PEM certificates of the CAs client certificates must chain to; with
    /// it, clients are asked for a certificate (mTLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// Whether a client certificate is required (default with
    /// `client_ca_file`) or optional; only with `client_ca_file`.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
    /// Listeners that serve TLS; default all three.
    #[serde(default = "all_listeners")]
    pub listeners: Vec<ListenerName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// A client without a certificate the CA vouches for is refused.
    Required,
    /// Anonymous clients are served too; a certificate shown must verify.
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerName {
    Data,
    Admin,
    Metrics,
}

/// The one crypto provider of the proxy's TLS: `ring`.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn all_listeners() -> Vec<ListenerName> {
    vec![
        ListenerName::Data,
        ListenerName::Admin,
        ListenerName::Metrics,
    ]
}

/// What the files hold, checked: the server's certified key and, for mTLS,
/// the client CAs and whether a certificate is required.
pub struct TlsMaterial {
    pub certified_key: Arc<CertifiedKey>,
    pub client_roots: Option<(Arc<RootCertStore>, ClientAuth)>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsMaterial")
            .field("certificates", &self.certified_key.cert.len())
            .field("client_auth", &self.client_roots.as_ref().map(|(_, a)| a))
            .finish()
    }
}

impl TlsConfig {
    /// Whether `listener` serves TLS.
    pub fn serves(&self, listener: ListenerName) -> bool {
        self.listeners.contains(&listener)
    }

    /// The block's shape, without touching the files.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, path) in [
            ("tls.cert_file", Some(&self.cert_file)),
            ("tls.key_file", Some(&self.key_file)),
            ("tls.client_ca_file", self.client_ca_file.as_ref()),
        ] {
            if path.is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(ConfigError::invalid(field, "is empty; give a PEM file"));
            }
        }
        if self.client_auth.is_some() && self.client_ca_file.is_none() {
            return Err(ConfigError::invalid(
                "tls.client_auth",
                "needs tls.client_ca_file (the CAs client certificates are checked against)",
            ));
        }
        if self.listeners.is_empty() {
            return Err(ConfigError::invalid(
                "tls.listeners",
                "is empty; name at least one of data, admin, metrics (or remove the tls block)",
            ));
        }
        for (i, name) in self.listeners.iter().enumerate() {
            if self.listeners[..i].contains(name) {
                return Err(ConfigError::invalid(
                    format!("tls.listeners[{i}]"),
                    format!("{name:?} is listed twice").to_lowercase(),
                ));
            }
        }
        Ok(())
    }

    /// Reads and checks the files with `provider` (the one the listeners
    /// use). Errors name the field and the problem, never the key.
    pub fn load(&self, provider: &CryptoProvider) -> Result<TlsMaterial, ConfigError> {
        let chain = certificates("tls.cert_file", &self.cert_file)?;
        let key_bytes = read("tls.key_file", &self.key_file)?;
        let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
            let problem = match e {
                rustls::pki_types::pem::Error::NoItemsFound => "no private key in it",
                _ => "not a readable PEM private key",
            };
            ConfigError::invalid(
                "tls.key_file",
                format!(
                    "{}: {problem} (PKCS#8, RSA or SEC1 PEM expected)",
                    self.key_file.display()
                ),
            )
        })?;
        let certified_key = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
            let reason = match e {
                rustls::Error::InconsistentKeys(_) => format!(
                    "{}: the key does not match the certificate in {}",
                    self.key_file.display(),
                    self.cert_file.display()
                ),
                _ => format!(
                    "{}: the key cannot be used ({})",
                    self.key_file.display(),
                    key_problem(&e)
                ),
            };
            ConfigError::invalid("tls.key_file", reason)
        })?;
        let client_roots = match &self.client_ca_file {
            None => None,
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates("tls.client_ca_file", path)? {
                    roots.add(cert).map_err(|e| {
                        ConfigError::invalid(
                            "tls.client_ca_file",
                            format!("{}: not a usable CA certificate: {e}", path.display()),
                        )
                    })?;
                }
                let auth = self.client_auth.unwrap_or(ClientAuth::Required);
                Some((Arc::new(roots), auth))
            }
        };
        Ok(TlsMaterial {
            certified_key: Arc::new(certified_key),
            client_roots,
        })
    }
}

/// Why a private key was refused, without anything from the key itself.
fn key_problem(e: &rustls::Error) -> &'static str {
    match e {
        rustls::Error::General(_) => "unsupported key type or malformed key",
        _ => "refused by the TLS library",
    }
}

fn read(field: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| {
        let problem = match e.kind() {
            std::io::ErrorKind::NotFound => "file missing".to_string(),
            _ => format!("cannot read it: {e}"),
        };
        ConfigError::invalid(field, format!("{}: {problem}", path.display()))
    })
}

/// The PEM certificates in `path`; at least one.
fn certificates(field: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = read(field, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            ConfigError::invalid(
                field,
                format!("{}: not a readable PEM certificate file", path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(ConfigError::invalid(
            field,
            format!(
                "{}: no certificate in it (PEM `CERTIFICATE` blocks expected)",
                path.display()
            ),
        ));
    }
    Ok(certs)
}
