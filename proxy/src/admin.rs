//! `prism.admin.v1.Admin` on the admin port: what the console and operators
//! see of each namespace, and the levers they pull (restart, hot reload,
//! config reload). Domain values become proto messages here and nowhere else.
//! RPCs of their own topic live in submodules: [`events`] (resumable
//! `WatchEvents`), [`exemplars`] (`GetExemplars`), [`logs`] (pattern logs).

mod events;
mod exemplars;
mod logs;

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use prism_observability::latency::WindowSnapshot;
use prism_proto::admin::v1::{
    self as pb, GetLatencyRequest, LatencyBucket, LatencyHistogram, ListEventsRequest,
    ListEventsResponse, ListPatternsRequest, ListPatternsResponse, PatternInfo, ProxyInfo,
    ReloadConfigRequest, ReloadConfigResponse, ReloadPatternRequest, ReloadPatternResponse,
    RestartPatternRequest, RestartPatternResponse, TrafficSummary, WatchEventsRequest,
    WatchPatternsRequest, admin_server::Admin,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::{
    activity::{Event, EventKind},
    auth::{Caller, policy::Role},
    error::ProxyError,
    namespace::{Namespace, State},
    state::ProxyState,
};

mod namespaces;

/// Snapshots go out at least this often on `WatchPatterns`.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct AdminService {
    state: Arc<ProxyState>,
}

impl AdminService {
    pub(crate) fn new(state: Arc<ProxyState>) -> Self {
        Self { state }
    }

    async fn restart(&self, name: &str) -> Result<Response<RestartPatternResponse>, Status> {
        let ns = self.state.namespaces.get(name)?;
        let old_pid = ns.status().pid;
        let new_pid = self
            .state
            .supervisor
            .restart(name)
            .await
            .map_err(|source| ProxyError::RestartFailed {
                namespace: name.to_string(),
                source,
            })?;
        Ok(Response::new(RestartPatternResponse {
            pattern: Some(info(&ns, &self.state.latency.window(name, None))),
            message: restart_message(name, old_pid, new_pid),
            old_pid: old_pid.unwrap_or_default(),
            new_pid,
        }))
    }

    async fn reload(&self, name: &str) -> Result<Response<ReloadPatternResponse>, Status> {
        self.state.namespaces.get(name)?;
        let reloaded = self
            .state
            .supervisor
            .reload(name, None)
            .await
            .map_err(|source| ProxyError::ReloadFailed {
                namespace: name.to_string(),
                source,
            })?;
        Ok(Response::new(ReloadPatternResponse {
            old_pid: reloaded.old_pid,
            new_pid: reloaded.new_pid,
            message: format!(
                "hot-reloaded `{name}`: pid {} → {}",
                reloaded.old_pid, reloaded.new_pid
            ),
        }))
    }

    async fn reload_config_file(&self) -> Result<Response<ReloadConfigResponse>, Status> {
        let changes = self
            .state
            .reload_config()
            .await
            .map_err(|e| ProxyError::ConfigNotReloaded(e.into()))?;
        let mut message = format!(
            "{} added, {} removed, {} changed",
            changes.added.len(),
            changes.removed.len(),
            changes.changed.len()
        );
        if !changes.failed.is_empty() {
            message.push_str(&format!(
                "; hot reload failed for {} (old process kept)",
                changes.failed.join(", ")
            ));
        }
        if !changes.needs_restart.is_empty() {
            message.push_str(&format!(
                "; {} take effect on a proxy restart",
                changes.needs_restart.join(", ")
            ));
        }
        Ok(Response::new(ReloadConfigResponse {
            added: changes.added,
            removed: changes.removed,
            changed: changes.changed,
            message,
        }))
    }

    /// Records an admin call that changed (or tried to change) something:
    /// who, what, which namespace, and how it ended — in the event log the
    /// console shows and in the logs.
    fn audit<T>(&self, actor: &str, action: &str, namespace: &str, result: &Result<T, Status>) {
        let outcome = match result {
            Ok(_) => "ok".to_string(),
            Err(status) => format!("failed ({:?}): {}", status.code(), status.message()),
        };
        tracing::info!(target: "prism::audit", actor, action, namespace, %outcome, "admin action");
        self.state.activity.emit_by(
            namespace,
            EventKind::AdminAction,
            format!("{actor} {action}: {outcome}"),
            actor,
        );
    }
}

/// Who made an admin call, as the audit names them.
fn actor_of<T>(request: &Request<T>) -> String {
    request.extensions().get::<Caller>().map_or_else(
        || "anonymous (auth off)".to_string(),
        |c| c.name.to_string(),
    )
}

