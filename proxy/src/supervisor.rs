//! Keeps every namespace's pattern process alive: spawn, wait for
//! readiness, `Initialize` → `Start`, poll health, restart with exponential
//! backoff and jitter when it dies or stays UNHEALTHY, give up (FAILED) after
//! too many consecutive failures, and stop everything in order on shutdown.
//! Operators steer a namespace through [`Supervisor::restart`] and
//! [`Supervisor::reload`] (make-before-break replacement).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use prism_proto::lifecycle::v1::HealthStatus;
use rand::Rng;
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    activity::{Activity, EventKind},
    config::SupervisorConfig,
    namespace::{Health, Namespace, Route, Spec, State},
    process::{Running, Spawned, StartError, describe_exit},
};

/// What `ReloadPattern` reports: the process replaced and its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reloaded {
    pub old_pid: u32,
    pub new_pid: u32,
}

enum Command {
    /// Kill the process and start a new one at once; answers with the new pid.
    Restart(oneshot::Sender<Result<u32, String>>),
    /// Make-before-break replacement, optionally with a new spec.
    Reload(Option<Arc<Spec>>, oneshot::Sender<Result<Reloaded, String>>),
}

struct Task {
    commands: mpsc::Sender<Command>,
    shutdown: watch::Sender<bool>,
    join: JoinHandle<()>,
}

/// Owns one supervision task per namespace and the folder of pattern sockets.
pub struct Supervisor {
    tasks: Mutex<HashMap<String, Task>>,
    context: Arc<Context>,
    _socket_dir: tempfile::TempDir,
}

struct Context {
    config: SupervisorConfig,
    socket_dir: PathBuf,
    health: HealthReporter,
    activity: Arc<Activity>,
    /// Makes every socket path unique, so a new process never races an old one.
    generation: AtomicU64,
}

impl Supervisor {
    pub fn new(
        config: SupervisorConfig,
        health: HealthReporter,
        activity: Arc<Activity>,
    ) -> std::io::Result<Self> {
        let socket_dir = tempfile::Builder::new().prefix("prism-").tempdir()?;
        Ok(Self {
            tasks: Mutex::new(HashMap::new()),
            context: Arc::new(Context {
                config,
                socket_dir: socket_dir.path().to_path_buf(),
                health,
                activity,
                generation: AtomicU64::new(0),
            }),
            _socket_dir: socket_dir,
        })
    }

    /// Starts supervising `ns`.
    pub fn add(&self, ns: Arc<Namespace>) {
        let (commands, receiver) = mpsc::channel(8);
        let (shutdown, watcher) = watch::channel(false);
        let name = ns.name().to_string();
        let join = tokio::spawn(supervise(ns, self.context.clone(), watcher, receiver));
        let task = Task {
            commands,
            shutdown,
            join,
        };
        if let Some(old) = self.tasks.lock().expect("tasks").insert(name, task) {
            let _ = old.shutdown.send(true);
        }
    }

    /// Stops the namespace's pattern and forgets it.
    pub async fn remove(&self, namespace: &str) {
        let task = self.tasks.lock().expect("tasks").remove(namespace);
        if let Some(task) = task {
            let _ = task.shutdown.send(true);
            let _ = task.join.await;
        }
        let mut health = self.context.health.clone();
        health.clear_service_status(namespace).await;
    }

    /// Kills the pattern process and starts a new one; waits until it runs.
    pub async fn restart(&self, namespace: &str) -> Result<u32, String> {
        let (reply, answer) = oneshot::channel();
        self.send(namespace, Command::Restart(reply)).await?;
        answer
            .await
            .map_err(|_| "the namespace was stopped".to_string())?
    }

    /// Replaces the pattern process without failing calls (see module docs).
    pub async fn reload(
        &self,
        namespace: &str,
        spec: Option<Arc<Spec>>,
    ) -> Result<Reloaded, String> {
        let (reply, answer) = oneshot::channel();
        self.send(namespace, Command::Reload(spec, reply)).await?;
        answer
            .await
            .map_err(|_| "the namespace was stopped".to_string())?
    }

    async fn send(&self, namespace: &str, command: Command) -> Result<(), String> {
        let sender = self
            .tasks
            .lock()
            .expect("tasks")
            .get(namespace)
            .map(|t| t.commands.clone())
            .ok_or_else(|| format!("namespace `{namespace}` not found"))?;
        sender
            .send(command)
            .await
            .map_err(|_| "the namespace is shutting down".to_string())
    }

