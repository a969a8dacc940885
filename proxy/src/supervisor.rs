//! Keeps every namespace's pattern process alive. This file is the handle
//! the rest of the proxy holds: one supervision task per namespace, and the
//! levers operators pull ([`Supervisor::restart`], [`Supervisor::reload`]).
//! The task itself is in [`run`] (spawn → connect → start, health polling
//! that tells a down backend from a broken pattern, restarts), the restart
//! and FAILED decisions are the pure [`policy`], and make-before-break
//! replacement is [`reload`].

mod policy;
mod reload;
mod run;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    activity::Activity, config::SupervisorConfig, namespace::Namespace, pattern_logs::PatternLogs,
    process::StartError,
};

/// What `ReloadPattern` reports: the process replaced and its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reloaded {
    pub old_pid: u32,
    pub new_pid: u32,
}

/// Why a restart or reload did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    #[error("namespace `{0}` not found")]
    UnknownNamespace(String),
    /// The namespace was removed or the proxy is shutting down.
    #[error("the namespace was stopped")]
    Stopped,
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("new process did not start: {0}")]
    SuccessorNotStarted(StartError),
    #[error("new process {pid} never became HEALTHY: {last}")]
    SuccessorNotHealthy { pid: u32, last: String },
}

type Reply<T> = oneshot::Sender<Result<T, SupervisorError>>;

enum Command {
    /// Kill the process and start a new one at once; answers with the new pid.
    Restart(Reply<u32>),
    /// Make-before-break replacement, optionally with a new spec.
    Reload(Option<Arc<crate::namespace::Spec>>, Reply<Reloaded>),
}

struct Task {
    commands: mpsc::Sender<Command>,
    shutdown: watch::Sender<bool>,
    join: JoinHandle<()>,
}

/// Owns one supervision task per namespace and the folder of pattern sockets.
pub(crate) struct Supervisor {
    tasks: Mutex<HashMap<String, Task>>,
    context: Arc<Context>,
    _socket_dir: tempfile::TempDir,
}

/// What every supervision task shares.
struct Context {
    config: SupervisorConfig,
    socket_dir: PathBuf,
    health: HealthReporter,
    activity: Arc<Activity>,
    /// Where every pattern's stdout and stderr go.
    logs: Arc<PatternLogs>,
    /// Makes every socket path unique, so a new process never races an old one.
    generation: AtomicU64,
}

impl Supervisor {
    pub(crate) fn new(
        config: SupervisorConfig,
        health: HealthReporter,
        activity: Arc<Activity>,
        logs: Arc<PatternLogs>,
    ) -> std::io::Result<Self> {
        let socket_dir = tempfile::Builder::new().prefix("prism-").tempdir()?;
        Ok(Self {
            tasks: Mutex::new(HashMap::new()),
            context: Arc::new(Context {
                config,
                socket_dir: socket_dir.path().to_path_buf(),
                health,
                activity,
                logs,
                generation: AtomicU64::new(0),
            }),
            _socket_dir: socket_dir,
        })
    }

