//! The 60-second soak: `prism-bench chaos` with every kind of fault (pattern
//! kills, Redis and NATS restarts, hot reloads, config rewrites) on the seed
//! whose plan holds each of them, and its JSON report must show nothing
//! acknowledged lost, the proxy up with one PID throughout and its RSS
//! under the bound. RELIABILITY.md describes the soak and its 10-minute
//! figures.

use std::{process::Command, time::Duration};

use prism_tests::{bins, procs};
use serde_json::Value;

/// The soak's 60 s, the end checks and start-up, with room for a loaded
/// CI machine.
const TIMEOUT: Duration = Duration::from_secs(300);
/// A plan with every kind of fault in 60 s (prism-bench's unit tests check
/// that it stays so).
const SEED: &str = "14";
const RSS_BOUND_MB: u64 = 512;

#[test]
fn a_minute_of_faults_loses_nothing_acknowledged() {
    let report = run_chaos(&[
        "--duration",
        "60s",
        "--rate",
        "100",
        "--fault-interval",
        "5s",
        "--outage",
        "3s",
        "--seed",
        SEED,
        "--max-rss-mb",
        &RSS_BOUND_MB.to_string(),
    ]);

    let kinds: Vec<&str> = report["faults"]
        .as_array()
        .expect("faults")
        .iter()
        .map(|f| {
            assert!(f["error"].is_null(), "a fault was not injected: {f:#}");
            f["kind"].as_str().expect("kind")
        })
        .collect();
    for kind in [
        "pattern-kill",
        "redis-restart",
        "nats-restart",
        "hot-reload",
        "config-rewrite",
    ] {
        assert!(kinds.contains(&kind), "{kind} was not injected: {kinds:?}");
    }

    let redis = &report["redis"];
    assert!(number(&redis["acknowledged_writes"]) > 100.0, "{redis:#}");
    assert_eq!(redis["lost"], 0, "{redis:#}");
    assert_eq!(redis["unreadable_through_proxy"], 0, "{redis:#}");
    let jetstream = &report["jetstream"];
    assert!(
        number(&jetstream["acknowledged_publishes"]) > 100.0,
        "{jetstream:#}"
    );
    assert_eq!(jetstream["lost"], 0, "{jetstream:#}");

    let proxy = &report["proxy"];
    assert_eq!(proxy["same_pid_throughout"], true, "{proxy:#}");
    assert!(number(&proxy["rss_samples"]) > 10.0, "{proxy:#}");
    let max_rss_kb = number(&proxy["max_rss_kb"]);
    assert!(
        0.0 < max_rss_kb && max_rss_kb <= (RSS_BOUND_MB * 1024) as f64,
        "{proxy:#}"
    );
    assert_eq!(report["problems"], Value::Array(Vec::new()), "{report:#}");

    // Every fault hit someone's calls and the namespaces healed under load.
    for fault in report["faults"].as_array().unwrap() {
        assert!(
            !fault["observed"]["heal_ms"].is_null(),
            "never healed: {fault:#}"
        );
    }
}

/// Runs `prism-bench chaos ARGS --json --bin-dir BIN_DIR`; its report, which
/// it prints whether it passed or not.
fn run_chaos(args: &[&str]) -> Value {
    let output = procs::output_within(
        Command::new(bins::bin("prism-bench"))
            .arg("chaos")
            .args(args)
            .args(["--json", "--bin-dir"])
            .arg(bins::bin_dir()),
        TIMEOUT,
        "prism-bench chaos",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}), {}:\n{stderr}{stdout}", output.status));
    assert!(
        output.status.success(),
        "prism-bench chaos failed ({}):\n{stderr}\n{report:#}",
        output.status
    );
    report
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}
