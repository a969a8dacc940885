//! `prism-bench` cannot rot: the real binary runs about two seconds per path
//! over every path (it starts its own proxy, pattern and nginx on free
//! ports) and its JSON report must hold together; with `--backend redis`
//! too, and the `pubsub` target on MemStore and on NATS, and the `registry`
//! target; the auth paths, and a token given to a proxy with auth on; on a
//! Redis Cluster and a NATS cluster ([`cluster`]). nginx comes from
//! `$NGINX`, which `scripts/tools.sh` installs and exports.

mod cluster;

use std::{process::Command, time::Duration};

use prism_tests::{bins, procs};
use serde_json::Value;

/// Far above the ~6 s a run takes, for a loaded CI machine.
const TIMEOUT: Duration = Duration::from_secs(120);
/// 200 requests (or messages) a second on a fixed grid, 1 s measured after
/// 200 ms of warm-up: exactly 200 measured per path.
const SHORT_RUN: &[&str] = &["--rate", "200", "--duration", "1s", "--warmup", "200ms"];

#[test]
fn prism_bench_measures_and_compares_every_path() {
    let report = run_bench(&[&["kv", "--keys", "100"], SHORT_RUN].concat());

    let paths = report["paths"].as_array().expect("paths");
    let names: Vec<&str> = paths.iter().filter_map(|p| p["path"].as_str()).collect();
    assert_eq!(names, ["proxy", "nginx", "pattern", "floor"], "{report:#}");
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
    assert_eq!(roles(1), ["nginx", "pattern", "bench"]);
    assert_eq!(roles(2), ["pattern", "bench"]);
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
            ("proxy", "nginx"),
            ("proxy", "floor"),
            ("nginx", "pattern"),
            ("nginx", "floor"),
            ("pattern", "floor")
        ]
    );
}

/// The auth paths in one run: a proxy with `auth:` on sent one token on
/// every call, then one never seen before on every call, each compared with
/// the path that does less. Timing is not asserted, only that every call
/// passed auth and the comparisons are there.
#[test]
fn prism_bench_measures_what_auth_adds() {
    let report = run_bench(&[
        "kv",
        "--keys",
        "100",
        "--paths",
        "proxy,proxy-auth,proxy-auth-fresh",
        // Slow enough for a debug build checking a new RS256 token per call.
        "--rate",
        "50",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
    ]);
    let paths = report["paths"].as_array().expect("paths");
    let names: Vec<&str> = paths.iter().filter_map(|p| p["path"].as_str()).collect();
    assert_eq!(
        names,
        ["proxy", "proxy-auth", "proxy-auth-fresh"],
        "{report:#}"
    );
    for path in paths {
        let name = &path["path"];
        assert_eq!(path["requests"], 50, "{name}: {path:#}");
        assert_eq!(path["error_count"], 0, "{name}: {path:#}");
    }
    let comparisons = comparisons(&report);
    for pair in [
        ("proxy-auth", "proxy"),
        ("proxy-auth-fresh", "proxy-auth"),
        ("proxy-auth-fresh", "proxy"),
    ] {
        assert!(comparisons.contains(&pair), "{pair:?} in {comparisons:?}");
    }
    for c in report["comparisons"].as_array().unwrap() {
        assert!(c["added_p99_us"].is_number(), "{c:#}");
    }
}

