//! One namespace's supervision task: bring the pattern up, route to it,
//! poll its health, and carry out what [`RestartPolicy`] decides when it
//! dies or breaks. A pattern whose backend is down is alive but not ready:
//! calls fail fast naming the backend, its health is polled more often, and
//! it serves again as soon as it says it is ready — it is never restarted
//! for that, since a new process cannot bring a backend back.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use prism_proto::lifecycle::v1::HealthStatus;
use rand::SeedableRng;
use tokio::sync::{mpsc, oneshot, watch};

use super::{
    Command, Context, Reloaded, Reply, SupervisorError,
    policy::{Action, Event, RestartPolicy, health_event},
    reload,
};
use crate::{
    activity::EventKind,
    namespace::{Health, Namespace, Readiness, Route, Spec, State},
    process::{Running, Spawned, StartError, describe_exit},
};

/// How one run of a pattern process ended.
enum Ended {
    Shutdown,
    Crashed(String),
    Restart(Reply<u32>),
}

pub(super) async fn supervise(
    ns: Arc<Namespace>,
    cx: Arc<Context>,
    mut shutdown: watch::Receiver<bool>,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut policy = RestartPolicy::new(&cx.config);
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut first = true;
    let mut delay = Duration::ZERO;
    // An operator's restart waiting for the next start to finish.
    let mut waiting: Option<Reply<u32>> = None;
    loop {
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => break,
                command = commands.recv() => match command {
                    // An operator asking now skips the rest of the wait.
                    Some(command) => {
                        accept_while_down(&ns, command, &mut waiting);
                        policy.next(Event::OperatorRestart, &mut rng);
                    }
                    None => break,
                },
            }
        }
        if *shutdown.borrow() {
            break;
        }
        // FAILED stays shown while it is retried, until a start succeeds.
        if ns.status().state != State::Failed {
            ns.update(|s| {
                s.state = if first {
                    State::Starting
                } else {
                    State::Restarting
                }
            });
        }
        first = false;
        let spec = ns.spec();
        let socket = cx.socket_path(ns.name());
        let started = tokio::select! {
            started = launch(&spec, &socket, &cx, |pid| ns.update(|s| {
                s.pid = Some(pid);
                s.endpoint = format!("unix:{}", socket.display());
            })) => started,
            _ = shutdown.changed() => break,
        };
        let (event, reason) = match started {
            Ok(running) => {
                let began = Instant::now();
                let started = waiting.take();
                match watch_running(&ns, running, &cx, &mut shutdown, &mut commands, started).await
                {
                    Ended::Shutdown => break,
                    Ended::Restart(reply) => {
                        waiting = Some(reply);
                        ns.update(|s| s.restart_count += 1);
                        (Event::OperatorRestart, String::new())
                    }
                    Ended::Crashed(reason) => (
                        Event::Crashed {
                            ran_for: began.elapsed(),
                        },
                        reason,
                    ),
                }
            }
            Err(err) => {
                if let Some(reply) = waiting.take() {
                    let _ = reply.send(Err(SupervisorError::Start(err.clone())));
                }
                let permanent = err.is_permanent();
                (Event::StartFailed { permanent }, err.to_string())
            }
        };
        let action = policy.next(event, &mut rng);
        let failures = policy.failures();
        if !matches!(event, Event::OperatorRestart) {
            tracing::warn!(namespace = ns.name(), %reason, failures, "pattern failed");
            cx.activity
                .emit(ns.name(), EventKind::PatternExited, reason.clone(), None);
        }
        delay = match action {
            Action::StartNow => Duration::ZERO,
            Action::StartAfter(delay) => {
                tracing::info!(
                    namespace = ns.name(),
                    failures,
                    delay_ms = delay.as_millis() as u64,
                    "pattern restarting"
                );
                ns.update(|s| {
                    s.state = State::Restarting;
                    s.restart_count += 1;
                    s.last_error = Some(reason);
                });
                cx.activity.emit(
                    ns.name(),
                    EventKind::PatternRestarting,
                    format!(
                        "restarting in {} ms (failure {failures})",
                        delay.as_millis()
                    ),
                    None,
                );
                delay
            }
            Action::FailThenStartAfter(delay) => {
                let looping = !matches!(event, Event::StartFailed { permanent: true });
                let why = if failures > 1 && looping {
                    format!("{failures} consecutive failures; last: {reason}")
                } else {
                    reason
                };
                fail(&ns, &cx, why, delay).await;
                delay
            }
        };
    }
    ns.set_route(None);
    ns.update(|s| {
        s.state = State::Stopped;
        s.pid = None;
        s.started_at = None;
    });
    cx.activity
        .emit(ns.name(), EventKind::PatternStopped, "stopped", None);
}

