//! The `tls:` block: its shape through `Config::from_yaml`, and every file
//! problem through `Config::load`, with certificates made at test time.
//! [`Pki`] is shared with the listener's TLS tests.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

use super::{ClientAuth, Config, ListenerName};

/// A CA, a server certificate for 127.0.0.1 and localhost, a client
/// certificate from the CA and one from another CA, as PEM files.
pub(crate) struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub client: (String, String),
    pub stranger: (String, String),
    pub server_key_pem: String,
}

fn ca(name: &str) -> (Issuer<'static, KeyPair>, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let pem = params.self_signed(&key).unwrap().pem();
    (Issuer::new(params, key), pem)
}

/// A leaf signed by `issuer`: (certificate PEM, key PEM).
fn leaf(
    issuer: &Issuer<'static, KeyPair>,
    sans: &[&str],
    dn: &[(DnType, &str)],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (ty, value) in dn {
        params.distinguished_name.push(ty.clone(), *value);
    }
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (issuer, ca_pem) = ca("Prism test CA");
        let (other, _) = ca("Another CA");
        let (server_cert, server_key_pem) = leaf(
            &issuer,
            &["127.0.0.1", "localhost"],
            &[(DnType::CommonName, "prism-proxy")],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client_dn = [
            (DnType::OrganizationName, "Acme"),
            (DnType::CommonName, "svc-a"),
        ];
        let client = leaf(
            &issuer,
            &[],
            &client_dn,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let stranger = leaf(&other, &[], &client_dn, ExtendedKeyUsagePurpose::ClientAuth);
        let pki = Self {
            dir,
            ca_pem,
            client,
            stranger,
            server_key_pem,
        };
        pki.write("server.crt", &server_cert);
        pki.write("server.key", &pki.server_key_pem);
        pki.write("ca.crt", &pki.ca_pem);
        pki
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A `tls:` block over this PKI's files, with `extra` lines appended.
    pub(crate) fn yaml(&self, extra: &str) -> String {
        format!(
            "tls:\n  cert_file: {}\n  key_file: {}\n{extra}",
            self.path("server.crt").display(),
            self.path("server.key").display()
        )
    }
}

/// Writes `yaml` beside the PKI and loads it as the proxy would at start-up.
fn load(pki: &Pki, yaml: &str) -> Result<Config, String> {
    let path = pki.write("prism.yaml", yaml);
    Config::load(&path).map_err(|e| e.to_string())
}

fn refused(pki: &Pki, yaml: &str) -> String {
    match load(pki, yaml) {
        Ok(_) => panic!("accepted: {yaml}"),
        Err(e) => e,
    }
}

fn line(field: &str, path: &Path) -> String {
    format!("  {field}: {}\n", path.display())
}

#[test]
fn off_when_absent_and_all_three_listeners_by_default() {
    assert_eq!(Config::from_yaml("").unwrap().tls, None);
    let pki = Pki::new();
    let tls = load(&pki, &pki.yaml("")).unwrap().tls.unwrap();
    for name in [
        ListenerName::Data,
        ListenerName::Admin,
        ListenerName::Metrics,
    ] {
        assert!(tls.serves(name), "{name:?}");
    }
    assert_eq!(tls.client_auth, None);
    let tls = load(
        &pki,
        &pki.yaml(&format!(
            "{}  listeners: [data]\n",
            line("client_ca_file", &pki.path("ca.crt"))
        )),
    )
    .unwrap()
    .tls
    .unwrap();
    assert!(tls.serves(ListenerName::Data) && !tls.serves(ListenerName::Metrics));
    let material = tls.load(&super::tls::provider()).unwrap();
    let (_, auth) = material.client_roots.unwrap();
    assert_eq!(auth, ClientAuth::Required, "required unless said otherwise");
}

#[test]
fn the_shape_is_checked_before_any_file_is_read() {
    let pki = Pki::new();
    for (extra, field, problem) in [
        (
            "  client_auth: optional\n",
            "tls.client_auth",
            "needs tls.client_ca_file",
        ),
        ("  listeners: []\n", "tls.listeners", "is empty"),
        (
            "  listeners: [data, admin, data]\n",
            "tls.listeners[2]",
            "data is listed twice",
        ),
        ("  client_ca_file: ''\n", "tls.client_ca_file", "is empty"),
    ] {
        let err = Config::from_yaml(&pki.yaml(extra)).unwrap_err().to_string();
        assert!(
            err.starts_with(field) && err.contains(problem),
            "{extra} → {err}"
        );
    }
    for (yaml, word) in [
        (pki.yaml("  listeners: [grpc]\n"), "grpc"),
        (pki.yaml("  client_auth: sometimes\n"), "sometimes"),
        ("tls:\n  key_file: /k\n".to_string(), "cert_file"),
        (pki.yaml("  cert: x\n"), "cert"),
    ] {
        let err = Config::from_yaml(&yaml).unwrap_err().to_string();
        assert!(err.contains(word), "{yaml} → {err}");
    }
}

#[test]
fn every_file_problem_names_the_field_and_the_problem() {
    let pki = Pki::new();
    let missing = pki.path("nowhere.pem");
    let cert = pki.path("server.crt");
    let key = pki.path("server.key");
    let other_key = pki.write("other.key", &pki.client.1);
    let not_pem = pki.write("not.pem", "hello\n");
    let block = |cert: &Path, key: &Path, extra: &str| {
        format!(
            "tls:\n{}{}{extra}",
            line("cert_file", cert),
            line("key_file", key)
        )
    };
    let ca_line = |path: &Path| line("client_ca_file", path);
    for (yaml, field, problem) in [
        (block(&missing, &key, ""), "tls.cert_file", "file missing"),
        (
            block(&key, &key, ""),
            "tls.cert_file",
            "no certificate in it",
        ),
        (
            block(&not_pem, &key, ""),
            "tls.cert_file",
            "no certificate in it",
        ),
        (block(&cert, &missing, ""), "tls.key_file", "file missing"),
        (
            block(&cert, &cert, ""),
            "tls.key_file",
            "no private key in it",
        ),
        (
            block(&cert, &other_key, ""),
            "tls.key_file",
            "does not match",
        ),
        (
            block(&cert, &key, &ca_line(&missing)),
            "tls.client_ca_file",
            "file missing",
        ),
        (
            block(&cert, &key, &ca_line(&key)),
            "tls.client_ca_file",
            "no certificate in it",
        ),
    ] {
        let err = refused(&pki, &yaml);
        assert!(err.starts_with(field), "{yaml} → {err}");
        assert!(err.contains(problem), "{yaml} → {err}");
    }
}

#[test]
fn no_message_holds_key_material() {
    let pki = Pki::new();
    let secret_lines: Vec<&str> = pki
        .server_key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!secret_lines.is_empty());
    // A key given where the certificate belongs, a broken key, a key for
    // another certificate: none of the messages quote the key.
    let mangled = pki.server_key_pem.replace("-----END", "garbage\n-----END");
    let broken = pki.write("broken.key", &mangled);
    let key = pki.path("server.key");
    let other = pki.write("other.key", &pki.client.1);
    let cert = pki.path("server.crt");
    for (c, k) in [(&key, &key), (&cert, &broken), (&cert, &other)] {
        let yaml = format!("tls:\n{}{}", line("cert_file", c), line("key_file", k));
        let err = refused(&pki, &yaml);
        for secret in &secret_lines {
            assert!(!err.contains(secret), "{err}");
        }
        assert!(!err.contains("PRIVATE KEY-----"), "{err}");
    }
}

#[test]
fn a_changed_tls_block_needs_a_restart() {
    let pki = Pki::new();
    let old = load(&pki, &pki.yaml("")).unwrap();
    let new = load(&pki, &pki.yaml("  listeners: [admin]\n")).unwrap();
    let diff = crate::config_diff::diff(&old, &new);
    assert_eq!(diff.needs_restart, ["tls"]);
    let plain = Config::from_yaml("").unwrap();
    assert_eq!(
        crate::config_diff::diff(&plain, &old).needs_restart,
        ["tls"]
    );
    assert!(
        crate::config_diff::diff(&old, &old)
            .needs_restart
            .is_empty()
    );
}
