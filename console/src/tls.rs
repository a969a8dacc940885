//! TLS towards a proxy whose admin port serves it: the CAs to trust
//! (`--ca-file`, else the system's roots) and, for mTLS, the console's own
//! certificate and key (`--cert-file`, `--key-file`).

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::Error;

/// The TLS flags as given.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsFlags {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl TlsFlags {
    /// Whether any TLS flag was given (then a bare `host:port` means https).
    pub(crate) fn any(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some()
    }

    /// The client's TLS settings, files read.
    ///
    /// Fails with [`Error::TlsFile`] naming the flag when a file cannot be
    /// read or holds no PEM block.
    pub(crate) fn client_config(&self) -> Result<ClientTlsConfig, Error> {
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_file {
            Some(path) => config.ca_certificate(Certificate::from_pem(read("--ca-file", path)?)),
            None => config.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.cert_file, &self.key_file) {
            config = config.identity(Identity::from_pem(
                read("--cert-file", cert)?,
                read("--key-file", key)?,
            ));
        }
        Ok(config)
    }
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    let failed = |reason: String| Error::TlsFile {
        flag,
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    // Never quote the content: it may be a private key.
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(failed("no PEM block in it".to_string()));
    }
    Ok(bytes)
}
