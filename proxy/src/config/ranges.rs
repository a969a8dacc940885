//! The sane range of every number in `prism.yaml`, and the backend fields
//! that have no safe default. A value outside its range is refused at load
//! (exit 64) or on reload (the running config stays) with a message naming
//! the field, because an absurd value does harm long before anyone notices:
//! `worker_threads: 100000` starts a thread storm, a `u64::MAX` timeout
//! overflows the first `Instant + Duration`, and a Redis namespace without an
//! address would quietly talk to whatever listens on localhost.

use prism_proto::limits::MAX_MESSAGE_BYTES;
use serde_json::Value;

use super::{Backend, ConfigError, LimitsConfig, NamespaceConfig, PatternKind, SupervisorConfig};

/// More threads than this only add context switches on any machine Prism
/// runs on.
pub const MAX_WORKER_THREADS: usize = 1024;
/// The longest duration any `*_ms` field may hold: one day.
pub const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;
/// Consecutive-event thresholds above this mean "never", which is better
/// said by a large but finite number an operator can reason about.
pub const MAX_THRESHOLD: u32 = 1_000_000;
/// Keys are addresses, not payloads.
pub const MAX_KEY_BYTES: usize = 64 * 1024;
/// Room left in a gRPC message for everything but the value.
pub const MAX_VALUE_BYTES: usize = MAX_MESSAGE_BYTES - 1024 * 1024;
/// Messages held per subscriber; each may be `max_value_bytes` long.
pub const MAX_SUBSCRIBER_BUFFER: usize = 1 << 20;
/// Bytes of calls in flight per namespace.
pub const MAX_IN_FLIGHT_BYTES: usize = 16 << 30;

/// `value` must lie in `min..=max`.
pub fn in_range<T>(field: &str, value: T, min: T, max: T) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display,
{
    if value < min {
        return Err(ConfigError::invalid(
            field,
            format!("{value} is below the minimum of {min}"),
        ));
    }
    if value > max {
        return Err(ConfigError::invalid(
            field,
            format!("{value} is over the maximum of {max}"),
        ));
    }
    Ok(())
}

/// A duration in milliseconds: at most a day, and at least 1 unless zero
/// means something.
fn duration_ms(field: &str, value: u64, zero_allowed: bool) -> Result<(), ConfigError> {
    in_range(field, value, u64::from(!zero_allowed), MAX_DURATION_MS)
}

pub fn worker_threads(value: Option<usize>) -> Result<(), ConfigError> {
    threads("worker_threads", value)
}

/// A thread count at `field`: the proxy's own, or a namespace's pattern's.
pub fn threads(field: &str, value: Option<usize>) -> Result<(), ConfigError> {
    match value {
        Some(threads) => in_range(field, threads, 1, MAX_WORKER_THREADS),
        None => Ok(()),
    }
}

pub fn supervisor(s: &SupervisorConfig) -> Result<(), ConfigError> {
    for (field, value, zero_allowed) in [
        ("supervisor.ready_timeout_ms", s.ready_timeout_ms, false),
        ("supervisor.health_interval_ms", s.health_interval_ms, false),
        ("supervisor.health_timeout_ms", s.health_timeout_ms, false),
        (
            "supervisor.restart_backoff_initial_ms",
            s.restart_backoff_initial_ms,
            false,
        ),
        (
            "supervisor.restart_backoff_max_ms",
            s.restart_backoff_max_ms,
            false,
        ),
        ("supervisor.stable_after_ms", s.stable_after_ms, false),
        // Zero grace is meaningful: stop by killing at once.
        ("supervisor.shutdown_grace_ms", s.shutdown_grace_ms, true),
        (
            "supervisor.resubscribe_timeout_ms",
            s.resubscribe_timeout_ms,
            false,
        ),
    ] {
        duration_ms(field, value, zero_allowed)?;
    }
    if s.restart_backoff_initial_ms > s.restart_backoff_max_ms {
        return Err(ConfigError::invalid(
            "supervisor.restart_backoff_initial_ms",
            format!(
                "{} is over supervisor.restart_backoff_max_ms ({})",
                s.restart_backoff_initial_ms, s.restart_backoff_max_ms
            ),
        ));
    }
    for (field, value) in [
        ("supervisor.unhealthy_threshold", s.unhealthy_threshold),
        (
            "supervisor.max_consecutive_failures",
            s.max_consecutive_failures,
        ),
    ] {
        in_range(field, value, 1, MAX_THRESHOLD)?;
    }
    Ok(())
}

/// `prefix` is the namespace's field path, e.g. `namespaces[2]`.
pub fn limits(prefix: &str, l: &LimitsConfig) -> Result<(), ConfigError> {
    let field = |f: &str| format!("{prefix}.limits.{f}");
    in_range(&field("max_key_bytes"), l.max_key_bytes, 1, MAX_KEY_BYTES)?;
    in_range(
        &field("max_value_bytes"),
        l.max_value_bytes,
        0,
        MAX_VALUE_BYTES,
    )?;
    in_range(
        &field("subscriber_buffer"),
        l.subscriber_buffer,
        1,
        MAX_SUBSCRIBER_BUFFER,
    )?;
    in_range(
        &field("max_in_flight_bytes"),
        l.max_in_flight_bytes,
        1,
        MAX_IN_FLIGHT_BYTES,
    )
}

