//! The KeyValue data plane: each call is checked against the namespace's
//! limits (a Scan's prefix like a key, its cursor's length; what the cursor
//! holds is the pattern's to check) and forwarded to its pattern by
//! [`dataplane::unary`].

use std::sync::Arc;

use prism_proto::keyvalue::v1::{
    DeleteRequest, DeleteResponse, ExistsRequest, ExistsResponse, GetRequest, GetResponse,
    ScanRequest, ScanResponse, SetRequest, SetResponse, key_value_client::KeyValueClient,
    key_value_server::KeyValue,
};
use tonic::{Request, Response, Status};

use crate::{channel::PatternChannel, config::PatternKind, dataplane, state::ProxyState};

const SERVICE: &str = "prism.keyvalue.v1.KeyValue";

pub(crate) struct KeyValueProxy {
    state: Arc<ProxyState>,
}

impl KeyValueProxy {
    pub(crate) fn new(state: Arc<ProxyState>) -> Self {
        Self { state }
    }
}

fn client(channel: PatternChannel) -> KeyValueClient<PatternChannel> {
    KeyValueClient::new(channel)
        .max_decoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(prism_proto::limits::MAX_MESSAGE_BYTES)
}

#[tonic::async_trait]
impl KeyValue for KeyValueProxy {
    async fn set(&self, request: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
        dataplane::unary(
            &self.state,
            PatternKind::Keyvalue,
            (SERVICE, "Set"),
            request,
            |limits, r| limits.check_set(&r.key, &r.value, r.ttl_seconds),
            |ch, r| async move { client(ch).set(r).await },
        )
        .await
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        dataplane::unary(
            &self.state,
            PatternKind::Keyvalue,
            (SERVICE, "Get"),
            request,
            |limits, r| limits.check_key(&r.key),
            |ch, r| async move { client(ch).get(r).await },
        )
        .await
    }

    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<DeleteResponse>, Status> {
        dataplane::unary(
            &self.state,
            PatternKind::Keyvalue,
            (SERVICE, "Delete"),
            request,
            |limits, r| limits.check_key(&r.key),
            |ch, r| async move { client(ch).delete(r).await },
        )
        .await
    }

    async fn exists(
        &self,
        request: Request<ExistsRequest>,
    ) -> Result<Response<ExistsResponse>, Status> {
        dataplane::unary(
            &self.state,
            PatternKind::Keyvalue,
            (SERVICE, "Exists"),
            request,
            |limits, r| limits.check_key(&r.key),
            |ch, r| async move { client(ch).exists(r).await },
        )
        .await
    }

    async fn scan(&self, request: Request<ScanRequest>) -> Result<Response<ScanResponse>, Status> {
        dataplane::unary(
            &self.state,
            PatternKind::Keyvalue,
            (SERVICE, "Scan"),
            request,
            |limits, r| limits.check_scan(&r.prefix, &r.cursor),
            |ch, r| async move { client(ch).scan(r).await },
        )
        .await
    }
}
