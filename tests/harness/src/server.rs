//! What the backend servers share: a process on a free port with a private
//! folder and log, started again on another port if one was taken, polled
//! until it answers with a deadline, killed by PID, started again on the
//! same port and folder (so a server with persistence finds its data),
//! stopped on drop. Each server says only how it is launched and how it
//! answers ([`Launch`]).

use std::{
    fs,
    future::Future,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{HarnessError, procs, wait::poll};

/// Fresh ports tried when another process takes the chosen one first.
const PORT_ATTEMPTS: usize = 5;

/// How one kind of server is run and probed.
pub trait Launch {
    /// e.g. `redis-server`, for messages and the log file's name.
    const NAME: &'static str;
    /// How long a new process may take to answer.
    const READY_TIMEOUT: Duration;
    /// The binary (an environment variable set by `scripts/tools.sh`, or PATH).
    fn binary(&self) -> String;
    /// Arguments to serve on `port`, keeping state in `dir` and logging to `log`.
    fn args(&self, command: &mut Command, port: u16, dir: &Path, log: &Path);
    /// True once the server on `port` answers.
    fn ready(&self, port: u16) -> impl Future<Output = bool> + Send;
    /// A free port to serve on; a server that also needs a port derived
    /// from it (a cluster bus) picks one where both are free.
    fn pick_port(&self) -> Result<u16, HarnessError> {
        procs::free_port()
    }
}

pub struct ServerProcess<L: Launch> {
    launch: L,
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl<L: Launch> ServerProcess<L> {
    /// Starts on a free port and waits until it answers.
    pub async fn launch(launch: L) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("prism-server-")
            .tempdir()
            .map_err(|e| HarnessError::io("creating a temporary folder", e))?;
        let mut server = Self {
            launch,
            child: None,
            port: 0,
            dir,
        };
        for _ in 0..PORT_ATTEMPTS {
            server.port = server.launch.pick_port()?;
            if server.spawn_and_wait().await? {
                return Ok(server);
            }
        }
        Err(server.not_ready(format!("it did not start on {PORT_ATTEMPTS} ports")))
    }

    pub fn launcher(&self) -> &L {
        &self.launch
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder holding the server's data and log; kept across restarts.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The running server's PID, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL (no clean shutdown) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = procs::kill(child.id());
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and folder (killing it first
    /// if it still runs) and waits until it answers.
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill();
        if self.spawn_and_wait().await? {
            Ok(())
        } else {
            Err(self.not_ready(format!("it did not start again on port {}", self.port)))
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("{}.log", L::NAME))
    }

    fn not_ready(&self, detail: String) -> HarnessError {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        HarnessError::NotReady {
            what: L::NAME.to_string(),
            timeout: L::READY_TIMEOUT,
            detail: format!(
                "{detail}; log:\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            ),
        }
    }

    /// Spawns on `self.port`; `Ok(false)` when the server exits or does not
    /// answer in time (the port may have been taken).
    async fn spawn_and_wait(&mut self) -> Result<bool, HarnessError> {
        let binary = self.launch.binary();
        let mut command = Command::new(&binary);
        self.launch
            .args(&mut command, self.port, self.dir.path(), &self.log_path());
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                binary: binary.into(),
                source,
            })?;
        let port = self.port;
        let Self {
            launch,
            child: slot,
            ..
        } = self;
        let child = slot.insert(child);
        let ready = poll(L::READY_TIMEOUT, || {
            let exited = !matches!(child.try_wait(), Ok(None));
            let probe = launch.ready(port);
            async move {
                if exited {
                    return Some(false);
                }
                probe.await.then_some(true)
            }
        })
        .await
        .unwrap_or(false);
        if !ready {
            self.kill();
        }
        Ok(ready)
    }
}

impl<L: Launch> Drop for ServerProcess<L> {
    fn drop(&mut self) {
        self.kill();
    }
}
