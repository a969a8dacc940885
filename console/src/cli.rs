//! Command-line flags of `prism-console`; the connection flags it shares
//! with `prismctl` are in [`connection`].

use clap::{Parser, Subcommand};

use crate::{Error, app::Options};

mod connection;

pub use connection::ConnectionArgs;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "prism-console",
    version,
    about = "Terminal console for a running prism-proxy"
)]
pub struct Args {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Look, do not touch: restart and reload are disabled.
    #[arg(long)]
    pub readonly: bool,

    /// Restart and reload without asking y/n first.
    #[arg(long)]
    pub no_confirm: bool,

    /// Link to a trace in the trace viewer, `{trace_id}` replaced by the
    /// selected exemplar's id: `o` in the detail view prints it, e.g.
    /// 'https://signoz.example/trace/{trace_id}'.
    #[arg(long, value_name = "URL")]
    pub trace_url: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Log in with the OpenID Connect device-code flow and cache the token
    /// in ~/.prism/token for later runs.
    Login(LoginArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// The OpenID provider's issuer URL (its discovery document is read
    /// from ISSUER/.well-known/openid-configuration).
    #[arg(long)]
    pub issuer: String,

    /// The public client registered for the console at the issuer.
    #[arg(long, default_value = "prism-cli")]
    pub client_id: String,

    /// Scopes to ask for; `offline_access` brings a refresh token.
    #[arg(long, default_value = "openid email offline_access")]
    pub scope: String,
}

impl Args {
    /// The URI the admin client dials (see [`ConnectionArgs::admin_uri`]).
    pub fn admin_uri(&self) -> Result<String, Error> {
        self.connection.admin_uri()
    }

    pub fn options(&self) -> Options {
        Options {
            admin: self.connection.admin.clone(),
            readonly: self.readonly,
            confirm: !self.no_confirm,
            trace_url: self.trace_url.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn parse(args: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("prism-console").chain(args.iter().copied()))
            .expect("valid flags")
    }

    #[test]
    fn defaults_to_the_local_admin_port_with_confirmation() {
        let args = parse(&[]);
        assert_eq!(args.admin_uri().unwrap(), "http://127.0.0.1:8981");
        let options = args.options();
        assert!(options.confirm && !options.readonly);
    }

    #[test]
    fn takes_the_flags() {
        let args = parse(&["--admin", "10.0.0.1:9000", "--readonly", "--no-confirm"]);
        assert_eq!(args.admin_uri().unwrap(), "http://10.0.0.1:9000");
        let options = args.options();
        assert!(options.readonly && !options.confirm);
        let args = parse(&["--admin", "http://proxy:8981"]);
        assert_eq!(args.admin_uri().unwrap(), "http://proxy:8981");
    }

    #[test]
    fn takes_a_token_file_and_the_login_command() {
        let args = parse(&["--token-file", "/run/prism/token"]);
        assert_eq!(
            args.connection.token_file,
            Some(PathBuf::from("/run/prism/token"))
        );
        assert!(args.command.is_none());

        let args = parse(&["login", "--issuer", "http://127.0.0.1:5556/dex"]);
        let Some(Command::Login(login)) = args.command else {
            panic!("login parsed: {args:?}");
        };
        assert_eq!(login.issuer, "http://127.0.0.1:5556/dex");
        assert_eq!(login.client_id, "prism-cli");
        assert!(login.scope.split(' ').any(|s| s == "offline_access"));
        let args = parse(&["login", "--issuer", "https://id", "--client-id", "mine"]);
        assert!(matches!(args.command, Some(Command::Login(l)) if l.client_id == "mine"));
        assert!(
            Args::try_parse_from(["prism-console", "login"]).is_err(),
            "--issuer is required"
        );
    }

    #[test]
    fn tls_flags_mean_https() {
        let args = parse(&["--admin", "proxy:8981", "--ca-file", "/ca.pem"]);
        assert_eq!(args.admin_uri().unwrap(), "https://proxy:8981");
        let args = parse(&["--admin", "https://proxy:8981"]);
        assert_eq!(args.admin_uri().unwrap(), "https://proxy:8981");
        let err = parse(&["--admin", "http://proxy:8981", "--ca-file", "/ca.pem"])
            .admin_uri()
            .unwrap_err();
        assert!(err.to_string().contains("https://"), "{err}");
        let lone = Args::try_parse_from(["prism-console", "--cert-file", "/c.pem"]);
        assert!(lone.is_err(), "--cert-file needs --key-file");
    }

    #[test]
    fn tls_files_are_checked_without_quoting_them() {
        let dir = std::env::temp_dir().join(format!("prism-console-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("key.txt");
        std::fs::write(&secret, "very-secret-key-bytes").unwrap();
        let missing = dir.join("missing.pem");
        for (flags, flag) in [
            (
                ["--ca-file", missing.to_str().unwrap()].to_vec(),
                "--ca-file",
            ),
            (
                ["--ca-file", secret.to_str().unwrap()].to_vec(),
                "--ca-file",
            ),
        ] {
            let err = parse(&flags)
                .connection
                .tls_flags()
                .client_config()
                .unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with(flag), "{text}");
            assert!(!text.contains("very-secret"), "{text}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_an_address_it_cannot_dial() {
        let err = parse(&["--admin", "not an address"])
            .admin_uri()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidAddress { .. }), "{err}");
    }
}
