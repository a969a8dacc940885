//! [`TokenProvider`]: the bearer token a client sends, from wherever the
//! user put it, kept fresh.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Mutex,
    time::SystemTime,
};

use super::{CachedToken, read, refresh_due, unix_now, write};
use crate::{AuthError, Secret, device::DeviceClient, http::HttpClient};

/// Where a client's token comes from, in the order a client should look:
/// a token file, a token in the environment, the login's cache.
pub struct TokenProvider {
    source: Source,
}

enum Source {
    Fixed(Secret),
    File {
        path: PathBuf,
        seen: Mutex<Option<Seen>>,
    },
    Cache {
        path: PathBuf,
        http: HttpClient,
        state: Box<tokio::sync::Mutex<CacheState>>,
    },
}

/// A token file as last read, to read it again only when it changed.
struct Seen {
    stamp: Option<(SystemTime, u64)>,
    token: Secret,
}

struct CacheState {
    token: CachedToken,
    stamp: Option<(SystemTime, u64)>,
    /// Discovered on the first refresh.
    client: Option<DeviceClient>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("TokenProvider");
        out.field("source", &self.source_name());
        match &self.source {
            Source::Fixed(_) => {}
            Source::File { path, .. } | Source::Cache { path, .. } => {
                out.field("path", path);
            }
        }
        out.finish_non_exhaustive()
    }
}

/// Modification time and length: enough to notice a rewritten file.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read_token_file(path: &Path) -> Result<Secret, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::File {
        path: path.display().to_string(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(AuthError::NoToken(format!("{} is empty", path.display())));
    }
    Ok(Secret::new(token))
}

impl TokenProvider {
    /// Always the same token (`PRISM_TOKEN`).
    pub fn fixed(token: Secret) -> Self {
        Self {
            source: Source::Fixed(token),
        }
    }

    /// The token in the file at `path` (surrounding whitespace ignored),
    /// read again whenever the file changes.
    ///
    /// Errors: the file cannot be read or is empty.
    pub fn from_file(path: PathBuf) -> Result<Self, AuthError> {
        let token = read_token_file(&path)?;
        let seen = Seen {
            stamp: stamp(&path),
            token,
        };
        Ok(Self {
            source: Source::File {
                path,
                seen: Mutex::new(Some(seen)),
            },
        })
    }

    /// The login's cache at `path`, refreshed through its issuer; `None`
    /// when there is no cache.
    pub fn from_cache(path: PathBuf, http: HttpClient) -> Result<Option<Self>, AuthError> {
        let Some(token) = read(&path)? else {
            return Ok(None);
        };
        let state = CacheState {
            token,
            stamp: stamp(&path),
            client: None,
        };
        Ok(Some(Self {
            source: Source::Cache {
                path,
                http,
                state: Box::new(tokio::sync::Mutex::new(state)),
            },
        }))
    }

    /// The first of: `token_file`, `env_token` (non-empty), the cache at
    /// `cache` if it exists. `None`: no token anywhere.
    pub fn choose(
        token_file: Option<PathBuf>,
        env_token: Option<String>,
        cache: Option<PathBuf>,
        http: HttpClient,
    ) -> Result<Option<Self>, AuthError> {
        if let Some(path) = token_file {
            return Self::from_file(path).map(Some);
        }
        if let Some(token) = env_token.filter(|t| !t.trim().is_empty()) {
            return Ok(Some(Self::fixed(Secret::new(token.trim()))));
        }
        match cache {
            Some(path) => Self::from_cache(path, http),
            None => Ok(None),
        }
    }

    /// Where the token comes from, for the user: `--token-file`,
    /// `PRISM_TOKEN` or `login cache`.
    pub fn source_name(&self) -> &'static str {
        match self.source {
            Source::Fixed(_) => "PRISM_TOKEN",
            Source::File { .. } => "--token-file",
            Source::Cache { .. } => "login cache",
        }
    }

    /// The token to send now.
    ///
    /// Errors: the token file became unreadable or empty; the cached token
    /// has expired and could not be refreshed ([`AuthError::NoToken`] says
    /// to log in again).
    pub async fn token(&self) -> Result<Secret, AuthError> {
        match &self.source {
            Source::Fixed(token) => Ok(token.clone()),
            Source::File { path, seen } => {
                let now = stamp(path);
                let mut seen = seen.lock().expect("the token file lock is never poisoned");
                if let Some(seen) = seen.as_ref().filter(|s| s.stamp == now && now.is_some()) {
                    return Ok(seen.token.clone());
                }
                let token = read_token_file(path)?;
                *seen = Some(Seen {
                    stamp: now,
                    token: token.clone(),
                });
                Ok(token)
            }
            Source::Cache { path, http, state } => {
                let mut state = state.lock().await;
                cached_token(path, http, &mut state).await
            }
        }
    }
}

async fn cached_token(
    path: &Path,
    http: &HttpClient,
    state: &mut CacheState,
) -> Result<Secret, AuthError> {
    // A new login (in another process) replaces the file: take its token.
    let on_disk = stamp(path);
    if on_disk.is_some() && on_disk != state.stamp {
        if let Some(token) = read(path)? {
            if token.issuer != state.token.issuer || token.client_id != state.token.client_id {
                state.client = None;
            }
            state.token = token;
        }
        state.stamp = on_disk;
    }
    let now = unix_now();
    let token = &state.token;
    if !refresh_due(token.issued_at, token.expires_at, now) {
        return Ok(token.access_token.clone());
    }
    match refresh(path, http, state, now).await {
        Ok(token) => Ok(token),
        Err(e) if !state.token.expired(now) => {
            tracing::warn!(error = %e, "refreshing the cached token failed; it is used until it expires");
            Ok(state.token.access_token.clone())
        }
        Err(e) => Err(AuthError::NoToken(format!(
            "the cached token has expired and could not be refreshed ({e}): log in again"
        ))),
    }
}

async fn refresh(
    path: &Path,
    http: &HttpClient,
    state: &mut CacheState,
    now: u64,
) -> Result<Secret, AuthError> {
    let refresh_token = state
        .token
        .refresh_token
        .clone()
        .ok_or_else(|| AuthError::NoToken("the login gave no refresh token".to_string()))?;
    let client = match &state.client {
        Some(client) => client,
        None => {
            let client =
                DeviceClient::discover(http.clone(), &state.token.issuer, &state.token.client_id)
                    .await?;
            state.client.insert(client)
        }
    };
    let tokens = client.refresh(&refresh_token).await?;
    let fresh = CachedToken::from_tokens(
        &state.token.issuer,
        &state.token.client_id,
        tokens,
        now,
        Some(&state.token),
    );
    // A cache that cannot be written costs the next process a login, not
    // this one its token.
    if let Err(e) = write(path, &fresh) {
        tracing::warn!(error = %e, "cannot write the refreshed token to the cache");
    }
    state.stamp = stamp(path);
    state.token = fresh;
    Ok(state.token.access_token.clone())
}
