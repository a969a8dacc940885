//! The `PatternLifecycle` server and the [`Gate`] that keeps data-plane calls
//! out until the proxy has said `Start`.

use std::sync::{
    Arc,
    atomic::{AtomicU8, Ordering},
};

use prism_proto::lifecycle::v1::{
    HealthCheckRequest, HealthCheckResponse, InitializeRequest, InitializeResponse, StartRequest,
    StartResponse, StopRequest, StopResponse, pattern_lifecycle_server::PatternLifecycle,
};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::{Health, HealthStatus, Pattern, error::LifecycleError};

const CREATED: u8 = 0;
const INITIALIZED: u8 = 1;
const STARTED: u8 = 2;
const STOPPING: u8 = 3;

/// Where a pattern process is in its lifecycle, shared between the lifecycle
/// server and the pattern's data-plane services.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    state: Arc<AtomicU8>,
}

impl Gate {
    pub fn new() -> Self {
        Self::default()
    }

    /// `Ok` while started; an error (`UNAVAILABLE` on the wire) before
    /// `Start` or once stopping.
    pub fn check(&self) -> Result<(), LifecycleError> {
        match self.state.load(Ordering::Acquire) {
            STARTED => Ok(()),
            STOPPING => Err(LifecycleError::Stopping),
            _ => Err(LifecycleError::NotStarted),
        }
    }

    fn get(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    fn set(&self, state: u8) {
        self.state.store(state, Ordering::Release);
    }

    /// Moves to stopping; true only for the first caller.
    pub(crate) fn begin_stop(&self) -> bool {
        self.state.swap(STOPPING, Ordering::AcqRel) != STOPPING
    }

    pub(crate) fn mark_initialized(&self) {
        self.set(INITIALIZED);
    }

    pub(crate) fn mark_started(&self) {
        self.set(STARTED);
    }
}

pub struct LifecycleService<P> {
    pattern: Arc<P>,
    gate: Gate,
    /// Woken by `Stop` so the server shuts down after answering it.
    shutdown: Arc<Notify>,
}

impl<P> LifecycleService<P> {
    pub fn new(pattern: Arc<P>, gate: Gate, shutdown: Arc<Notify>) -> Self {
        Self {
            pattern,
            gate,
            shutdown,
        }
    }
}

#[tonic::async_trait]
impl<P: Pattern> PatternLifecycle for LifecycleService<P> {
    async fn initialize(
        &self,
        request: Request<InitializeRequest>,
    ) -> Result<Response<InitializeResponse>, Status> {
        if self.gate.get() >= STARTED {
            return Err(LifecycleError::AlreadyStarted.into());
        }
        let request = request.into_inner();
        let config = request
            .config
            .as_ref()
            .map(prism_proto::json::from_struct)
            .unwrap_or(serde_json::Value::Null);
        self.pattern
            .initialize(&request.name, config)
            .await
            .map_err(LifecycleError::from)?;
        self.gate.mark_initialized();
        tracing::info!(namespace = %request.name, "initialized");
        Ok(Response::new(InitializeResponse {
            metadata: Some(self.pattern.metadata()),
        }))
    }

    async fn start(&self, _: Request<StartRequest>) -> Result<Response<StartResponse>, Status> {
        match self.gate.get() {
            CREATED => return Err(LifecycleError::NotInitialized.into()),
            STARTED => return Ok(Response::new(StartResponse {})),
            STOPPING => return Err(Status::from(LifecycleError::Stopping)),
            _ => {}
        }
        self.pattern.start().await?;
        self.gate.mark_started();
        tracing::info!("started");
        Ok(Response::new(StartResponse {}))
    }

    async fn stop(&self, _: Request<StopRequest>) -> Result<Response<StopResponse>, Status> {
        if self.gate.begin_stop() {
            self.pattern.stop().await;
            tracing::info!("stopped");
        }
        self.shutdown.notify_one();
        Ok(Response::new(StopResponse {}))
    }

    async fn health_check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let health = match self.gate.get() {
            STOPPING => Health::new(HealthStatus::Unhealthy, "stopping"),
            _ => self.pattern.health().await,
        };
        Ok(Response::new(health.into()))
    }
}

/// Used by `--autostart`: initialize with `config` (`Null` means defaults)
/// and start.
pub(crate) async fn autostart<P: Pattern>(
    pattern: &P,
    gate: &Gate,
    config: serde_json::Value,
) -> Result<(), crate::ServeError> {
    pattern
        .initialize("standalone", config)
        .await
        .map_err(|e| crate::ServeError::Config(e.to_string()))?;
    gate.mark_initialized();
    pattern
        .start()
        .await
        .map_err(|e| crate::ServeError::Autostart(e.message().to_string()))?;
    gate.mark_started();
    Ok(())
}
