//! Re-applies the config file when it changes on disk. Editors often replace
//! a file rather than write it in place, so the folder is watched and events
//! are filtered by file name; bursts are coalesced, then the file is read only
//! once it has settled ([`settle`]: never empty or half-written mid-rewrite).

use std::{path::Path, sync::Arc, time::Duration};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::state::ProxyState;

pub(crate) mod settle;

/// Quiet time after the last change before reloading.
const SETTLE: Duration = Duration::from_millis(200);

/// Watches `path`; the returned watcher must be kept alive.
pub(crate) fn watch_config(
    path: &Path,
    state: Arc<ProxyState>,
) -> notify::Result<RecommendedWatcher> {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let name = path.file_name().map(|n| n.to_os_string());
    let (tx, mut rx) = mpsc::channel::<()>(16);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        if event
            .paths
            .iter()
            .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
        {
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Let a burst of writes settle into one reload.
            while tokio::time::timeout(SETTLE, rx.recv())
                .await
                .is_ok_and(|e| e.is_some())
            {}
            let text = match settle::read_settled(path.as_path()).await {
                Ok(text) => text,
                Err(e) => {
                    tracing::warn!(error = %e, path = %path.display(), "config file changed but cannot be read; nothing applied");
                    continue;
                }
            };
            match state.reload_watched(&path, &text).await {
                Ok(Some(changes)) => tracing::info!(?changes, "config file changed: reloaded"),
                Ok(None) => tracing::info!(
                    "config file changed on disk to what is applied already (or changed again since); nothing to do"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "config file changed but is invalid; nothing applied")
                }
            }
        }
    });
    Ok(watcher)
}
