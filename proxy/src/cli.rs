//! Command-line flags; they override the config file.

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;

use crate::config::{Config, ConfigError};

#[derive(Debug, Clone, Parser)]
#[command(name = "prism-proxy", version, about = "Prism data-access gateway")]
pub struct Args {
    /// YAML config file; without it the proxy serves `default` on MemStore.
    #[arg(long)]
    pub config: Option<PathBuf>,

    /// Data-plane gRPC address (default 127.0.0.1:8980).
    #[arg(long)]
    pub listen: Option<SocketAddr>,

    /// Admin gRPC address for prism-console (default 127.0.0.1:8981).
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,

    /// Check the config (file and flags) and exit: 0 when valid, 64 when not.
    /// Each namespace's pattern binary must exist and accept its `config`.
    #[arg(long)]
    pub check: bool,

    /// Prometheus `/metrics` address (default 127.0.0.1:9090), or `off`.
    #[arg(long, value_parser = parse_metrics_listen)]
    pub metrics_listen: Option<MetricsListen>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsListen {
    Off,
    On(SocketAddr),
}

fn parse_metrics_listen(s: &str) -> Result<MetricsListen, String> {
    if s == "off" {
        return Ok(MetricsListen::Off);
    }
    s.parse()
        .map(MetricsListen::On)
        .map_err(|_| format!("`{s}` is neither IP:PORT nor `off`"))
}

impl Args {
    /// The config file (or the defaults) with the flags applied on top.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(admin) = self.admin_listen {
            config.admin_listen = admin;
        }
        match self.metrics_listen {
            Some(MetricsListen::Off) => config.metrics_listen = None,
            Some(MetricsListen::On(addr)) => config.metrics_listen = Some(addr),
            None => {}
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_defaults() {
        let args = Args::parse_from([
            "prism-proxy",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:1",
        ]);
        let config = args.load_config().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:0");
        assert_eq!(config.admin_listen.to_string(), "127.0.0.1:1");
        assert_eq!(config.namespaces[0].name, "default");
        let off = Args::parse_from(["prism-proxy", "--metrics-listen", "off"]);
        assert_eq!(off.load_config().unwrap().metrics_listen, None);
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let args = Args::parse_from(["prism-proxy", "--config", "/nonexistent/prism.yaml"]);
        let err = args.load_config().unwrap_err();
        assert!(err.to_string().contains("/nonexistent/prism.yaml"), "{err}");
    }
}