/// Restart or reload of a namespace with no running process: start afresh
/// (with the new spec, if any) and answer once that start is done.
fn accept_while_down(ns: &Namespace, command: Command, waiting: &mut Option<Reply<u32>>) {
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
                    Err(_) => Err(SupervisorError::Stopped),
                };
                let _ = reply.send(answer);
            });
        }
    }
}

/// Spawn → connect → Initialize → Start; `spawned` learns the pid as soon
/// as the process exists.
pub(super) async fn launch(
    spec: &Spec,
    socket: &Path,
    cx: &Context,
    spawned: impl FnOnce(u32),
) -> Result<Running, StartError> {
    let namespace = &spec.config.name;
    let process = Spawned::spawn(
        &spec.binary,
        socket,
        namespace,
        spec.config.worker_threads,
        &cx.logs,
    )?;
    tracing::info!(namespace = %namespace, pid = process.pid(), binary = %spec.binary.display(), "pattern process spawned");
    spawned(process.pid());
    let config = &cx.config;
    let connected = process.connect(config.ready_timeout()).await?;
    connected.start(&spec.config, config.ready_timeout()).await
}

/// How often health is checked while the backend is down, so that the
/// namespace serves again soon after the backend returns.
pub(super) fn not_ready_interval(health_interval: Duration) -> Duration {
    (health_interval / 4).clamp(Duration::from_millis(50), Duration::from_millis(250))
}

/// Routes to `running` and watches it until it exits, stays broken, is
/// restarted, or the proxy shuts down. A reload swaps `running` for its
/// successor and keeps watching. `started` (an operator's restart) is
/// answered once the first health check is recorded, so the reply shows the
/// new process and its own health, not the last words of the old one.
async fn watch_running(
    ns: &Namespace,
    mut running: Running,
    cx: &Context,
    shutdown: &mut watch::Receiver<bool>,
    commands: &mut mpsc::Receiver<Command>,
    mut started: Option<Reply<u32>>,
) -> Ended {
    let (mut route, _) = go_live(ns, &running, cx, None);
    let mut ready = true;
    let mut broken = 0u32;
    // The first check comes at once: a pattern up while its backend is
    // down should not take calls for a whole interval.
    let mut checked = false;
    let ended = loop {
        let interval = if !checked {
            Duration::ZERO
        } else if ready {
            cx.config.health_interval()
        } else {
            not_ready_interval(cx.config.health_interval())
        };
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
                    tracing::info!(namespace = ns.name(), pid = running.pid, "restart requested: killing the pattern process");
                    cx.activity.emit(ns.name(), EventKind::RestartRequested, "restart requested", Some(running.pid));
                    ns.set_route(None);
                    let _ = running.child.start_kill();
                    let _ = running.child.wait().await;
                    break Ended::Restart(reply);
                }
                Some(Command::Reload(spec, reply)) => {
                    let (next, answer) = reload::replace(ns, running, spec, cx).await;
                    running = next;
                    if answer.is_ok() {
                        route = ns.current_route().unwrap_or(route);
                        ready = true;
                        broken = 0;
                    }
                    let _ = reply.send(answer);
                }
            },
            _ = tokio::time::sleep(interval) => {
                let first = !checked;
                checked = true;
                let health = running.health(cx.config.health_timeout()).await;
                let readiness = health.readiness();
                broken = if readiness == Readiness::Broken { broken + 1 } else { 0 };
                match readiness {
                    Readiness::Ready if !ready => {
                        ns.set_route(Some(route.clone()));
                        ready = true;
                    }
                    Readiness::BackendDown if ready => {
                        ns.set_route(None);
                        ready = false;
                    }
                    _ => {}
                }
                let before = (!first).then(|| ns.status().health.status);
                record_health(ns, cx, health, running.pid, before).await;
                if let Some(reply) = started.take() {
                    let _ = reply.send(Ok(running.pid));
                }
                if broken >= cx.config.unhealthy_threshold {
                    ns.set_route(None);
                    let _ = running.child.start_kill();
                    let _ = running.child.wait().await;
                    let message = ns.status().health.message;
                    break Ended::Crashed(format!("UNHEALTHY {broken} times in a row: {message}"));
                }
            }
        }
    };
    if let Some(reply) = started.take() {
        // Ended before its first health check: the status says how.
        let _ = reply.send(Ok(running.pid));
    }
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

