//! What changed between two configs, as a pure function: the namespaces to
//! start, stop and hot-reload, and the settings that only take effect on a
//! proxy restart. [`crate::state::ProxyState::reload_config`] applies it.

use crate::config::{Config, NamespaceConfig};

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ConfigDiff {
    /// Namespaces only in the new config, in its order.
    pub added: Vec<NamespaceConfig>,
    /// Names of namespaces only in the old config.
    pub removed: Vec<String>,
    /// Namespaces in both whose settings differ, as they are now.
    pub changed: Vec<NamespaceConfig>,
    /// Proxy-wide settings that differ; they apply on the next start.
    pub needs_restart: Vec<&'static str>,
}

#[cfg(test)]
impl ConfigDiff {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

pub(crate) fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let mut needs_restart = Vec::new();
    let mut differs = |field: &'static str, differ: bool| {
        if differ {
            needs_restart.push(field);
        }
    };
    differs("listen", old.listen != new.listen);
    differs("admin_listen", old.admin_listen != new.admin_listen);
    differs("metrics_listen", old.metrics_listen != new.metrics_listen);
    differs("supervisor", old.supervisor != new.supervisor);
    differs("patterns_dir", old.patterns_dir != new.patterns_dir);
    differs("worker_threads", old.worker_threads != new.worker_threads);
    differs("tls", old.tls != new.tls);
    let find = |namespaces: &[NamespaceConfig], name: &str| {
        namespaces.iter().position(|ns| ns.name == name)
    };
    let removed = old
        .namespaces
        .iter()
        .filter(|o| find(&new.namespaces, &o.name).is_none())
        .map(|o| o.name.clone())
        .collect();
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for ns in &new.namespaces {
        match find(&old.namespaces, &ns.name) {
            None => added.push(ns.clone()),
            Some(i) if !old.namespaces[i].same_process(ns) => changed.push(ns.clone()),
            Some(_) => {}
        }
    }
    ConfigDiff {
        added,
        removed,
        changed,
        needs_restart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        Config::from_yaml(yaml).unwrap()
    }

    const BASE: &str = "
namespaces:
  - {name: a, pattern: keyvalue, backend: memstore}
  - {name: b, pattern: keyvalue, backend: memstore}
";

    #[test]
    fn the_same_config_is_no_change() {
        assert!(diff(&config(BASE), &config(BASE)).is_empty());
    }

    #[test]
    fn namespaces_added_removed_and_changed_are_told_apart() {
        let new = config(
            "
namespaces:
  - {name: b, pattern: keyvalue, backend: memstore, limits: {max_key_bytes: 10}}
  - {name: c, pattern: pubsub, backend: memstore}
",
        );
        let d = diff(&config(BASE), &new);
        assert_eq!(d.removed, vec!["a".to_string()]);
        assert_eq!(
            d.added.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        assert_eq!(
            d.changed
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(d.changed[0], new.namespaces[0], "the new settings");
        assert!(d.needs_restart.is_empty());
    }

    #[test]
    fn a_reordered_file_changes_nothing() {
        let swapped = config(
            "
namespaces:
  - {name: b, pattern: keyvalue, backend: memstore}
  - {name: a, pattern: keyvalue, backend: memstore}
",
        );
        assert!(diff(&config(BASE), &swapped).is_empty());
    }

    #[test]
    fn proxy_wide_settings_need_a_restart() {
        let new = config(&format!(
            "listen: 127.0.0.1:1\nworker_threads: 2\nsupervisor: {{health_interval_ms: 50}}\n{BASE}"
        ));
        let d = diff(&config(BASE), &new);
        assert_eq!(d.needs_restart, ["listen", "supervisor", "worker_threads"]);
        assert!(d.added.is_empty() && d.removed.is_empty() && d.changed.is_empty());
    }
}
