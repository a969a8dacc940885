//! Observability shared by the proxy and every pattern: one call sets up
//! logging, and later OpenTelemetry export, from the process environment.
//!
//! The surface is deliberately tiny: [`Settings::from_env`] reads the
//! environment once, [`init`] installs the global subscriber and returns a
//! [`Guard`] that flushes on drop. Settings are a plain value so tests can
//! build them without touching the real environment.

pub mod latency;

use std::{collections::HashMap, io::IsTerminal};

use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Everything [`init`] needs, read from the environment by [`Settings::from_env`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub service_name: String,
    pub log_format: LogFormat,
    /// An `EnvFilter` directive such as `info,prism_proxy=debug`.
    pub log_filter: String,
}

impl Settings {
    /// Reads `OTEL_SERVICE_NAME`, `PRISM_LOG_FORMAT` (`text` | `json`) and
    /// `RUST_LOG` from the process environment.
    pub fn from_env(default_service_name: &str) -> Self {
        Self::from_map(default_service_name, &std::env::vars().collect())
    }

    /// Same as [`Settings::from_env`], from an explicit map.
    pub fn from_map(default_service_name: &str, env: &HashMap<String, String>) -> Self {
        let service_name = env
            .get("OTEL_SERVICE_NAME")
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| default_service_name.to_string());
        let log_format = match env.get("PRISM_LOG_FORMAT").map(|s| s.to_ascii_lowercase()) {
            Some(f) if f == "json" => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let log_filter = env
            .get("RUST_LOG")
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| "info".to_string());
        Self {
            service_name,
            log_format,
            log_filter,
        }
    }
}

/// Keeps observability alive; dropping it flushes what is buffered.
#[must_use = "dropping the guard flushes and shuts observability down"]
pub struct Guard {
    _private: (),
}

/// Installs the global tracing subscriber. Calling it twice in one process
/// keeps the first subscriber (the second call is a no-op).
pub fn init(settings: &Settings) -> Guard {
    let filter =
        EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match settings.log_format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_target(true),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
    tracing::debug!(service = %settings.service_name, "observability initialised");
    Guard { _private: () }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_without_variables() {
        let s = Settings::from_map("prism-proxy", &env(&[]));
        assert_eq!(s.service_name, "prism-proxy");
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.log_filter, "info");
    }

    #[test]
    fn reads_service_name_and_json_format() {
        let s = Settings::from_map(
            "prism-proxy",
            &env(&[
                ("OTEL_SERVICE_NAME", "edge"),
                ("PRISM_LOG_FORMAT", "JSON"),
                ("RUST_LOG", "debug"),
            ]),
        );
        assert_eq!(s.service_name, "edge");
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.log_filter, "debug");
    }
}
