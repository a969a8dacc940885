//! Make-before-break replacement of a running pattern process: start a
//! successor (the same spawn → connect → start as any start), wait until it
//! is HEALTHY, switch routing to it, then drain and stop the old process in
//! the background. Calls never see a gap; if the successor fails, the old
//! process keeps serving.

use std::{sync::Arc, time::Duration};

use prism_proto::lifecycle::v1::HealthStatus;

use super::{
    Context, Reloaded, SupervisorError,
    run::{go_live, launch, record_health},
};
use crate::{
    activity::EventKind,
    namespace::{Health, Namespace, Spec},
    process::Running,
};

/// Replaces `old` by a successor built from `spec` (or the current spec).
/// Hands back the process that serves afterwards: the successor, or `old`
/// when the reload failed.
pub(super) async fn replace(
    ns: &Namespace,
    old: Running,
    spec: Option<Arc<Spec>>,
    cx: &Context,
) -> (Running, Result<Reloaded, SupervisorError>) {
    let old_pid = old.pid;
    tracing::info!(namespace = ns.name(), old_pid, "hot reload started");
    cx.activity.emit(
        ns.name(),
        EventKind::ReloadStarted,
        "hot reload started",
        Some(old_pid),
    );
    let spec = spec.unwrap_or_else(|| ns.spec());
    let socket = cx.socket_path(ns.name());
    let failed = |err: SupervisorError| {
        tracing::warn!(namespace = ns.name(), old_pid, error = %err, "hot reload failed; the old process keeps serving");
        cx.activity.emit(
            ns.name(),
            EventKind::ReloadFailed,
            err.to_string(),
            Some(old_pid),
        );
        err
    };
    let new = match launch(&spec, &socket, cx, |_| {}).await {
        Ok(new) => new,
        Err(err) => return (old, Err(failed(SupervisorError::SuccessorNotStarted(err)))),
    };
    let health = match wait_healthy(&new, cx).await {
        Ok(health) => health,
        Err(last) => {
            let err = SupervisorError::SuccessorNotHealthy { pid: new.pid, last };
            drop(new); // killed on drop
            return (old, Err(failed(err)));
        }
    };
    if !Arc::ptr_eq(&spec, &ns.spec()) {
        ns.set_spec(spec);
    }
    let new_pid = new.pid;
    let (_, old_route) = go_live(ns, &new, cx, Some(old_pid));
    let before = ns.status().health.status;
    record_health(ns, cx, health, new_pid, Some(before)).await;
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
    tracing::info!(namespace = ns.name(), old_pid, new_pid, "hot reload done");
    cx.activity.emit(
        ns.name(),
        EventKind::ReloadSucceeded,
        format!("pid {new_pid} replaced pid {old_pid}"),
        Some(new_pid),
    );
    (new, Ok(Reloaded { old_pid, new_pid }))
}

/// Polls a new process's health until HEALTHY, within the ready timeout;
/// the last health seen otherwise.
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
