//! What a run sends. A target knows its operations, how to pre-populate a
//! backend, how to issue request `seq` over a [`Transport`], what its floor
//! server answers, and which pattern serves it.
//!
//! Only `kv` exists. A `pubsub` or `registry` target joins as a variant
//! here, a module beside [`kv`], and a subcommand in [`crate::cli`].

pub mod kv;

use tonic::service::Routes;

use crate::{
    BenchError,
    config::{Backend, TargetSettings},
    load::Req,
    transport::Transport,
};

pub enum Target {
    Kv(kv::KvTarget),
}

impl Target {
    pub fn new(settings: &TargetSettings) -> Self {
        match settings {
            TargetSettings::Kv(kv) => Self::Kv(kv::KvTarget::new(kv.clone())),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Kv(_) => "kv",
        }
    }

    /// One line saying what is sent, for the report header.
    pub fn describe(&self) -> String {
        match self {
            Self::Kv(kv) => kv.describe(),
        }
    }

    /// The pattern binary the bench starts for the `pattern` path and names
    /// in its own proxy's config.
    pub fn pattern_binary(&self) -> &'static str {
        match self {
            Self::Kv(kv) => kv.pattern_binary(),
        }
    }

    /// Extra flags for that binary when the bench runs it by hand.
    pub fn pattern_args(&self) -> Vec<String> {
        match self {
            Self::Kv(kv) => kv.pattern_args(),
        }
    }

    /// The store behind the pattern.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Kv(kv) => kv.backend(),
        }
    }

    /// Tells the target where the run's Redis is, once it is up.
    pub fn set_redis_url(&mut self, url: &str) {
        match self {
            Self::Kv(kv) => kv.set_redis_url(url),
        }
    }

    pub fn redis_url(&self) -> Option<&str> {
        match self {
            Self::Kv(kv) => kv.redis_url(),
        }
    }

    /// The `namespaces:` list of the config the bench's own proxy runs with.
    pub fn proxy_config_yaml(&self, namespace: &str) -> String {
        match self {
            Self::Kv(kv) => kv.proxy_config_yaml(namespace),
        }
    }

    /// The in-process server of the `floor` path: the target's service
    /// answering at once, doing no work.
    pub fn floor_routes(&self) -> Routes {
        match self {
            Self::Kv(kv) => kv.floor_routes(),
        }
    }

    /// Writes whatever must exist before measuring (e.g. every key).
    pub async fn populate(&self, transport: &Transport) -> Result<(), BenchError> {
        match (self, transport) {
            (Self::Kv(kv), Transport::Grpc(pool)) => kv.populate(pool).await,
            (Self::Kv(kv), Transport::Redis(pool)) => kv.populate_redis(pool).await,
        }
    }

    /// Issues request `req`; a failure is the name of its status code.
    pub async fn call(&self, transport: &Transport, req: Req) -> Result<(), &'static str> {
        match (self, transport) {
            (Self::Kv(kv), Transport::Grpc(pool)) => kv.call(pool, req).await,
            (Self::Kv(kv), Transport::Redis(pool)) => kv.call_redis(pool, req).await,
        }
    }
}
