//! The proxy's live view of its namespaces: for each, its spec (config,
//! binary, limits), where calls go right now (the route), and a status the
//! admin API reports. The supervisor writes; the data plane and the admin
//! API read.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use prism_proto::{
    lifecycle::v1::{HealthCheckResponse, HealthStatus},
    limits::Limits,
};

use crate::{
    activity::Activity,
    channel::PatternChannel,
    config::{NamespaceConfig, PatternKind},
    drain::{Drain, InFlight},
    error::ProxyError,
};

/// Where a namespace's pattern process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Starting,
    Running,
    Restarting,
    Draining,
    Stopped,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Health {
    pub status: HealthStatus,
    pub message: String,
    pub details: BTreeMap<String, String>,
    /// The backend the pattern is alive but cannot reach (e.g. "redis").
    pub unreachable: Option<String>,
}

/// What a health check says about a live process: whether to route calls to
/// it, and whether it needs a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// HEALTHY or DEGRADED: calls go to it.
    Ready,
    /// Alive but its backend is down: calls fail fast, no restart.
    BackendDown,
    /// UNHEALTHY on its own account, or no answer: restart it if it stays so.
    Broken,
}

impl Health {
    pub(crate) fn unhealthy(message: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Unhealthy,
            message: message.into(),
            details: BTreeMap::new(),
            unreachable: None,
        }
    }

    /// HEALTHY and DEGRADED still serve traffic.
    pub(crate) fn is_serving(&self) -> bool {
        matches!(self.status, HealthStatus::Healthy | HealthStatus::Degraded)
    }

    pub(crate) fn readiness(&self) -> Readiness {
        if self.is_serving() {
            Readiness::Ready
        } else if self.unreachable.is_some() {
            Readiness::BackendDown
        } else {
            Readiness::Broken
        }
    }
}

impl From<HealthCheckResponse> for Health {
    fn from(r: HealthCheckResponse) -> Self {
        let status = match HealthStatus::try_from(r.status) {
            Ok(HealthStatus::Healthy) => HealthStatus::Healthy,
            Ok(HealthStatus::Degraded) => HealthStatus::Degraded,
            // Anything else, including values from a newer pattern, is not fit to serve.
            _ => HealthStatus::Unhealthy,
        };
        let mut details: BTreeMap<_, _> = r.details.into_iter().collect();
        let unreachable = (!r.unreachable_backend.is_empty()).then_some(r.unreachable_backend);
        if let Some(backend) = &unreachable {
            // Shown by the admin API and the console with the other details.
            details.insert("unreachable_backend".into(), backend.clone());
        }
        Self {
            status,
            message: r.message,
            details,
            unreachable,
        }
    }
}

/// What the admin API shows for one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub state: State,
    pub health: Health,
    pub pid: Option<u32>,
    pub endpoint: String,
    pub started_at: Option<Instant>,
    pub restart_count: u32,
    pub last_error: Option<String>,
    pub version: String,
    /// What the running pattern said it can do (`Initialize` metadata).
    pub capabilities: Vec<String>,
}

/// How a namespace is served: replaced whole on a config reload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spec {
    pub config: NamespaceConfig,
    pub binary: PathBuf,
    pub limits: Limits,
}

impl Spec {
    pub(crate) fn new(config: NamespaceConfig, binary: PathBuf) -> Self {
        Self {
            limits: config.limits(),
            config,
            binary,
        }
    }
}

/// One live pattern process calls can be sent to. Counting the calls on it
/// lets a hot reload wait for them before stopping the process.
pub(crate) struct Route {
    pub channel: PatternChannel,
    pub calls: Drain,
}

impl Route {
    pub(crate) fn new(channel: PatternChannel) -> Arc<Self> {
        Arc::new(Self {
            channel,
            calls: Drain::default(),
        })
    }
}

/// A routed call: the channel to use, the spec it was checked against, and
/// its place in the route's in-flight count.
pub(crate) struct Routed {
    pub channel: PatternChannel,
    pub spec: Arc<Spec>,
    _call: InFlight,
}

pub(crate) struct Namespace {
    name: String,
    /// Encoded bytes of the unary calls being forwarded (see [`Namespace::admit`]).
    in_flight_bytes: AtomicUsize,
    spec: RwLock<Arc<Spec>>,
    route: RwLock<Option<Arc<Route>>>,
    status: Mutex<Status>,
    activity: Arc<Activity>,
}

