//! A `prism-multicast-registry` process started with `--autostart` (both
//! slots in process) and a gRPC client for it, shared by the direct tests.

// Each test file uses a part of this.
#![allow(dead_code)]

use std::{collections::HashMap, time::Duration};

use prism_harness::PatternProcess;
use prism_proto::{
    json,
    lifecycle::v1::{HealthCheckRequest, pattern_lifecycle_client::PatternLifecycleClient},
    registry::v1::{
        DeliveryStatus, EnumerateRequest, InboxMessage, MulticastRequest, MulticastResponse,
        ReceiveRequest, RegisterRequest, multicast_registry_client::MulticastRegistryClient,
    },
};
use serde_json::Value;
use tonic::{Streaming, transport::Channel};

/// Generous: the machine running the tests may be loaded.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// The clients are declared first so they close before the process is
/// stopped (its graceful shutdown waits for open connections).
pub(crate) struct Registry {
    channel: Channel,
    client: MulticastRegistryClient<Channel>,
    pub(crate) process: PatternProcess,
}

impl Registry {
    pub(crate) async fn start(env: &[(&str, &str)]) -> Self {
        let process = PatternProcess::start(
            env!("CARGO_BIN_EXE_prism-multicast-registry").as_ref(),
            &["--autostart", "--config", r#"{"sweep_interval_ms": 100}"#],
            env,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let channel = Channel::from_shared(format!("http://{}", process.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        Self {
            process,
            client: MulticastRegistryClient::new(channel.clone()),
            channel,
        }
    }

    pub(crate) fn client(&self) -> MulticastRegistryClient<Channel> {
        self.client.clone()
    }

    /// A client on a connection of its own, so that what it leaves unread
    /// holds up no other client's streams.
    pub(crate) async fn separate_client(&self) -> MulticastRegistryClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.process.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        MulticastRegistryClient::new(channel)
    }

    pub(crate) async fn register(&self, identity: &str, metadata: Value, ttl_seconds: i64) {
        self.client()
            .register(RegisterRequest {
                identity: identity.into(),
                metadata: Some(json::to_struct(&metadata)),
                ttl_seconds,
            })
            .await
            .unwrap_or_else(|e| panic!("register {identity}: {e}"));
    }

    pub(crate) async fn receive(&self, identity: &str) -> Streaming<InboxMessage> {
        self.client()
            .receive(ReceiveRequest {
                identity: identity.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("receive {identity}: {e}"))
            .into_inner()
    }

    pub(crate) async fn multicast(&self, filter: Value, payload: &[u8]) -> MulticastResponse {
        self.client()
            .multicast(MulticastRequest {
                filter: Some(json::to_struct(&filter)),
                payload: payload.to_vec(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("multicast {filter}: {e}"))
            .into_inner()
    }

    pub(crate) async fn enumerate(&self, filter: Value) -> Vec<String> {
        let page = self
            .client()
            .enumerate(EnumerateRequest {
                filter: Some(json::to_struct(&filter)),
                ..Default::default()
            })
            .await
            .expect("enumerate")
            .into_inner();
        page.identities.into_iter().map(|i| i.identity).collect()
    }

    pub(crate) async fn health(&self) -> HashMap<String, String> {
        PatternLifecycleClient::new(self.channel.clone())
            .health_check(HealthCheckRequest {})
            .await
            .expect("health")
            .into_inner()
            .details
    }
}

/// The next message of a Receive stream, within the deadline.
pub(crate) async fn next(stream: &mut Streaming<InboxMessage>) -> InboxMessage {
    tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("a message within the deadline")
        .expect("a healthy stream")
        .expect("an open stream")
}

pub(crate) fn statuses(response: &MulticastResponse) -> Vec<(String, DeliveryStatus)> {
    response
        .results
        .iter()
        .map(|r| (r.identity.clone(), r.status()))
        .collect()
}
