//! What the harness's backend servers share: a process on a free port with
//! a private folder and log, started again on another port if one was taken,
//! polled until it answers with a deadline, killed by PID, restarted on the
//! same port, stopped on drop. Each server says only how it is launched and
//! how it answers ([`Launch`]).

use std::{
    fs,
    future::Future,
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{procs, wait::eventually};

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
}

pub struct ServerProcess<L: Launch> {
    launch: L,
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl<L: Launch> ServerProcess<L> {
    /// Starts on a free port and waits until it answers.
    pub async fn launch(launch: L) -> Self {
        let mut server = Self {
            launch,
            child: None,
            port: 0,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            if server.spawn_and_wait().await {
                return server;
            }
        }
        panic!(
            "{} did not start after {PORT_ATTEMPTS} ports; log:\n{}",
            L::NAME,
            server.log()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The running server's PID, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL (no clean shutdown) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            procs::signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and folder (killing it first
    /// if it still runs) and waits until it answers.
    pub async fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn_and_wait().await,
            "{} did not restart on port {}; log:\n{}",
            L::NAME,
            self.port,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> std::path::PathBuf {
        self.dir.path().join(format!("{}.log", L::NAME))
    }

    /// Spawns on `self.port`; false when the server exits before answering
    /// (the port was taken).
    async fn spawn_and_wait(&mut self) -> bool {
        let binary = self.launch.binary();
        let mut command = Command::new(&binary);
        self.launch
            .args(&mut command, self.port, self.dir.path(), &self.log_path());
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {binary} ({e}): scripts/tools.sh installs {}",
                    L::NAME
                )
            });
        let port = self.port;
        let Self {
            launch,
            child: slot,
            ..
        } = self;
        let child = slot.insert(child);
        let ready = eventually(L::READY_TIMEOUT, &format!("{} to answer", L::NAME), || {
            let exited = child.try_wait().expect("try_wait").is_some();
            let probe = launch.ready(port);
            async move {
                if exited {
                    return Some(false);
                }
                probe.await.then_some(true)
            }
        })
        .await;
        if !ready && let Some(mut exited) = self.child.take() {
            let _ = exited.wait();
        }
        ready
    }
}

impl<L: Launch> Drop for ServerProcess<L> {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}
