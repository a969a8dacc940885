//! `prism-bench` cannot rot: the real binary runs about two seconds per path
//! over every path (it starts its own proxy and pattern on free ports) and
//! its JSON report must hold together; with `--backend redis` too.

use std::{
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use prism_tests::{bins, procs};
use serde_json::Value;

/// Far above the ~6 s a run takes, for a loaded CI machine.
const TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn prism_bench_measures_and_compares_every_path() {
    let report = run_bench(&[
        "kv",
        "--rate",
        "200",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--keys",
        "100",
    ]);

    let paths = report["paths"].as_array().expect("paths");
    let names: Vec<&str> = paths.iter().filter_map(|p| p["path"].as_str()).collect();
    assert_eq!(names, ["proxy", "pattern", "floor"], "{report:#}");
    for path in paths {
        let name = &path["path"];
        // 200 rps for 1 s on a fixed grid: exactly 200 measured requests.
        assert_eq!(path["requests"], 200, "{name}: {path:#}");
        assert_eq!(path["error_count"], 0, "{name}: {path:#}");
        assert!(number(&path["throughput_rps"]) > 0.0, "{name}: {path:#}");
        let latency = &path["latency_us"];
        let (p50, p99, max) = (
            number(&latency["p50_us"]),
            number(&latency["p99_us"]),
            number(&latency["max_us"]),
        );
        assert!(
            0.0 < p50 && p50 <= p99 && p99 <= max,
            "{name}: quantiles out of order: {latency:#}"
        );
    }

    // Processes the bench started are measured; the proxy's pattern too.
    let roles = |i: usize| -> Vec<&str> {
        paths[i]["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .filter_map(|p| p["role"].as_str())
            .collect()
    };
    assert_eq!(roles(0), ["proxy", "pattern", "bench"]);
    assert_eq!(roles(1), ["pattern", "bench"]);
    for process in paths[0]["processes"].as_array().unwrap() {
        assert!(number(&process["cpu_percent"]) >= 0.0, "{process:#}");
        assert!(number(&process["peak_rss_kb"]) > 0.0, "{process:#}");
    }
    assert!(number(&paths[0]["processes"][0]["idle_rss_kb"]) > 0.0);

    let comparisons: Vec<(&str, &str)> = report["comparisons"]
        .as_array()
        .expect("comparisons")
        .iter()
        .map(|c| {
            assert!(c["added_p50_us"].is_number(), "{c:#}");
            assert!(c["added_p99_us"].is_number(), "{c:#}");
            assert!(number(&c["throughput_ratio"]) > 0.0, "{c:#}");
            (c["path"].as_str().unwrap(), c["baseline"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        comparisons,
        [
            ("proxy", "pattern"),
            ("proxy", "floor"),
            ("pattern", "floor")
        ]
    );
}

/// Runs `prism-bench ARGS --json --bin-dir BIN_DIR` and returns its report.
fn run_bench(args: &[&str]) -> Value {
    let child = Command::new(bins::bin("prism-bench"))
        .args(args)
        .args(["--json", "--bin-dir"])
        .arg(bins::bin_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn prism-bench");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(TIMEOUT) {
        Ok(output) => output.expect("wait for prism-bench"),
        Err(_) => {
            procs::signal(pid, libc::SIGKILL);
            panic!("prism-bench did not finish within {TIMEOUT:?}");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "prism-bench failed ({}):\n{}{stdout}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}"))
}

/// With `--backend redis` the bench starts its own `redis-server`
/// (`$REDIS_SERVER`, which `scripts/tools.sh` exports, or PATH) and adds the
/// `redis` path: the same Get/Set mix straight to Redis.
#[test]
fn prism_bench_compares_prism_with_redis_direct() {
    let report = run_bench(&[
        "kv",
        "--backend",
        "redis",
        "--paths",
        "proxy,pattern,redis",
        "--rate",
        "100",
        "--duration",
        "500ms",
        "--warmup",
        "100ms",
        "--keys",
        "100",
    ]);
    let paths = report["paths"].as_array().expect("paths");
    let names: Vec<&str> = paths.iter().filter_map(|p| p["path"].as_str()).collect();
    assert_eq!(names, ["proxy", "pattern", "redis"], "{report:#}");
    for path in paths {
        let name = &path["path"];
        assert_eq!(path["error_count"], 0, "{name}: {path:#}");
        assert!(number(&path["throughput_rps"]) > 0.0, "{name}: {path:#}");
    }
    let comparisons: Vec<(&str, &str)> = report["comparisons"]
        .as_array()
        .expect("comparisons")
        .iter()
        .map(|c| (c["path"].as_str().unwrap(), c["baseline"].as_str().unwrap()))
        .collect();
    for pair in [("proxy", "redis"), ("pattern", "redis")] {
        assert!(comparisons.contains(&pair), "{pair:?} in {comparisons:?}");
    }
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {value}"))
}
