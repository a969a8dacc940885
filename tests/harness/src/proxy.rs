//! A real `prism-proxy` on free ports: its config (text written to its
//! private folder, or a file given by path), its environment, the addresses
//! it announces on stdout, its PID and log. Stopped by PID on drop
//! (SIGTERM first, so it stops its patterns too).

use std::{
    ffi::OsString,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitStatus,
    time::Duration,
};

use crate::{
    HarnessError,
    child::{ChildProcess, Spawn},
};

/// How long a proxy may take to announce its addresses.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Trace export is decided by whoever starts a process, never inherited
/// from the developer's shell.
pub(crate) const EXPORT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

/// Where the proxy's config comes from.
#[derive(Debug, Clone)]
pub enum ProxyConfig {
    /// No `--config`: `default` on MemStore.
    None,
    /// YAML written to `prism.yaml` in the proxy's folder.
    Text(String),
    /// An existing file.
    Path(PathBuf),
}

pub struct ProxyProcess {
    /// Declared before `dir`: the process stops before its folder goes.
    pub process: ChildProcess,
    pub data_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub config_path: Option<PathBuf>,
    /// Private folder: `proxy.log`, and `prism.yaml` when given as text.
    pub dir: tempfile::TempDir,
}

impl ProxyProcess {
    /// Starts `binary` with `config` and `env` (`RUST_LOG=info` unless
    /// `env` sets it) on free ports and waits until it listens (not until
    /// its patterns run).
    pub async fn start(
        binary: &Path,
        config: ProxyConfig,
        env: &[(String, String)],
    ) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("prism-proxy-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary folder", e))?;
        let mut args: Vec<OsString> = [
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ]
        .map(OsString::from)
        .to_vec();
        let config_path = match config {
            ProxyConfig::None => None,
            ProxyConfig::Text(yaml) => {
                let path = dir.path().join("prism.yaml");
                std::fs::write(&path, yaml)
                    .map_err(|e| HarnessError::io("writing the proxy's config", e))?;
                Some(path)
            }
            ProxyConfig::Path(path) => Some(path),
        };
        if let Some(path) = &config_path {
            args.push("--config".into());
            args.push(path.into());
        }
        let mut all_env = vec![("RUST_LOG".to_string(), "info".to_string())];
        all_env.extend(env.iter().cloned());
        let spawn = Spawn {
            binary: binary.to_path_buf(),
            args,
            env: all_env,
            env_remove: EXPORT_VARS.map(String::from).to_vec(),
        };
        let mut process = ChildProcess::spawn(&spawn, dir.path().join("proxy.log"))?;
        // The metrics line comes first, then the listening line.
        let metrics_addr = process.wait_for_line(START_TIMEOUT, parse_metrics).await?;
        let (data_addr, admin_addr) = process
            .wait_for_line(START_TIMEOUT, parse_listening)
            .await?;
        Ok(Self {
            process,
            data_addr,
            admin_addr,
            metrics_addr,
            config_path,
            dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The config file, when the proxy was given one.
    pub fn config_path(&self) -> Option<&Path> {
        self.config_path.as_deref()
    }

    pub fn signal(&self, signal: i32) -> Result<(), HarnessError> {
        self.process.signal(signal)
    }

    /// The exit status once the proxy has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, HarnessError> {
        self.process.try_wait()
    }
}

/// `prism-proxy metrics on http://ADDR/metrics` (or `https://` under TLS) → ADDR.
pub fn parse_metrics(line: &str) -> Option<SocketAddr> {
    let url = line.strip_prefix("prism-proxy metrics on ")?;
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?
        .strip_suffix("/metrics")?
        .parse()
        .ok()
}

/// `prism-proxy listening on DATA (admin ADMIN)` → (DATA, ADMIN).
pub fn parse_listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = line.strip_prefix("prism-proxy listening on ")?;
    let (data, admin) = rest.split_once(" (admin ")?;
    Some((
        data.trim().parse().ok()?,
        admin.trim().trim_end_matches(')').parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_announced_addresses() {
        let (data, admin) =
            parse_listening("prism-proxy listening on 127.0.0.1:1 (admin 127.0.0.1:2)").unwrap();
        assert_eq!((data.port(), admin.port()), (1, 2));
        assert!(parse_listening("something else").is_none());
        assert_eq!(
            parse_metrics("prism-proxy metrics on http://127.0.0.1:3/metrics")
                .unwrap()
                .port(),
            3
        );
        assert_eq!(
            parse_metrics("prism-proxy metrics on https://127.0.0.1:4/metrics")
                .unwrap()
                .port(),
            4,
            "under TLS"
        );
        assert!(parse_metrics("prism-proxy metrics on http://nowhere").is_none());
    }
}