    /// Stops every pattern (`Stop`, then kill after the grace period) and
    /// waits until all are gone.
    pub async fn shutdown(&self) {
        let tasks: Vec<Task> = self
            .tasks
            .lock()
            .expect("tasks")
            .drain()
            .map(|(_, t)| t)
            .collect();
        for task in &tasks {
            let _ = task.shutdown.send(true);
        }
        for task in tasks {
            let _ = task.join.await;
        }
    }
}

/// How one run of a pattern process ended.
enum Ended {
    Shutdown,
    Crashed(String),
    Restart(oneshot::Sender<Result<u32, String>>),
}

/// What to do after a failed start or a crash.
enum Next {
    Retry,
    Stop,
}

async fn supervise(
    ns: Arc<Namespace>,
    cx: Arc<Context>,
    mut shutdown: watch::Receiver<bool>,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut failures = 0u32;
    let mut first = true;
    // An operator's restart waiting for the next start to finish.
    let mut waiting: Option<oneshot::Sender<Result<u32, String>>> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        ns.update(|s| {
            s.state = if first {
                State::Starting
            } else {
                State::Restarting
            }
        });
        let spec = ns.spec();
        let socket = cx.socket_path(ns.name());
        let started = tokio::select! {
            started = start(&ns, &spec, &socket, &cx.config) => started,
            _ = shutdown.changed() => break,
        };
        first = false;
        let reason = match started {
            Ok(running) => {
                if let Some(reply) = waiting.take() {
                    let _ = reply.send(Ok(running.pid));
                }
                let began = Instant::now();
                let ended = watch_running(&ns, running, &cx, &mut shutdown, &mut commands).await;
                if began.elapsed() >= cx.config.stable_after() {
                    failures = 0;
                }
                match ended {
                    Ended::Shutdown => break,
                    Ended::Restart(reply) => {
                        waiting = Some(reply);
                        ns.update(|s| s.restart_count += 1);
                        continue;
                    }
                    Ended::Crashed(reason) => reason,
                }
            }
            Err(err) => {
                if let Some(reply) = waiting.take() {
                    let _ = reply.send(Err(err.to_string()));
                }
                if err.is_permanent() {
                    fail(&ns, &cx, err.to_string()).await;
                    match wait_for_revival(&ns, &mut shutdown, &mut commands, &mut waiting).await {
                        Next::Retry => {
                            failures = 0;
                            continue;
                        }
                        Next::Stop => break,
                    }
                }
                err.to_string()
            }
        };
        failures += 1;
        tracing::warn!(namespace = ns.name(), %reason, failures, "pattern failed");
        cx.activity
            .emit(ns.name(), EventKind::PatternExited, reason.clone(), None);
        if failures >= cx.config.max_consecutive_failures {
            fail(
                &ns,
                &cx,
                format!("{failures} consecutive failures; last: {reason}"),
            )
            .await;
            match wait_for_revival(&ns, &mut shutdown, &mut commands, &mut waiting).await {
                Next::Retry => {
                    failures = 0;
                    continue;
                }
                Next::Stop => break,
            }
        }
        ns.update(|s| {
            s.state = State::Restarting;
            s.restart_count += 1;
            s.last_error = Some(reason);
        });
        let delay = backoff(failures, &cx.config, &mut rand::rng());
        cx.activity.emit(
            ns.name(),
            EventKind::PatternRestarting,
            format!(
                "restarting in {} ms (failure {failures})",
                delay.as_millis()
            ),
            None,
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => break,
            Some(command) = commands.recv() => {
                // An operator asking now skips the rest of the backoff.
                accept_while_down(&ns, command, &mut waiting);
            }
        }
    }
    ns.update(|s| {
        s.state = State::Stopped;
        s.pid = None;
        s.started_at = None;
    });
    cx.activity
        .emit(ns.name(), EventKind::PatternStopped, "stopped", None);
}

/// A FAILED namespace waits for an operator's restart or reload.
async fn wait_for_revival(
    ns: &Namespace,
    shutdown: &mut watch::Receiver<bool>,
    commands: &mut mpsc::Receiver<Command>,
    waiting: &mut Option<oneshot::Sender<Result<u32, String>>>,
) -> Next {
    tokio::select! {
        _ = shutdown.changed() => Next::Stop,
        command = commands.recv() => match command {
            Some(command) => {
                accept_while_down(ns, command, waiting);
                Next::Retry
            }
            None => Next::Stop,
        },
    }
}

