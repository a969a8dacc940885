//! The KeyValue gRPC service over the store: decode, check limits, apply,
//! encode.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use prism_pattern_sdk::Gate;
use prism_proto::keyvalue::v1::{
    DeleteRequest, DeleteResponse, ExistsRequest, ExistsResponse, GetRequest, GetResponse,
    ScanRequest, ScanResponse, SetRequest, SetResponse, key_value_server::KeyValue,
};
use tonic::{Request, Response, Status};

use crate::{
    pattern::MemStore,
    store::{Page, StoreError},
};

pub const DEFAULT_SCAN_LIMIT: usize = 100;
pub const MAX_SCAN_LIMIT: usize = 10_000;

pub struct KeyValueService {
    memstore: Arc<MemStore>,
    gate: Gate,
}

impl KeyValueService {
    pub fn new(memstore: Arc<MemStore>, gate: Gate) -> Self {
        Self { memstore, gate }
    }

    /// Refuses calls before `Start`, then applies any simulated latency.
    async fn admit(&self) -> Result<(), Status> {
        self.gate.check()?;
        if let Some(latency) = self.memstore.config().simulated_latency() {
            tokio::time::sleep(latency).await;
        }
        Ok(())
    }
}

/// The backend span of one store operation (an INTERNAL span: the store
/// lives in this process). Never carries keys or values.
fn backend_span(name: &'static str) -> tracing::Span {
    tracing::info_span!(
        target: "prism::memstore",
        "memstore",
        otel.name = name,
        otel.kind = "internal",
        prism.backend = "memstore",
    )
}

/// The one place MemStore's errors become gRPC statuses.
fn to_status(err: StoreError) -> Status {
    match err {
        StoreError::Full { .. } => Status::resource_exhausted(err.to_string()),
    }
}

#[tonic::async_trait]
impl KeyValue for KeyValueService {
    async fn set(&self, request: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
        self.admit().await?;
        let req = request.into_inner();
        self.memstore
            .config()
            .limits()
            .check_set(&req.key, &req.value, req.ttl_seconds)?;
        let ttl = (req.ttl_seconds > 0).then(|| Duration::from_secs(req.ttl_seconds as u64));
        let _span = backend_span("memstore SET").entered();
        self.memstore
            .with_store(|s| s.set(&req.key, req.value, ttl, Instant::now()))
            .map_err(to_status)?;
        Ok(Response::new(SetResponse {}))
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        self.admit().await?;
        let key = request.into_inner().key;
        self.memstore.config().limits().check_key(&key)?;
        let _span = backend_span("memstore GET").entered();
        self.memstore
            .with_store(|s| s.get(&key, Instant::now()).map(<[u8]>::to_vec))
            .map(|value| Response::new(GetResponse { value }))
            .ok_or_else(|| Status::not_found("key not found"))
    }

    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        self.admit().await?;
        let key = request.into_inner().key;
        self.memstore.config().limits().check_key(&key)?;
        let _span = backend_span("memstore DEL").entered();
        let deleted = self.memstore.with_store(|s| s.delete(&key, Instant::now()));
        Ok(Response::new(DeleteResponse { deleted }))
    }

    async fn exists(
        &self,
        request: Request<ExistsRequest>,
    ) -> Result<Response<ExistsResponse>, Status> {
        self.admit().await?;
        let key = request.into_inner().key;
        self.memstore.config().limits().check_key(&key)?;
        let _span = backend_span("memstore EXISTS").entered();
        let exists = self.memstore.with_store(|s| s.exists(&key, Instant::now()));
        Ok(Response::new(ExistsResponse { exists }))
    }

    async fn scan(&self, request: Request<ScanRequest>) -> Result<Response<ScanResponse>, Status> {
        self.admit().await?;
        let req = request.into_inner();
        let limit = match req.limit as usize {
            0 => DEFAULT_SCAN_LIMIT,
            n => n.min(MAX_SCAN_LIMIT),
        };
        let cursor = (!req.cursor.is_empty()).then_some(req.cursor.as_str());
        let _span = backend_span("memstore SCAN").entered();
        let Page { keys, next_cursor } = self
            .memstore
            .with_store(|s| s.scan(&req.prefix, cursor, limit, Instant::now()));
        Ok(Response::new(ScanResponse {
            keys,
            next_cursor: next_cursor.unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn full_store_is_resource_exhausted() {
        let status = to_status(StoreError::Full { max_keys: 3 });
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains("max_keys"));
    }
}
