//! The config file as the admin API changes it: an edit of the text
//! ([`crate::config::edit`]) written atomically (a temporary file in the same
//! folder, then a rename, so no reader ever sees half of it) and applied as
//! ReloadConfig applies a file — all under the one lock reloads take, so
//! edits, reloads and the file watcher never interleave.
//!
//! The watcher sees the rename too. It re-applies nothing: under the lock
//! it skips text that is already applied, and text the file no longer holds
//! (a newer change is on its way and brings its own event).

use std::{
    io::{self, Write},
    path::Path,
};

use super::{ConfigChanges, ProxyState};
use crate::{
    config::{Config, ConfigError, edit::EditError},
    error::ProxyError,
};

impl ProxyState {
    /// Runs `edit` on the config file's text, writes the result and applies
    /// it. Nothing is written unless the result loads (files it names
    /// included); the file is left byte for byte as it was on any error
    /// before the write.
    pub(crate) async fn edit_config_file<T>(
        &self,
        edit: impl FnOnce(&str) -> Result<(String, T), EditError>,
    ) -> Result<(ConfigChanges, T), ProxyError> {
        let Some(path) = &self.config_path else {
            return Err(ProxyError::ConfigFileNotEditable(
                "the proxy runs without a config file; start it with --config FILE to manage \
                 namespaces through the admin API"
                    .into(),
            ));
        };
        let _one_at_a_time = self.reloading.lock().await;
        let text = std::fs::read_to_string(path).map_err(|e| {
            ProxyError::ConfigFileNotEditable(format!("cannot read {}: {e}", path.display()))
        })?;
        let (new_text, outcome) = edit(&text).map_err(|e| match e {
            EditError::Invalid(why) => ProxyError::NamespaceRejected(why),
            EditError::NotFound(name) => ProxyError::UnknownNamespace(name),
            EditError::NotEditable(why) => ProxyError::ConfigFileNotEditable(why),
        })?;
        Config::from_yaml(&new_text)
            .and_then(|c| c.check_files())
            .map_err(|e| ProxyError::NamespaceRejected(e.to_string()))?;
        write_atomically(path, &new_text).map_err(|e| ProxyError::ConfigWriteFailed {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let changes = self
            .apply_config_text(&new_text)
            .await
            .map_err(|e| ProxyError::NamespaceRejected(e.to_string()))?;
        Ok((changes, outcome))
    }

    /// Applies `text`, which the watcher read from `path` once it settled,
    /// unless it is applied already or the file has changed since (see the
    /// module). `None` when skipped.
    pub(crate) async fn reload_watched(
        &self,
        path: &Path,
        text: &str,
    ) -> Result<Option<ConfigChanges>, ConfigError> {
        let _one_at_a_time = self.reloading.lock().await;
        let applied = self.applied_text.lock().expect("applied text").clone();
        if applied.as_deref() == Some(text) {
            return Ok(None);
        }
        if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
            return Ok(None);
        }
        self.apply_config_text(text).await.map(Some)
    }
}

/// Replaces the file at `path` (the file a symlink points to, if it is one)
/// with `text` by writing a temporary file beside it and renaming it over
/// the old one: readers see the old text or the new, never a mix. The old
/// file's permissions are kept.
pub(crate) fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let path = path.canonicalize()?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.set_permissions(std::fs::metadata(&path)?.permissions())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        // The rename itself survives a crash once the folder is synced.
        std::fs::File::open(dir)?.sync_all()
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_file_is_replaced_whole_with_its_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prism.yaml");
        std::fs::write(&path, "old: text\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&path, &link).unwrap();

        write_atomically(&link, "new: text\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new: text\n");
        assert!(link.is_symlink(), "the link stays a link");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "no temporary file left: {left:?}");
    }

    #[test]
    fn a_failed_write_leaves_the_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomically(&dir.path().join("missing.yaml"), "x").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
