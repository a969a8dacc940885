//! One pattern child process, as types that follow its lifecycle:
//! [`Spawned`] (the process exists) → [`Connected`] (it accepts gRPC) →
//! [`Running`] (initialized and started). Each step consumes the previous
//! one, so a half-started process cannot be routed to by mistake. The child
//! is killed when its value is dropped.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::Arc,
    time::Duration,
};

use hyper_util::rt::TokioIo;
use prism_proto::lifecycle::v1::{
    HealthCheckRequest, InitializeRequest, PatternMetadata, StartRequest, StopRequest,
    pattern_lifecycle_client::PatternLifecycleClient,
};
use tokio::{
    net::UnixStream,
    process::{Child, Command},
    time::Instant,
};
use tonic::{
    Code,
    transport::{Channel, Endpoint, Uri},
};

use crate::{
    channel::PatternChannel,
    config::NamespaceConfig,
    namespace::Health,
    pattern_logs::{PatternLogs, Stream},
};

/// Tells a pattern which namespace it serves; the SDK's logging names it
/// on every line.
const NAMESPACE_VAR: &str = "PRISM_NAMESPACE";

/// Why a pattern process could not be brought up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("pattern binary not found: {0}")]
    BinaryMissing(PathBuf),
    #[error("cannot spawn {binary}: {reason}")]
    Spawn { binary: PathBuf, reason: String },
    #[error("pattern exited before it was ready ({0})")]
    ExitedEarly(String),
    #[error("pattern not ready within {0:?}")]
    NotReady(Duration),
    #[error("pattern rejected its config: {0}")]
    Rejected(String),
    #[error("{step} failed: {reason}")]
    Lifecycle { step: &'static str, reason: String },
}

impl StartError {
    /// Errors that retrying with the same binary and config cannot fix.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::BinaryMissing(_) | Self::Rejected(_))
    }
}

pub(crate) struct Spawned {
    child: Child,
    pid: u32,
    socket: PathBuf,
}

pub(crate) struct Connected {
    child: Child,
    pid: u32,
    socket: PathBuf,
    /// Lifecycle and health calls.
    control: Channel,
    /// Data-plane calls.
    channel: PatternChannel,
}

pub(crate) struct Running {
    pub child: Child,
    pub pid: u32,
    pub socket: PathBuf,
    pub channel: PatternChannel,
    pub metadata: PatternMetadata,
    lifecycle: PatternLifecycleClient<Channel>,
}

impl Spawned {
    /// Starts `binary` listening on the Unix socket `socket`, as the pattern
    /// of `namespace` (`PRISM_NAMESPACE`, which its log lines name), with
    /// its stdout and stderr captured into `logs`. The child gets its own
    /// process group, so a terminal's Ctrl-C reaches only the proxy, which
    /// then stops its patterns in order.
    pub(crate) fn spawn(
        binary: &Path,
        socket: &Path,
        namespace: &str,
        worker_threads: Option<usize>,
        logs: &Arc<PatternLogs>,
    ) -> Result<Self, StartError> {
        if !binary.is_file() {
            return Err(StartError::BinaryMissing(binary.to_path_buf()));
        }
        let _ = std::fs::remove_file(socket);
        let mut command = Command::new(binary);
        command
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .arg("--exit-with-parent");
        if let Some(threads) = worker_threads {
            command.arg("--worker-threads").arg(threads.to_string());
        }
        let mut child = command
            // The proxy's service name is not the pattern's.
            .env_remove("OTEL_SERVICE_NAME")
            .env(NAMESPACE_VAR, namespace)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| StartError::Spawn {
                binary: binary.to_path_buf(),
                reason: e.to_string(),
            })?;
        let pid = child.id().unwrap_or_default();
        if let Some(stdout) = child.stdout.take() {
            logs.capture(namespace, pid, Stream::Stdout, stdout);
        }
        if let Some(stderr) = child.stderr.take() {
            logs.capture(namespace, pid, Stream::Stderr, stderr);
        }
        Ok(Self {
            child,
            pid,
            socket: socket.to_path_buf(),
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Polls the socket with backoff until it accepts, the child exits, or
    /// `timeout` passes.
    pub(crate) async fn connect(mut self, timeout: Duration) -> Result<Connected, StartError> {
        let deadline = Instant::now() + timeout;
        let mut delay = Duration::from_millis(2);
        loop {
            if let Some(status) = self.child.try_wait().ok().flatten() {
                return Err(StartError::ExitedEarly(describe_exit(status)));
            }
            if UnixStream::connect(&self.socket).await.is_ok() {
                break;
            }
            if Instant::now() + delay > deadline {
                return Err(StartError::NotReady(timeout));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
        let connect_failed = |e: &dyn std::fmt::Display| StartError::Lifecycle {
            step: "connect",
            reason: e.to_string(),
        };
        let control = unix_channel(&self.socket)
            .await
            .map_err(|e| connect_failed(&e))?;
        let channel = PatternChannel::connect(&self.socket)
            .await
            .map_err(|e| connect_failed(&e))?;
        Ok(Connected {
            child: self.child,
            pid: self.pid,
            socket: self.socket,
            control,
            channel,
        })
    }
}

impl Connected {
    /// `Initialize` with the namespace's config, then `Start`.
    pub(crate) async fn start(
        self,
        ns: &NamespaceConfig,
        timeout: Duration,
    ) -> Result<Running, StartError> {
        let mut lifecycle = PatternLifecycleClient::new(self.control);
        let mut init = tonic::Request::new(InitializeRequest {
            name: ns.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            config: (!ns.config.is_null()).then(|| prism_proto::json::to_struct(&ns.config)),
        });
        init.set_timeout(timeout);
        let metadata = match lifecycle.initialize(init).await {
            Ok(response) => response.into_inner().metadata.unwrap_or_default(),
            Err(status) if status.code() == Code::InvalidArgument => {
                return Err(StartError::Rejected(status.message().to_string()));
            }
            Err(status) => {
                return Err(StartError::Lifecycle {
                    step: "Initialize",
                    reason: status.message().to_string(),
                });
            }
        };
        let mut start = tonic::Request::new(StartRequest {});
        start.set_timeout(timeout);
        lifecycle
            .start(start)
            .await
            .map_err(|status| StartError::Lifecycle {
                step: "Start",
                reason: status.message().to_string(),
            })?;
        Ok(Running {
            child: self.child,
            pid: self.pid,
            socket: self.socket,
            channel: self.channel,
            metadata,
            lifecycle,
        })
    }
}

impl Running {
    /// One `HealthCheck`; a failed or late call counts as UNHEALTHY.
    pub(crate) async fn health(&self, timeout: Duration) -> Health {
        let mut request = tonic::Request::new(HealthCheckRequest {});
        request.set_timeout(timeout);
        let mut lifecycle = self.lifecycle.clone();
        match tokio::time::timeout(timeout, lifecycle.health_check(request)).await {
            Ok(Ok(response)) => Health::from(response.into_inner()),
            Ok(Err(status)) => {
                Health::unhealthy(format!("health check failed: {}", status.message()))
            }
            Err(_) => Health::unhealthy(format!("health check took longer than {timeout:?}")),
        }
    }

    /// Asks the pattern to stop, waits up to `grace` for it to exit, then kills it.
    pub(crate) async fn stop(mut self, grace: Duration) -> String {
        let deadline = Instant::now() + grace;
        let mut request = tonic::Request::new(StopRequest {
            timeout_ms: grace.as_millis() as u32,
        });
        request.set_timeout(grace);
        let _ = tokio::time::timeout_at(deadline, self.lifecycle.stop(request)).await;
        match tokio::time::timeout_at(deadline, self.child.wait()).await {
            Ok(Ok(status)) => describe_exit(status),
            _ => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                "killed after the grace period".to_string()
            }
        }
    }
}

pub(crate) fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// A reconnecting gRPC channel over a Unix socket, for lifecycle calls.
pub(crate) async fn unix_channel(socket: &Path) -> Result<Channel, tonic::transport::Error> {
    let socket = socket.to_path_buf();
    // The URI is required by the API but unused: the connector dials the socket.
    Endpoint::from_static("http://pattern.local")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
        }))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern_logs::{Echo, Limits};

