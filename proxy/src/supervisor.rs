//! Keeps every namespace's pattern process alive: spawn, wait for
//! readiness, `Initialize` → `Start`, poll health, restart with exponential
//! backoff and jitter when it dies or stays UNHEALTHY, give up (FAILED) after
//! too many consecutive failures, and stop everything in order on shutdown.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rand::Rng;
use tokio::{sync::watch, task::JoinSet};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    config::SupervisorConfig,
    namespace::{Health, Namespace, Namespaces, State},
    process::{Running, Spawned, StartError, describe_exit},
};

/// Owns the supervision tasks and the folder holding the pattern sockets.
pub struct Supervisor {
    tasks: JoinSet<()>,
    shutdown: watch::Sender<bool>,
    _socket_dir: tempfile::TempDir,
}

struct Context {
    config: SupervisorConfig,
    socket_dir: PathBuf,
    health: HealthReporter,
    /// Makes every socket path unique, so a new process never races an old one.
    generation: AtomicU64,
}

impl Supervisor {
    /// Starts supervising every namespace in `namespaces`.
    pub fn start(
        namespaces: &Namespaces,
        config: SupervisorConfig,
        health: HealthReporter,
    ) -> std::io::Result<Self> {
        let socket_dir = tempfile::Builder::new().prefix("prism-").tempdir()?;
        let context = Arc::new(Context {
            config,
            socket_dir: socket_dir.path().to_path_buf(),
            health,
            generation: AtomicU64::new(0),
        });
        let (shutdown, _) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for ns in namespaces.list() {
            tasks.spawn(supervise(ns, context.clone(), shutdown.subscribe()));
        }
        Ok(Self {
            tasks,
            shutdown,
            _socket_dir: socket_dir,
        })
    }

    /// Stops every pattern (`Stop`, then kill after the grace period) and
    /// waits until all are gone.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// How one run of a pattern process ended.
enum Ended {
    Shutdown,
    Crashed(String),
}

async fn supervise(ns: Arc<Namespace>, cx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let mut failures = 0u32;
    let mut first = true;
    loop {
        if *shutdown.borrow() {
            break;
        }
        ns.update(|s| {
            s.state = if first {
                State::Starting
            } else {
                State::Restarting
            };
        });
        let socket = cx.socket_path(ns.name());
        let started = tokio::select! {
            started = start(&ns, &socket, &cx.config) => started,
            _ = shutdown.changed() => break,
        };
        let ended = match started {
            Ok(running) => {
                let began = Instant::now();
                let ended = watch_running(&ns, running, &cx, &mut shutdown).await;
                if began.elapsed() >= cx.config.stable_after() {
                    failures = 0;
                }
                ended
            }
            Err(err) if err.is_permanent() => {
                fail(&ns, &cx, err.to_string()).await;
                return;
            }
            Err(err) => Ended::Crashed(err.to_string()),
        };
        let Ended::Crashed(reason) = ended else {
            break;
        };
        failures += 1;
        first = false;
        tracing::warn!(namespace = ns.name(), %reason, failures, "pattern failed");
        if failures >= cx.config.max_consecutive_failures {
            fail(
                &ns,
                &cx,
                format!("{failures} consecutive failures; last: {reason}"),
            )
            .await;
            return;
        }
        ns.update(|s| {
            s.state = State::Restarting;
            s.restart_count += 1;
            s.last_error = Some(reason);
        });
        let delay = backoff(failures, &cx.config, &mut rand::rng());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => break,
        }
    }
    ns.update(|s| {
        s.state = State::Stopped;
        s.pid = None;
        s.started_at = None;
    });
}

/// Spawn → connect → Initialize → Start, recording the pid as soon as it exists.
async fn start(
    ns: &Namespace,
    socket: &Path,
    config: &SupervisorConfig,
) -> Result<Running, StartError> {
    let spawned = Spawned::spawn(&ns.binary, socket)?;
    let pid = spawned.pid();
    ns.update(|s| {
        s.pid = Some(pid);
        s.endpoint = format!("unix:{}", socket.display());
    });
    let connected = spawned.connect(config.ready_timeout()).await?;
    connected.start(&ns.config, config.ready_timeout()).await
}

