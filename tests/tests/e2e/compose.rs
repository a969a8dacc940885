//! The compose stack cannot run on machines without a Docker engine, so its
//! files are checked here: valid YAML, the services and ports the README
//! promises, and a proxy config the real proxy accepts.

use std::{collections::BTreeSet, path::PathBuf, process::Command};

use prism_tests::bins;
use serde_yaml_ng::Value;

fn compose_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../compose")
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(compose_dir().join(name)).unwrap();
    let mut value: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    value.apply_merge().unwrap();
    value
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_file_has_the_promised_services_and_ports() {
    let compose = load("docker-compose.yaml");
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    for expected in [
        "clickhouse",
        "zookeeper-1",
        "schema-migrator-sync",
        "signoz",
        "otel-collector",
        "redis",
        "nats",
        "dex",
        "prism",
    ] {
        assert!(
            names.contains(expected),
            "service {expected} missing: {names:?}"
        );
    }
    let ports = |service: &str| strings(&compose["services"][service]["ports"]);
    let image = |service: &str| {
        compose["services"][service]["image"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };

    assert!(ports("signoz").contains(&"8080:8080".to_string()));
    assert!(ports("otel-collector").contains(&"4317:4317".to_string()));
    assert!(ports("otel-collector").contains(&"4318:4318".to_string()));
    assert!(ports("redis").contains(&"6379:6379".to_string()));
    assert!(image("redis").starts_with("redis:7"), "{}", image("redis"));
    assert!(ports("nats").contains(&"4222:4222".to_string()));
    assert!(image("nats").starts_with("nats:2.10"), "{}", image("nats"));
    assert!(strings(&compose["services"]["nats"]["command"]).contains(&"--jetstream".to_string()));
    assert!(ports("dex").contains(&"5556:5556".to_string()));
    for port in ["8980:8980", "8981:8981", "9090:9090"] {
        assert!(
            ports("prism").contains(&port.to_string()),
            "prism port {port}"
        );
    }
    let env = strings(&compose["services"]["prism"]["environment"]);
    assert!(
        env.contains(&"OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector:4317".to_string()),
        "{env:?}"
    );
    // The merge keys resolved: every service is on the shared network.
    for name in &names {
        assert_eq!(
            strings(&compose["services"][*name]["networks"]),
            ["prism"],
            "{name}"
        );
    }
}

#[test]
fn dex_issues_for_the_dev_user() {
    let dex = load("dex/config.yaml");
    assert_eq!(dex["issuer"].as_str(), Some("http://localhost:5556/dex"));
    let users = dex["staticPasswords"].as_sequence().unwrap();
    assert!(
        users
            .iter()
            .any(|u| u["email"].as_str() == Some("dev@local.prism"))
    );
    let clients = dex["staticClients"].as_sequence().unwrap();
    let client = |id: &str| {
        clients
            .iter()
            .find(|c| c["id"].as_str() == Some(id))
            .unwrap_or_else(|| panic!("client {id}"))
    };
    assert_eq!(client("prism")["secret"].as_str(), Some("prism-dev-secret"));
    assert_eq!(client("prism-cli")["public"].as_bool(), Some(true));
    let grants = strings(&dex["oauth2"]["grantTypes"]);
    for grant in ["password", "urn:ietf:params:oauth:grant-type:device_code"] {
        assert!(grants.contains(&grant.to_string()), "{grant}: {grants:?}");
    }
    // The proxy in the stack trusts exactly this issuer, for both clients.
    let prism = load("prism.yaml");
    let issuer = &prism["auth"]["issuers"][0];
    assert_eq!(issuer["issuer"], dex["issuer"]);
    assert_eq!(strings(&issuer["audiences"]), ["prism", "prism-cli"]);
    assert_eq!(
        issuer["jwks_uri"].as_str(),
        Some("http://dex:5556/dex/keys")
    );
}

#[test]
fn collector_receives_otlp_on_both_ports() {
    let collector = load("signoz/otel-collector-config.yaml");
    let protocols = &collector["receivers"]["otlp"]["protocols"];
    assert_eq!(protocols["grpc"]["endpoint"].as_str(), Some("0.0.0.0:4317"));
    assert_eq!(protocols["http"]["endpoint"].as_str(), Some("0.0.0.0:4318"));
    assert!(
        strings(&collector["service"]["pipelines"]["traces"]["receivers"])
            .contains(&"otlp".to_string())
    );
}

#[test]
fn the_proxy_accepts_the_compose_config() {
    let output = Command::new(bins::bin("prism-proxy"))
        .arg("--config")
        .arg(compose_dir().join("prism.yaml"))
        .arg("--check")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("cache (keyvalue on redis)"), "{stdout}");
    assert!(stdout.contains("orders (pubsub on nats)"), "{stdout}");
    assert!(
        stdout.contains("auth: on, trusting http://localhost:5556/dex"),
        "{stdout}"
    );
}