    fn logs() -> Arc<PatternLogs> {
        Arc::new(PatternLogs::new(Limits::default(), Echo::Off))
    }

    #[test]
    fn missing_binary_is_permanent() {
        let err = Spawned::spawn(
            Path::new("/nonexistent/prism-x"),
            Path::new("/tmp/x.sock"),
            "ns",
            None,
            &logs(),
        )
        .err()
        .unwrap();
        assert!(err.is_permanent());
        assert!(err.to_string().contains("/nonexistent/prism-x"));
    }

    #[test]
    fn resource_exhaustion_is_retried_like_a_crash() {
        let err = StartError::Spawn {
            binary: PathBuf::from("/x/prism-memstore"),
            reason: std::io::Error::from_raw_os_error(24).to_string(),
        };
        assert!(err.to_string().contains("Too many open files"), "{err}");
        assert!(!err.is_permanent(), "the fd table may have room again");
    }

    #[tokio::test]
    async fn early_exit_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        // `false` exits at once with code 1 whatever its arguments.
        let spawned = Spawned::spawn(
            Path::new("/bin/false"),
            &dir.path().join("s.sock"),
            "ns",
            None,
            &logs(),
        )
        .unwrap();
        let err = spawned.connect(Duration::from_secs(5)).await.err().unwrap();
        assert!(matches!(err, StartError::ExitedEarly(_)), "{err}");
        assert!(!err.is_permanent());
    }
}

#[cfg(test)]
mod capture_tests {
    use super::*;
    use crate::pattern_logs::{Echo, Limits};

    /// A child's output on both streams reaches the ring with its pid, and
    /// the child learns its namespace.
    #[tokio::test]
    async fn output_is_captured_with_namespace_and_pid() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("pattern.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\necho \"out $PRISM_NAMESPACE\"\necho \"err $PRISM_NAMESPACE\" >&2\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let logs = Arc::new(PatternLogs::new(Limits::default(), Echo::Off));
        let spawned =
            Spawned::spawn(&script, &dir.path().join("s.sock"), "orders", None, &logs).unwrap();
        let pid = spawned.pid();
        let mut follow = logs.follow();
        tokio::time::timeout(Duration::from_secs(20), follow.wait_for(|&seq| seq >= 2))
            .await
            .expect("both lines within the deadline")
            .unwrap();
        let mut lines: Vec<_> = logs
            .recent(Some("orders"), 0, 0)
            .iter()
            .map(|l| (l.stream, l.text.clone(), l.pid))
            .collect();
        lines.sort_by_key(|l| l.1.clone());
        assert_eq!(
            lines,
            [
                (Stream::Stderr, "err orders".to_string(), pid),
                (Stream::Stdout, "out orders".to_string(), pid),
            ]
        );
    }
}
