//! `prism.yaml`: the proxy's whole configuration, every field defaulted.
//! Loading is a pure function of the text ([`Config::from_yaml`]) so tests
//! never touch the file system; errors name the field (and the line, when the
//! YAML parser knows it).

use std::{
    collections::HashSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use prism_proto::limits::Limits;
use serde::Deserialize;

pub mod auth;
pub(crate) mod edit;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod range_tests;
pub mod ranges;
pub mod tls;
#[cfg(test)]
pub(crate) mod tls_tests;

pub use tls::{ClientAuth, ListenerName, TlsConfig};

/// A config that cannot be used. The message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(String),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl ConfigError {
    /// A parse error as read from `path`: the YAML parser knows the text
    /// only as `<input>`, operators know the file.
    fn in_file(self, path: &Path) -> Self {
        match self {
            Self::Parse(message) if message.contains("<input>") => {
                Self::Parse(message.replace("<input>", &path.display().to_string()))
            }
            Self::Parse(message) => Self::Parse(format!("{}: {message}", path.display())),
            other => other,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Data-plane gRPC address.
    pub listen: SocketAddr,
    /// Admin gRPC address (prism-console attaches here).
    pub admin_listen: SocketAddr,
    /// Prometheus `/metrics` address; `null` turns the endpoint off.
    pub metrics_listen: Option<SocketAddr>,
    /// Re-apply the config file whenever it changes on disk.
    pub watch_config: bool,
    /// Where pattern binaries live; default: beside the proxy's executable.
    pub patterns_dir: Option<PathBuf>,
    /// Threads serving calls, read at start-up. Default: `TOKIO_WORKER_THREADS`
    /// if set, else [`auto_worker_threads`].
    pub worker_threads: Option<usize>,
    pub supervisor: SupervisorConfig,
    pub listeners: ListenersConfig,
    /// TLS (and mTLS) on the listeners; off when absent. Read at start-up.
    pub tls: Option<TlsConfig>,
    /// Authentication and authorization; off when absent.
    pub auth: Option<auth::AuthConfig>,
    pub namespaces: Vec<NamespaceConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8980).into(),
            admin_listen: ([127, 0, 0, 1], 8981).into(),
            metrics_listen: Some(([127, 0, 0, 1], 9090).into()),
            watch_config: true,
            patterns_dir: None,
            worker_threads: None,
            supervisor: SupervisorConfig::default(),
            listeners: ListenersConfig::default(),
            tls: None,
            auth: None,
            namespaces: vec![
                NamespaceConfig::default_memstore(),
                NamespaceConfig::events_memstore(),
            ],
        }
    }
}

/// How the proxy watches over pattern processes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisorConfig {
    /// How long a new process may take to accept connections.
    pub ready_timeout_ms: u64,
    pub health_interval_ms: u64,
    /// A HealthCheck slower than this counts as UNHEALTHY.
    pub health_timeout_ms: u64,
    /// Consecutive UNHEALTHY checks before the process is restarted.
    pub unhealthy_threshold: u32,
    pub restart_backoff_initial_ms: u64,
    pub restart_backoff_max_ms: u64,
    /// Consecutive failed starts or crashes before the namespace is FAILED.
    pub max_consecutive_failures: u32,
    /// A process that ran this long resets the failure count when it dies.
    pub stable_after_ms: u64,
    /// How long in-flight calls and `Stop` may take on shutdown before kill.
    pub shutdown_grace_ms: u64,
    /// How long a subscription whose pattern went away may wait to be
    /// taken back by a new one before its stream ends with UNAVAILABLE.
    pub resubscribe_timeout_ms: u64,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            ready_timeout_ms: 10_000,
            health_interval_ms: 1_000,
            health_timeout_ms: 1_000,
            unhealthy_threshold: 3,
            restart_backoff_initial_ms: 100,
            restart_backoff_max_ms: 10_000,
            max_consecutive_failures: 5,
            stable_after_ms: 10_000,
            shutdown_grace_ms: 5_000,
            resubscribe_timeout_ms: 10_000,
        }
    }
}

