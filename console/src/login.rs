//! `prism-console login`: the OpenID Connect device-code flow in plain
//! text (no terminal UI). It prints where to go and which code to enter,
//! waits for the approval, and caches the tokens in `~/.prism/token`
//! (mode 0600), where later runs of the console find them.

use std::io::Write;

use prism_auth::{
    device::DeviceClient,
    http::HttpClient,
    token_cache::{self, CachedToken},
};

use crate::{Error, cli::LoginArgs};

/// Runs the login, writing what the user must do to `out`.
///
/// Errors: the issuer cannot be reached or has no device flow, the login is
/// denied or its code expires, or the cache cannot be written.
pub(crate) async fn run(args: &LoginArgs, out: &mut impl Write) -> Result<(), Error> {
    let path = token_cache::default_path_from_env().ok_or(Error::NoHome)?;
    let client = DeviceClient::discover(HttpClient::new(), &args.issuer, &args.client_id)
        .await
        .map_err(Error::Login)?;
    let login = client.start(&args.scope).await.map_err(Error::Login)?;
    let say = |out: &mut dyn Write, line: String| writeln!(out, "{line}").map_err(Error::Output);
    say(out, format!("To log in, open {}", login.verification_uri))?;
    say(out, format!("and enter the code {}", login.user_code))?;
    if let Some(complete) = &login.verification_uri_complete {
        say(out, format!("(or open {complete})"))?;
    }
    say(out, "Waiting for the approval…".to_string())?;
    out.flush().map_err(Error::Output)?;
    let tokens = client.wait(&login).await.map_err(Error::Login)?;
    let cached = CachedToken::from_tokens(
        client.issuer(),
        client.client_id(),
        tokens,
        token_cache::unix_now(),
        None,
    );
    token_cache::write(&path, &cached).map_err(Error::Login)?;
    let refresh = if cached.refresh_token.is_some() {
        "; it is refreshed before it expires"
    } else {
        "; no refresh token: log in again when it expires"
    };
    say(
        out,
        format!(
            "Logged in at {}. Token cached in {}{refresh}.",
            cached.issuer,
            path.display()
        ),
    )
}
