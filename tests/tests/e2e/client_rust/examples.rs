//! The Rust client's example programs (`clients/rust/examples/`), each run
//! as built against a real proxy, checked by what it prints and by what it
//! left behind.

use std::path::PathBuf;

use prism_tests::{Proxy, bins};

use super::client;

const NAMESPACES: &str = "namespaces:
  - name: default
    pattern: keyvalue
  - name: events
    pattern: pubsub
  - {name: devices, pattern: multicast-registry, config: {registry: {backend: memstore}, messaging: {backend: memstore}}}
";

async fn proxy() -> Proxy {
    let proxy = Proxy::start_with_config(NAMESPACES).await;
    for namespace in ["default", "events", "devices"] {
        proxy.wait_healthy(namespace).await;
    }
    proxy
}

fn example(name: &str) -> PathBuf {
    let path = bins::bin_dir().join("examples").join(name);
    assert!(
        path.is_file(),
        "{} is not built: `cargo build -p prism-client --examples` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Runs example `name` with `args`; its standard output, once it succeeded.
async fn run(name: &str, args: &[&str]) -> String {
    let run = tokio::process::Command::new(example(name))
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(super::WAIT, run)
        .await
        .unwrap_or_else(|_| panic!("the {name} example ends within the wait"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kv_pubsub_and_registry_examples_run_against_a_proxy() {
    let proxy = proxy().await;
    let address = proxy.data_addr.to_string();

    let stdout = run("kv", &[&address]).await;
    assert!(stdout.contains("greeting = hello"), "{stdout}");
    assert!(stdout.contains("[\"greeting\"]"), "{stdout}");
    let kv = client(&proxy).await.kv("default");
    assert_eq!(kv.get("greeting").await.unwrap(), b"hello");

    let stdout = run("pubsub", &[&address, "events"]).await;
    assert!(stdout.contains("orders.created order 1"), "{stdout}");
    assert!(stdout.contains("orders.paid order 1"), "{stdout}");

    let stdout = run("registry", &[&address, "devices"]).await;
    assert!(
        stdout.contains("sensors: [\"sensor-1\", \"sensor-2\"]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("target 1 delivered 0 pending 1 failed 0"),
        "{stdout}"
    );
    assert!(stdout.contains("sensor-1: Pending"), "{stdout}");
    assert!(
        stdout.contains("sensor-1 got {\"command\":\"read\"}"),
        "{stdout}"
    );
    let registry = client(&proxy).await.registry("devices");
    let device = registry.get("actuator-1").await.unwrap();
    assert_eq!(device.metadata["type"], "actuator");
}