/// Trace export at 100% (`proxy-traced`): the spans go to a sink the bench
/// runs as a process of its own, watched on its own row and left out of
/// the server CPU per call, by which export's cost is compared; it received
/// at least the proxy's two spans of every measured call.
#[test]
fn prism_bench_measures_trace_export_with_the_sink_apart() {
    let output = bench_output(
        &[
            &["kv", "--keys", "100", "--paths", "proxy,proxy-traced"],
            SHORT_RUN,
        ]
        .concat(),
    );
    let report = report_of(&output);
    let paths = report["paths"].as_array().expect("paths");
    let names: Vec<&str> = paths.iter().filter_map(|p| p["path"].as_str()).collect();
    assert_eq!(names, ["proxy", "proxy-traced"], "{report:#}");
    for path in paths {
        assert_eq!(path["requests"], 200, "{path:#}");
        assert_eq!(path["error_count"], 0, "{path:#}");
    }
    let traced = paths[1]["processes"].as_array().expect("processes");
    let roles: Vec<&str> = traced.iter().filter_map(|p| p["role"].as_str()).collect();
    assert_eq!(roles, ["proxy", "pattern", "sink", "bench"]);
    assert!(number(&traced[2]["cpu_percent"]) >= 0.0, "{traced:#?}");
    assert!(number(&traced[2]["peak_rss_kb"]) > 0.0, "{traced:#?}");

    let comparison = report["comparisons"]
        .as_array()
        .expect("comparisons")
        .iter()
        .find(|c| c["path"] == "proxy-traced" && c["baseline"] == "proxy")
        .unwrap_or_else(|| panic!("proxy-traced vs proxy in {report:#}"));
    assert!(
        number(&comparison["server_cpu_ratio"]) > 0.0,
        "{comparison:#}"
    );

    let stderr = String::from_utf8_lossy(&output.stderr);
    let spans: u64 = stderr
        .lines()
        .find_map(|line| {
            line.strip_prefix("proxy-traced: the OTLP sink received ")?
                .strip_suffix(" spans")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no span count in:\n{stderr}"));
    assert!(spans >= 2 * 200, "{spans} spans");
}

/// `--token-file` against a proxy started with auth on: with the token
/// every call passes (and the token appears in no output); without it the
/// bench stops at pre-populating, UNAUTHENTICATED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prism_bench_sends_a_given_token_to_a_proxy_with_auth() {
    let setup = crate::auth::Setup::start("", crate::auth::NAMESPACES).await;
    setup.proxy.wait_serving("orders").await;
    let token = setup.writer();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{token}\n")).expect("token file");
    let proxy = setup.proxy.data_addr.to_string();
    let base = [
        "kv",
        "--keys",
        "50",
        "--rate",
        "50",
        "--duration",
        "500ms",
        "--warmup",
        "100ms",
        "--paths",
        "proxy",
        "--namespace",
        "orders",
        "--proxy",
        &proxy,
    ]
    .map(String::from);

    let with_token = [
        &base[..],
        &["--token-file".into(), file.display().to_string()],
    ]
    .concat();
    let output = tokio::task::spawn_blocking(move || bench_output(&with_token))
        .await
        .expect("bench");
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}{stdout}");
    assert!(!stdout.contains(&token) && !stderr.contains(&token));
    let report: Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["paths"][0]["error_count"], 0, "{report:#}");
    assert_eq!(report["paths"][0]["requests"], 25, "{report:#}");

    let output = tokio::task::spawn_blocking(move || bench_output(&base))
        .await
        .expect("bench");
    let (stdout, stderr) = texts(&output);
    assert!(!output.status.success(), "{stdout}");
    assert!(stderr.contains("UNAUTHENTICATED"), "{stderr}");
}

fn texts(output: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `prism-bench ARGS --json --bin-dir BIN_DIR`.
fn bench_output<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    procs::output_within(
        Command::new(bins::bin("prism-bench"))
            .args(args)
            .args(["--json", "--bin-dir"])
            .arg(bins::bin_dir()),
        TIMEOUT,
        "prism-bench",
    )
}

/// Runs `prism-bench ARGS --json --bin-dir BIN_DIR` and returns its report.
fn run_bench(args: &[&str]) -> Value {
    report_of(&bench_output(args))
}

