//! `prism.admin.v1.Admin` on the admin port: what the console and operators
//! see of each namespace.

use std::sync::Arc;

use prism_proto::admin::v1::{
    self as pb, Event, GetLatencyRequest, LatencyHistogram, ListEventsRequest, ListEventsResponse,
    ListPatternsRequest, ListPatternsResponse, PatternInfo, ReloadConfigRequest,
    ReloadConfigResponse, ReloadPatternRequest, ReloadPatternResponse, RestartPatternRequest,
    RestartPatternResponse, WatchEventsRequest, WatchPatternsRequest, admin_server::Admin,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::{
    drain::Drain,
    namespace::{Namespace, Namespaces, State},
};

pub struct AdminService {
    namespaces: Arc<Namespaces>,
    drain: Drain,
}

impl AdminService {
    pub fn new(namespaces: Arc<Namespaces>, drain: Drain) -> Self {
        Self { namespaces, drain }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_patterns(
        &self,
        _: Request<ListPatternsRequest>,
    ) -> Result<Response<ListPatternsResponse>, Status> {
        let patterns = self.namespaces.list().iter().map(|ns| info(ns)).collect();
        Ok(Response::new(ListPatternsResponse {
            patterns,
            in_flight: self.drain.in_flight() as u64,
            ..Default::default()
        }))
    }

    type WatchPatternsStream = ReceiverStream<Result<ListPatternsResponse, Status>>;

    async fn watch_patterns(
        &self,
        _: Request<WatchPatternsRequest>,
    ) -> Result<Response<Self::WatchPatternsStream>, Status> {
        Err(Status::unimplemented("WatchPatterns"))
    }

    async fn get_latency(
        &self,
        _: Request<GetLatencyRequest>,
    ) -> Result<Response<LatencyHistogram>, Status> {
        Err(Status::unimplemented("GetLatency"))
    }

    async fn list_events(
        &self,
        _: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        Err(Status::unimplemented("ListEvents"))
    }

    type WatchEventsStream = ReceiverStream<Result<Event, Status>>;

    async fn watch_events(
        &self,
        _: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        Err(Status::unimplemented("WatchEvents"))
    }

    async fn restart_pattern(
        &self,
        _: Request<RestartPatternRequest>,
    ) -> Result<Response<RestartPatternResponse>, Status> {
        Err(Status::unimplemented("RestartPattern"))
    }

    async fn reload_pattern(
        &self,
        _: Request<ReloadPatternRequest>,
    ) -> Result<Response<ReloadPatternResponse>, Status> {
        Err(Status::unimplemented("ReloadPattern"))
    }

    async fn reload_config(
        &self,
        _: Request<ReloadConfigRequest>,
    ) -> Result<Response<ReloadConfigResponse>, Status> {
        Err(Status::unimplemented("ReloadConfig"))
    }
}

fn info(ns: &Namespace) -> PatternInfo {
    let status = ns.status();
    PatternInfo {
        namespace: ns.name().to_string(),
        pattern: ns.config.pattern.as_str().to_string(),
        backend: ns.config.backend.as_str().to_string(),
        state: state(status.state) as i32,
        health: Some(pb::Health {
            status: status.health.status as i32,
            message: status.health.message,
            details: status.health.details.into_iter().collect(),
        }),
        pid: status.pid.unwrap_or_default(),
        endpoint: status.endpoint,
        uptime_ms: status
            .started_at
            .map(|t| t.elapsed().as_millis() as u64)
            .unwrap_or_default(),
        restart_count: status.restart_count,
        last_error: status.last_error.unwrap_or_default(),
        binary: ns.binary.display().to_string(),
        version: status.version,
        traffic: None,
    }
}

fn state(state: State) -> pb::PatternState {
    match state {
        State::Starting => pb::PatternState::Starting,
        State::Running => pb::PatternState::Running,
        State::Restarting => pb::PatternState::Restarting,
        State::Draining => pb::PatternState::Draining,
        State::Stopped => pb::PatternState::Stopped,
        State::Failed => pb::PatternState::Failed,
    }
}
