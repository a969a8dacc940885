//! Command-line flags.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{Error, app::Options};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "prism-console",
    version,
    about = "Terminal console for a running prism-proxy"
)]
pub struct Args {
    /// The proxy's admin address (host:port or http://host:port).
    #[arg(long, default_value = "127.0.0.1:8981")]
    pub admin: String,

    /// Look, do not touch: restart and reload are disabled.
    #[arg(long)]
    pub readonly: bool,

    /// Restart and reload without asking y/n first.
    #[arg(long)]
    pub no_confirm: bool,

    /// Send the token in this file (read again when it changes) instead of
    /// `PRISM_TOKEN` or the login cache (~/.prism/token).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

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
    /// The URI the admin client dials.
    ///
    /// Fails with [`Error::InvalidAddress`] when `--admin` is not a
    /// `host:port` or an `http(s)://` URI.
    pub fn admin_uri(&self) -> Result<String, Error> {
        let uri = if self.admin.contains("://") {
            self.admin.clone()
        } else {
            format!("http://{}", self.admin)
        };
        let invalid = |reason: String| Error::InvalidAddress {
            address: self.admin.clone(),
            reason,
        };
        let parsed: tonic::transport::Uri = uri.parse().map_err(|e| invalid(format!("{e}")))?;
        if parsed.host().is_none_or(str::is_empty) {
            return Err(invalid("no host".to_string()));
        }
        Ok(uri)
    }

    pub fn options(&self) -> Options {
        Options {
            admin: self.admin.clone(),
            readonly: self.readonly,
            confirm: !self.no_confirm,
        }
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(args.token_file, Some(PathBuf::from("/run/prism/token")));
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
    fn refuses_an_address_it_cannot_dial() {
        let err = parse(&["--admin", "not an address"])
            .admin_uri()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidAddress { .. }), "{err}");
    }
}
