//! The login's token cache (`~/.prism/token`) and [`TokenProvider`], which
//! hands a client the bearer token to send on every call.
//!
//! The cache is JSON (issuer, client id, access and refresh token, issue and
//! expiry times) in a folder of mode 0700, written as a temporary file of
//! mode 0600 renamed over the old one: never half-written, never readable by
//! anyone else, not even for a moment.
//!
//! A provider takes its token from a file (`--token-file`, read again when
//! it changes), a fixed value (`PRISM_TOKEN`), or the cache, whose token it
//! refreshes with the refresh-token grant before it expires
//! ([`refresh_due`]). Tokens never appear in `Debug` output or errors.

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use crate::{AuthError, Secret, device::Tokens};

mod provider;

pub use provider::TokenProvider;

/// `HOME/.prism/token`.
pub fn default_path(home: &Path) -> PathBuf {
    home.join(".prism").join("token")
}

/// [`default_path`] under `$HOME`, if it is set.
pub fn default_path_from_env() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| default_path(Path::new(&h)))
}

/// What a login leaves behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedToken {
    pub issuer: String,
    pub client_id: String,
    pub access_token: Secret,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds; `None` when the issuer did not say.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

impl CachedToken {
    /// Tokens from the token endpoint at `now` (Unix seconds). A refresh
    /// answer without a new refresh token keeps `previous`'s.
    pub fn from_tokens(
        issuer: &str,
        client_id: &str,
        tokens: Tokens,
        now: u64,
        previous: Option<&CachedToken>,
    ) -> Self {
        Self {
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
            access_token: tokens.access_token,
            refresh_token: tokens
                .refresh_token
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            issued_at: now,
            expires_at: tokens.expires_in.map(|d| now + d.as_secs()),
        }
    }

    /// True once `now` is at or past its expiry.
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|exp| now >= exp)
    }
}

/// Whether a token issued at `issued_at` and expiring at `expires_at` should
/// be refreshed at `now` (all Unix seconds): when less than a tenth of its
/// life is left, or less than 60 s — but never before half of its life has
/// passed, so short-lived tokens are not refreshed on every call.
pub fn refresh_due(issued_at: u64, expires_at: Option<u64>, now: u64) -> bool {
    let Some(expires_at) = expires_at else {
        return false;
    };
    let lifetime = expires_at.saturating_sub(issued_at);
    let margin = (lifetime / 10).max(60.min(lifetime / 2));
    now.saturating_add(margin) >= expires_at
}

/// Now in Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> AuthError + '_ {
    move |source| AuthError::File {
        path: path.display().to_string(),
        source,
    }
}

/// Reads the cache at `path`; `Ok(None)` when there is none.
///
/// Errors: it cannot be read, or is not a cache file (the message never
/// quotes its content).
pub fn read(path: &Path) -> Result<Option<CachedToken>, AuthError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(path)(e)),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        file_error(path)(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not a token cache (line {}, column {}): log in again",
                e.line(),
                e.column()
            ),
        ))
    })
}

/// Writes `token` to `path`: its folder created with mode 0700 if missing,
/// the file replaced atomically by a temporary file created with mode 0600.
pub fn write(path: &Path, token: &CachedToken) -> Result<(), AuthError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(file_error(dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "token".to_string());
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .subsec_nanos();
    let temp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let json = serde_json::to_vec_pretty(token).expect("a cached token serializes");
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| {
            file.write_all(&json)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temp, path));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written.map_err(file_error(path))
}

#[cfg(test)]
mod tests;
