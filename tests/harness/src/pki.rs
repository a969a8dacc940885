//! Test certificates made at run time with `rcgen`: a CA, a server
//! certificate for `127.0.0.1` and `localhost`, a client certificate from
//! the CA and one with the same subject from another CA, written as PEM
//! files in a private folder (removed on drop), and the proxy's `tls:`
//! block over them.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair,
};

use crate::HarnessError;

/// A certificate and its key, as PEM.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
}

pub struct TestPki {
    /// `ca.crt`, `server.crt`, `server.key`.
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    /// `CN=svc-a,O=Acme`, from the CA.
    pub client: Identity,
    /// The same subject from another CA: must be refused.
    pub stranger: Identity,
}

/// The subject of both client certificates.
pub const CLIENT_CN: &str = "svc-a";

fn failed(what: &str) -> impl Fn(rcgen::Error) -> HarnessError + '_ {
    move |e| HarnessError::Certificate(format!("{what}: {e}"))
}

fn ca(name: &str) -> Result<(Issuer<'static, KeyPair>, String), HarnessError> {
    let key = KeyPair::generate().map_err(failed("CA key"))?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(failed("CA"))?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).map_err(failed("CA"))?.pem();
    Ok((Issuer::new(params, key), pem))
}

fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    sans: &[&str],
    dn: &[(DnType, &str)],
    usage: ExtendedKeyUsagePurpose,
) -> Result<Identity, HarnessError> {
    let key = KeyPair::generate().map_err(failed("key"))?;
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).map_err(failed("certificate"))?;
    params.distinguished_name = DistinguishedName::new();
    for (ty, value) in dn {
        params.distinguished_name.push(ty.clone(), *value);
    }
    params.extended_key_usages = vec![usage];
    let cert = params
        .signed_by(&key, issuer)
        .map_err(failed("certificate"))?;
    Ok(Identity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

impl TestPki {
    pub fn generate() -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("prism-pki-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary folder", e))?;
        let (issuer, ca_pem) = ca("Prism test CA")?;
        let (other, _) = ca("Another CA")?;
        let server = leaf(
            &issuer,
            &["127.0.0.1", "localhost"],
            &[(DnType::CommonName, "prism-proxy")],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let subject = [
            (DnType::OrganizationName, "Acme"),
            (DnType::CommonName, CLIENT_CN),
        ];
        let client = leaf(&issuer, &[], &subject, ExtendedKeyUsagePurpose::ClientAuth)?;
        let stranger = leaf(&other, &[], &subject, ExtendedKeyUsagePurpose::ClientAuth)?;
        let pki = Self {
            dir,
            ca_pem,
            client,
            stranger,
        };
        for (name, text) in [
            ("ca.crt", &pki.ca_pem),
            ("server.crt", &server.cert_pem),
            ("server.key", &server.key_pem),
        ] {
            std::fs::write(pki.path(name), text)
                .map_err(|e| HarnessError::io(format!("writing {name}"), e))?;
        }
        Ok(pki)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.path("ca.crt")
    }

    /// The proxy's `tls:` block serving every listener, asking clients for
    /// a certificate from the CA when `client_auth` is given (`required` or
    /// `optional`).
    pub fn tls_yaml(&self, client_auth: Option<&str>) -> String {
        let line = |field: &str, path: &Path| format!("  {field}: {}\n", path.display());
        let mut yaml = format!(
            "tls:\n{}{}",
            line("cert_file", &self.path("server.crt")),
            line("key_file", &self.path("server.key"))
        );
        if let Some(auth) = client_auth {
            yaml.push_str(&line("client_ca_file", &self.ca_file()));
            yaml.push_str(&format!("  client_auth: {auth}\n"));
        }
        yaml
    }
}
