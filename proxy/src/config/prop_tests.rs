//! Property tests of `Config::from_yaml`, the parser an operator's file (or
//! a half-written one) reaches: no input makes it panic, and a valid config
//! written out as YAML reads back with the same fields.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{Backend, Config, PatternKind, ranges::*};

/// Field names the config knows, so structured inputs reach deep into the
/// validation rather than stopping at `deny_unknown_fields`.
const KEYS: &[&str] = &[
    "listen",
    "admin_listen",
    "metrics_listen",
    "watch_config",
    "patterns_dir",
    "worker_threads",
    "supervisor",
    "namespaces",
    "name",
    "pattern",
    "backend",
    "binary",
    "limits",
    "config",
    "address",
    "url",
    "registry",
    "messaging",
    "ready_timeout_ms",
    "health_interval_ms",
    "health_timeout_ms",
    "unhealthy_threshold",
    "restart_backoff_initial_ms",
    "restart_backoff_max_ms",
    "max_consecutive_failures",
    "stable_after_ms",
    "shutdown_grace_ms",
    "max_key_bytes",
    "max_value_bytes",
    "subscriber_buffer",
    "max_in_flight_bytes",
    "command_timeout_ms",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_string),
        1 => "[a-z_]{1,12}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..=MAX_DURATION_MS + 2).prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        proptest::sample::select(
            &[
                "keyvalue",
                "pubsub",
                "multicast-registry",
                "memstore",
                "redis",
                "nats",
                "127.0.0.1:0",
                "redis://127.0.0.1:1",
                "nats://127.0.0.1:1",
                "",
            ][..]
        )
        .prop_map(Value::from),
        ".{0,16}".prop_map(Value::from),
    ]
}

/// Nested mappings and lists shaped like a config.
fn tree() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[derive(Debug, Clone)]
struct Ns {
    name: String,
    pattern: PatternKind,
    backend: Backend,
    max_key_bytes: usize,
    max_value_bytes: usize,
    subscriber_buffer: usize,
    max_in_flight_bytes: usize,
}

fn namespace() -> impl Strategy<Value = Ns> {
    let kinds = proptest::sample::select(
        &[
            (PatternKind::Keyvalue, Backend::Memstore),
            (PatternKind::Keyvalue, Backend::Redis),
            (PatternKind::Pubsub, Backend::Memstore),
            (PatternKind::Pubsub, Backend::Nats),
            (PatternKind::MulticastRegistry, Backend::Memstore),
        ][..],
    );
    (
        "[a-z0-9][a-z0-9_-]{0,62}",
        kinds,
        1..=MAX_KEY_BYTES,
        0..=MAX_VALUE_BYTES,
        1..=MAX_SUBSCRIBER_BUFFER,
        1..=MAX_IN_FLIGHT_BYTES,
    )
        .prop_map(|(name, (pattern, backend), k, v, b, f)| Ns {
            name,
            pattern,
            backend,
            max_key_bytes: k,
            max_value_bytes: v,
            subscriber_buffer: b,
            max_in_flight_bytes: f,
        })
}

fn yaml_of(ns: &Ns) -> String {
    let config = match (ns.pattern, ns.backend) {
        (PatternKind::MulticastRegistry, _) => {
            "\n    config:\n      registry: {backend: redis, address: 'redis://127.0.0.1:6379'}\n      messaging: {backend: nats, url: 'nats://127.0.0.1:4222'}"
        }
        (_, Backend::Redis) => "\n    config:\n      address: redis://127.0.0.1:6379",
        (_, Backend::Nats) => "\n    config:\n      url: nats://127.0.0.1:4222",
        (_, Backend::Memstore) => "",
    };
    // The backend is optional: MemStore ones are sometimes left out.
    let backend = if ns.backend == Backend::Memstore && ns.name.len().is_multiple_of(2) {
        String::new()
    } else {
        format!("\n    backend: {}", ns.backend.as_str())
    };
    format!(
        "  - name: '{}'\n    pattern: {}{backend}\n    limits:\n      max_key_bytes: {}\n      max_value_bytes: {}\n      subscriber_buffer: {}\n      max_in_flight_bytes: {}{config}\n",
        ns.name,
        ns.pattern.as_str(),
        ns.max_key_bytes,
        ns.max_value_bytes,
        ns.subscriber_buffer,
        ns.max_in_flight_bytes,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = Config::from_yaml(&text);
    }

    #[test]
    fn arbitrary_bytes_as_text_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Config::from_yaml(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn yaml_punctuation_never_panics(text in "[-:{}\\[\\],&*!|>'\"%@` \n#?a0.]{0,120}") {
        let _ = Config::from_yaml(&text);
    }

    /// JSON is YAML's flow syntax, so a value tree written as JSON is a
    /// structured YAML document.
    #[test]
    fn structured_yaml_never_panics(doc in tree()) {
        let _ = Config::from_yaml(&doc.to_string());
        if let Value::Object(top) = &doc {
            // The same tree under a valid prefix, so namespaces get checked too.
            let wrapped = serde_json::json!({ "namespaces": [top] });
            let _ = Config::from_yaml(&wrapped.to_string());
        }
    }

    #[test]
    fn a_valid_config_cut_short_never_panics(
        namespaces in proptest::collection::vec(namespace(), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let text: String = std::iter::once("namespaces:\n".to_string())
            .chain(namespaces.iter().map(yaml_of))
            .collect();
        let end = cut.index(text.len() + 1);
        let _ = Config::from_yaml(&text[..end]);
    }

    #[test]
    fn valid_configs_round_trip_their_key_fields(
        threads in 1..=MAX_WORKER_THREADS,
        initial in 1..=MAX_DURATION_MS,
        max_extra in 0..=MAX_DURATION_MS,
        threshold in 1..=MAX_THRESHOLD,
        grace in 0..=MAX_DURATION_MS,
        namespaces in proptest::collection::vec(namespace(), 1..5),
    ) {
        let mut namespaces = namespaces;
        namespaces.sort_by(|a, b| a.name.cmp(&b.name));
        namespaces.dedup_by(|a, b| a.name == b.name);
        let max = initial.max(max_extra);
        let mut text = format!(
            "worker_threads: {threads}\nsupervisor:\n  restart_backoff_initial_ms: {initial}\n  restart_backoff_max_ms: {max}\n  unhealthy_threshold: {threshold}\n  shutdown_grace_ms: {grace}\nnamespaces:\n"
        );
        for ns in &namespaces {
            text.push_str(&yaml_of(ns));
        }
        let config = Config::from_yaml(&text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(config.worker_threads, Some(threads));
        prop_assert_eq!(config.supervisor.restart_backoff_initial_ms, initial);
        prop_assert_eq!(config.supervisor.restart_backoff_max_ms, max);
        prop_assert_eq!(config.supervisor.unhealthy_threshold, threshold);
        prop_assert_eq!(config.supervisor.shutdown_grace_ms, grace);
        prop_assert_eq!(config.namespaces.len(), namespaces.len());
        for (got, want) in config.namespaces.iter().zip(&namespaces) {
            prop_assert_eq!(&got.name, &want.name);
            prop_assert_eq!(got.pattern, want.pattern);
            prop_assert_eq!(got.backend, want.backend);
            prop_assert_eq!(got.limits.max_key_bytes, want.max_key_bytes);
            prop_assert_eq!(got.limits.max_value_bytes, want.max_value_bytes);
            prop_assert_eq!(got.limits.subscriber_buffer, want.subscriber_buffer);
            prop_assert_eq!(got.limits.max_in_flight_bytes, want.max_in_flight_bytes);
        }
    }
}
