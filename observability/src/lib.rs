//! Observability shared by the proxy and every pattern: logs, OpenTelemetry
//! traces exported over OTLP/gRPC, W3C trace context over gRPC metadata, and
//! latency histograms.
//!
//! The surface is deliberately tiny: [`Settings::from_env`] reads the
//! standard `OTEL_*` variables once, [`init`] installs logging and tracing
//! and returns a [`Guard`] that flushes on drop. Settings are a plain value so
//! tests build them without touching the real environment.
//!
//! Modules: [`settings`] (the environment, parsed), [`otel`] (tracer
//! provider, exporter that reports a dead collector once), [`propagation`]
//! (`traceparent` in gRPC metadata), [`grpc`] (the server layer that opens
//! one SERVER span per call and returns `x-prism-trace-id`, and client spans),
//! [`sampling`] (whether a call is traced, decided before any span is
//! built), [`latency`] (HDR histograms, trace exemplars, Prometheus and OpenMetrics
//! text), [`outcome`] (which gRPC codes are errors), [`redact`] (no
//! credential reaches a log line, whoever logs it), [`tags`] (a pattern's
//! lines name its namespace and pid), [`fatal`] (a process's last line, in
//! the same format).
//!
//! Span and attribute scheme: SERVER spans are named after the RPC
//! (`prism.keyvalue.v1.KeyValue/Get`), CLIENT spans likewise, backend spans
//! `<backend> <OPERATION>` (`memstore GET`, `redis GET`); attributes follow
//! the OpenTelemetry semantic conventions (`rpc.*`, `db.*`, `messaging.*`)
//! plus `prism.namespace`, `prism.pattern`, `prism.request_id`. Never keys,
//! values, payloads or tokens.

pub mod fatal;
pub mod grpc;
pub mod latency;
pub mod otel;
pub mod outcome;
pub mod propagation;
pub mod redact;
pub mod sampling;
pub mod settings;
pub mod tags;

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};

pub use fatal::fatal;
pub use settings::{LogFormat, Sampler, Settings};

/// Keeps observability alive; dropping it flushes buffered spans.
#[must_use = "dropping the guard flushes and shuts observability down"]
pub struct Guard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            otel::shutdown(provider);
        }
    }
}

/// Installs the global subscriber: logs to stderr (filtered by `RUST_LOG`,
/// credentials redacted, see [`redact`]) and, independently of the log level, Prism's spans to OpenTelemetry.
/// Trace export runs on a thread and runtime of its own. Calling it
/// twice keeps the first subscriber.
pub fn init(settings: &Settings) -> Guard {
    let provider = otel::provider(settings);
    let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "prism");
    let otel_layer = sampling::sampled_only(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false),
    );
    let log_filter = || {
        // The SDK's own diagnostics are replaced by one line from the exporter.
        let directives = format!(
            "{},opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off",
            settings.log_filter
        );
        EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"))
    };
    let writer = || {
        tags::TaggedStderr(
            settings
                .namespace
                .as_deref()
                .map(|ns| std::sync::Arc::new(tags::Tags::new(ns, std::process::id()))),
        )
    };
    let log_layer = match settings.log_format {
        LogFormat::Text => fmt::layer()
            .with_writer(writer())
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(true)
            .with_filter(log_filter())
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_writer(writer())
            .with_current_span(true)
            .with_span_list(true)
            .with_filter(log_filter())
            .boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(otel_layer)
        .with(log_layer)
        .try_init()
        .is_ok();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    tracing::debug!(service = %settings.service_name, export = ?settings.otlp_endpoint, "observability initialised");
    Guard {
        provider: installed.then_some(provider),
    }
}
