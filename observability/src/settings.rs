//! Observability settings, read from the standard OpenTelemetry variables
//! (plus `PRISM_LOG_FORMAT` and `RUST_LOG`) by [`Settings::from_map`], a pure
//! function of the map it is given.

use std::collections::{BTreeMap, HashMap};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// `OTEL_TRACES_SAMPLER` (+ `OTEL_TRACES_SAMPLER_ARG` for ratios).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub service_name: String,
    pub service_version: String,
    /// OTLP/gRPC collector, e.g. `http://127.0.0.1:4317`. `None`: spans are
    /// created (trace ids still flow to callers) but not exported.
    pub otlp_endpoint: Option<String>,
    /// Extra resource attributes from `OTEL_RESOURCE_ATTRIBUTES`.
    pub resource: BTreeMap<String, String>,
    pub sampler: Sampler,
    pub log_format: LogFormat,
    /// An `EnvFilter` directive such as `info,prism_proxy=debug`.
    pub log_filter: String,
    /// The namespace a pattern process serves (`PRISM_NAMESPACE`, set by
    /// the proxy); its log lines then name it and the pid.
    pub namespace: Option<String>,
}

impl Settings {
    /// Reads the process environment; see [`Settings::from_map`].
    pub fn from_env(default_service_name: &str) -> Self {
        Self::from_map(default_service_name, &std::env::vars().collect())
    }

    /// `OTEL_SERVICE_NAME` (default: the given name), `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
    /// or `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_RESOURCE_ATTRIBUTES` (`k=v,k=v`),
    /// `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_SDK_DISABLED` / `OTEL_TRACES_EXPORTER=none`
    /// (no export), `PRISM_LOG_FORMAT` (`text` | `json`), `RUST_LOG`,
    /// `PRISM_NAMESPACE`.
    pub fn from_map(default_service_name: &str, env: &HashMap<String, String>) -> Self {
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let resource: BTreeMap<String, String> = get("OTEL_RESOURCE_ATTRIBUTES")
            .map(parse_resource_attributes)
            .unwrap_or_default();
        let service_name = get("OTEL_SERVICE_NAME")
            .map(str::to_string)
            .or_else(|| resource.get("service.name").cloned())
            .unwrap_or_else(|| default_service_name.to_string());
        let disabled = get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || get("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        let otlp_endpoint = if disabled {
            None
        } else {
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                .or_else(|| get("OTEL_EXPORTER_OTLP_ENDPOINT"))
                .map(str::to_string)
        };
        let ratio = get("OTEL_TRACES_SAMPLER_ARG")
            .and_then(|v| v.parse::<f64>().ok())
            .map(|r| r.clamp(0.0, 1.0))
            .unwrap_or(1.0);
        let sampler = match get("OTEL_TRACES_SAMPLER")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("always_on") => Sampler::AlwaysOn,
            Some("always_off") => Sampler::AlwaysOff,
            Some("traceidratio") => Sampler::TraceIdRatio(ratio),
            Some("parentbased_always_off") => Sampler::ParentBasedAlwaysOff,
            Some("parentbased_traceidratio") => Sampler::ParentBasedTraceIdRatio(ratio),
            _ => Sampler::ParentBasedAlwaysOn,
        };
        let log_format = match get("PRISM_LOG_FORMAT").map(str::to_ascii_lowercase) {
            Some(f) if f == "json" => LogFormat::Json,
            _ => LogFormat::Text,
        };
        Self {
            service_name,
            service_version: env!("CARGO_PKG_VERSION").to_string(),
            otlp_endpoint,
            resource,
            sampler,
            log_format,
            log_filter: get("RUST_LOG").unwrap_or("info").to_string(),
            namespace: get("PRISM_NAMESPACE").map(str::to_string),
        }
    }
}

fn parse_resource_attributes(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let (k, v) = (k.trim(), v.trim());
            (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
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
        assert_eq!(s.otlp_endpoint, None);
        assert_eq!(s.sampler, Sampler::ParentBasedAlwaysOn);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.log_filter, "info");
        assert_eq!(s.namespace, None);
    }

    #[test]
    fn reads_the_standard_variables() {
        let s = Settings::from_map(
            "prism-proxy",
            &env(&[
                ("OTEL_SERVICE_NAME", "edge"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                (
                    "OTEL_RESOURCE_ATTRIBUTES",
                    "deployment.environment=staging, team = data,broken",
                ),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
                ("PRISM_LOG_FORMAT", "JSON"),
                ("RUST_LOG", "debug"),
                ("PRISM_NAMESPACE", "orders"),
            ]),
        );
        assert_eq!(s.namespace.as_deref(), Some("orders"));
        assert_eq!(s.service_name, "edge");
        assert_eq!(s.otlp_endpoint.as_deref(), Some("http://collector:4317"));
        assert_eq!(s.resource["deployment.environment"], "staging");
        assert_eq!(s.resource["team"], "data");
        assert_eq!(s.resource.len(), 2);
        assert_eq!(s.sampler, Sampler::ParentBasedTraceIdRatio(0.25));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.log_filter, "debug");
    }

    #[test]
    fn traces_endpoint_wins_and_none_disables() {
        let s = Settings::from_map(
            "p",
            &env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4317"),
            ]),
        );
        assert_eq!(s.otlp_endpoint.as_deref(), Some("http://b:4317"));
        let off = Settings::from_map(
            "p",
            &env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
                ("OTEL_TRACES_EXPORTER", "none"),
            ]),
        );
        assert_eq!(off.otlp_endpoint, None);
    }

    #[test]
    fn service_name_can_come_from_resource_attributes() {
        let s = Settings::from_map("p", &env(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=x")]));
        assert_eq!(s.service_name, "x");
    }

    #[test]
    fn samplers_and_ratio_bounds() {
        let s = |name: &str, arg: &str| {
            Settings::from_map(
                "p",
                &env(&[
                    ("OTEL_TRACES_SAMPLER", name),
                    ("OTEL_TRACES_SAMPLER_ARG", arg),
                ]),
            )
            .sampler
        };
        assert_eq!(s("always_off", ""), Sampler::AlwaysOff);
        assert_eq!(s("always_on", ""), Sampler::AlwaysOn);
        assert_eq!(s("traceidratio", "7"), Sampler::TraceIdRatio(1.0));
        assert_eq!(
            s("parentbased_always_off", ""),
            Sampler::ParentBasedAlwaysOff
        );
        assert_eq!(s("nonsense", ""), Sampler::ParentBasedAlwaysOn);
    }
}
