//! The runnable examples, run so they cannot rot: `examples/registry.yaml`
//! starts as is, and `examples/iot_registry_demo.py` (RFC-018's IoT
//! scenario, a foreign gRPC client in Python) passes against it.

use std::{path::PathBuf, process::Stdio, time::Duration};

use prism_tests::Proxy;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_iot_demo_passes_against_the_example_config() {
    let config = std::fs::read_to_string(repo().join("examples/registry.yaml")).unwrap();
    // The harness overrides the example's fixed addresses with free ports.
    let proxy = Proxy::start_with_config(&config).await;
    proxy.wait_healthy("devices").await;
    let python = std::env::var("PRISM_PYTHON").unwrap_or_else(|_| "python3".into());
    let run = tokio::process::Command::new(&python)
        .arg(repo().join("examples/iot_registry_demo.py"))
        .args([
            "--target",
            &proxy.data_addr.to_string(),
            "--namespace",
            "devices",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the demo finishes within two minutes")
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the demo failed ({}):\n{stdout}\n{stderr}\nproxy log:\n{}",
        output.status,
        proxy.log()
    );
    for line in [
        "ok    only one device is a sensor on floor 1",
        "ok    that device is sensor-1",
        "ok    floor 1: sensor-1 and actuator-1 both get lights-off",
        "IoT scenario passed",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}
