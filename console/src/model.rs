//! The console's domain types: what the admin API reports, converted from the
//! wire types once, in [`crate::client`]. Everything past the client (state,
//! update, view) reads these, never `prism_proto` types.

mod log_line;

use std::collections::BTreeMap;

use prism_proto::{admin::v1 as pb, lifecycle::v1::HealthStatus as PbHealthStatus};

mod exemplar;

pub(crate) use exemplar::{Exemplar, Exemplars};
pub(crate) use log_line::LogLine;

/// One `ListPatternsResponse`: every namespace at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Snapshot {
    pub patterns: Vec<Pattern>,
    /// Data-plane calls in flight, all namespaces together.
    pub in_flight: u64,
    pub proxy: Option<ProxyInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProxyInfo {
    pub version: String,
    pub listen: String,
    pub admin_listen: String,
    pub uptime_ms: u64,
    pub config_path: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Pattern {
    pub namespace: String,
    pub pattern: String,
    pub backend: String,
    pub state: State,
    pub health: Health,
    /// 0 when no process runs.
    pub pid: u32,
    pub endpoint: String,
    pub uptime_ms: u64,
    pub restart_count: u32,
    pub last_error: String,
    pub binary: String,
    pub version: String,
    /// `None` when the proxy does not report traffic figures.
    pub traffic: Option<Traffic>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum State {
    #[default]
    Unknown,
    Starting,
    Running,
    Restarting,
    Draining,
    Stopped,
    Failed,
}

impl State {
    /// Whether a process of this state has been serving since it started,
    /// so its uptime means something (a FAILED namespace's retry, or a
    /// process still starting, has none).
    pub(crate) fn has_uptime(self) -> bool {
        matches!(self, State::Running | State::Draining)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "UNKNOWN",
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Restarting => "RESTARTING",
            State::Draining => "DRAINING",
            State::Stopped => "STOPPED",
            State::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum HealthStatus {
    #[default]
    Unknown,
    Healthy,
    Degraded,
    Unhealthy,
}

impl HealthStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Unknown => "UNKNOWN",
            HealthStatus::Healthy => "HEALTHY",
            HealthStatus::Degraded => "DEGRADED",
            HealthStatus::Unhealthy => "UNHEALTHY",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Health {
    pub status: HealthStatus,
    pub message: String,
    /// Sorted, so the detail view lists them in a stable order.
    pub details: BTreeMap<String, String>,
}

/// Live traffic over the proxy's sliding window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Traffic {
    pub rps: f64,
    /// 0..1, server-side failures only.
    pub error_rate: f64,
    /// 0..1, caller outcomes (NOT_FOUND, INVALID_ARGUMENT, …), shown apart.
    pub client_error_rate: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub count: u64,
    pub total: u64,
}

/// `GetLatency` for one namespace (and operation).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Latency {
    pub namespace: String,
    /// Empty: every operation together.
    pub operation: String,
    pub window_seconds: u32,
    pub count: u64,
    pub min_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub buckets: Vec<Bucket>,
    pub operations: Vec<String>,
    pub rps: f64,
    pub error_rate: f64,
    /// Requests per second for each of the last seconds, oldest first.
    pub rps_history: Vec<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// Inclusive upper bound, microseconds.
    pub upper_bound_us: u64,
    pub count: u64,
}

/// One entry of the proxy's event log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LogEvent {
    /// The proxy's event sequence number (0 from a proxy without them).
    pub seq: u64,
    pub timestamp_ms: i64,
    /// Empty for proxy-wide events.
    pub namespace: String,
    /// The `EventKind` name, e.g. `PATTERN_STARTED`.
    pub kind: String,
    pub reason: String,
    pub pid: u32,
}

/// Why an admin call failed, reduced to what the console acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RpcError {
    /// The proxy does not implement the call (yet): degrade, do not retry.
    Unimplemented,
    /// Anything else, as a message for the operator.
    Failed(String),
}

/// What `UNAUTHENTICATED` means to the operator, whatever the proxy said.
pub(crate) const UNAUTHENTICATED: &str = "token expired or invalid — run prism-console login";

impl RpcError {
    pub(crate) fn from_status(status: &tonic::Status) -> Self {
        if status.code() == tonic::Code::Unimplemented {
            RpcError::Unimplemented
        } else if status.code() == tonic::Code::Unauthenticated {
            RpcError::Failed(UNAUTHENTICATED.to_string())
        } else if status.message().is_empty() {
            RpcError::Failed(format!("{:?}", status.code()))
        } else {
            RpcError::Failed(format!("{:?}: {}", status.code(), status.message()))
        }
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::Unimplemented => f.write_str("not implemented by this proxy"),
            RpcError::Failed(message) => f.write_str(message),
        }
    }
}

/// What the admin plane lets the caller do, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Role {
    None,
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::None => "no role",
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// Who the proxy takes the console's caller for (`WhoAmI`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// False: the proxy runs without `auth:`; everyone may do everything.
    pub auth_enabled: bool,
    /// e.g. `sub:…`; empty with auth off.
    pub principal: String,
    pub email: String,
    pub role: Role,
    /// Unix seconds; 0 when unknown.
    pub expires_at: i64,
}

impl Identity {
    /// May this caller use an action that needs `role`?
    pub(crate) fn allows(&self, role: Role) -> bool {
        !self.auth_enabled || self.role >= role
    }
}

impl From<pb::WhoAmIResponse> for Identity {
    fn from(r: pb::WhoAmIResponse) -> Self {
        let role = match r.role() {
            pb::AdminRole::Viewer => Role::Viewer,
            pb::AdminRole::Operator => Role::Operator,
            pb::AdminRole::Admin => Role::Admin,
            pb::AdminRole::None | pb::AdminRole::Unspecified => Role::None,
        };
        Self {
            auth_enabled: r.auth_enabled,
            principal: r.principal,
            email: r.email,
            role,
            expires_at: r.expires_at,
        }
    }
}