impl SupervisorConfig {
    pub fn ready_timeout(&self) -> Duration {
        Duration::from_millis(self.ready_timeout_ms)
    }
    pub fn health_interval(&self) -> Duration {
        Duration::from_millis(self.health_interval_ms)
    }
    pub fn health_timeout(&self) -> Duration {
        Duration::from_millis(self.health_timeout_ms)
    }
    pub fn stable_after(&self) -> Duration {
        Duration::from_millis(self.stable_after_ms)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
    pub fn resubscribe_timeout(&self) -> Duration {
        Duration::from_millis(self.resubscribe_timeout_ms)
    }
}

/// Bounds on every listener (data plane, admin, metrics), each applied per
/// listener; read at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenersConfig {
    /// Connections served at once; one more is told why (HTTP/2 GOAWAY,
    /// HTTP/1 503) and closed.
    pub max_connections: usize,
    /// HTTP/2 streams open at once on one connection; more are refused
    /// with REFUSED_STREAM.
    pub max_concurrent_streams: u32,
    /// Requests open at once across the listener's connections; one more is
    /// answered RESOURCE_EXHAUSTED (HTTP/1: 503) at once.
    pub max_open_streams: usize,
    /// A connection that has not sent the HTTP/2 preface (HTTP/1: a
    /// request's headers) within this is closed.
    pub handshake_timeout_ms: u64,
    /// A connection with no open stream for this long is closed (GOAWAY);
    /// an open stream, however quiet, keeps it.
    pub idle_timeout_ms: u64,
    /// HTTP/2 PING interval that finds dead peers under quiet streams.
    pub keepalive_interval_ms: u64,
    /// A PING unanswered this long closes the connection.
    pub keepalive_timeout_ms: u64,
}

impl Default for ListenersConfig {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            max_concurrent_streams: 200,
            max_open_streams: 4096,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 300_000,
            keepalive_interval_ms: 30_000,
            keepalive_timeout_ms: 20_000,
        }
    }
}

