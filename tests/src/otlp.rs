//! A real OTLP/gRPC trace receiver for tests ([`prism_harness::otlp`]): it
//! keeps every span it is sent, flattened with its resource's
//! `service.name`.

use std::{net::SocketAddr, time::Duration};

pub use prism_harness::otlp::ReceivedSpan;

use crate::wait::eventually;

pub struct OtlpReceiver {
    pub addr: SocketAddr,
    inner: prism_harness::OtlpReceiver,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let inner = prism_harness::OtlpReceiver::start()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            addr: inner.addr,
            inner,
        }
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        self.inner.endpoint()
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.inner.spans()
    }

    /// Waits until `done` holds for the spans of `trace_id`; returns them.
    pub async fn wait_trace(
        &self,
        trace_id: &str,
        timeout: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        eventually(timeout, &format!("spans of trace {trace_id}"), || async {
            let spans = self.inner.trace(trace_id);
            done(&spans).then_some(spans)
        })
        .await
    }
}

/// The `x-prism-trace-id` a response carries (the exported trace's id).
pub fn trace_id_header(metadata: &tonic::metadata::MetadataMap) -> String {
    metadata
        .get("x-prism-trace-id")
        .expect("x-prism-trace-id on the response")
        .to_str()
        .expect("an ASCII trace id")
        .to_string()
}