/// The JSON report of a finished `prism-bench --json` run; fails the test
/// with its output when it failed or printed something else.
fn report_of(output: &std::process::Output) -> Value {
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

/// PubSub on MemStore through the proxy, through nginx and straight to the
/// pattern: at a low rate every published message reaches both
/// subscribers (nginx forwards their streams as they come), nothing fails.
#[test]
fn prism_bench_pubsub_delivers_every_message_on_memstore() {
    let args = [
        "pubsub",
        "--paths",
        "proxy,nginx,pattern",
        "--subscribers",
        "2",
        "--payload-size",
        "256",
    ];
    let report = run_bench(&[&args, SHORT_RUN].concat());
    let names = check_pubsub(&report, 200, 2);
    assert_eq!(names, ["proxy", "nginx", "pattern"], "{report:#}");
    assert_eq!(
        comparisons(&report),
        [
            ("proxy", "pattern"),
            ("proxy", "nginx"),
            ("nginx", "pattern")
        ]
    );
}

/// PubSub on core NATS (a `nats-server` the bench starts from
/// `$NATS_SERVER`, which `scripts/tools.sh` exports, or PATH): through the
/// proxy, straight to the pattern, and straight to NATS with async-nats;
/// in `PublishBatch` calls of 10 (on NATS: 10 publishes and a flush).
#[test]
fn prism_bench_pubsub_compares_prism_with_nats_direct() {
    let args = [
        "pubsub",
        "--backend",
        "nats",
        "--paths",
        "proxy,pattern,nats",
        "--batch",
        "10",
    ];
    let report = run_bench(&[&args, SHORT_RUN].concat());
    let names = check_pubsub(&report, 20, 1);
    assert_eq!(names, ["proxy", "pattern", "nats"], "{report:#}");
    // The nats-server the bench started is measured on every path.
    for path in report["paths"].as_array().unwrap() {
        let roles: Vec<&str> = path["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .filter_map(|p| p["role"].as_str())
            .collect();
        assert!(roles.contains(&"nats"), "{roles:?}");
    }
    assert_eq!(
        comparisons(&report),
        [("proxy", "pattern"), ("proxy", "nats"), ("pattern", "nats")]
    );
}

/// Checks what every PubSub path must show after a [`SHORT_RUN`]: 200
/// messages published in `calls` calls, all delivered to each of
/// `subscribers`, no loss, no error. Returns the paths' names.
fn check_pubsub(report: &Value, calls: u64, subscribers: u64) -> Vec<&str> {
    assert_eq!(report["target"], "pubsub", "{report:#}");
    let paths = report["paths"].as_array().expect("paths");
    for path in paths {
        let name = &path["path"];
        assert_eq!(path["requests"], calls, "{name}: {path:#}");
        assert_eq!(path["error_count"], 0, "{name}: {path:#}");
        let pubsub = &path["pubsub"];
        assert_eq!(pubsub["published"], 200, "{name}: {pubsub:#}");
        assert_eq!(pubsub["delivered"], 200 * subscribers, "{name}: {pubsub:#}");
        for zero in ["lost", "duplicates", "unexpected", "dropped_before"] {
            assert_eq!(pubsub[zero], 0, "{name}: {zero}: {pubsub:#}");
        }
        assert_eq!(
            pubsub["subscriber_errors"],
            serde_json::json!({}),
            "{name}: {pubsub:#}"
        );
        assert!(
            number(&pubsub["delivered_per_s"]) > 0.0,
            "{name}: {pubsub:#}"
        );
        let latency = &pubsub["deliver_latency_us"];
        let (p50, max) = (number(&latency["p50_us"]), number(&latency["max_us"]));
        assert!(0.0 < p50 && p50 <= max, "{name}: {latency:#}");
        assert_eq!(
            pubsub["subscribers"].as_array().map(Vec::len),
            Some(subscribers as usize)
        );
    }
    paths.iter().filter_map(|p| p["path"].as_str()).collect()
}

fn comparisons(report: &Value) -> Vec<(&str, &str)> {
    report["comparisons"]
        .as_array()
        .expect("comparisons")
        .iter()
        .map(|c| {
            assert!(c["added_p50_us"].is_number(), "{c:#}");
            (c["path"].as_str().unwrap(), c["baseline"].as_str().unwrap())
        })
        .collect()
}

/// The `registry` target, small: every figure present and ordered, every
/// message delivered once, the filter selecting what the fleet holds.
fn registry_bench(slots: &str) {
    let report = run_bench(&[
        "registry",
        "--slots",
        slots,
        "--identities",
        "400",
        "--targets",
        "40",
        "--enumerates",
        "30",
        "--multicasts",
        "10",
    ]);
    let figures = &report["report"];
    assert_eq!(figures["identities"], 400, "{report:#}");
    assert!(number(&figures["register_per_sec"]) > 0.0, "{report:#}");
    assert!(number(&figures["enumerate_matches"]) > 0.0, "{report:#}");
    for name in [
        "enumerate",
        "baseline_get",
        "multicast_call",
        "multicast_last",
        "solo_call",
        "solo_last",
    ] {
        let l = &figures[name];
        let (p50, p99, max) = (
            number(&l["p50_ms"]),
            number(&l["p99_ms"]),
            number(&l["max_ms"]),
        );
        assert!(
            0.0 < p50 && p50 <= p99 && p99 <= max,
            "{name}: quantiles out of order: {l:#}"
        );
    }
    assert_eq!(number(&figures["delivered_pct"]), 100.0, "{report:#}");
    assert_eq!(figures["duplicates"], 0, "{report:#}");
    assert_eq!(report["verdicts"]["all_delivered"], true, "{report:#}");
}

#[test]
fn prism_bench_measures_the_registry_in_process() {
    registry_bench("memstore");
}

#[test]
fn prism_bench_measures_the_registry_on_redis_and_jetstream() {
    registry_bench("redis-jetstream");
}
