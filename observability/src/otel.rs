//! The OpenTelemetry tracer provider: resource, sampler, and an OTLP/gRPC
//! batch exporter (spans leave through a queue on their own thread, never on
//! the request path, and the exporter's gRPC connection runs on a runtime of
//! its own, so export never takes turns with calls on the threads serving
//! them). A collector that cannot be reached is reported once in
//! the log, and again once it is back.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{self, SdkTracerProvider, SpanData, SpanExporter},
};
use rand::Rng;

use crate::{
    Sampler, Settings,
    sampling::{self, Sampling},
};

/// Builds the provider and sets up the process's [`Sampling`]. Without an
/// endpoint no call is sampled: trace ids still exist, spans are not built.
pub fn provider(settings: &Settings) -> SdkTracerProvider {
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(sampler(settings.sampler))
        .with_id_generator(sampling::Ids::default())
        .with_resource(resource(settings));
    let mut exporting = false;
    if let Some(endpoint) = &settings.otlp_endpoint {
        // The exporter's channel spawns its tasks on the runtime it is built in.
        let runtime = export_runtime();
        let _context = runtime.as_ref().map(tokio::runtime::Handle::enter);
        match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
        {
            Ok(exporter) => {
                exporting = true;
                builder = builder.with_batch_exporter(ReportOnce::new(
                    exporter,
                    endpoint.clone(),
                    settings.service_name.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!(%endpoint, error = %e, "cannot set up trace export; spans are not exported")
            }
        }
    }
    Sampling::new(settings.sampler, exporting).install();
    builder.build()
}

/// A single-threaded runtime on a thread of its own, for the exporter's gRPC
/// connection; `None` (use the caller's runtime) if it cannot be started.
fn export_runtime() -> Option<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("prism-otlp-export".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .ok()?;
    Some(handle)
}

/// Flushes and shuts the provider down without stalling the async runtime.
pub fn shutdown(provider: SdkTracerProvider) {
    let run = move || {
        let _ = provider.force_flush();
        let _ = provider.shutdown();
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(run)
        }
        _ => run(),
    }
}

fn sampler(sampler: Sampler) -> trace::Sampler {
    use trace::Sampler as S;
    match sampler {
        Sampler::AlwaysOn => S::AlwaysOn,
        Sampler::AlwaysOff => S::AlwaysOff,
        Sampler::TraceIdRatio(r) => S::TraceIdRatioBased(r),
        Sampler::ParentBasedAlwaysOn => S::ParentBased(Box::new(S::AlwaysOn)),
        Sampler::ParentBasedAlwaysOff => S::ParentBased(Box::new(S::AlwaysOff)),
        Sampler::ParentBasedTraceIdRatio(r) => S::ParentBased(Box::new(S::TraceIdRatioBased(r))),
    }
}

/// `service.*` and `deployment.environment`, plus `OTEL_RESOURCE_ATTRIBUTES`.
pub fn resource(settings: &Settings) -> Resource {
    let instance: u128 = rand::rng().random();
    let environment = settings
        .resource
        .get("deployment.environment")
        .cloned()
        .unwrap_or_else(|| "development".to_string());
    let mut attributes = vec![
        KeyValue::new("service.namespace", "prism"),
        KeyValue::new("service.version", settings.service_version.clone()),
        KeyValue::new("service.instance.id", format!("{instance:032x}")),
        KeyValue::new("deployment.environment", environment),
    ];
    for (k, v) in &settings.resource {
        if !matches!(k.as_str(), "service.name" | "deployment.environment") {
            attributes.push(KeyValue::new(k.clone(), v.clone()));
        }
    }
    Resource::builder_empty()
        .with_service_name(settings.service_name.clone())
        .with_attributes(attributes)
        .build()
}

/// Wraps an exporter so a failing collector costs one log line, not one per batch.
#[derive(Debug)]
struct ReportOnce<E> {
    inner: E,
    endpoint: String,
    service: String,
    failing: Arc<AtomicBool>,
}

impl<E> ReportOnce<E> {
    fn new(inner: E, endpoint: String, service: String) -> Self {
        Self {
            inner,
            endpoint,
            service,
            failing: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl<E: SpanExporter> SpanExporter for ReportOnce<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        match &result {
            Err(e) if !self.failing.swap(true, Ordering::Relaxed) => tracing::warn!(
                service = %self.service,
                endpoint = %self.endpoint,
                error = %e,
                spans,
                "trace export failed; spans are dropped until the collector is back (reported once)"
            ),
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!(service = %self.service, endpoint = %self.endpoint, "trace export recovered")
            }
            _ => {}
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn resource_has_the_service_attributes() {
        let settings = Settings::from_map(
            "prism-proxy",
            &HashMap::from([(
                "OTEL_RESOURCE_ATTRIBUTES".to_string(),
                "deployment.environment=ci,team=data".to_string(),
            )]),
        );
        let resource = resource(&settings);
        let get = |k: &str| {
            resource
                .get(&opentelemetry::Key::from(k.to_string()))
                .map(|v| v.to_string())
        };
        assert_eq!(get("service.name").as_deref(), Some("prism-proxy"));
        assert_eq!(get("service.namespace").as_deref(), Some("prism"));
        assert_eq!(get("deployment.environment").as_deref(), Some("ci"));
        assert_eq!(get("team").as_deref(), Some("data"));
        assert_eq!(get("service.instance.id").map(|v| v.len()), Some(32));
        assert!(get("service.version").is_some());
    }
}
