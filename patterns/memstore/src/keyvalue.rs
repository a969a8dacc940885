//! The KeyValue gRPC service over the store: decode, check limits, apply,
//! encode. A scan's cursor is the last key of the page before, in the hex
//! form `prism_proto::cursor` defines, so a cursor this server did not
//! issue is refused rather than silently read as a key.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use prism_pattern_sdk::Gate;
use prism_proto::keyvalue::v1::{
    DeleteRequest, DeleteResponse, ExistsRequest, ExistsResponse, GetRequest, GetResponse,
    ScanRequest, ScanResponse, SetRequest, SetResponse, key_value_server::KeyValue,
};
use prism_proto::{FieldError, cursor};
use tonic::{Request, Response, Status};

use crate::{error::Error, pattern::MemStore, store::Page};

pub(crate) const DEFAULT_SCAN_LIMIT: usize = 100;
pub(crate) const MAX_SCAN_LIMIT: usize = 10_000;

pub(crate) struct KeyValueService {
    memstore: Arc<MemStore>,
    gate: Gate,
}

impl KeyValueService {
    pub(crate) fn new(memstore: Arc<MemStore>, gate: Gate) -> Self {
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

/// Where a scan of `prefix` resumes: `None` from the start, else after
/// the key the cursor holds, which a page of `prefix` always starts with.
fn parse_cursor(
    text: &str,
    prefix: &str,
    max_key_bytes: usize,
) -> Result<Option<String>, FieldError> {
    if text.is_empty() {
        return Ok(None);
    }
    let key = cursor::decode_key(text, max_key_bytes)?;
    if key.is_empty() || !key.starts_with(prefix) {
        return Err(cursor::invalid());
    }
    Ok(Some(key))
}

#[tonic::async_trait]
impl KeyValue for KeyValueService {
    async fn set(&self, request: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
        self.admit().await?;
        let req = request.into_inner();
        self.memstore
            .config()
            .limits()
            .check_set(&req.key, &req.value, req.ttl_seconds)
            .map_err(Error::from)?;
        let ttl = (req.ttl_seconds > 0).then(|| Duration::from_secs(req.ttl_seconds as u64));
        let _span = backend_span("memstore SET").entered();
        self.memstore
            .with_store(|s| s.set(&req.key, req.value, ttl, Instant::now()))?;
        Ok(Response::new(SetResponse {}))
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        self.admit().await?;
        let key = request.into_inner().key;
        self.memstore
            .config()
            .limits()
            .check_key(&key)
            .map_err(Error::from)?;
        let _span = backend_span("memstore GET").entered();
        self.memstore
            .with_store(|s| s.get(&key, Instant::now()).map(<[u8]>::to_vec))
            .map(|value| Response::new(GetResponse { value }))
            .ok_or_else(|| Error::KeyNotFound.into())
    }

    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        self.admit().await?;
        let key = request.into_inner().key;
        self.memstore
            .config()
            .limits()
            .check_key(&key)
            .map_err(Error::from)?;
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
        self.memstore
            .config()
            .limits()
            .check_key(&key)
            .map_err(Error::from)?;
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
        let limits = self.memstore.config().limits();
        limits
            .check_scan(&req.prefix, &req.cursor)
            .map_err(Error::from)?;
        let after =
            parse_cursor(&req.cursor, &req.prefix, limits.max_key_bytes).map_err(Error::from)?;
        let _span = backend_span("memstore SCAN").entered();
        let Page { keys, next_cursor } = self
            .memstore
            .with_store(|s| s.scan(&req.prefix, after.as_deref(), limit, Instant::now()));
        Ok(Response::new(ScanResponse {
            keys,
            next_cursor: next_cursor
                .map(|key| cursor::encode_key(&key))
                .unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_cursors_parse_back() {
        assert_eq!(parse_cursor("", "p:", 16).unwrap(), None);
        let issued = cursor::encode_key("p:7");
        assert_eq!(
            parse_cursor(&issued, "p:", 16).unwrap().as_deref(),
            Some("p:7")
        );
    }

    #[test]
    fn bogus_cursors_name_the_cursor() {
        for (text, prefix) in [
            ("not-a-cursor", ""),
            ("p:7", "p:"),
            ("abc", ""),
            (cursor::encode_key("q:1").as_str(), "p:"),
            (cursor::encode_key(&"k".repeat(17)).as_str(), ""),
        ] {
            let err = parse_cursor(text, prefix, 16).unwrap_err();
            assert_eq!(err.field, "cursor", "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_is_refused_naming_the_cursor(
            text in proptest::prelude::any::<String>(),
            prefix in ".{0,4}",
        ) {
            match parse_cursor(&text, &prefix, 64) {
                Ok(None) => proptest::prop_assert!(text.is_empty()),
                Ok(Some(key)) => {
                    proptest::prop_assert!(key.starts_with(&prefix));
                    proptest::prop_assert_eq!(cursor::encode_key(&key), text);
                }
                Err(err) => proptest::prop_assert_eq!(err.field.as_str(), "cursor"),
            }
        }

        #[test]
        fn issued_cursors_round_trip(prefix in ".{0,8}", rest in ".{1,16}") {
            let key = format!("{prefix}{rest}");
            let text = cursor::encode_key(&key);
            proptest::prop_assert_eq!(parse_cursor(&text, &prefix, 4096).unwrap(), Some(key));
        }
    }
}
