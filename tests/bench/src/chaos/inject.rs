//! Carrying out one fault: SIGKILL of a pattern (its PID from the admin
//! API), a backend server killed and started again on the same port and
//! data after an outage, an admin `ReloadPattern`, or the watched config
//! file replaced (write a sibling, rename over: what editors do) with an
//! equivalent config.

use std::{path::PathBuf, time::Duration};

use prism_harness::{NatsServer, RedisServer, procs};
use prism_proto::admin::v1::{
    ListPatternsRequest, ReloadPatternRequest, admin_client::AdminClient,
};
use serde::Serialize;
use tonic::transport::Channel;

use super::{calls::Surface, plan::FaultKind, plan::Planned};

/// Attempts to start a backend server again before giving up.
const RESTART_ATTEMPTS: usize = 3;

/// One namespace under load.
#[derive(Debug, Clone)]
pub struct Namespace {
    pub name: String,
    pub surface: Surface,
}

/// A fault as it was carried out.
#[derive(Debug, Clone, Serialize)]
pub struct Injected {
    pub kind: FaultKind,
    /// The namespace or server it hit.
    pub target: String,
    /// What was done, e.g. `pid 123 killed`.
    pub detail: String,
    /// Why it could not be carried out, if it could not.
    pub error: Option<String>,
    /// The namespaces whose callers it may affect.
    pub surfaces: Vec<Surface>,
    /// For a server restart: ms from the fault until the server answered
    /// again.
    pub back_after_ms: Option<u64>,
}

pub struct Injector {
    pub admin: AdminClient<Channel>,
    pub config_path: PathBuf,
    /// The config, written in one of two equivalent forms per rewrite.
    pub config: Box<dyn Fn(usize) -> String + Send>,
    pub redis: RedisServer,
    pub nats: NatsServer,
    pub namespaces: Vec<Namespace>,
    pub outage: Duration,
    pub rewrites: usize,
}

impl Injector {
    pub async fn inject(&mut self, fault: &Planned) -> Injected {
        let namespace = self.namespaces[fault.namespace % self.namespaces.len()].clone();
        let (target, surfaces) = match fault.kind {
            FaultKind::PatternKill | FaultKind::HotReload => {
                (namespace.name.clone(), vec![namespace.surface])
            }
            FaultKind::RedisRestart => ("redis-server".into(), vec![Surface::Redis]),
            FaultKind::NatsRestart => ("nats-server".into(), vec![Surface::Jetstream]),
            FaultKind::ConfigRewrite => ("config file".into(), Surface::ALL.to_vec()),
        };
        let started = std::time::Instant::now();
        let done = match fault.kind {
            FaultKind::PatternKill => self.kill_pattern(&namespace.name).await,
            FaultKind::HotReload => self.reload(&namespace.name).await,
            FaultKind::RedisRestart => {
                let outage = self.outage;
                restart(&mut self.redis, outage).await
            }
            FaultKind::NatsRestart => {
                let outage = self.outage;
                restart(&mut self.nats, outage).await
            }
            FaultKind::ConfigRewrite => self.rewrite_config(),
        };
        let back_after_ms = matches!(fault.kind, FaultKind::RedisRestart | FaultKind::NatsRestart)
            .then(|| started.elapsed().as_millis() as u64);
        let (detail, error) = match done {
            Ok(detail) => (detail, None),
            Err(error) => (String::new(), Some(error)),
        };
        Injected {
            kind: fault.kind,
            target,
            detail,
            error,
            surfaces,
            back_after_ms,
        }
    }

    async fn kill_pattern(&mut self, namespace: &str) -> Result<String, String> {
        let patterns = self
            .admin
            .list_patterns(ListPatternsRequest {})
            .await
            .map_err(|s| format!("ListPatterns: {}", s.message()))?
            .into_inner()
            .patterns;
        let pid = patterns
            .iter()
            .find(|p| p.namespace == namespace)
            .map(|p| p.pid)
            .filter(|&pid| pid != 0)
            .ok_or_else(|| format!("no running pattern for {namespace}"))?;
        procs::kill(pid).map_err(|e| e.to_string())?;
        Ok(format!("pid {pid} killed"))
    }

    async fn reload(&mut self, namespace: &str) -> Result<String, String> {
        let reply = self
            .admin
            .reload_pattern(ReloadPatternRequest {
                namespace: namespace.to_string(),
            })
            .await
            .map_err(|s| format!("ReloadPattern: {:?}: {}", s.code(), s.message()))?
            .into_inner();
        Ok(format!("pid {} -> {}", reply.old_pid, reply.new_pid))
    }

    fn rewrite_config(&mut self) -> Result<String, String> {
        self.rewrites += 1;
        let yaml = (self.config)(self.rewrites);
        let sibling = self.config_path.with_extension("yaml.new");
        std::fs::write(&sibling, yaml)
            .and_then(|()| std::fs::rename(&sibling, &self.config_path))
            .map_err(|e| format!("writing {}: {e}", self.config_path.display()))?;
        Ok(format!("rewrite {} (equivalent)", self.rewrites))
    }
}

/// Kills the server, waits out the outage, starts it on the same port and
/// folder.
async fn restart<L: prism_harness::Launch>(
    server: &mut prism_harness::ServerProcess<L>,
    outage: Duration,
) -> Result<String, String> {
    let old = server.pid().unwrap_or_default();
    server.kill();
    tokio::time::sleep(outage).await;
    let mut last = String::new();
    for _ in 0..RESTART_ATTEMPTS {
        match server.restart().await {
            Ok(()) => {
                let new = server.pid().unwrap_or_default();
                return Ok(format!(
                    "pid {old} killed, down {:.1}s, pid {new} on port {}",
                    outage.as_secs_f64(),
                    server.port()
                ));
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("not started again: {last}"))
}