/// The pattern's `config` block is the pattern's to check, but two things
/// are checked here so a bad file is refused before anything starts: the
/// field that says where the backend is, and durations.
pub fn backend_config(prefix: &str, ns: &NamespaceConfig) -> Result<(), ConfigError> {
    if ns.pattern == PatternKind::MulticastRegistry {
        return registry_slots(prefix, ns);
    }
    let required = match ns.backend {
        Backend::Redis => Some("address"),
        Backend::Nats => Some("url"),
        Backend::Memstore => None,
    };
    if let Some(key) = required {
        require_server(
            &ns.config,
            &format!("{prefix}.config"),
            key,
            ns.backend.as_str(),
        )?;
    }
    durations(&format!("{prefix}.config"), &ns.config)
}

/// A registry slot: its name, and each backend it may use with the field
/// that names that backend's server.
type Slot = (
    &'static str,
    &'static [(&'static str, Option<&'static str>)],
);

/// The slots a multicast registry has.
const REGISTRY_SLOTS: [Slot; 2] = [
    (
        "registry",
        &[("memstore", None), ("redis", Some("address"))],
    ),
    (
        "messaging",
        &[
            ("memstore", None),
            ("nats", Some("url")),
            ("redis", Some("address")),
        ],
    ),
];

/// A registry's two slots (`config.registry`, `config.messaging`): each a
/// mapping whose `backend` is one the slot knows (default MemStore), naming
/// its server when it has one.
fn registry_slots(prefix: &str, ns: &NamespaceConfig) -> Result<(), ConfigError> {
    let config = format!("{prefix}.config");
    durations(&config, &ns.config)?;
    for (slot, backends) in REGISTRY_SLOTS {
        let field = format!("{config}.{slot}");
        let value = match ns.config.get(slot) {
            None | Some(Value::Null) => continue,
            Some(value) if value.is_object() => value,
            Some(_) => return Err(ConfigError::invalid(field, "must be a mapping")),
        };
        let names = || {
            backends
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(" | ")
        };
        let backend = match value.get("backend") {
            None | Some(Value::Null) => "memstore",
            Some(Value::String(name)) => name.as_str(),
            Some(other) => {
                return Err(ConfigError::invalid(
                    format!("{field}.backend"),
                    format!("{other} is not one of {}", names()),
                ));
            }
        };
        let Some((_, required)) = backends.iter().find(|(name, _)| *name == backend) else {
            return Err(ConfigError::invalid(
                format!("{field}.backend"),
                format!("`{backend}` is not one of {}", names()),
            ));
        };
        if let Some(key) = required {
            require_server(value, &field, key, backend)?;
        }
        durations(&field, value)?;
    }
    Ok(())
}

/// `config.<key>` must name the server: a backend with a server has no
/// default one. A non-empty string or a non-empty list of them (NATS `url`
/// may list a cluster's servers); Redis may name a cluster's seed nodes in
/// `cluster` instead of `address`.
fn require_server(
    config: &Value,
    field: &str,
    key: &str,
    backend: &str,
) -> Result<(), ConfigError> {
    let names = |value: Option<&Value>| match value {
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(list)) => {
            !list.is_empty()
                && list
                    .iter()
                    .all(|v| v.as_str().is_some_and(|s| !s.trim().is_empty()))
        }
        _ => false,
    };
    let alternative = (key == "address").then(|| config.get("cluster")).flatten();
    if names(config.get(key))
        || (matches!(alternative, Some(Value::Array(_))) && names(alternative))
    {
        return Ok(());
    }
    if let Some(cluster) = alternative
        && !cluster.is_null()
    {
        return Err(ConfigError::invalid(
            format!("{field}.cluster"),
            "must list the cluster's nodes (`redis://host:port` each)",
        ));
    }
    Err(ConfigError::invalid(
        format!("{field}.{key}"),
        format!("is required for backend `{backend}` (there is no default server)"),
    ))
}

/// Every `*_ms` field of the mapping at `field` is at most a day.
fn durations(field: &str, config: &Value) -> Result<(), ConfigError> {
    let Some(fields) = config.as_object() else {
        return Ok(());
    };
    for (key, value) in fields.iter().filter(|(k, _)| k.ends_with("_ms")) {
        let field = format!("{field}.{key}");
        // Zero, negative and non-integer values are the pattern's to refuse
        // with its own message; what matters here is that nothing overflows.
        if let Some(ms) = value.as_u64() {
            duration_ms(&field, ms, true)?;
        } else if value.as_f64().is_some_and(|f| f > MAX_DURATION_MS as f64) {
            return Err(ConfigError::invalid(
                field,
                format!("{value} is over the maximum of {MAX_DURATION_MS}"),
            ));
        }
    }
    Ok(())
}