/// Points routing at `running` and records it as the namespace's process;
/// returns the new route and the one it replaced.
pub(super) fn go_live(
    ns: &Namespace,
    running: &Running,
    cx: &Context,
    previous: Option<u32>,
) -> (Arc<Route>, Option<Arc<Route>>) {
    // Routing first: whoever reads RUNNING can be served at once.
    let route = Route::new(running.channel.clone());
    let old = ns.set_route(Some(route.clone()));
    ns.update(|s| {
        s.state = State::Running;
        s.pid = Some(running.pid);
        s.endpoint = format!("unix:{}", running.socket.display());
        s.started_at = Some(Instant::now());
        s.version = running.metadata.version.clone();
        s.capabilities = running.metadata.capabilities.clone();
    });
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
    (route, old)
}

/// Records a health check of process `pid`. `before` is the health it
/// replaces; `None` for a new process's first check, which has nothing to
/// change from (the status still holds "starting" or the last words of the
/// process it replaced).
pub(super) async fn record_health(
    ns: &Namespace,
    cx: &Context,
    health: Health,
    pid: u32,
    before: Option<HealthStatus>,
) {
    cx.report(ns.name(), health.is_serving()).await;
    if let Some(message) = health_event(before, &health) {
        cx.activity
            .emit(ns.name(), EventKind::HealthChanged, message, Some(pid));
    }
    ns.update(|s| s.health = health);
}

/// Shows the namespace FAILED with `reason`; the next try is `retry` away.
async fn fail(ns: &Namespace, cx: &Context, reason: String, retry: Duration) {
    let already = ns.status().state == State::Failed;
    ns.set_route(None);
    cx.report(ns.name(), false).await;
    ns.update(|s| {
        s.state = State::Failed;
        // The retry already scheduled counts as a restart.
        s.restart_count += 1;
        s.pid = None;
        s.started_at = None;
        s.health = Health::unhealthy(reason.clone());
        s.last_error = Some(reason.clone());
    });
    if !already {
        tracing::error!(namespace = ns.name(), %reason, "namespace FAILED; retrying at the capped backoff");
        cx.activity
            .emit(ns.name(), EventKind::NamespaceFailed, reason, None);
    } else {
        tracing::warn!(namespace = ns.name(), %reason, retry_ms = retry.as_millis() as u64, "namespace still FAILED");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_down_backend_is_polled_faster_but_not_in_a_spin() {
        assert_eq!(
            not_ready_interval(Duration::from_secs(1)),
            Duration::from_millis(250)
        );
        assert_eq!(
            not_ready_interval(Duration::from_secs(60)),
            Duration::from_millis(250)
        );
        assert_eq!(
            not_ready_interval(Duration::from_millis(100)),
            Duration::from_millis(50)
        );
    }
}
