//! A real OTLP/gRPC trace receiver, built from `opentelemetry-proto`'s
//! `TraceService` server on a free port. It counts every span it is sent
//! and, unless started to count only (for load, where keeping them would
//! cost memory), keeps each one flattened with its resource's
//! `service.name`.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::span::SpanKind,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tonic::transport::server::TcpIncoming;

use crate::HarnessError;

/// One received span, flattened.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub service: String,
    pub resource: HashMap<String, String>,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub kind: SpanKind,
    pub attributes: HashMap<String, String>,
    /// 0 unset, 1 ok, 2 error.
    pub status_code: i32,
}

impl ReceivedSpan {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

#[derive(Clone, Default)]
struct Store {
    keep: bool,
    count: Arc<AtomicU64>,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

#[tonic::async_trait]
impl TraceService for Store {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let request = request.into_inner();
        let count: usize = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.count.fetch_add(count as u64, Ordering::Relaxed);
        if self.keep {
            let received = flatten_request(request);
            if let Ok(mut spans) = self.spans.lock() {
                spans.extend(received);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn flatten_request(request: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource: HashMap<String, String> = resource_spans
            .resource
            .map(|r| flatten(r.attributes))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                out.push(ReceivedSpan {
                    service: service.clone(),
                    resource: resource.clone(),
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
                    name: span.name,
                    attributes: flatten(span.attributes),
                    status_code: span.status.map(|s| s.code).unwrap_or_default(),
                });
            }
        }
    }
    out
}

fn flatten(attributes: Vec<KeyValue>) -> HashMap<String, String> {
    attributes
        .into_iter()
        .map(|kv| (kv.key, kv.value.map(text).unwrap_or_default()))
        .collect()
}

fn text(value: AnyValue) -> String {
    match value.value {
        Some(Value::StringValue(s)) => s,
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

pub struct OtlpReceiver {
    pub addr: SocketAddr,
    store: Store,
    task: JoinHandle<()>,
}

impl OtlpReceiver {
    /// A receiver that keeps every span.
    pub async fn start() -> Result<Self, HarnessError> {
        Self::serve(true).await
    }

    /// A receiver that only counts spans.
    pub async fn counting() -> Result<Self, HarnessError> {
        Self::serve(false).await
    }

    async fn serve(keep: bool) -> Result<Self, HarnessError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::io("binding the OTLP receiver", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| HarnessError::io("reading the OTLP receiver's address", e))?;
        let store = Store {
            keep,
            ..Store::default()
        };
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(store.clone()))
            .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)));
        let task = tokio::spawn(async move {
            let _ = server.await;
        });
        Ok(Self { addr, store, task })
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many spans arrived.
    pub fn span_count(&self) -> u64 {
        self.store.count.load(Ordering::Relaxed)
    }

    /// The spans kept so far (none when only counting).
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.store
            .spans
            .lock()
            .map(|spans| spans.clone())
            .unwrap_or_default()
    }

    /// The kept spans of `trace_id`.
    pub fn trace(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
