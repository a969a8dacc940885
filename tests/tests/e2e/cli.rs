//! What every binary does before it serves anything: exit 64 on bad flags
//! or a config it rejects, `--help` that describes the binary's own config,
//! and `prism-proxy --check`, which asks each namespace's pattern binary to
//! judge its config (`--check-config`) and names every problem and the file.

use std::{
    io::Write,
    path::Path,
    process::{Command, Output, Stdio},
};

use prism_tests::bins;

const PATTERNS: [&str; 4] = [
    "prism-memstore",
    "prism-redis",
    "prism-nats",
    "prism-multicast-registry",
];

fn run(name: &str, args: &[&str]) -> Output {
    Command::new(bins::bin(name))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn every_binary_exits_64_on_a_bad_flag() {
    for name in [
        "prism-proxy",
        "prism-console",
        "prism-bench",
        "prism-memstore",
        "prism-redis",
        "prism-nats",
        "prism-multicast-registry",
    ] {
        let output = run(name, &["--no-such-flag"]);
        assert_eq!(output.status.code(), Some(64), "{name}: {output:?}");
        assert!(
            stderr(&output).contains("--no-such-flag"),
            "{name}: {output:?}"
        );
    }
}

#[test]
fn every_binary_exits_64_on_a_config_it_rejects() {
    let output = run("prism-console", &["--admin", "http://[::1"]);
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    assert!(stderr(&output).contains("--admin"), "{output:?}");

    let output = run(
        "prism-memstore",
        &[
            "--autostart",
            "--grpc-port",
            "0",
            "--config",
            r#"{"max_keyz": 5}"#,
        ],
    );
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    assert!(stderr(&output).contains("max_keyz"), "{output:?}");

    for name in PATTERNS {
        let output = run(name, &["--config", "[1, 2]"]);
        assert_eq!(output.status.code(), Some(64), "{name}: {output:?}");
    }
}

/// With `PRISM_LOG_FORMAT=json` even a process's last line, the config it
/// refuses, is JSON: the proxy's and a pattern's alike.
#[test]
fn a_refused_config_is_reported_in_json_when_logs_are_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("prism.yaml");
    std::fs::write(&file, "worker_threads: 0\n").expect("config file");
    let proxy = Command::new(bins::bin("prism-proxy"))
        .arg("--config")
        .arg(&file)
        .env("PRISM_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .output()
        .expect("prism-proxy");
    let memstore = Command::new(bins::bin("prism-memstore"))
        .args([
            "--autostart",
            "--grpc-port",
            "0",
            "--config",
            r#"{"max_keyz": 5}"#,
        ])
        .env("PRISM_LOG_FORMAT", "json")
        .env("PRISM_NAMESPACE", "orders")
        .stdin(Stdio::null())
        .output()
        .expect("prism-memstore");
    for (output, needle) in [(proxy, "worker_threads"), (memstore, "max_keyz")] {
        assert_eq!(output.status.code(), Some(64), "{output:?}");
        let text = stderr(&output);
        let lines: Vec<&str> = text.lines().collect();
        assert!(!lines.is_empty(), "{output:?}");
        for line in &lines {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(value.is_object(), "{line}");
        }
        let last: serde_json::Value = serde_json::from_str(lines[lines.len() - 1]).unwrap();
        assert_eq!(last["level"], "ERROR", "{text}");
        let message = last["fields"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{text}");
    }
}

/// Each pattern's `--help` describes its own config with its own example.
#[test]
fn each_pattern_help_describes_its_own_config() {
    let help = |name: &str| {
        let output = run(name, &["--help"]);
        assert!(output.status.success(), "{name}: {output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let nats = help("prism-nats");
    assert!(
        nats.contains("nats://127.0.0.1:4222") && nats.contains("jetstream"),
        "{nats}"
    );
    assert!(!nats.contains("redis://"), "{nats}");
    let redis = help("prism-redis");
    assert!(
        redis.contains("redis://127.0.0.1:6379") && redis.contains("pool_size"),
        "{redis}"
    );
    assert!(!redis.contains("nats://"), "{redis}");
    let memstore = help("prism-memstore");
    assert!(
        memstore.contains("max_keys") && !memstore.contains("redis://"),
        "{memstore}"
    );
    let registry = help("prism-multicast-registry");
    assert!(
        registry.contains("messaging") && registry.contains("fanout_concurrency"),
        "{registry}"
    );
    for name in PATTERNS {
        assert!(help(name).contains("--check-config"), "{name}");
    }
}

/// `--check-config` reads the config on stdin and judges it as Initialize
/// would, reaching no backend (nothing listens on the addresses given).
#[test]
fn check_config_judges_a_config_without_reaching_the_backend() {
    let check = |name: &str, json: &str| {
        let mut child = Command::new(bins::bin(name))
            .arg("--check-config")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(json.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let ok = check("prism-redis", r#"{"address": "redis://127.0.0.1:1"}"#);
    assert!(ok.status.success(), "{ok:?}");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("config OK"));
    let ok = check(
        "prism-nats",
        r#"{"url": "nats://127.0.0.1:1", "jetstream": true}"#,
    );
    assert!(ok.status.success(), "{ok:?}");

    let cases = [
        ("prism-memstore", r#"{"max_keyz": 5}"#, "max_keyz"),
        ("prism-memstore", r#"{"max_keys": 0}"#, "max_keys"),
        (
            "prism-redis",
            r#"{"address": "http://nope"}"#,
            "http://nope",
        ),
        ("prism-nats", r#"{"url": 7}"#, "url"),
        (
            "prism-multicast-registry",
            r#"{"messaging": {"backend": "kafka"}}"#,
            "kafka",
        ),
        ("prism-memstore", "not json", "stdin is not JSON"),
    ];
    for (name, json, named) in cases {
        let output = check(name, json);
        assert_eq!(output.status.code(), Some(64), "{name} {json}: {output:?}");
        let said = stderr(&output);
        assert!(said.contains(named), "{name} {json}: {said}");
        assert!(said.starts_with(name), "{name} names itself: {said}");
    }
}

/// Writes `yaml` as `prism.yaml` in `dir` and runs `prism-proxy --check` on it.
fn check_proxy(dir: &Path, yaml: &str) -> Output {
    let path = dir.join("prism.yaml");
    std::fs::write(&path, yaml).unwrap();
    Command::new(bins::bin("prism-proxy"))
        .arg("--config")
        .arg(&path)
        .arg("--check")
        .output()
        .unwrap()
}

#[test]
fn check_fails_for_configs_the_patterns_would_reject_naming_each() {
    let dir = tempfile::tempdir().unwrap();
    // A patterns folder with every binary but the registry's.
    let patterns = dir.path().join("bin");
    std::fs::create_dir(&patterns).unwrap();
    for name in ["prism-memstore", "prism-redis"] {
        std::os::unix::fs::symlink(bins::bin(name), patterns.join(name)).unwrap();
    }
    let yaml = format!(
        "patterns_dir: {}
namespaces:
  - name: kv
    pattern: keyvalue
    config: {{max_keyz: 5}}
  - name: cache
    pattern: keyvalue
    backend: redis
    config: {{address: 'http://nope'}}
  - name: devices
    pattern: multicast-registry
  - name: fine
    pattern: keyvalue
",
        patterns.display()
    );
    let output = check_proxy(dir.path(), &yaml);
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(64), "{said}");
    assert!(output.stdout.is_empty(), "no `config OK`: {output:?}");
    assert!(
        said.contains("namespace `kv`") && said.contains("max_keyz"),
        "{said}"
    );
    assert!(
        said.contains("namespace `cache`") && said.contains("http://nope"),
        "{said}"
    );
    assert!(
        said.contains("namespace `devices`: pattern binary not found")
            && said.contains("prism-multicast-registry"),
        "{said}"
    );
    assert!(!said.contains("namespace `fine`"), "{said}");

    // The same namespaces, fixed, pass.
    std::os::unix::fs::symlink(
        bins::bin("prism-multicast-registry"),
        patterns.join("prism-multicast-registry"),
    )
    .unwrap();
    let fixed = yaml
        .replace("max_keyz", "max_keys")
        .replace("http://nope", "redis://127.0.0.1:1");
    let output = check_proxy(dir.path(), &fixed);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("config OK: 4 namespace(s)"), "{stdout}");
}

#[test]
fn a_parse_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = check_proxy(dir.path(), "namespaces: [\n  - {name: kv\n");
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(64), "{said}");
    let path = dir.path().join("prism.yaml");
    assert!(said.contains(&path.display().to_string()), "{said}");
    assert!(!said.contains("<input>"), "{said}");
}