impl ListenersConfig {
    const MAX_MS: u64 = 24 * 3600 * 1000;

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
    pub fn keepalive_interval(&self) -> Duration {
        Duration::from_millis(self.keepalive_interval_ms)
    }
    pub fn keepalive_timeout(&self) -> Duration {
        Duration::from_millis(self.keepalive_timeout_ms)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let range = |field: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::invalid(
                    format!("listeners.{field}"),
                    format!("{value} is outside {min}..={max}"),
                ))
            }
        };
        range("max_connections", self.max_connections as u64, 1, 1_000_000)?;
        range(
            "max_concurrent_streams",
            self.max_concurrent_streams.into(),
            1,
            1_000_000,
        )?;
        range(
            "handshake_timeout_ms",
            self.handshake_timeout_ms,
            1,
            Self::MAX_MS,
        )?;
        range("idle_timeout_ms", self.idle_timeout_ms, 1, Self::MAX_MS)?;
        range(
            "keepalive_interval_ms",
            self.keepalive_interval_ms,
            1,
            Self::MAX_MS,
        )?;
        range(
            "keepalive_timeout_ms",
            self.keepalive_timeout_ms,
            1,
            Self::MAX_MS,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatternKind {
    Keyvalue,
    Pubsub,
    MulticastRegistry,
}

impl PatternKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keyvalue => "keyvalue",
            Self::Pubsub => "pubsub",
            Self::MulticastRegistry => "multicast-registry",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Memstore,
    Redis,
    Nats,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memstore => "memstore",
            Self::Redis => "redis",
            Self::Nats => "nats",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_key_bytes: usize,
    /// Largest KeyValue value or PubSub payload.
    pub max_value_bytes: usize,
    /// PubSub: messages the proxy holds per subscriber before its
    /// slow-consumer policy applies (drop oldest, or stop reading for
    /// at-least-once backends).
    pub subscriber_buffer: usize,
    /// Bytes of unary requests (their encoded size) the proxy forwards to
    /// the namespace's pattern at once; a call over it is refused with
    /// RESOURCE_EXHAUSTED rather than queued, so an overloaded pattern
    /// cannot make the proxy's memory grow without bound. A call alone is
    /// always admitted, whatever its size.
    pub max_in_flight_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        Self {
            max_key_bytes: l.max_key_bytes,
            max_value_bytes: l.max_value_bytes,
            subscriber_buffer: 1024,
            max_in_flight_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceConfig {
    pub name: String,
    pub pattern: PatternKind,
    /// Default MemStore. A multicast registry names its backends per slot
    /// in `config` instead (`registry.backend`, `messaging.backend`).
    #[serde(default)]
    pub backend: Backend,
    /// Path of the pattern binary; default `prism-<backend>` (or
    /// `prism-multicast-registry`) in `patterns_dir`.
    #[serde(default)]
    pub binary: Option<PathBuf>,
    /// Request size limits the proxy enforces before routing.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Handed to the pattern's `Initialize` as is.
    #[serde(default)]
    pub config: serde_json::Value,
    /// Who may read and write it when auth is on (nobody unless listed).
    #[serde(default)]
    pub access: auth::AccessConfig,
    /// Threads of this namespace's pattern process (`--worker-threads`);
    /// unset, the pattern takes half the machine's cores. A busy namespace
    /// on a larger machine gets more, a quiet one beside it fewer.
    #[serde(default)]
    pub worker_threads: Option<usize>,
}

impl NamespaceConfig {
    pub fn default_memstore() -> Self {
        Self {
            name: "default".into(),
            pattern: PatternKind::Keyvalue,
            backend: Backend::Memstore,
            binary: None,
            limits: LimitsConfig::default(),
            config: serde_json::Value::Null,
            access: auth::AccessConfig::default(),
            worker_threads: None,
        }
    }

    /// `events`: PubSub on MemStore, served with no config file.
    pub fn events_memstore() -> Self {
        Self {
            name: "events".into(),
            pattern: PatternKind::Pubsub,
            ..Self::default_memstore()
        }
    }

    /// Whether `other` needs a different pattern process: everything but
    /// `access`, which the proxy applies itself.
    pub fn same_process(&self, other: &Self) -> bool {
        let strip = |ns: &Self| Self {
            access: auth::AccessConfig::default(),
            ..ns.clone()
        };
        strip(self) == strip(other)
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_key_bytes: self.limits.max_key_bytes,
            max_value_bytes: self.limits.max_value_bytes,
        }
    }

    /// The backend as operators read it: for a multicast registry the two
    /// slots' backends, `registry/messaging` (each MemStore unless set).
    pub fn backend_label(&self) -> String {
        if self.pattern != PatternKind::MulticastRegistry {
            return self.backend.as_str().to_string();
        }
        let slot = |name: &str| {
            self.config
                .get(name)
                .and_then(|slot| slot.get("backend"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("memstore")
                .to_string()
        };
        format!("{}/{}", slot("registry"), slot("messaging"))
    }

    /// The binary to spawn: the configured path, or the conventional name in `dir`.
    pub fn binary_path(&self, dir: &Path) -> PathBuf {
        if let Some(binary) = &self.binary {
            return binary.clone();
        }
        let name = match self.pattern {
            PatternKind::MulticastRegistry => "prism-multicast-registry".to_string(),
            _ => format!("prism-{}", self.backend.as_str()),
        };
        dir.join(name)
    }
}

impl Config {
    /// Reads and validates `path`, and the files it names ([`Self::check_files`]).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config = Self::from_yaml(&text).map_err(|e| e.in_file(path))?;
        config.check_files()?;
        Ok(config)
    }

    /// Reads the files the config names (TLS certificates and keys) and
    /// checks they can be used; [`Self::from_yaml`] only checks the text.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        match &self.tls {
            Some(tls) => tls.load(&tls::provider()).map(drop),
            None => Ok(()),
        }
    }

    /// Parses and validates YAML text. An empty document is the default config.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule; the error names the first field that breaks one.
    /// The ranges are in [`ranges`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listeners.validate()?;
        if let Some(tls) = &self.tls {
            tls.validate()?;
        }
        ranges::worker_threads(self.worker_threads)?;
        if let Some(auth) = &self.auth {
            auth.validate()?;
        }
        if self.namespaces.is_empty() {
            return Err(ConfigError::invalid(
                "namespaces",
                "at least one namespace is needed",
            ));
        }
        let mut seen = HashSet::new();
        for (i, ns) in self.namespaces.iter().enumerate() {
            let prefix = format!("namespaces[{i}]");
            let field = |f: &str| format!("{prefix}.{f}");
            validate_name(&ns.name)
                .map_err(|reason| ConfigError::invalid(field("name"), reason))?;
            if !seen.insert(ns.name.as_str()) {
                return Err(ConfigError::invalid(
                    field("name"),
                    format!("duplicate namespace `{}`", ns.name),
                ));
            }
            let supported = match ns.pattern {
                PatternKind::Keyvalue => matches!(ns.backend, Backend::Memstore | Backend::Redis),
                PatternKind::Pubsub => matches!(ns.backend, Backend::Memstore | Backend::Nats),
                PatternKind::MulticastRegistry => ns.backend == Backend::Memstore,
            };
            if !supported {
                let mut reason = format!(
                    "backend `{}` does not serve pattern `{}`",
                    ns.backend.as_str(),
                    ns.pattern.as_str()
                );
                if ns.pattern == PatternKind::MulticastRegistry {
                    reason.push_str(&format!(
                        "; a registry sets its backends per slot: {prefix}.config.registry.backend (memstore | redis) and {prefix}.config.messaging.backend (memstore | nats | redis)"
                    ));
                }
                return Err(ConfigError::invalid(field("backend"), reason));
            }
            if !(ns.config.is_null() || ns.config.is_object()) {
                return Err(ConfigError::invalid(field("config"), "must be a mapping"));
            }
            ranges::limits(&prefix, &ns.limits)?;
            ranges::threads(&field("worker_threads"), ns.worker_threads)?;
            auth::principals(&field("access.read"), &ns.access.read)?;
            auth::principals(&field("access.write"), &ns.access.write)?;
            ranges::backend_config(&prefix, ns)?;
        }
        ranges::supervisor(&self.supervisor)
    }
}

