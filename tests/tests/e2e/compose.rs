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

#[test]
fn collector_scrapes_the_proxy_metrics() {
    let collector = load("signoz/otel-collector-config.yaml");
    let scrape = &collector["receivers"]["prometheus"]["config"]["scrape_configs"][0];
    assert_eq!(scrape["metrics_path"].as_str(), Some("/metrics"));
    assert_eq!(
        strings(&scrape["static_configs"][0]["targets"]),
        ["prism:9090"]
    );
    assert!(
        strings(&collector["service"]["pipelines"]["metrics"]["receivers"])
            .contains(&"prometheus".to_string())
    );
    // The address scraped is the one the stack's proxy serves metrics on.
    let prism = load("prism.yaml");
    assert_eq!(prism["metrics_listen"].as_str(), Some("0.0.0.0:9090"));
    let compose = load("docker-compose.yaml");
    assert!(strings(&compose["services"]["prism"]["ports"]).contains(&"9090:9090".to_string()));
}

/// Every PromQL query of the Signoz dashboard.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(compose_dir().join("signoz/prism-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let widgets = dashboard["widgets"].as_array().expect("widgets");
    assert!(!widgets.is_empty());
    let layout: BTreeSet<&str> = dashboard["layout"]
        .as_array()
        .expect("layout")
        .iter()
        .filter_map(|l| l["i"].as_str())
        .collect();
    widgets
        .iter()
        .flat_map(|w| {
            let title = w["title"].as_str().expect("title").to_string();
            assert!(
                layout.contains(w["id"].as_str().unwrap()),
                "{title} not laid out"
            );
            assert_eq!(w["query"]["queryType"], "promql", "{title}");
            w["query"]["promql"]
                .as_array()
                .expect("promql queries")
                .iter()
                .map(|q| {
                    (
                        title.clone(),
                        q["query"].as_str().expect("query").to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `prism_…` names in a query.
fn metric_names(query: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = query;
    while let Some(at) = rest.find("prism_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_queries_only_metrics_a_real_proxy_exposes() {
    use prism_proto::keyvalue::v1::GetRequest;

    let proxy = prism_tests::Proxy::start_default().await;
    proxy.wait_healthy("default").await;
    let mut kv = proxy.kv("default").await;
    kv.set(crate::keyvalue::set_v("k")).await.unwrap();
    let missing = kv.get(GetRequest { key: "nope".into() }).await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);
    let metrics = proxy.metrics().await;
    // Series that exist (`name{` or `name ` at the start of a sample line),
    // and families declared (`# TYPE name`) that have no series yet, such as
    // drops of a namespace without subscribers.
    let exposed: BTreeSet<&str> = metrics
        .lines()
        .filter_map(|l| match l.strip_prefix("# TYPE ") {
            Some(declared) => declared.split(' ').next(),
            None if l.starts_with('#') => None,
            None => l.split(['{', ' ']).next(),
        })
        .collect();
    let queries = dashboard_queries();
    let mut used = BTreeSet::new();
    for (title, query) in &queries {
        let names = metric_names(query);
        assert!(!names.is_empty(), "{title}: no Prism metric in {query}");
        for name in names {
            assert!(
                exposed.contains(name.as_str()),
                "{title}: {name} is not in /metrics:\n{metrics}"
            );
            used.insert(name);
        }
        for label in ["namespace", "code", "le"] {
            if query.contains(&format!("{label})")) || query.contains(&format!("{label},")) {
                assert!(
                    metrics.contains(&format!("{label}=\"")),
                    "{title}: label {label}"
                );
            }
        }
    }
    // What the issue asks the dashboard to show.
    for needed in [
        "prism_requests_total",
        "prism_request_duration_seconds_bucket",
        "prism_pattern_up",
        "prism_pattern_restarts_total",
    ] {
        assert!(used.contains(needed), "no panel on {needed}");
    }
    assert!(
        queries
            .iter()
            .any(|(_, q)| q.contains("histogram_quantile(0.5,"))
    );
    assert!(
        queries
            .iter()
            .any(|(_, q)| q.contains("histogram_quantile(0.99,"))
    );
}

#[test]
fn metric_names_are_found_in_queries() {
    assert_eq!(
        metric_names("sum(rate(prism_a_total[1m])) / prism_b"),
        BTreeSet::from(["prism_a_total".to_string(), "prism_b".to_string()])
    );
}
