//! Every range and required field of [`super::ranges`], through
//! `Config::from_yaml` as an operator's file would reach it.

use super::{Config, ranges::*};

/// The error for `yaml`, which must be refused.
fn refused(yaml: &str) -> String {
    match Config::from_yaml(yaml) {
        Ok(c) => panic!("accepted: {yaml}\n{c:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_names(yaml: &str, field: &str) {
    let err = refused(yaml);
    assert!(err.starts_with(field), "{yaml} → {err}");
}

/// Every duration under `supervisor:`.
const DURATIONS: [&str; 8] = [
    "ready_timeout_ms",
    "health_interval_ms",
    "health_timeout_ms",
    "restart_backoff_initial_ms",
    "restart_backoff_max_ms",
    "stable_after_ms",
    "shutdown_grace_ms",
    "resubscribe_timeout_ms",
];

fn supervisor(field: &str, value: &str) -> String {
    format!("supervisor:\n  {field}: {value}\n")
}

fn namespace(body: &str) -> String {
    format!("namespaces:\n  - {{name: a, {body}}}\n")
}

#[test]
fn worker_threads_range_from_1_to_1024() {
    for ok in [1, 64, MAX_WORKER_THREADS] {
        let c = Config::from_yaml(&format!("worker_threads: {ok}")).unwrap();
        assert_eq!(c.worker_threads, Some(ok));
    }
    for bad in ["0", "1025", "100000", &u64::MAX.to_string()] {
        let err = refused(&format!("worker_threads: {bad}"));
        assert!(err.starts_with("worker_threads"), "{bad} → {err}");
    }
    let err = refused("worker_threads: 100000");
    assert!(err.contains("100000") && err.contains("1024"), "{err}");
}

#[test]
fn a_namespaces_worker_threads_range_from_1_to_1024() {
    let yaml = |n: &str| {
        format!("namespaces:\n  - name: a\n    pattern: keyvalue\n    worker_threads: {n}\n")
    };
    let c = Config::from_yaml(&yaml("3")).unwrap();
    assert_eq!(c.namespaces[0].worker_threads, Some(3));
    assert_eq!(
        Config::from_yaml(&yaml("~")).unwrap().namespaces[0].worker_threads,
        None
    );
    for bad in ["0", "1025"] {
        let err = refused(&yaml(bad));
        assert!(
            err.starts_with("namespaces[0].worker_threads"),
            "{bad} → {err}"
        );
    }
}

#[test]
fn every_supervisor_duration_is_at_most_a_day() {
    for field in DURATIONS {
        let name = format!("supervisor.{field}");
        let yaml = |value: u64| {
            let mut yaml = supervisor(field, &value.to_string());
            if field == "restart_backoff_initial_ms" {
                // Otherwise the rule initial ≤ max would be what bites.
                yaml.push_str(&format!("  restart_backoff_max_ms: {MAX_DURATION_MS}\n"));
            }
            yaml
        };
        for bad in [MAX_DURATION_MS + 1, u64::MAX] {
            assert_names(&yaml(bad), &name);
        }
        Config::from_yaml(&yaml(MAX_DURATION_MS))
            .unwrap_or_else(|e| panic!("{field}: a day is fine: {e}"));
    }
}

#[test]
fn zero_is_refused_where_it_means_nothing() {
    let durations = DURATIONS.into_iter().filter(|f| *f != "shutdown_grace_ms");
    for field in durations.chain(["unhealthy_threshold", "max_consecutive_failures"]) {
        assert_names(&supervisor(field, "0"), &format!("supervisor.{field}"));
    }
    let c = Config::from_yaml(&supervisor("shutdown_grace_ms", "0")).unwrap();
    assert_eq!(c.supervisor.shutdown_grace_ms, 0);
}

#[test]
fn negative_and_fractional_numbers_are_refused() {
    for yaml in [
        supervisor("health_interval_ms", "-1"),
        supervisor("health_interval_ms", "1.5"),
        "worker_threads: -4".to_string(),
    ] {
        let err = refused(&yaml);
        assert!(
            err.contains("health_interval_ms") || err.contains("worker_threads"),
            "{yaml} → {err}"
        );
    }
}

#[test]
fn backoff_initial_may_not_exceed_max() {
    let yaml = "supervisor:\n  restart_backoff_initial_ms: 5000\n  restart_backoff_max_ms: 1000\n";
    let err = refused(yaml);
    assert!(
        err.starts_with("supervisor.restart_backoff_initial_ms")
            && err.contains("restart_backoff_max_ms"),
        "{err}"
    );
    let equal = "supervisor:\n  restart_backoff_initial_ms: 1000\n  restart_backoff_max_ms: 1000\n";
    Config::from_yaml(equal).unwrap();
}

#[test]
fn thresholds_range_from_1_to_a_million() {
    for field in ["unhealthy_threshold", "max_consecutive_failures"] {
        Config::from_yaml(&supervisor(field, "1")).unwrap();
        Config::from_yaml(&supervisor(field, &MAX_THRESHOLD.to_string())).unwrap();
        assert_names(
            &supervisor(field, &(MAX_THRESHOLD + 1).to_string()),
            &format!("supervisor.{field}"),
        );
    }
}

#[test]
fn limits_have_ranges_naming_the_field() {
    let cases = [
        ("max_key_bytes", 0, MAX_KEY_BYTES + 1),
        ("subscriber_buffer", 0, MAX_SUBSCRIBER_BUFFER + 1),
        ("max_in_flight_bytes", 0, MAX_IN_FLIGHT_BYTES + 1),
    ];
    for (field, low, high) in cases {
        for bad in [low, high] {
            let yaml = namespace(&format!(
                "pattern: keyvalue, backend: memstore, limits: {{{field}: {bad}}}"
            ));
            assert_names(&yaml, &format!("namespaces[0].limits.{field}"));
        }
    }
    let over = namespace(&format!(
        "pattern: keyvalue, backend: memstore, limits: {{max_value_bytes: {}}}",
        MAX_VALUE_BYTES + 1
    ));
    let err = refused(&over);
    assert!(
        err.starts_with("namespaces[0].limits.max_value_bytes") && err.contains("maximum"),
        "{err}"
    );
    let at_the_edges = namespace(&format!(
        "pattern: keyvalue, backend: memstore, limits: {{max_key_bytes: {MAX_KEY_BYTES}, max_value_bytes: {MAX_VALUE_BYTES}, subscriber_buffer: 1, max_in_flight_bytes: 1}}"
    ));
    Config::from_yaml(&at_the_edges).unwrap();
}

#[test]
fn a_redis_cluster_or_a_list_of_nats_servers_names_the_server() {
    for body in [
        "pattern: keyvalue, backend: redis, config: {cluster: ['redis://127.0.0.1:30001', 'redis://127.0.0.1:30002']}",
        "pattern: pubsub, backend: nats, config: {url: 'nats://127.0.0.1:1,nats://127.0.0.1:2'}",
        "pattern: pubsub, backend: nats, config: {url: ['nats://127.0.0.1:1', 'nats://127.0.0.1:2']}",
    ] {
        Config::from_yaml(&namespace(body)).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
    for cluster in ["[]", "['']", "'redis://127.0.0.1:1'", "[7]"] {
        let body = format!("pattern: keyvalue, backend: redis, config: {{cluster: {cluster}}}");
        let err = refused(&namespace(&body));
        assert!(
            err.starts_with("namespaces[0].config.cluster"),
            "{body} → {err}"
        );
    }
}

#[test]
fn redis_needs_an_address_and_nats_a_url() {
    for (body, field) in [
        (
            "pattern: keyvalue, backend: redis",
            "namespaces[0].config.address",
        ),
        (
            "pattern: keyvalue, backend: redis, config: {pool_size: 4}",
            "namespaces[0].config.address",
        ),
        (
            "pattern: keyvalue, backend: redis, config: {address: ''}",
            "namespaces[0].config.address",
        ),
        (
            "pattern: keyvalue, backend: redis, config: {address: 6379}",
            "namespaces[0].config.address",
        ),
        ("pattern: pubsub, backend: nats", "namespaces[0].config.url"),
        (
            "pattern: pubsub, backend: nats, config: {jetstream: true}",
            "namespaces[0].config.url",
        ),
        (
            "pattern: pubsub, backend: nats, config: {url: []}",
            "namespaces[0].config.url",
        ),
        (
            "pattern: pubsub, backend: nats, config: {url: ['nats://a:1', '']}",
            "namespaces[0].config.url",
        ),
    ] {
        let err = refused(&namespace(body));
        assert!(err.starts_with(field), "{body} → {err}");
        assert!(err.contains("required"), "{err}");
    }
    Config::from_yaml(&namespace(
        "pattern: keyvalue, backend: redis, config: {address: 'redis://127.0.0.1:1'}",
    ))
    .unwrap();
    Config::from_yaml(&namespace(
        "pattern: pubsub, backend: nats, config: {url: 'nats://127.0.0.1:1'}",
    ))
    .unwrap();
    // MemStore has no server to name.
    Config::from_yaml(&namespace("pattern: keyvalue, backend: memstore")).unwrap();
}

#[test]
fn a_registry_needs_no_backend_and_runs_on_memstore_slots_by_default() {
    let c = Config::from_yaml(&namespace("pattern: multicast-registry")).unwrap();
    assert_eq!(c.namespaces[0].backend, super::Backend::Memstore);
    assert_eq!(c.namespaces[0].backend_label(), "memstore/memstore");
    let explicit = namespace("pattern: multicast-registry, backend: memstore");
    Config::from_yaml(&explicit).unwrap();
    let slots = namespace(
        "pattern: multicast-registry, config: {registry: {backend: redis, address: 'redis://127.0.0.1:1'}, messaging: {backend: nats, url: 'nats://127.0.0.1:2', jetstream: true}}",
    );
    let c = Config::from_yaml(&slots).unwrap();
    assert_eq!(c.namespaces[0].backend_label(), "redis/nats");
    // Other patterns keep their backend default too.
    let kv = Config::from_yaml(&namespace("pattern: keyvalue")).unwrap();
    assert_eq!(kv.namespaces[0].backend_label(), "memstore");
}

#[test]
fn a_registry_with_a_top_level_backend_is_pointed_at_the_slots() {
    for backend in ["redis", "nats"] {
        let err = refused(&namespace(&format!(
            "pattern: multicast-registry, backend: {backend}"
        )));
        assert!(err.starts_with("namespaces[0].backend"), "{err}");
        assert!(
            err.contains("namespaces[0].config.registry.backend")
                && err.contains("namespaces[0].config.messaging.backend"),
            "{err}"
        );
    }
}

#[test]
fn registry_slots_name_their_server_and_a_known_backend() {
    let registry = |config: &str| {
        namespace(&format!(
            "pattern: multicast-registry, config: {{{config}}}"
        ))
    };
    for (config, field, words) in [
        (
            "registry: {backend: redis}",
            "namespaces[0].config.registry.address",
            "required",
        ),
        (
            "registry: {backend: redis, address: ''}",
            "namespaces[0].config.registry.address",
            "required",
        ),
        (
            "messaging: {backend: nats}",
            "namespaces[0].config.messaging.url",
            "required",
        ),
        (
            "messaging: {backend: nats, address: 'nats://127.0.0.1:1'}",
            "namespaces[0].config.messaging.url",
            "required",
        ),
        (
            "messaging: {backend: redis}",
            "namespaces[0].config.messaging.address",
            "required",
        ),
        (
            "registry: {backend: nats}",
            "namespaces[0].config.registry.backend",
            "memstore | redis",
        ),
        (
            "messaging: {backend: mongo}",
            "namespaces[0].config.messaging.backend",
            "memstore | nats | redis",
        ),
        (
            "messaging: {backend: 7}",
            "namespaces[0].config.messaging.backend",
            "not one of",
        ),
        (
            "registry: redis",
            "namespaces[0].config.registry",
            "mapping",
        ),
        (
            "registry: {command_timeout_ms: 86400001}",
            "namespaces[0].config.registry.command_timeout_ms",
            "maximum",
        ),
        (
            "sweep_interval_ms: 86400001",
            "namespaces[0].config.sweep_interval_ms",
            "maximum",
        ),
    ] {
        let err = refused(&registry(config));
        assert!(err.starts_with(field), "{config} → {err}");
        assert!(err.contains(words), "{config} → {err}");
    }
    for fine in [
        "registry: {backend: memstore}, messaging: {backend: memstore}",
        "registry: {backend: redis, address: 'redis://127.0.0.1:1'}",
        "messaging: {backend: redis, address: 'redis://127.0.0.1:1'}",
        "messaging: {backend: nats, url: 'nats://127.0.0.1:1', jetstream: true}",
        "fanout_concurrency: 64",
    ] {
        Config::from_yaml(&registry(fine)).unwrap_or_else(|e| panic!("{fine}: {e}"));
    }
    // The index names the namespace, as for the other backends.
    let third = "namespaces:\n  - {name: a, pattern: keyvalue}\n  - {name: b, pattern: pubsub}\n  - {name: c, pattern: multicast-registry, config: {registry: {backend: redis}}}\n";
    assert_names(third, "namespaces[2].config.registry.address");
}

#[test]
fn pattern_durations_are_at_most_a_day() {
    let base = "pattern: keyvalue, backend: redis, config: {address: 'redis://127.0.0.1:1'";
    for bad in [
        (MAX_DURATION_MS + 1).to_string(),
        u64::MAX.to_string(),
        "1.0e30".to_string(),
    ] {
        let yaml = namespace(&format!("{base}, command_timeout_ms: {bad}}}"));
        assert_names(&yaml, "namespaces[0].config.command_timeout_ms");
    }
    let fine = namespace(&format!("{base}, command_timeout_ms: {MAX_DURATION_MS}}}"));
    Config::from_yaml(&fine).unwrap();
}

#[test]
fn the_second_namespace_is_named_by_index() {
    let yaml = "namespaces:\n  - {name: a, pattern: keyvalue, backend: memstore}\n  - {name: b, pattern: pubsub, backend: nats}\n";
    assert_names(yaml, "namespaces[1].config.url");
}

#[test]
fn the_examples_and_compose_configs_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for file in ["examples/redis.yaml", "compose/prism.yaml"] {
        Config::load(&root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}