/// Half the machine's cores, at least one. Each call through the proxy is
/// served on one side and sent on the other, and the pattern processes on the
/// same machine need cores too; fewer threads also means fewer cross-thread
/// wake-ups per call (see BENCHMARKS.md).
pub fn auto_worker_threads(cores: usize) -> usize {
    (cores / 2).max(1)
}

/// Namespace names go into socket paths, health service names and metric
/// labels, so they stay short and plain.
fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!("`{name}` must be 1 to 63 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(format!(
            "`{name}` may only hold lowercase letters, digits, `-` and `_`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_threads_are_half_the_cores_unless_set() {
        assert_eq!(auto_worker_threads(1), 1);
        assert_eq!(auto_worker_threads(2), 1);
        assert_eq!(auto_worker_threads(8), 4);
        let c = Config::from_yaml("worker_threads: 3").unwrap();
        assert_eq!(c.worker_threads, Some(3));
        let err = Config::from_yaml("worker_threads: 0").unwrap_err();
        assert!(err.to_string().contains("worker_threads"), "{err}");
    }

    #[test]
    fn listener_bounds_have_safe_defaults_and_checked_ranges() {
        let c =
            Config::from_yaml("listeners: {max_connections: 5, idle_timeout_ms: 2000}").unwrap();
        assert_eq!(c.listeners.max_connections, 5);
        assert_eq!(c.listeners.idle_timeout(), Duration::from_secs(2));
        assert_eq!(c.listeners.max_concurrent_streams, 200, "defaulted");
        for bad in [
            "listeners: {max_connections: 0}",
            "listeners: {max_concurrent_streams: 0}",
            "listeners: {handshake_timeout_ms: 86400001}",
        ] {
            let err = Config::from_yaml(bad).unwrap_err().to_string();
            assert!(err.starts_with("listeners."), "{bad}: {err}");
        }
    }

    #[test]
    fn empty_file_is_the_memstore_default() {
        let c = Config::from_yaml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.namespaces[0].name, "default");
        assert_eq!(c.namespaces[1].name, "events");
        assert_eq!(c.namespaces[1].pattern, PatternKind::Pubsub);
        assert_eq!(c.listen.to_string(), "127.0.0.1:8980");
        assert_eq!(c.admin_listen.to_string(), "127.0.0.1:8981");
        assert_eq!(c.metrics_listen.unwrap().to_string(), "127.0.0.1:9090");
    }

    #[test]
    fn metrics_can_be_turned_off() {
        assert_eq!(
            Config::from_yaml("metrics_listen: null\n")
                .unwrap()
                .metrics_listen,
            None
        );
    }

    #[test]
    fn design_example_parses() {
        let c = Config::from_yaml(
            r#"
listen: 127.0.0.1:8980
admin_listen: 127.0.0.1:8981
namespaces:
  - name: default
    pattern: keyvalue
    backend: memstore
  - name: cache
    pattern: keyvalue
    backend: redis
    config:
      address: redis://127.0.0.1:6379
  - name: orders
    pattern: pubsub
    backend: nats
    config:
      url: nats://127.0.0.1:4222
      jetstream: false
"#,
        )
        .unwrap();
        assert_eq!(c.namespaces.len(), 3);
        assert_eq!(c.namespaces[1].backend, Backend::Redis);
        assert_eq!(
            c.namespaces[1].config["address"],
            serde_json::json!("redis://127.0.0.1:6379")
        );
        assert_eq!(
            c.namespaces[2].binary_path(Path::new("/opt/prism")),
            Path::new("/opt/prism/prism-nats")
        );
    }

    #[test]
    fn unknown_field_is_named() {
        let err = Config::from_yaml("lisen: 127.0.0.1:1\n").unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn bad_listen_names_the_field_and_line() {
        let err = Config::from_yaml("admin_listen: 1.2.3.4:1\nlisten: nowhere\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("listen") || msg.contains("line 2"), "{msg}");
        assert!(msg.contains('2'), "names the line: {msg}");
    }

    #[test]
    fn unknown_backend_is_named() {
        let err = Config::from_yaml(
            "namespaces:\n  - name: a\n    pattern: keyvalue\n    backend: mongo\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("mongo"), "{err}");
    }

    #[test]
    fn duplicate_and_bad_names_are_refused() {
        let dup = "namespaces:\n  - {name: a, pattern: keyvalue, backend: memstore}\n  - {name: a, pattern: keyvalue, backend: memstore}\n";
        let err = Config::from_yaml(dup).unwrap_err();
        assert!(err.to_string().starts_with("namespaces[1].name"), "{err}");
        let bad = "namespaces:\n  - {name: 'A/b', pattern: keyvalue, backend: memstore}\n";
        assert!(
            Config::from_yaml(bad)
                .unwrap_err()
                .to_string()
                .starts_with("namespaces[0].name")
        );
    }

    #[test]
    fn backend_must_serve_the_pattern() {
        let err =
            Config::from_yaml("namespaces:\n  - {name: a, pattern: keyvalue, backend: nats}\n")
                .unwrap_err();
        assert!(
            err.to_string().starts_with("namespaces[0].backend"),
            "{err}"
        );
    }

    #[test]
    fn zero_supervisor_values_are_refused() {
        let err = Config::from_yaml("supervisor:\n  health_interval_ms: 0\n").unwrap_err();
        assert!(
            err.to_string().starts_with("supervisor.health_interval_ms"),
            "{err}"
        );
    }

    #[test]
    fn explicit_binary_wins() {
        let c = Config::from_yaml(
            "namespaces:\n  - {name: a, pattern: keyvalue, backend: memstore, binary: /x/y}\n",
        )
        .unwrap();
        assert_eq!(
            c.namespaces[0].binary_path(Path::new("/d")),
            Path::new("/x/y")
        );
    }
}
