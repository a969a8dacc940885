//! The Kubernetes manifests of docs/deploy.md cannot be applied here, so
//! they are checked: every document parses as YAML, the promised objects
//! are there, readiness and liveness come from `grpc.health.v1` on the data
//! port, and the proxy config in the ConfigMap is one the real proxy accepts.

use std::{path::PathBuf, process::Command};

use prism_tests::bins;
use serde::Deserialize;
use serde_yaml_ng::Value;

fn manifests() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/prism.yaml")
}

/// Every document of the manifest file, parsed.
fn documents() -> Vec<Value> {
    let text = std::fs::read_to_string(manifests()).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .enumerate()
        .map(|(i, doc)| Value::deserialize(doc).unwrap_or_else(|e| panic!("document {i}: {e}")))
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn every_manifest_document_parses_and_the_objects_are_there() {
    let docs = documents();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["ConfigMap", "Deployment", "Service", "PodDisruptionBudget"]
    );
    for doc in &docs {
        assert!(doc["apiVersion"].as_str().is_some(), "{doc:?}");
        assert!(doc["metadata"]["name"].as_str().is_some(), "{doc:?}");
    }

    let deployment = of_kind(&docs, "Deployment");
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            container[probe]["grpc"]["port"].as_u64(),
            Some(8980),
            "{probe}"
        );
        assert_eq!(
            container[probe]["grpc"]["service"].as_str(),
            Some(""),
            "{probe}"
        );
    }
    let selector = &deployment["spec"]["selector"]["matchLabels"];
    assert_eq!(
        &deployment["spec"]["template"]["metadata"]["labels"], selector,
        "the pods carry the selector's labels"
    );
    let service = of_kind(&docs, "Service");
    assert_eq!(service["spec"]["clusterIP"].as_str(), Some("None"));
    assert_eq!(&service["spec"]["selector"], selector);
}

#[test]
fn the_proxy_accepts_the_manifest_config() {
    let docs = documents();
    let config = of_kind(&docs, "ConfigMap")["data"]["prism.yaml"]
        .as_str()
        .expect("prism.yaml in the ConfigMap")
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prism.yaml");
    std::fs::write(&path, config).unwrap();
    let output = Command::new(bins::bin("prism-proxy"))
        .arg("--config")
        .arg(&path)
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
    assert!(stdout.contains("events (pubsub on nats)"), "{stdout}");
}
