//! The flags that say how to reach and authenticate to the admin port, one
//! definition for `prism-console` and `prismctl` (flattened into each).

use std::path::PathBuf;

use prism_auth::TokenProvider;

use crate::{Error, auth, client::ClientConfig, tls::TlsFlags};

#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// The proxy's admin address (host:port, http://host:port, or
    /// https://host:port for a TLS admin port; host:port with a TLS flag
    /// means https).
    #[arg(long, global = true, default_value = "127.0.0.1:8981")]
    pub admin: String,

    /// PEM CA certificate(s) that signed the proxy's certificate (https);
    /// default: the system's roots.
    #[arg(long, global = true)]
    pub ca_file: Option<PathBuf>,

    /// PEM certificate to show when the proxy asks for one (mTLS).
    #[arg(long, global = true, requires = "key_file")]
    pub cert_file: Option<PathBuf>,

    /// PEM private key of `--cert-file`.
    #[arg(long, global = true, requires = "cert_file")]
    pub key_file: Option<PathBuf>,

    /// Send the token in this file (read again when it changes) instead of
    /// `PRISM_TOKEN` or the login cache (~/.prism/token).
    #[arg(long, global = true, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

impl ConnectionArgs {
    /// The URI the admin client dials.
    ///
    /// Fails with [`Error::InvalidAddress`] when `--admin` is not a
    /// `host:port` or an `http(s)://` URI.
    pub fn admin_uri(&self) -> Result<String, Error> {
        let tls = self.tls_flags().any();
        let uri = if self.admin.contains("://") {
            self.admin.clone()
        } else if tls {
            format!("https://{}", self.admin)
        } else {
            format!("http://{}", self.admin)
        };
        let invalid = |reason: String| Error::InvalidAddress {
            address: self.admin.clone(),
            reason,
        };
        if tls && uri.starts_with("http://") {
            return Err(invalid(
                "--ca-file, --cert-file and --key-file need an https:// address".to_string(),
            ));
        }
        let parsed: tonic::transport::Uri = uri.parse().map_err(|e| invalid(format!("{e}")))?;
        if parsed.host().is_none_or(str::is_empty) {
            return Err(invalid("no host".to_string()));
        }
        Ok(uri)
    }

    pub(crate) fn tls_flags(&self) -> TlsFlags {
        TlsFlags {
            ca_file: self.ca_file.clone(),
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
        }
    }

    /// The admin client's settings and where its token comes from
    /// (`--token-file`, then `PRISM_TOKEN`, then the login cache; `None`:
    /// no token). Files are read here, so a bad one is said before anything
    /// else happens.
    pub(crate) fn client(&self) -> Result<(ClientConfig, Option<TokenProvider>), Error> {
        let uri = self.admin_uri()?;
        let tls = uri
            .starts_with("https://")
            .then(|| self.tls_flags().client_config())
            .transpose()?;
        let env_token = std::env::var("PRISM_TOKEN").ok();
        let tokens = auth::token_provider(self.token_file.clone(), env_token)?;
        Ok((
            ClientConfig {
                tls,
                ..ClientConfig::new(uri)
            },
            tokens,
        ))
    }
}