impl From<pb::ListPatternsResponse> for Snapshot {
    fn from(r: pb::ListPatternsResponse) -> Self {
        Self {
            patterns: r.patterns.into_iter().map(Pattern::from).collect(),
            in_flight: r.in_flight,
            proxy: r.proxy.map(|p| ProxyInfo {
                version: p.version,
                listen: p.listen,
                admin_listen: p.admin_listen,
                uptime_ms: p.uptime_ms,
                config_path: p.config_path,
            }),
        }
    }
}

impl From<pb::PatternInfo> for Pattern {
    fn from(p: pb::PatternInfo) -> Self {
        let state = p.state().into();
        Self {
            namespace: p.namespace,
            pattern: p.pattern,
            backend: p.backend,
            state,
            health: p.health.map(Health::from).unwrap_or_default(),
            pid: p.pid,
            endpoint: p.endpoint,
            uptime_ms: p.uptime_ms,
            restart_count: p.restart_count,
            last_error: p.last_error,
            binary: p.binary,
            version: p.version,
            traffic: p.traffic.map(|t| Traffic {
                rps: t.rps,
                error_rate: t.error_rate,
                client_error_rate: t.client_error_rate,
                p50_us: t.p50_us,
                p90_us: t.p90_us,
                p99_us: t.p99_us,
                max_us: t.max_us,
                count: t.count,
                total: t.total,
            }),
        }
    }
}

impl From<pb::PatternState> for State {
    fn from(s: pb::PatternState) -> Self {
        match s {
            pb::PatternState::Unspecified => State::Unknown,
            pb::PatternState::Starting => State::Starting,
            pb::PatternState::Running => State::Running,
            pb::PatternState::Restarting => State::Restarting,
            pb::PatternState::Draining => State::Draining,
            pb::PatternState::Stopped => State::Stopped,
            pb::PatternState::Failed => State::Failed,
        }
    }
}

impl From<pb::Health> for Health {
    fn from(h: pb::Health) -> Self {
        let status = match h.status() {
            PbHealthStatus::HealthUnknown => HealthStatus::Unknown,
            PbHealthStatus::Healthy => HealthStatus::Healthy,
            PbHealthStatus::Degraded => HealthStatus::Degraded,
            PbHealthStatus::Unhealthy => HealthStatus::Unhealthy,
        };
        Self {
            status,
            message: h.message,
            details: h.details.into_iter().collect(),
        }
    }
}

impl From<pb::LatencyHistogram> for Latency {
    fn from(h: pb::LatencyHistogram) -> Self {
        Self {
            namespace: h.namespace,
            operation: h.operation,
            window_seconds: h.window_seconds,
            count: h.count,
            min_us: h.min_us,
            max_us: h.max_us,
            mean_us: h.mean_us,
            p50_us: h.p50_us,
            p90_us: h.p90_us,
            p99_us: h.p99_us,
            p999_us: h.p999_us,
            buckets: h
                .buckets
                .into_iter()
                .map(|b| Bucket {
                    upper_bound_us: b.upper_bound_us,
                    count: b.count,
                })
                .collect(),
            operations: h.operations,
            rps: h.rps,
            error_rate: h.error_rate,
            rps_history: h.rps_history,
        }
    }
}

impl From<pb::Event> for LogEvent {
    fn from(e: pb::Event) -> Self {
        let kind = match pb::EventKind::try_from(e.kind) {
            Ok(kind) => kind.as_str_name().to_string(),
            Err(_) => format!("EVENT_{}", e.kind),
        };
        Self {
            seq: e.seq,
            timestamp_ms: e.timestamp_ms,
            namespace: e.namespace,
            kind,
            reason: e.reason,
            pid: e.pid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_a_pattern_with_health_and_traffic() {
        let info = pb::PatternInfo {
            namespace: "default".into(),
            state: pb::PatternState::Failed as i32,
            health: Some(pb::Health {
                status: PbHealthStatus::Degraded as i32,
                message: "slow".into(),
                details: [("keys".to_string(), "3".to_string())].into(),
            }),
            pid: 42,
            traffic: Some(pb::TrafficSummary {
                rps: 1.5,
                p99_us: 900,
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = Pattern::from(info);
        assert_eq!(p.state, State::Failed);
        assert_eq!(p.health.status, HealthStatus::Degraded);
        assert_eq!(p.health.details["keys"], "3");
        assert_eq!(p.traffic.unwrap().p99_us, 900);
    }

    #[test]
    fn names_event_kinds_and_tolerates_unknown_ones() {
        let known = LogEvent::from(pb::Event {
            kind: pb::EventKind::PatternStarted as i32,
            ..Default::default()
        });
        assert_eq!(known.kind, "PATTERN_STARTED");
        let unknown = LogEvent::from(pb::Event {
            kind: 999,
            ..Default::default()
        });
        assert_eq!(unknown.kind, "EVENT_999");
    }

    #[test]
    fn unimplemented_is_recognised() {
        let e = RpcError::from_status(&tonic::Status::unimplemented("GetLatency"));
        assert_eq!(e, RpcError::Unimplemented);
        let e = RpcError::from_status(&tonic::Status::not_found("namespace `x` not found"));
        assert_eq!(e.to_string(), "NotFound: namespace `x` not found");
        // Whatever the proxy says, the operator reads what to do.
        let e = RpcError::from_status(&tonic::Status::unauthenticated("token has expired"));
        assert_eq!(
            e.to_string(),
            "token expired or invalid — run prism-console login"
        );
    }
}