impl Namespace {
    pub(crate) fn new(spec: Spec, activity: Arc<Activity>) -> Self {
        Self {
            name: spec.config.name.clone(),
            in_flight_bytes: AtomicUsize::new(0),
            spec: RwLock::new(Arc::new(spec)),
            route: RwLock::new(None),
            status: Mutex::new(Status {
                state: State::Starting,
                health: Health::unhealthy("starting"),
                pid: None,
                endpoint: String::new(),
                started_at: None,
                restart_count: 0,
                last_error: None,
                version: String::new(),
                capabilities: Vec::new(),
            }),
            activity,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn spec(&self) -> Arc<Spec> {
        self.spec.read().expect("spec lock").clone()
    }

    pub(crate) fn set_spec(&self, spec: Arc<Spec>) {
        *self.spec.write().expect("spec lock") = spec;
        self.activity.touch();
    }

    /// Takes `bytes` of the namespace's in-flight budget (`limit`,
    /// `limits.max_in_flight_bytes`) until the returned guard is dropped;
    /// `Overloaded` if they do not fit beside the calls already in flight.
    pub(crate) fn admit(&self, bytes: usize, limit: usize) -> Result<Admitted<'_>, ProxyError> {
        let before = self.in_flight_bytes.fetch_add(bytes, Ordering::AcqRel);
        if before > 0 && before.saturating_add(bytes) > limit {
            self.in_flight_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(ProxyError::Overloaded {
                namespace: self.name.clone(),
                in_flight: before,
                limit,
            });
        }
        Ok(Admitted {
            counter: &self.in_flight_bytes,
            bytes,
        })
    }

    /// Takes `bytes` more of the in-flight budget for a request body still
    /// arriving, whose call already holds `held`; given back with
    /// [`Namespace::release`]. Refused like [`Namespace::admit`], the call's
    /// own bytes not counting as others'.
    pub(crate) fn reserve(
        &self,
        bytes: usize,
        held: usize,
        limit: usize,
    ) -> Result<(), ProxyError> {
        let before = self.in_flight_bytes.fetch_add(bytes, Ordering::AcqRel);
        if before > held && before.saturating_add(bytes) > limit {
            self.in_flight_bytes.fetch_sub(bytes, Ordering::AcqRel);
            return Err(ProxyError::Overloaded {
                namespace: self.name.clone(),
                in_flight: before,
                limit,
            });
        }
        Ok(())
    }

    /// Gives back bytes taken with [`Namespace::reserve`].
    pub(crate) fn release(&self, bytes: usize) {
        self.in_flight_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// The route to send a call of a `kind` service on, or why there is none.
    pub(crate) fn route(&self, kind: PatternKind) -> Result<Routed, ProxyError> {
        let serves = self.spec().config.pattern;
        if serves != kind {
            return Err(ProxyError::WrongPattern {
                namespace: self.name.clone(),
                serves: serves.as_str(),
                called: kind.as_str(),
            });
        }
        if let Some(route) = self.route.read().expect("route lock").as_ref() {
            // Entered under the read lock: a route swapped out after this
            // point still counts this call before it is stopped.
            if let Ok(call) = route.calls.enter() {
                return Ok(Routed {
                    channel: route.channel.clone(),
                    spec: self.spec(),
                    _call: call,
                });
            }
        }
        let status = self.status.lock().expect("status lock");
        if let (State::Running, Some(backend)) = (status.state, &status.health.unreachable) {
            return Err(ProxyError::BackendUnreachable {
                namespace: self.name.clone(),
                backend: backend.clone(),
                reason: status.health.message.clone(),
            });
        }
        let reason = match status.state {
            State::Failed => format!(
                "failed: {}",
                status.last_error.as_deref().unwrap_or("unknown error")
            ),
            State::Stopped | State::Draining => "stopped".to_string(),
            State::Starting => "starting; retry shortly".to_string(),
            State::Running | State::Restarting => "restarting; retry shortly".to_string(),
        };
        Err(ProxyError::NamespaceUnavailable {
            namespace: self.name.clone(),
            reason,
        })
    }

    /// Where calls go now, if anywhere.
    pub(crate) fn current_route(&self) -> Option<Arc<Route>> {
        self.route.read().expect("route lock").clone()
    }

    /// Replaces the route; returns the previous one so it can be drained.
    pub(crate) fn set_route(&self, route: Option<Arc<Route>>) -> Option<Arc<Route>> {
        std::mem::replace(&mut *self.route.write().expect("route lock"), route)
    }

    pub(crate) fn status(&self) -> Status {
        self.status.lock().expect("status lock").clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().expect("status lock"));
        self.activity.touch();
    }
}

/// Every namespace by name.
/// A call's share of its namespace's in-flight budget, given back on drop.
pub(crate) struct Admitted<'a> {
    counter: &'a AtomicUsize,
    bytes: usize,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[derive(Default)]
pub(crate) struct Namespaces {
    by_name: RwLock<HashMap<String, Arc<Namespace>>>,
}

impl Namespaces {
    pub(crate) fn insert(&self, ns: Arc<Namespace>) {
        self.by_name
            .write()
            .expect("namespaces lock")
            .insert(ns.name().to_string(), ns);
    }

    pub(crate) fn remove(&self, name: &str) -> Option<Arc<Namespace>> {
        self.by_name.write().expect("namespaces lock").remove(name)
    }