/// Restart or reload of a namespace with no running process: start afresh
/// (with the new spec, if any) and answer once that start is done.
fn accept_while_down(
    ns: &Namespace,
    command: Command,
    waiting: &mut Option<oneshot::Sender<Result<u32, String>>>,
) {
    match command {
        Command::Restart(reply) => *waiting = Some(reply),
        Command::Reload(spec, reply) => {
            if let Some(spec) = spec {
                ns.set_spec(spec);
            }
            let (restart, started) = oneshot::channel();
            *waiting = Some(restart);
            tokio::spawn(async move {
                let answer = match started.await {
                    Ok(Ok(new_pid)) => Ok(Reloaded {
                        old_pid: 0,
                        new_pid,
                    }),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err("the namespace was stopped".to_string()),
                };
                let _ = reply.send(answer);
            });
        }
    }
}

/// Spawn → connect → Initialize → Start, recording the pid as soon as it exists.
async fn start(
    ns: &Namespace,
    spec: &Spec,
    socket: &Path,
    config: &SupervisorConfig,
) -> Result<Running, StartError> {
    let spawned = Spawned::spawn(&spec.binary, socket)?;
    let pid = spawned.pid();
    ns.update(|s| {
        s.pid = Some(pid);
        s.endpoint = format!("unix:{}", socket.display());
    });
    let connected = spawned.connect(config.ready_timeout()).await?;
    connected.start(&spec.config, config.ready_timeout()).await
}

