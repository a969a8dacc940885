//! `prism.registry.v1.MulticastRegistry` on the two slots. (Not built yet:
//! every call is UNIMPLEMENTED.)

use std::{pin::Pin, sync::Arc};

use futures_util::Stream;
use prism_pattern_sdk::Gate;
use prism_proto::registry::v1::{
    EnumerateRequest, EnumerateResponse, GetRequest, GetResponse, InboxMessage, MulticastRequest,
    MulticastResponse, ReceiveRequest, RegisterRequest, RegisterResponse, UnregisterRequest,
    UnregisterResponse, multicast_registry_server::MulticastRegistry,
};
use tonic::{Request, Response, Status};

use crate::pattern::RegistryPattern;

pub(crate) struct RegistryService {
    #[allow(dead_code)]
    pattern: Arc<RegistryPattern>,
    #[allow(dead_code)]
    gate: Gate,
}

impl RegistryService {
    pub(crate) fn new(pattern: Arc<RegistryPattern>, gate: Gate) -> Self {
        Self { pattern, gate }
    }
}

type InboxStream = Pin<Box<dyn Stream<Item = Result<InboxMessage, Status>> + Send>>;

#[tonic::async_trait]
impl MulticastRegistry for RegistryService {
    async fn register(
        &self,
        _request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        Err(Status::unimplemented("Register is not built yet"))
    }

    async fn unregister(
        &self,
        _request: Request<UnregisterRequest>,
    ) -> Result<Response<UnregisterResponse>, Status> {
        Err(Status::unimplemented("Unregister is not built yet"))
    }

    async fn get(&self, _request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        Err(Status::unimplemented("Get is not built yet"))
    }

    async fn enumerate(
        &self,
        _request: Request<EnumerateRequest>,
    ) -> Result<Response<EnumerateResponse>, Status> {
        Err(Status::unimplemented("Enumerate is not built yet"))
    }

    async fn multicast(
        &self,
        _request: Request<MulticastRequest>,
    ) -> Result<Response<MulticastResponse>, Status> {
        Err(Status::unimplemented("Multicast is not built yet"))
    }

    type ReceiveStream = InboxStream;

    async fn receive(
        &self,
        _request: Request<ReceiveRequest>,
    ) -> Result<Response<Self::ReceiveStream>, Status> {
        Err(Status::unimplemented("Receive is not built yet"))
    }
}