/// Every namespace with its live figures.
pub(crate) fn snapshot(state: &ProxyState) -> ListPatternsResponse {
    ListPatternsResponse {
        patterns: state
            .namespaces
            .list()
            .iter()
            .map(|ns| info(ns, &state.latency.window(ns.name(), None)))
            .collect(),
        in_flight: state.drain.in_flight() as u64,
        proxy: Some(ProxyInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            listen: state.listen.to_string(),
            admin_listen: state.admin_listen.to_string(),
            uptime_ms: state.started_at.elapsed().as_millis() as u64,
            config_path: state
                .config_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }),
        timestamp_ms: epoch_ms(SystemTime::now()),
    }
}

/// What a restart did, in words: a namespace with no process (FAILED,
/// between retries) is started, not restarted from a pid 0.
fn restart_message(name: &str, old_pid: Option<u32>, new_pid: u32) -> String {
    match old_pid {
        Some(old) if old != 0 => format!("restarted `{name}`: pid {old} → {new_pid}"),
        _ => format!("started `{name}`: pid {new_pid} (no process was running)"),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_patterns(
        &self,
        _: Request<ListPatternsRequest>,
    ) -> Result<Response<ListPatternsResponse>, Status> {
        Ok(Response::new(snapshot(&self.state)))
    }

    type WatchPatternsStream = ReceiverStream<Result<ListPatternsResponse, Status>>;

    async fn watch_patterns(
        &self,
        _: Request<WatchPatternsRequest>,
    ) -> Result<Response<Self::WatchPatternsStream>, Status> {
        let (tx, rx) = mpsc::channel(4);
        let state = self.state.clone();
        let mut changes = state.activity.changes();
        tokio::spawn(async move {
            loop {
                changes.mark_unchanged();
                if tx.send(Ok(snapshot(&state))).await.is_err() {
                    return;
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    _ = tokio::time::sleep(WATCH_INTERVAL) => {}
                    _ = tx.closed() => return,
                    _ = state.stopped() => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_latency(
        &self,
        request: Request<GetLatencyRequest>,
    ) -> Result<Response<LatencyHistogram>, Status> {
        let request = request.into_inner();
        self.state.namespaces.get(&request.namespace)?;
        let operation = (!request.operation.is_empty()).then_some(request.operation.as_str());
        let w = self.state.latency.window(&request.namespace, operation);
        Ok(Response::new(LatencyHistogram {
            operations: self.state.latency.operations(&request.namespace),
            namespace: request.namespace,
            operation: request.operation,
            window_seconds: w.window.as_secs() as u32,
            count: w.count,
            min_us: w.min_us,
            max_us: w.max_us,
            mean_us: w.mean_us,
            p50_us: w.p50_us,
            p90_us: w.p90_us,
            p99_us: w.p99_us,
            p999_us: w.p999_us,
            buckets: w
                .buckets
                .iter()
                .map(|&(upper_bound_us, count)| LatencyBucket {
                    upper_bound_us,
                    count,
                })
                .collect(),
            rps: w.rps,
            error_rate: w.error_rate,
            rps_history: w.rps_history,
            client_error_rate: w.client_error_rate,
            errors: w.errors,
            client_errors: w.client_errors,
        }))
    }

    async fn list_events(
        &self,
        request: Request<ListEventsRequest>,
    ) -> Result<Response<ListEventsResponse>, Status> {
        let request = request.into_inner();
        let namespace = (!request.namespace.is_empty()).then_some(request.namespace.as_str());
        let events = self
            .state
            .activity
            .recent(namespace, request.limit as usize, request.after_seq)
            .iter()
            .map(event)
            .collect();
        Ok(Response::new(ListEventsResponse { events }))
    }

    type WatchEventsStream = ReceiverStream<Result<pb::Event, Status>>;

    async fn watch_events(
        &self,
        request: Request<WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let request = request.into_inner();
        let (tx, rx) = mpsc::channel(64);
        events::spawn_watch(self.state.clone(), request.namespace, request.after_seq, tx);
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn restart_pattern(
        &self,
        request: Request<RestartPatternRequest>,
    ) -> Result<Response<RestartPatternResponse>, Status> {
        let actor = actor_of(&request);
        let name = request.into_inner().namespace;
        let result = self.restart(&name).await;
        self.audit(&actor, "restart", &name, &result);
        result
    }

    async fn reload_pattern(
        &self,
        request: Request<ReloadPatternRequest>,
    ) -> Result<Response<ReloadPatternResponse>, Status> {
        let actor = actor_of(&request);
        let name = request.into_inner().namespace;
        let result = self.reload(&name).await;
        self.audit(&actor, "hot reload", &name, &result);
        result
    }

    async fn reload_config(
        &self,
        request: Request<ReloadConfigRequest>,
    ) -> Result<Response<ReloadConfigResponse>, Status> {
        let actor = actor_of(&request);
        let result = self.reload_config_file().await;
        self.audit(&actor, "config reload", "", &result);
        result
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let Some(enabled) = self.state.auth.current() else {
            return Ok(Response::new(pb::WhoAmIResponse {
                auth_enabled: false,
                role: pb::AdminRole::Admin as i32,
                ..Default::default()
            }));
        };
        let Some(Caller {
            principal: caller,
            name,
        }) = request.extensions().get::<Caller>()
        else {
            return Err(Status::unauthenticated("no caller"));
        };
        let role = match enabled.policy.role(caller) {
            Role::None => pb::AdminRole::None,
            Role::Viewer => pb::AdminRole::Viewer,
            Role::Operator => pb::AdminRole::Operator,
            Role::Admin => pb::AdminRole::Admin,
        };
        Ok(Response::new(pb::WhoAmIResponse {
            auth_enabled: true,
            principal: name.to_string(),
            email: caller.email.clone().unwrap_or_default(),
            role: role as i32,
            expires_at: caller
                .expires_at
                .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default(),
        }))
    }

    async fn list_pattern_logs(
        &self,
        request: Request<pb::ListPatternLogsRequest>,
    ) -> Result<Response<pb::ListPatternLogsResponse>, Status> {
        logs::list(&self.state, request.into_inner()).map(Response::new)
    }

    type WatchPatternLogsStream = logs::LineStream;

    async fn watch_pattern_logs(
        &self,
        request: Request<pb::WatchPatternLogsRequest>,
    ) -> Result<Response<Self::WatchPatternLogsStream>, Status> {
        logs::watch(&self.state, request.into_inner()).map(Response::new)
    }

    async fn apply_namespace(
        &self,
        request: Request<pb::ApplyNamespaceRequest>,
    ) -> Result<Response<ReloadConfigResponse>, Status> {
        self.apply_namespace_call(request).await
    }

    async fn delete_namespace(
        &self,
        request: Request<pb::DeleteNamespaceRequest>,
    ) -> Result<Response<ReloadConfigResponse>, Status> {
        self.delete_namespace_call(request).await
    }

    async fn get_exemplars(
        &self,
        request: Request<pb::GetExemplarsRequest>,
    ) -> Result<Response<pb::GetExemplarsResponse>, Status> {
        Ok(Response::new(exemplars::get(
            &self.state,
            request.into_inner(),
        )?))
    }
}

fn info(ns: &Namespace, traffic: &WindowSnapshot) -> PatternInfo {
    let status = ns.status();
    let spec = ns.spec();
    PatternInfo {
        namespace: ns.name().to_string(),
        pattern: spec.config.pattern.as_str().to_string(),
        backend: spec.config.backend_label(),
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
        binary: spec.binary.display().to_string(),
        version: status.version,
        traffic: Some(TrafficSummary {
            rps: traffic.rps,
            error_rate: traffic.error_rate,
            p50_us: traffic.p50_us,
            p90_us: traffic.p90_us,
            p99_us: traffic.p99_us,
            max_us: traffic.max_us,
            count: traffic.count,
            total: traffic.total,
            client_error_rate: traffic.client_error_rate,
            errors: traffic.errors,
            client_errors: traffic.client_errors,
        }),
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

fn event(e: &Event) -> pb::Event {
    pb::Event {
        seq: e.seq,
        timestamp_ms: epoch_ms(e.at),
        namespace: e.namespace.clone(),
        kind: event_kind(e.kind) as i32,
        reason: e.reason.clone(),
        pid: e.pid.unwrap_or_default(),
        actor: e.actor.clone(),
    }
}

fn event_kind(kind: EventKind) -> pb::EventKind {
    match kind {
        EventKind::PatternStarted => pb::EventKind::PatternStarted,
        EventKind::PatternExited => pb::EventKind::PatternExited,
        EventKind::PatternRestarting => pb::EventKind::PatternRestarting,
        EventKind::HealthChanged => pb::EventKind::HealthChanged,
        EventKind::NamespaceFailed => pb::EventKind::NamespaceFailed,
        EventKind::ReloadStarted => pb::EventKind::ReloadStarted,
        EventKind::ReloadSucceeded => pb::EventKind::ReloadSucceeded,
        EventKind::ReloadFailed => pb::EventKind::ReloadFailed,
        EventKind::ConfigReloaded => pb::EventKind::ConfigReloaded,
        EventKind::ConfigReloadFailed => pb::EventKind::ConfigReloadFailed,
        EventKind::PatternStopped => pb::EventKind::PatternStopped,
        EventKind::RestartRequested => pb::EventKind::RestartRequested,
        EventKind::NamespaceAdded => pb::EventKind::NamespaceAdded,
        EventKind::NamespaceRemoved => pb::EventKind::NamespaceRemoved,
        EventKind::AdminAction => pb::EventKind::AdminAction,
    }
}

fn epoch_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