/// Routes to `running` and watches it until it exits, stays UNHEALTHY, or
/// the proxy shuts down.
async fn watch_running(
    ns: &Namespace,
    mut running: Running,
    cx: &Context,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended {
    let pid = running.pid;
    ns.update(|s| {
        s.state = State::Running;
        s.started_at = Some(Instant::now());
        s.version = running.metadata.version.clone();
    });
    ns.set_route(Some(running.channel.clone()));
    tracing::info!(namespace = ns.name(), pid, "pattern running");

    let mut tick = tokio::time::interval(cx.config.health_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unhealthy = 0u32;
    let ended = loop {
        tokio::select! {
            status = running.child.wait() => {
                ns.set_route(None);
                let how = status.map(describe_exit).unwrap_or_else(|e| e.to_string());
                break Ended::Crashed(format!("pattern process {pid} exited ({how})"));
            }
            _ = shutdown.changed() => break Ended::Shutdown,
            _ = tick.tick() => {
                let health = running.health(cx.config.health_timeout()).await;
                unhealthy = if health.is_serving() { 0 } else { unhealthy + 1 };
                cx.report(ns.name(), health.is_serving()).await;
                let message = health.message.clone();
                ns.update(|s| s.health = health);
                if unhealthy >= cx.config.unhealthy_threshold {
                    ns.set_route(None);
                    let _ = running.child.start_kill();
                    let _ = running.child.wait().await;
                    break Ended::Crashed(format!("UNHEALTHY {unhealthy} times in a row: {message}"));
                }
            }
        }
    };
    if let Ended::Shutdown = ended {
        ns.set_route(None);
        ns.update(|s| s.state = State::Draining);
        cx.report(ns.name(), false).await;
        let how = running.stop(cx.config.shutdown_grace()).await;
        tracing::info!(namespace = ns.name(), pid, %how, "pattern stopped");
    } else {
        cx.report(ns.name(), false).await;
        ns.update(|s| s.health = Health::unhealthy("pattern process is gone"));
    }
    ended
}

async fn fail(ns: &Namespace, cx: &Context, reason: String) {
    tracing::error!(namespace = ns.name(), %reason, "namespace FAILED");
    ns.set_route(None);
    cx.report(ns.name(), false).await;
    ns.update(|s| {
        s.state = State::Failed;
        s.pid = None;
        s.started_at = None;
        s.health = Health::unhealthy(reason.clone());
        s.last_error = Some(reason);
    });
}

impl Context {
    fn socket_path(&self, namespace: &str) -> PathBuf {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        self.socket_dir
            .join(format!("{namespace}-{generation}.sock"))
    }

    async fn report(&self, namespace: &str, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.health.set_service_status(namespace, status).await;
    }
}

/// Exponential backoff with "equal jitter": half the step is fixed, half random.
pub fn backoff(failures: u32, config: &SupervisorConfig, rng: &mut impl Rng) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let step = config
        .restart_backoff_initial_ms
        .saturating_mul(1 << exp)
        .min(config.restart_backoff_max_ms);
    let half = step / 2;
    Duration::from_millis(half + rng.random_range(0..=step - half))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let config = SupervisorConfig {
            restart_backoff_initial_ms: 100,
            restart_backoff_max_ms: 1000,
            ..Default::default()
        };
        let mut rng = StdRng::seed_from_u64(7);
        for (failures, step) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (30, 1000),
        ] {
            for _ in 0..50 {
                let d = backoff(failures, &config, &mut rng).as_millis() as u64;
                assert!((step / 2..=step).contains(&d), "failures {failures}: {d}ms");
            }
        }
    }

    #[test]
    fn jitter_varies() {
        let config = SupervisorConfig::default();
        let mut rng = StdRng::seed_from_u64(1);
        let delays: std::collections::HashSet<_> =
            (0..20).map(|_| backoff(3, &config, &mut rng)).collect();
        assert!(delays.len() > 1);
    }
}