    pub(crate) fn get(&self, name: &str) -> Result<Arc<Namespace>, ProxyError> {
        self.by_name
            .read()
            .expect("namespaces lock")
            .get(name)
            .cloned()
            .ok_or_else(|| ProxyError::UnknownNamespace(name.to_string()))
    }

    /// All namespaces, sorted by name.
    pub(crate) fn list(&self) -> Vec<Arc<Namespace>> {
        let mut all: Vec<_> = self
            .by_name
            .read()
            .expect("namespaces lock")
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn ns() -> Namespace {
        Namespace::new(
            Spec::new(NamespaceConfig::default_memstore(), PathBuf::from("/x")),
            Arc::new(Activity::default()),
        )
    }

    #[test]
    fn no_route_while_starting_or_restarting_is_unavailable_saying_which() {
        let ns = ns();
        let status = tonic::Status::from(ns.route(PatternKind::Keyvalue).err().unwrap());
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "namespace `default` is unavailable: starting; retry shortly"
        );
        ns.update(|s| s.state = State::Restarting);
        let status = tonic::Status::from(ns.route(PatternKind::Keyvalue).err().unwrap());
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "namespace `default` is unavailable: restarting; retry shortly"
        );
    }

    #[test]
    fn a_running_namespace_whose_backend_is_down_names_the_backend() {
        let ns = ns();
        ns.update(|s| {
            s.state = State::Running;
            s.health = Health {
                unreachable: Some("redis".into()),
                ..Health::unhealthy("redis unreachable: connection refused")
            };
        });
        let status = tonic::Status::from(ns.route(PatternKind::Keyvalue).err().unwrap());
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "namespace `default`: backend redis unreachable (redis unreachable: connection refused)"
        );
    }

    #[test]
    fn readiness_tells_a_down_backend_from_a_broken_pattern() {
        let response = |status: HealthStatus, backend: &str| {
            Health::from(HealthCheckResponse {
                status: status as i32,
                unreachable_backend: backend.into(),
                ..Default::default()
            })
            .readiness()
        };
        assert_eq!(response(HealthStatus::Healthy, ""), Readiness::Ready);
        assert_eq!(response(HealthStatus::Degraded, "nats"), Readiness::Ready);
        assert_eq!(
            response(HealthStatus::Unhealthy, "redis"),
            Readiness::BackendDown
        );
        assert_eq!(response(HealthStatus::Unhealthy, ""), Readiness::Broken);
        let shown = Health::from(HealthCheckResponse {
            status: HealthStatus::Unhealthy as i32,
            unreachable_backend: "redis".into(),
            ..Default::default()
        });
        assert_eq!(shown.details["unreachable_backend"], "redis");
        assert_eq!(response(HealthStatus::HealthUnknown, ""), Readiness::Broken);
    }

    #[test]
    fn failed_namespace_reports_its_reason() {
        let ns = ns();
        ns.update(|s| {
            s.state = State::Failed;
            s.last_error = Some("pattern binary not found: /x".into());
        });
        let status = tonic::Status::from(ns.route(PatternKind::Keyvalue).err().unwrap());
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            status.message().contains("binary not found"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn the_in_flight_budget_refuses_what_does_not_fit_and_frees_on_drop() {
        let ns = ns();
        let big = ns.admit(1000, 100).expect("a call alone always fits");
        let err = ns.admit(1, 100).err().unwrap();
        assert_eq!(
            tonic::Status::from(err.clone()).code(),
            Code::ResourceExhausted
        );
        assert!(err.to_string().contains("max_in_flight_bytes"), "{err}");
        drop(big);
        let a = ns.admit(60, 100).unwrap();
        let b = ns.admit(40, 100).unwrap();
        assert!(ns.admit(1, 100).is_err(), "100 of 100 bytes in flight");
        drop((a, b));
        assert!(ns.admit(100, 100).is_ok());
    }

    #[tokio::test]
    async fn swapped_out_route_still_counts_its_calls() {
        let ns = ns();
        let channel = crate::channel::testing::peer().await.channel;
        ns.set_route(Some(Route::new(channel.clone())));
        let call = ns.route(PatternKind::Keyvalue).unwrap();
        let old = ns.set_route(Some(Route::new(channel))).unwrap();
        assert_eq!(old.calls.in_flight(), 1);
        drop(call);
        assert_eq!(old.calls.in_flight(), 0);
    }

    #[test]
    fn calling_the_wrong_interface_is_unimplemented() {
        let status = tonic::Status::from(ns().route(PatternKind::Pubsub).err().unwrap());
        assert_eq!(status.code(), Code::Unimplemented);
        assert!(
            status.message().contains("keyvalue"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn unknown_namespace_is_named() {
        let status = tonic::Status::from(Namespaces::default().get("nope").err().unwrap());
        assert_eq!(status.code(), Code::NotFound);
        assert!(status.message().contains("nope"));
    }

    #[test]
    fn unknown_health_values_are_unhealthy() {
        let h = Health::from(HealthCheckResponse {
            status: 42,
            ..Default::default()
        });
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert!(!h.is_serving());
    }
}
