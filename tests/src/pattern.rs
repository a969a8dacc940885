//! A pattern binary run on its own, without a proxy: it listens on a free
//! port and the test drives its lifecycle (`Initialize` with a real config,
//! `Start`) and data plane directly, as the proxy would.

use std::net::SocketAddr;

use prism_proto::lifecycle::v1::{
    HealthCheckRequest, HealthCheckResponse, InitializeRequest, PatternMetadata, StartRequest,
    pattern_lifecycle_client::PatternLifecycleClient,
};
use tonic::transport::Channel;

use crate::bins;

pub struct PatternProcess {
    inner: prism_harness::PatternProcess,
    pub addr: SocketAddr,
    /// What `Initialize` answered.
    pub metadata: PatternMetadata,
}

impl PatternProcess {
    /// Spawns the built binary `name` (e.g. `prism-nats`) on a free port with
    /// `env`, then calls `Initialize` (`namespace`, `config`) and `Start`.
    /// Panics with the pattern's log when any step fails.
    pub async fn start(
        name: &str,
        namespace: &str,
        config: serde_json::Value,
        env: &[(&str, &str)],
    ) -> Self {
        let inner = prism_harness::PatternProcess::start(&bins::bin(name), &[], env)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut process = Self {
            addr: inner.addr,
            inner,
            metadata: PatternMetadata::default(),
        };
        let mut lifecycle = process.lifecycle().await;
        let initialized = lifecycle
            .initialize(InitializeRequest {
                name: namespace.to_string(),
                version: "test".into(),
                config: Some(prism_proto::json::to_struct(&config)),
            })
            .await
            .unwrap_or_else(|e| panic!("Initialize: {e}; log:\n{}", process.log()));
        process.metadata = initialized.into_inner().metadata.unwrap_or_default();
        lifecycle
            .start(StartRequest {})
            .await
            .unwrap_or_else(|e| panic!("Start: {e}; log:\n{}", process.log()));
        process
    }

    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    pub fn log(&self) -> String {
        self.inner.process.log()
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.addr))
    }

    pub async fn lifecycle(&self) -> PatternLifecycleClient<Channel> {
        PatternLifecycleClient::new(self.channel().await)
    }

    pub async fn health(&self) -> HealthCheckResponse {
        self.lifecycle()
            .await
            .health_check(HealthCheckRequest {})
            .await
            .expect("HealthCheck")
            .into_inner()
    }
}

impl Drop for PatternProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- pattern log ---\n{}", self.log());
        }
    }
}
