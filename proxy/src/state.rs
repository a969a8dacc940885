//! Everything one running proxy shares between its servers: the namespace
//! table, the supervisor, the activity log, latency recording, the drain
//! counter, and the config it was started with — plus applying a new config
//! file ([`ProxyState::reload_config`]) by what [`config_diff`] finds changed.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Instant,
};

use prism_observability::latency::LatencyRecorder;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    activity::{Activity, EventKind},
    auth::Auth,
    config::{Config, ConfigError},
    config_diff,
    drain::Drain,
    error::ProxyError,
    namespace::{Namespace, Namespaces, Spec},
    pattern_logs::{Echo, Limits, PatternLogs},
    subscriptions::Subscriptions,
    supervisor::Supervisor,
    watch::settle::{self, Source},
};

mod config_file;

pub(crate) struct ProxyState {
    pub namespaces: Namespaces,
    /// Who may call, and what they may do; follows config reloads.
    pub auth: Arc<Auth>,
    pub supervisor: Supervisor,
    pub activity: Arc<Activity>,
    /// Pattern processes' stdout and stderr, per namespace.
    pub logs: Arc<PatternLogs>,
    pub latency: LatencyRecorder,
    pub drain: Drain,
    pub subscriptions: Subscriptions,
    /// Turns true when shutdown begins; long-lived admin streams end on it.
    pub stopping: tokio::sync::watch::Sender<bool>,
    pub health: HealthReporter,
    pub started_at: Instant,
    pub config_path: Option<PathBuf>,
    /// Where the servers actually listen (ports chosen by the OS resolved).
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// How long a subscription may wait for a pattern to take it back.
    pub resubscribe_timeout: std::time::Duration,
    patterns_dir: PathBuf,
    /// The config file as last applied (before command-line overrides).
    config: Mutex<Config>,
    /// One config reload (or config file edit) at a time.
    reloading: tokio::sync::Mutex<()>,
    /// The config text last applied, so the watcher does not apply a file
    /// the admin API has just written (and applied) a second time.
    applied_text: Mutex<Option<String>>,
}

/// What a config reload changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ConfigChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    /// Settings that only take effect on a proxy restart.
    pub needs_restart: Vec<&'static str>,
    /// Namespaces whose hot reload failed (they keep their old process).
    pub failed: Vec<String>,
}

impl ProxyState {
    /// Builds the state and starts supervising every configured namespace.
    pub(crate) fn start(
        config: Config,
        config_path: Option<PathBuf>,
        health: HealthReporter,
        listen: SocketAddr,
        admin_listen: SocketAddr,
    ) -> std::io::Result<Arc<Self>> {
        let activity = Arc::new(Activity::default());
        let log_format = prism_observability::Settings::from_env("prism-proxy").log_format;
        let logs = Arc::new(PatternLogs::new(
            Limits::default(),
            Echo::stderr(log_format),
        ));
        let supervisor = Supervisor::new(
            config.supervisor.clone(),
            health.clone(),
            activity.clone(),
            logs.clone(),
        )?;
        let patterns_dir = config
            .patterns_dir
            .clone()
            .unwrap_or_else(default_patterns_dir);
        // Reloads compare file with file: flags may override the file's
        // addresses, and that is no change to report.
        let baseline = config_path
            .as_deref()
            .and_then(|path| Config::load(path).ok())
            .unwrap_or_else(|| config.clone());
        let auth = Arc::new(Auth::from_config(&config));
        let state = Arc::new(Self {
            namespaces: Namespaces::default(),
            auth,
            supervisor,
            activity,
            logs,
            latency: LatencyRecorder::new(),
            drain: Drain::default(),
            subscriptions: Subscriptions::default(),
            stopping: tokio::sync::watch::channel(false).0,
            health,
            started_at: Instant::now(),
            config_path,
            listen,
            admin_listen,
            resubscribe_timeout: config.supervisor.resubscribe_timeout(),
            patterns_dir,
            config: Mutex::new(baseline),
            reloading: tokio::sync::Mutex::new(()),
            applied_text: Mutex::new(None),
        });
        for ns in &config.namespaces {
            state.add_namespace(Spec::new(ns.clone(), ns.binary_path(&state.patterns_dir)));
        }
        Ok(state)
    }

    /// Resolves once shutdown has begun.
    pub(crate) async fn stopped(&self) {
        let mut stopping = self.stopping.subscribe();
        let _ = stopping.wait_for(|stop| *stop).await;
    }

