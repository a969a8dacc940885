//! The real `prismctl` against a real proxy: every subcommand in human and
//! `--json` form, and the exit codes a script relies on (a bad flag, an
//! unreachable admin port, a refused token or role). `namespaces`: the
//! namespaces managed through the admin API.

use std::{
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    process::{Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

use prism_proto::{admin::v1::RestartPatternRequest, keyvalue::v1::SetRequest};
use prism_tests::{Proxy, bins::bin, procs::output_within};
use serde_json::{Value, json};

use crate::auth::Setup;

mod namespaces;

pub(crate) const TIMEOUT: Duration = Duration::from_secs(90);

/// `prismctl --admin ADMIN ARGS…`, with `stdin` fed in and `env` set.
pub(crate) fn prismctl_with(
    admin: SocketAddr,
    args: &[&str],
    stdin: &str,
    env: &[(&str, &str)],
) -> Output {
    let mut command = Command::new(bin("prismctl"));
    command
        .args(["--admin", &admin.to_string()])
        .args(args)
        .env_remove("PRISM_TOKEN")
        // No login cache of the machine's user.
        .env("HOME", std::env::temp_dir().join("prismctl-no-home"))
        .envs(env.iter().copied());
    if stdin.is_empty() {
        return output_within(&mut command, TIMEOUT, "prismctl");
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn prismctl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("prismctl output")
}

pub(crate) fn prismctl(admin: SocketAddr, args: &[&str]) -> Output {
    prismctl_with(admin, args, "", &[])
}

/// stdout of a run that must succeed.
pub(crate) fn ok(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// stdout of a `--json` run, parsed.
pub(crate) fn json_of(output: &Output) -> Value {
    serde_json::from_str(&ok(output)).expect("prismctl --json prints JSON")
}

/// The exit code and stderr of a run that must fail.
pub(crate) fn failed(output: &Output) -> (i32, String) {
    let code = output.status.code().expect("exited");
    assert_ne!(code, 0, "{}", String::from_utf8_lossy(&output.stdout));
    (code, String::from_utf8_lossy(&output.stderr).into_owned())
}

pub(crate) const CONFIG: &str = "\
# The bench's proxy. Keep this comment.
namespaces:
  # the default store
  - name: default
    pattern: keyvalue
    backend: memstore

# watched: edits apply by themselves
watch_config: true
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_and_action_in_human_and_json_form() {
    let proxy = Proxy::start_with_config(CONFIG).await;
    let before = proxy.wait_healthy("default").await;
    let mut kv = proxy.kv("default").await;
    kv.set(SetRequest {
        key: "k".into(),
        value: b"v".to_vec(),
        ttl_seconds: 0,
    })
    .await
    .unwrap();
    let admin = proxy.admin_addr;

    let status = ok(&prismctl(admin, &["status"]));
    let row = status
        .lines()
        .find(|l| l.starts_with("default "))
        .unwrap_or_else(|| panic!("a default row:\n{status}"));
    assert!(
        row.contains("RUNNING") && row.contains("HEALTHY"),
        "{status}"
    );
    assert!(row.contains(&before.pid.to_string()), "{status}");
    let status = json_of(&prismctl(admin, &["status", "--json"]));
    assert_eq!(status["patterns"][0]["namespace"], "default");
    assert_eq!(status["patterns"][0]["state"], "RUNNING");
    assert_eq!(
        status["proxy"]["configPath"],
        proxy.config_path().display().to_string()
    );

    let who = ok(&prismctl(admin, &["whoami"]));
    assert_eq!(who, "auth is off: every caller is ADMIN\n");
    let who = json_of(&prismctl(admin, &["--json", "whoami"]));
    assert_eq!(who, json!({"role": "ADMIN_ROLE_ADMIN"}));

    let latency = ok(&prismctl(admin, &["latency", "default"]));
    assert!(
        latency.starts_with("default / all operations: 1 calls"),
        "{latency}"
    );
    assert!(latency.contains("operations: Set"), "{latency}");
    let latency = json_of(&prismctl(admin, &["latency", "default", "Set", "--json"]));
    assert_eq!(latency["operation"], "Set");
    assert_eq!(latency["count"], "1", "64-bit integers are strings");

    let restart = ok(&prismctl(admin, &["restart", "default"]));
    assert!(
        restart.starts_with(&format!("restarted `default`: pid {} →", before.pid)),
        "{restart}"
    );
    let restart = json_of(&prismctl(admin, &["restart", "default", "--json"]));
    let restarted_pid = restart["pattern"]["pid"].as_u64().expect("the new pid");
    assert!(
        restart["message"]
            .as_str()
            .unwrap()
            .contains(&format!("→ {restarted_pid}"))
    );
    let reload = ok(&prismctl(admin, &["reload", "default"]));
    assert!(
        reload.starts_with(&format!("hot-reloaded `default`: pid {restarted_pid} →")),
        "{reload}"
    );
    let reload = json_of(&prismctl(admin, &["reload", "default", "--json"]));
    let new_pid = reload["newPid"].as_u64().expect("newPid");
    assert_eq!(proxy.pattern("default").await.pid as u64, new_pid);
    assert!(reload["message"].as_str().unwrap().contains("hot-reloaded"));

    let events = ok(&prismctl(admin, &["events"]));
    assert!(events.contains("ADMIN_ACTION"), "{events}");
    assert!(
        events.contains("anonymous (auth off) restart: ok"),
        "{events}"
    );
    let events = json_of(&prismctl(admin, &["events", "--json", "--limit", "2"]));
    assert_eq!(events["events"].as_array().unwrap().len(), 2, "{events}");

    let reload = ok(&prismctl(admin, &["config", "reload"]));
    assert_eq!(reload, "0 added, 0 removed, 0 changed\n");
    let reload = json_of(&prismctl(admin, &["config", "reload", "--json"]));
    assert_eq!(reload["message"], "0 added, 0 removed, 0 changed");

    let (code, stderr) = failed(&prismctl(admin, &["restart", "nope"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("NotFound") && stderr.contains("nope"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_prints_what_happens_next() {
    let proxy = Proxy::start_with_config(CONFIG).await;
    proxy.wait_healthy("default").await;
    let mut child = Command::new(bin("prismctl"))
        .args(["--admin", &proxy.admin_addr.to_string()])
        .args(["events", "--follow", "--json"])
        .env_remove("PRISM_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The follow is on once the recent events are out.
    let mut seen = Vec::new();
    let mut next = |what: &str, check: &dyn Fn(&Value) -> bool| loop {
        let line = lines
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("no line for {what}; so far {seen:?}"));
        let event: Value = serde_json::from_str(&line).expect("one JSON event per line");
        seen.push(line);
        if check(&event) {
            return event;
        }
    };
    next("a past event", &|e| e["kind"] == "PATTERN_STARTED");
    proxy
        .admin()
        .await
        .restart_pattern(RestartPatternRequest {
            namespace: "default".into(),
        })
        .await
        .unwrap();
    let event = next("the restart's audit", &|e| e["kind"] == "ADMIN_ACTION");
    assert_eq!(event["namespace"], "default");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_for_usage_unreachable_and_refusals() {
    let nowhere: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let (code, stderr) = failed(&prismctl(nowhere, &["status", "--bogus"]));
    assert_eq!(code, 64, "{stderr}");
    let (code, _) = failed(&prismctl(nowhere, &["frobnicate"]));
    assert_eq!(code, 64);
    let help = ok(&prismctl(nowhere, &["--help"]));
    assert!(help.contains("Exit codes") && help.contains("77"), "{help}");

    // A port nothing listens on.
    let closed = prism_harness::procs::ClosedPort::new().unwrap();
    let (code, stderr) = failed(&prismctl(closed.addr(), &["status"]));
    assert_eq!(code, 69, "{stderr}");
    assert!(stderr.contains("cannot reach the admin port"), "{stderr}");

    let roles = "  admin:\n    viewer: [\"group:viewers\"]\n    admin: [\"group:admins\"]\n";
    let setup = Setup::start(
        roles,
        "namespaces:\n  - {name: default, pattern: keyvalue}\n",
    )
    .await;
    setup.proxy.wait_serving("default").await;
    let admin = setup.proxy.admin_addr;
    let viewer = setup.token("vera", json!({"groups": ["viewers"]}));
    let as_viewer = [("PRISM_TOKEN", viewer.as_str())];

    let (code, stderr) = failed(&prismctl_with(
        admin,
        &["status"],
        "",
        &[("PRISM_TOKEN", "junk")],
    ));
    assert_eq!(code, 77, "{stderr}");
    assert!(stderr.contains("Unauthenticated"), "{stderr}");
    let (code, stderr) = failed(&prismctl(admin, &["status"]));
    assert_eq!(code, 77, "no token: {stderr}");
    let status = ok(&prismctl_with(admin, &["status"], "", &as_viewer));
    assert!(status.contains("default"), "{status}");
    let who = ok(&prismctl_with(admin, &["whoami"], "", &as_viewer));
    assert!(
        who.starts_with("sub:vera role VIEWER, token expires 20"),
        "{who}"
    );
    let (code, stderr) = failed(&prismctl_with(
        admin,
        &["restart", "default"],
        "",
        &as_viewer,
    ));
    assert_eq!(code, 77, "{stderr}");
    assert!(stderr.contains("PermissionDenied"), "{stderr}");
    let (code, stderr) = failed(&prismctl_with(
        admin,
        &["namespace", "apply", "-"],
        "name: x\npattern: keyvalue\n",
        &as_viewer,
    ));
    assert_eq!(code, 77, "changing namespaces needs admin: {stderr}");
    let admin_token = setup.token("ada", json!({"groups": ["admins"]}));
    let applied = ok(&prismctl_with(
        admin,
        &["namespace", "apply", "-"],
        "name: x\npattern: keyvalue\n",
        &[("PRISM_TOKEN", admin_token.as_str())],
    ));
    assert!(applied.starts_with("namespace `x` created"), "{applied}");
    let events = ok(&prismctl_with(admin, &["events"], "", &as_viewer));
    assert!(
        events.contains("ADMIN_ACTION") && events.contains("sub:ada namespace apply: ok"),
        "{events}"
    );
}

/// What the console's log view and trace list show, for scripts: the
/// pattern's output (listed and followed) and the trace ids of recent calls,
/// the one the caller got among them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_traces_of_a_namespace() {
    let proxy = Proxy::start_with_config(CONFIG).await;
    let pattern = proxy.wait_healthy("default").await;
    let admin = proxy.admin_addr;
    let mut kv = proxy.kv("default").await;
    let reply = kv
        .set(SetRequest {
            key: "k".into(),
            value: b"v".to_vec(),
            ttl_seconds: 0,
        })
        .await
        .unwrap();
    let trace_id = prism_tests::otlp::trace_id_header(reply.metadata());

    let traces = ok(&prismctl(admin, &["traces", "default"]));
    assert!(traces.starts_with("KIND"), "{traces}");
    let row = traces
        .lines()
        .find(|l| l.contains(&trace_id))
        .unwrap_or_else(|| panic!("{trace_id} missing:\n{traces}"));
    assert!(row.starts_with("slowest") && row.contains("Set"), "{row}");
    let traces = json_of(&prismctl(admin, &["traces", "default", "Set", "--json"]));
    assert_eq!(
        traces["slowest"][0]["traceId"],
        trace_id.as_str(),
        "{traces}"
    );

    // The pattern logs its start at info level.
    let tag = format!("default  pid {}", pattern.pid);
    prism_tests::eventually(Duration::from_secs(20), "the pattern's lines", || {
        let tag = tag.clone();
        async move {
            let logs = ok(&prismctl(admin, &["logs", "default"]));
            logs.lines().any(|l| l.contains(&tag)).then_some(())
        }
    })
    .await;
    let logs = json_of(&prismctl(
        admin,
        &["logs", "default", "--tail", "1", "--json"],
    ));
    let lines = logs["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 1, "{logs}");
    assert_eq!(lines[0]["namespace"], "default");

    let mut child = Command::new(bin("prismctl"))
        .args(["--admin", &admin.to_string()])
        .args(["logs", "default", "--follow", "--tail", "1", "--json"])
        .env_remove("PRISM_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(TIMEOUT).expect("a followed line");
    let _ = child.kill();
    let _ = child.wait();
    let first: Value = serde_json::from_str(&first).expect("one JSON object per line");
    assert_eq!(first["namespace"], "default", "{first}");
    assert_eq!(first["pid"], pattern.pid, "{first}");
}