/// Routes to `running` and watches it until it exits, stays UNHEALTHY, is
/// restarted, or the proxy shuts down. A reload swaps `running` for its
/// successor and keeps watching.
async fn watch_running(
    ns: &Namespace,
    mut running: Running,
    cx: &Context,
    shutdown: &mut watch::Receiver<bool>,
    commands: &mut mpsc::Receiver<Command>,
) -> Ended {
    go_live(ns, &running, cx, None);
    let mut tick = tokio::time::interval(cx.config.health_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unhealthy = 0u32;
    let ended = loop {
        tokio::select! {
            status = running.child.wait() => {
                ns.set_route(None);
                let how = status.map(describe_exit).unwrap_or_else(|e| e.to_string());
                break Ended::Crashed(format!("pattern process {} exited ({how})", running.pid));
            }
            _ = shutdown.changed() => break Ended::Shutdown,
            command = commands.recv() => match command {
                None => break Ended::Shutdown,
                Some(Command::Restart(reply)) => {
                    cx.activity.emit(ns.name(), EventKind::RestartRequested, "restart requested", Some(running.pid));
                    ns.set_route(None);
                    let _ = running.child.start_kill();
                    let _ = running.child.wait().await;
                    break Ended::Restart(reply);
                }
                Some(Command::Reload(spec, reply)) => {
                    match reload(ns, running, spec, cx).await {
                        (next, Ok(reloaded)) => {
                            running = next;
                            unhealthy = 0;
                            let _ = reply.send(Ok(reloaded));
                        }
                        (same, Err(reason)) => {
                            running = same;
                            let _ = reply.send(Err(reason));
                        }
                    }
                }
            },
            _ = tick.tick() => {
                let health = running.health(cx.config.health_timeout()).await;
                unhealthy = if health.is_serving() { 0 } else { unhealthy + 1 };
                record_health(ns, cx, health, running.pid).await;
                if unhealthy >= cx.config.unhealthy_threshold {
                    ns.set_route(None);
                    let _ = running.child.start_kill();
                    let _ = running.child.wait().await;
                    let message = ns.status().health.message;
                    break Ended::Crashed(format!("UNHEALTHY {unhealthy} times in a row: {message}"));
                }
            }
        }
    };
    match &ended {
        Ended::Shutdown => {
            ns.set_route(None);
            ns.update(|s| s.state = State::Draining);
            cx.report(ns.name(), false).await;
            let pid = running.pid;
            let how = running.stop(cx.config.shutdown_grace()).await;
            tracing::info!(namespace = ns.name(), pid, %how, "pattern stopped");
        }
        Ended::Crashed(_) | Ended::Restart(_) => {
            cx.report(ns.name(), false).await;
            ns.update(|s| s.health = Health::unhealthy("pattern process is gone"));
        }
    }
    ended
}

/// Points routing at `running` and records it as the namespace's process.
fn go_live(
    ns: &Namespace,
    running: &Running,
    cx: &Context,
    previous: Option<u32>,
) -> Option<Arc<Route>> {
    ns.update(|s| {
        s.state = State::Running;
        s.pid = Some(running.pid);
        s.endpoint = format!("unix:{}", running.socket.display());
        s.started_at = Some(Instant::now());
        s.version = running.metadata.version.clone();
        s.capabilities = running.metadata.capabilities.clone();
    });
    let old = ns.set_route(Some(Route::new(running.channel.clone(), running.pid)));
    let reason = match previous {
        Some(old_pid) => format!("pid {} replaced pid {old_pid}", running.pid),
        None => format!("pid {} serving", running.pid),
    };
    cx.activity.emit(
        ns.name(),
        EventKind::PatternStarted,
        reason,
        Some(running.pid),
    );
    tracing::info!(namespace = ns.name(), pid = running.pid, "pattern running");
    old
}

/// Make-before-break: start a successor, wait for HEALTHY, switch routing,
/// then drain and stop the old process in the background. On failure the
/// old process keeps serving and is handed back.
async fn reload(
    ns: &Namespace,
    old: Running,
    spec: Option<Arc<Spec>>,
    cx: &Context,
) -> (Running, Result<Reloaded, String>) {
    let old_pid = old.pid;
    cx.activity.emit(
        ns.name(),
        EventKind::ReloadStarted,
        "hot reload started",
        Some(old_pid),
    );
    let spec = spec.unwrap_or_else(|| ns.spec());
    let socket = cx.socket_path(ns.name());
    let successor = async {
        let spawned = Spawned::spawn(&spec.binary, &socket)?;
        let connected = spawned.connect(cx.config.ready_timeout()).await?;
        connected
            .start(&spec.config, cx.config.ready_timeout())
            .await
    };
    let new = match successor.await {
        Ok(new) => new,
        Err(err) => {
            let reason = format!("new process did not start: {err}");
            cx.activity.emit(
                ns.name(),
                EventKind::ReloadFailed,
                reason.clone(),
                Some(old_pid),
            );
            return (old, Err(reason));
        }
    };
    let health = match wait_healthy(&new, cx).await {
        Ok(health) => health,
        Err(reason) => {
            let reason = format!("new process {} never became HEALTHY: {reason}", new.pid);
            cx.activity.emit(
                ns.name(),
                EventKind::ReloadFailed,
                reason.clone(),
                Some(old_pid),
            );
            drop(new); // killed on drop
            return (old, Err(reason));
        }
    };
    if !Arc::ptr_eq(&spec, &ns.spec()) {
        ns.set_spec(spec);
    }
    let new_pid = new.pid;
    let old_route = go_live(ns, &new, cx, Some(old_pid));
    record_health(ns, cx, health, new_pid).await;
    let grace = cx.config.shutdown_grace();
    tokio::spawn(async move {
        if let Some(route) = old_route {
            route
                .calls
                .wait_idle(tokio::time::Instant::now() + grace)
                .await;
        }
        old.stop(grace).await;
    });
    cx.activity.emit(
        ns.name(),
        EventKind::ReloadSucceeded,
        format!("pid {new_pid} replaced pid {old_pid}"),
        Some(new_pid),
    );
    (new, Ok(Reloaded { old_pid, new_pid }))
}

/// Polls a new process's health until HEALTHY, within the ready timeout.
async fn wait_healthy(running: &Running, cx: &Context) -> Result<Health, String> {
    let deadline = tokio::time::Instant::now() + cx.config.ready_timeout();
    let mut delay = Duration::from_millis(5);
    loop {
        let health = running.health(cx.config.health_timeout()).await;
        if health.status == HealthStatus::Healthy {
            return Ok(health);
        }
        if tokio::time::Instant::now() + delay > deadline {
            return Err(format!(
                "last health: {:?} {}",
                health.status, health.message
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

async fn record_health(ns: &Namespace, cx: &Context, health: Health, pid: u32) {
    cx.report(ns.name(), health.is_serving()).await;
    let before = ns.status().health.status;
    if before != health.status {
        cx.activity.emit(
            ns.name(),
            EventKind::HealthChanged,
            format!(
                "{} → {}: {}",
                before.as_str_name(),
                health.status.as_str_name(),
                health.message
            ),
            Some(pid),
        );
    }
    ns.update(|s| s.health = health);
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
        s.last_error = Some(reason.clone());
    });
    cx.activity
        .emit(ns.name(), EventKind::NamespaceFailed, reason, None);
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