    fn add_namespace(&self, spec: Spec) {
        let ns = Arc::new(Namespace::new(spec, self.activity.clone()));
        self.namespaces.insert(ns.clone());
        self.supervisor.add(ns);
    }

    /// Re-reads the config file and applies it (see [`Self::reload_config_text`]).
    /// An operator asked for it, so it does not wait for the file to settle;
    /// but an empty file written moments ago is refused, since it is likely a
    /// rewrite in progress and would replace every namespace with the defaults
    /// ([`settle::refuse_now`]).
    pub(crate) async fn reload_config(&self) -> Result<ConfigChanges, ConfigError> {
        let Some(path) = &self.config_path else {
            return Err(ConfigError::Invalid {
                field: "--config".into(),
                reason: "the proxy was started without a config file".into(),
            });
        };
        let read = |e| ConfigError::Read {
            path: path.clone(),
            source: e,
        };
        let stamp = path.as_path().stamp().map_err(read)?;
        let text = path.as_path().read().map_err(read)?;
        if let Some(reason) = settle::refuse_now(stamp, &text, std::time::SystemTime::now()) {
            let e = ConfigError::Invalid {
                field: path.display().to_string(),
                reason,
            };
            self.activity
                .emit("", EventKind::ConfigReloadFailed, e.to_string(), None);
            return Err(e);
        }
        self.reload_config_text(&text).await
    }

    /// Applies config text: new namespaces start, removed ones stop, changed
    /// ones are hot-reloaded with their new spec. An invalid config changes
    /// nothing.
    pub(crate) async fn reload_config_text(
        &self,
        text: &str,
    ) -> Result<ConfigChanges, ConfigError> {
        let _one_at_a_time = self.reloading.lock().await;
        self.apply_config_text(text).await
    }

    /// [`Self::reload_config_text`] for a caller that holds `reloading`.
    async fn apply_config_text(&self, text: &str) -> Result<ConfigChanges, ConfigError> {
        let new = match Config::from_yaml(text).and_then(|c| c.check_files().map(|()| c)) {
            Ok(new) => new,
            Err(e) => {
                self.activity
                    .emit("", EventKind::ConfigReloadFailed, e.to_string(), None);
                return Err(e);
            }
        };
        let old = self.config.lock().expect("config").clone();
        let diff = config_diff::diff(&old, &new);
        let mut changes = ConfigChanges {
            needs_restart: diff.needs_restart,
            ..Default::default()
        };
        for gone in diff.removed {
            // Streams end first, so their pumps do not try to subscribe again.
            self.subscriptions.fail_namespace(
                &gone,
                &ProxyError::NamespaceUnavailable {
                    namespace: gone.clone(),
                    reason: "removed from the config; its subscriptions ended".into(),
                },
            );
            self.supervisor.remove(&gone).await;
            self.namespaces.remove(&gone);
            self.latency.forget(&gone);
            self.activity.emit(
                &gone,
                EventKind::NamespaceRemoved,
                "removed from the config",
                None,
            );
            changes.removed.push(gone);
        }
        for ns in diff.added {
            self.health
                .set_service_status(&ns.name, ServingStatus::NotServing)
                .await;
            let name = ns.name.clone();
            self.add_namespace(Spec::new(ns.clone(), ns.binary_path(&self.patterns_dir)));
            self.activity.emit(
                &name,
                EventKind::NamespaceAdded,
                "added by the config",
                None,
            );
            changes.added.push(name);
        }
        for ns in diff.changed {
            let spec = Spec::new(ns.clone(), ns.binary_path(&self.patterns_dir));
            match self.supervisor.reload(&ns.name, Some(Arc::new(spec))).await {
                Ok(_) => changes.changed.push(ns.name),
                Err(reason) => {
                    tracing::warn!(namespace = %ns.name, %reason, "reload for the new config failed");
                    changes.failed.push(ns.name);
                }
            }
        }
        let summary = format!(
            "added {:?}, removed {:?}, changed {:?}{}",
            changes.added,
            changes.removed,
            changes.changed,
            if changes.failed.is_empty() {
                String::new()
            } else {
                format!(", failed to reload {:?}", changes.failed)
            }
        );
        self.auth.apply(&new);
        self.activity
            .emit("", EventKind::ConfigReloaded, summary, None);
        *self.config.lock().expect("config") = new;
        *self.applied_text.lock().expect("applied text") = Some(text.to_string());
        Ok(changes)
    }
}

/// Where pattern binaries are looked for when the config does not say.
pub(crate) fn default_patterns_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."))
}
