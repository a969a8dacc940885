//! The KeyValue gRPC service over Redis: decode, check limits, run the
//! command, encode. Semantics match MemStore's.

use std::sync::Arc;

use prism_pattern_sdk::Gate;
use prism_proto::keyvalue::v1::{
    DeleteRequest, DeleteResponse, ExistsRequest, ExistsResponse, GetRequest, GetResponse,
    ScanRequest, ScanResponse, SetRequest, SetResponse, key_value_server::KeyValue,
};
use tonic::{Code, Request, Response, Status};

use crate::{
    backend::Backend,
    error::{Error, to_status},
    pattern::RedisPattern,
};

pub(crate) const DEFAULT_SCAN_LIMIT: usize = 100;
pub(crate) const MAX_SCAN_LIMIT: usize = 10_000;
// Redis refuses `EX` values whose milliseconds overflow; the shared TTL
// limit (100 years) stays far below that.
const _: () = assert!(prism_proto::limits::Limits::MAX_TTL_SECONDS < i64::MAX / 1000 / 2);

pub(crate) struct KeyValueService {
    redis: Arc<RedisPattern>,
    gate: Gate,
}

impl KeyValueService {
    pub(crate) fn new(redis: Arc<RedisPattern>, gate: Gate) -> Self {
        Self { redis, gate }
    }

    /// Refuses calls before `Start`; hands out the configured backend.
    fn admit(&self) -> Result<Arc<Backend>, Status> {
        self.gate.check()?;
        self.redis
            .backend()
            .ok_or_else(|| to_status(&Error::NotInitialized))
    }
}

/// Turns a failure into the caller's status and logs it, once, here:
/// loudly when an operator must act, quietly when Redis is merely
/// unreachable (health says so already) or the request was at fault.
fn failed(op: &'static str, err: Error) -> Status {
    let status = to_status(&err);
    match status.code() {
        Code::Internal | Code::ResourceExhausted => {
            tracing::warn!(op, code = ?status.code(), error = %err, "redis call failed")
        }
        code => tracing::debug!(op, ?code, error = %err, "redis call failed"),
    }
    status
}

#[tonic::async_trait]
impl KeyValue for KeyValueService {
    async fn set(&self, request: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
        let redis = self.admit()?;
        let req = request.into_inner();
        redis
            .config()
            .limits()
            .check_set(&req.key, &req.value, req.ttl_seconds)
            .map_err(|e| failed("set", e.into()))?;
        redis
            .set(&req.key, &req.value, req.ttl_seconds as u64)
            .await
            .map_err(|e| failed("set", e))?;
        Ok(Response::new(SetResponse {}))
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let redis = self.admit()?;
        let key = request.into_inner().key;
        redis
            .config()
            .limits()
            .check_key(&key)
            .map_err(|e| failed("get", e.into()))?;
        match redis.get(&key).await.map_err(|e| failed("get", e))? {
            Some(value) => Ok(Response::new(GetResponse { value })),
            None => Err(to_status(&Error::KeyNotFound)),
        }
    }

    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        let redis = self.admit()?;
        let key = request.into_inner().key;
        redis
            .config()
            .limits()
            .check_key(&key)
            .map_err(|e| failed("delete", e.into()))?;
        let deleted = redis.delete(&key).await.map_err(|e| failed("delete", e))?;
        Ok(Response::new(DeleteResponse { deleted }))
    }

    async fn exists(
        &self,
        request: Request<ExistsRequest>,
    ) -> Result<Response<ExistsResponse>, Status> {
        let redis = self.admit()?;
        let key = request.into_inner().key;
        redis
            .config()
            .limits()
            .check_key(&key)
            .map_err(|e| failed("exists", e.into()))?;
        let exists = redis.exists(&key).await.map_err(|e| failed("exists", e))?;
        Ok(Response::new(ExistsResponse { exists }))
    }

    async fn scan(&self, request: Request<ScanRequest>) -> Result<Response<ScanResponse>, Status> {
        let redis = self.admit()?;
        let req = request.into_inner();
        let limit = match req.limit as usize {
            0 => DEFAULT_SCAN_LIMIT,
            n => n.min(MAX_SCAN_LIMIT),
        };
        redis
            .config()
            .limits()
            .check_scan(&req.prefix, &req.cursor)
            .map_err(|e| failed("scan", e.into()))?;
        let (keys, next_cursor) = redis
            .scan(&req.prefix, &req.cursor, limit)
            .await
            .map_err(|e| failed("scan", e))?;
        Ok(Response::new(ScanResponse { keys, next_cursor }))
    }
}
