//! `prism-proxy --check` beyond the config file itself: every namespace's
//! pattern binary must exist and accept the namespace's `config` block.
//! Each binary judges its own config with `--check-config` (the decoder and
//! rules its Initialize uses, no backend reached), so a config `--check`
//! passes is one the patterns will take.

use std::{
    io::{Read, Write},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::config::{Config, NamespaceConfig};

/// How long one pattern may take to judge its config; it only decodes JSON.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// What is wrong with each namespace's pattern, one line per namespace
/// (empty when all are fine). Binaries resolve as the running proxy would.
pub fn check_patterns(config: &Config) -> Vec<String> {
    let dir = config
        .patterns_dir
        .clone()
        .unwrap_or_else(crate::state::default_patterns_dir);
    config
        .namespaces
        .iter()
        .filter_map(|ns| {
            check_namespace(ns, &ns.binary_path(&dir))
                .err()
                .map(|reason| format!("namespace `{}`: {reason}", ns.name))
        })
        .collect()
}

fn check_namespace(ns: &NamespaceConfig, binary: &Path) -> Result<(), String> {
    if !binary.is_file() {
        return Err(format!("pattern binary not found: {}", binary.display()));
    }
    let spawn_error = |e: std::io::Error| format!("cannot run {}: {e}", binary.display());
    let mut child = Command::new(binary)
        .arg("--check-config")
        // The verdict is read as text, whatever format the proxy logs in.
        .env_remove("PRISM_LOG_FORMAT")
        .env_remove("PRISM_NAMESPACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    let json = serde_json::to_vec(&ns.config).expect("a JSON value serializes");
    if let Some(mut stdin) = child.stdin.take() {
        // A binary that exits without reading its stdin says why on stderr.
        let _ = stdin.write_all(&json);
    }
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + CHECK_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(spawn_error)? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} --check-config gave no answer within {}s",
                    binary.display(),
                    CHECK_TIMEOUT.as_secs()
                ));
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let stderr = reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let said = stderr.trim();
    Err(if said.is_empty() {
        format!("{} --check-config failed ({status})", binary.display())
    } else {
        said.to_string()
    })
}
