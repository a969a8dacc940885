//! What a run sends. A target knows its operations, how to get a path ready
//! before measuring (write every key; open the subscribers), how to issue
//! request `seq` over a [`Transport`], what its floor server answers, which
//! pattern serves it, and which backend server it needs.
//!
//! Targets: [`kv`] and [`pubsub`]. A `registry` target joins as a variant
//! here, a module beside them, and a subcommand in [`crate::cli`].

pub(crate) mod kv;
pub(crate) mod pubsub;

use std::time::{Duration, Instant};

use tonic::service::Routes;

use crate::{
    BenchError,
    config::{Backend, TargetSettings},
    load::Req,
    paths::PathKind,
    report::PubsubReport,
    server_process::Kind,
    transport::Transport,
};

pub(crate) enum Target {
    Kv(kv::KvTarget),
    Pubsub(pubsub::PubsubTarget),
}

/// What a path keeps between getting ready and the end of its load.
pub(crate) enum PathState {
    Kv,
    Pubsub(pubsub::Session),
}

impl Target {
    pub(crate) fn new(settings: &TargetSettings) -> Self {
        match settings {
            TargetSettings::Kv(kv) => Self::Kv(kv::KvTarget::new(kv.clone())),
            TargetSettings::Pubsub(p) => Self::Pubsub(pubsub::PubsubTarget::new(p.clone())),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Kv(_) => "kv",
            Self::Pubsub(_) => "pubsub",
        }
    }

    /// One line saying what is sent, for the report header.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Kv(kv) => kv.describe(),
            Self::Pubsub(p) => p.describe(),
        }
    }

    /// The pattern binary the bench starts for the `pattern` path and names
    /// in its own proxy's config.
    pub(crate) fn pattern_binary(&self) -> &'static str {
        match self {
            Self::Kv(kv) => kv.pattern_binary(),
            Self::Pubsub(p) => p.pattern_binary(),
        }
    }

    /// Extra flags for that binary when the bench runs it by hand: its
    /// backend's config, if not the defaults.
    pub(crate) fn pattern_args(&self) -> Vec<String> {
        let config = match self {
            Self::Kv(kv) => kv.pattern_config(),
            Self::Pubsub(p) => p.pattern_config(),
        };
        config.map_or_else(Vec::new, |c| vec!["--config".into(), c.to_string()])
    }

    /// The store behind the pattern.
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Kv(kv) => kv.backend(),
            Self::Pubsub(p) => p.backend(),
        }
    }

    /// The server the backend needs, which a run starts once for every
    /// path (a cluster of them when the backend is a cluster).
    pub(crate) fn backend_server(&self) -> Option<Kind> {
        match self.backend() {
            Backend::Memstore => None,
            Backend::Redis | Backend::RedisCluster => Some(Kind::Redis),
            Backend::Nats | Backend::NatsCluster => Some(Kind::Nats),
        }
    }

    /// The paths a run takes when `--paths` is not given.
    pub(crate) fn default_paths(&self) -> &'static [PathKind] {
        match (self, self.backend()) {
            (Self::Kv(_), Backend::Redis | Backend::RedisCluster) => &PathKind::DEFAULT_REDIS,
            (Self::Kv(_), _) => &PathKind::DEFAULT,
            (Self::Pubsub(_), Backend::Nats | Backend::NatsCluster) => &PathKind::DEFAULT_NATS,
            (Self::Pubsub(_), _) => &PathKind::DEFAULT_PUBSUB,
        }
    }

    /// Tells the target where the run's backend servers are, once they
    /// are up: one URL, or every node of a cluster.
    pub(crate) fn set_backend_urls(&mut self, urls: &[String]) {
        match self {
            Self::Kv(kv) => kv.set_redis_urls(urls),
            Self::Pubsub(p) => p.set_nats_urls(urls),
        }
    }

    /// Where the run's backend servers are (the `redis` and `nats` paths go
    /// straight to them); empty without one.
    pub(crate) fn backend_urls(&self) -> &[String] {
        match self {
            Self::Kv(kv) => kv.redis_urls(),
            Self::Pubsub(p) => p.nats_urls(),
        }
    }

    /// The `namespaces:` list of the config the bench's own proxy runs with.
    pub(crate) fn proxy_config_yaml(&self, namespace: &str) -> String {
        match self {
            Self::Kv(kv) => kv.proxy_config_yaml(namespace),
            Self::Pubsub(p) => p.proxy_config_yaml(namespace),
        }
    }

    /// The in-process server of the `floor` path: the target's service
    /// answering at once, doing no work; `None` when the target has none.
    pub(crate) fn floor_routes(&self) -> Option<Routes> {
        match self {
            Self::Kv(kv) => Some(kv.floor_routes()),
            Self::Pubsub(_) => None,
        }
    }

    pub(crate) fn has_floor(&self) -> bool {
        matches!(self, Self::Kv(_))
    }

    /// Connections a path needs besides the publishers' or callers': one
    /// per PubSub subscriber.
    pub(crate) fn listeners(&self) -> usize {
        match self {
            Self::Kv(_) => 0,
            Self::Pubsub(p) => p.subscribers(),
        }
    }

    /// Gets a path ready to measure: KeyValue writes every key; PubSub opens
    /// its subscribers on `listeners` and waits until each is subscribed.
    pub(crate) async fn prepare(
        &self,
        transport: &Transport,
        listeners: Option<&Transport>,
    ) -> Result<PathState, BenchError> {
        match (self, transport) {
            (Self::Kv(kv), Transport::Grpc(pool)) => {
                kv.populate(pool).await.map(|()| PathState::Kv)
            }
            (Self::Kv(kv), Transport::Redis(pool)) => {
                kv.populate_redis(pool).await.map(|()| PathState::Kv)
            }
            (Self::Pubsub(p), _) => {
                let listeners = listeners
                    .ok_or_else(|| BenchError::Load("no subscriber connections".into()))?;
                p.prepare(transport, listeners).await.map(PathState::Pubsub)
            }
            (Self::Kv(_), Transport::Nats(_)) => {
                Err(BenchError::Load("KeyValue has no NATS path".into()))
            }
        }
    }

    /// Issues request `req`; a failure is the name of its status code.
    pub(crate) async fn call(
        &self,
        transport: &Transport,
        state: &PathState,
        req: Req,
    ) -> Result<(), &'static str> {
        match (self, transport, state) {
            (Self::Kv(kv), Transport::Grpc(pool), _) => kv.call(pool, req).await,
            (Self::Kv(kv), Transport::Redis(pool), _) => kv.call_redis(pool, req).await,
            (Self::Pubsub(p), _, PathState::Pubsub(session)) => {
                p.call(transport, session, req).await
            }
            _ => Err("UNIMPLEMENTED"),
        }
    }
}

impl PathState {
    /// Load's measured window starts at `measure_start`.
    pub(crate) fn begin(&self, measure_start: Instant) {
        match self {
            Self::Kv => {}
            Self::Pubsub(session) => session.begin(measure_start),
        }
    }

    /// Once load has ended: PubSub waits for the last deliveries (at most
    /// `timeout`) and reports what the subscribers received.
    pub(crate) async fn finish(
        &self,
        publish_elapsed: Duration,
        timeout: Duration,
    ) -> Result<Option<PubsubReport>, BenchError> {
        match self {
            Self::Kv => Ok(None),
            Self::Pubsub(session) => session.finish(publish_elapsed, timeout).await.map(Some),
        }
    }
}