    /// Starts supervising `ns`.
    pub(crate) fn add(&self, ns: Arc<Namespace>) {
        let (commands, receiver) = mpsc::channel(8);
        let (shutdown, watcher) = watch::channel(false);
        let name = ns.name().to_string();
        let join = tokio::spawn(run::supervise(ns, self.context.clone(), watcher, receiver));
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
    pub(crate) async fn remove(&self, namespace: &str) {
        let task = self.tasks.lock().expect("tasks").remove(namespace);
        if let Some(task) = task {
            let _ = task.shutdown.send(true);
            let _ = task.join.await;
        }
        let mut health = self.context.health.clone();
        health.clear_service_status(namespace).await;
        self.context.logs.forget(namespace);
    }

    /// Kills the pattern process (if any) and starts a new one at once, even
    /// while FAILED; answers once the start succeeded or failed.
    pub(crate) async fn restart(&self, namespace: &str) -> Result<u32, SupervisorError> {
        let (reply, answer) = oneshot::channel();
        self.send(namespace, Command::Restart(reply)).await?;
        answer.await.map_err(|_| SupervisorError::Stopped)?
    }

    /// Replaces the pattern process without failing calls (see [`reload`]).
    pub(crate) async fn reload(
        &self,
        namespace: &str,
        spec: Option<Arc<crate::namespace::Spec>>,
    ) -> Result<Reloaded, SupervisorError> {
        let (reply, answer) = oneshot::channel();
        self.send(namespace, Command::Reload(spec, reply)).await?;
        answer.await.map_err(|_| SupervisorError::Stopped)?
    }

    async fn send(&self, namespace: &str, command: Command) -> Result<(), SupervisorError> {
        let sender = self
            .tasks
            .lock()
            .expect("tasks")
            .get(namespace)
            .map(|t| t.commands.clone())
            .ok_or_else(|| SupervisorError::UnknownNamespace(namespace.to_string()))?;
        sender
            .send(command)
            .await
            .map_err(|_| SupervisorError::Stopped)
    }

    /// Stops every pattern (`Stop`, then kill after the grace period) and
    /// waits until all are gone.
    pub(crate) async fn shutdown(&self) {
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

#[cfg(test)]
mod tests {
    use std::{path::PathBuf, time::Duration};

    use super::*;
    use crate::{
        config::NamespaceConfig,
        namespace::{Spec, State},
    };

    /// A supervisor over `binary` whose FAILED retries are a minute apart.
    fn supervised(binary: &str) -> (Supervisor, Arc<Namespace>) {
        let config = SupervisorConfig {
            max_consecutive_failures: 2,
            restart_backoff_initial_ms: 1,
            restart_backoff_max_ms: 60_000,
            ..Default::default()
        };
        let activity = Arc::new(Activity::default());
        let (health, _) = tonic_health::server::health_reporter();
        let logs = Arc::new(crate::pattern_logs::PatternLogs::new(
            crate::pattern_logs::Limits::default(),
            crate::pattern_logs::Echo::Off,
        ));
        let supervisor = Supervisor::new(config, health, activity.clone(), logs).unwrap();
        let ns = Arc::new(Namespace::new(
            Spec::new(NamespaceConfig::default_memstore(), PathBuf::from(binary)),
            activity,
        ));
        supervisor.add(ns.clone());
        (supervisor, ns)
    }

    async fn until(ns: &Namespace, what: &str, check: impl Fn(&crate::namespace::Status) -> bool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !check(&ns.status()) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: {:?}", ns.status()));
    }

    #[tokio::test]
    async fn a_crash_loop_is_failed_and_an_operator_restart_does_not_wait_for_the_backoff() {
        // `false` exits at once with code 1 whatever its arguments.
        let (supervisor, ns) = supervised("/bin/false");
        until(&ns, "FAILED", |s| s.state == State::Failed).await;
        let status = ns.status();
        assert!(
            status
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("2 consecutive failures") && e.contains("exit code 1")),
            "{status:?}"
        );
        let asked = std::time::Instant::now();
        let err = supervisor.restart("default").await.unwrap_err();
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "at once, not at the 30–60 s backoff"
        );
        assert!(
            matches!(err, SupervisorError::Start(StartError::ExitedEarly(_))),
            "{err}"
        );
        assert_eq!(
            ns.status().state,
            State::Failed,
            "still FAILED, still retried"
        );
        assert_eq!(
            supervisor.restart("nope").await.unwrap_err(),
            SupervisorError::UnknownNamespace("nope".into())
        );
        supervisor.shutdown().await;
        assert_eq!(ns.status().state, State::Stopped);
    }

    #[tokio::test]
    async fn a_missing_binary_is_failed_at_once_with_the_path() {
        let (supervisor, ns) = supervised("/nonexistent/prism-x");
        until(&ns, "FAILED", |s| s.state == State::Failed).await;
        let error = ns.status().last_error.unwrap_or_default();
        assert_eq!(error, "pattern binary not found: /nonexistent/prism-x");
        supervisor.remove("default").await;
        assert_eq!(ns.status().state, State::Stopped);
    }
}
