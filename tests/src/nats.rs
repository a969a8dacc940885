//! A real `nats-server` (with JetStream unless asked otherwise) on a free
//! port, its store in a temporary folder, stopped by PID on drop.
//!
//! `NATS_SERVER` names the binary (`scripts/tools.sh` installs and exports
//! it); otherwise `nats-server` is looked up on `PATH`.

use std::{
    fs,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

use crate::{procs, wait::eventually};

/// How long a server may take to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one readiness probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Fresh ports tried when another process takes the chosen one first.
const PORT_ATTEMPTS: usize = 5;

pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    jetstream: bool,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server with JetStream on a free port and waits until it
    /// answers PING.
    pub async fn start() -> Self {
        Self::start_with(true).await
    }

    /// Same as [`NatsServer::start`], without JetStream.
    pub async fn start_without_jetstream() -> Self {
        Self::start_with(false).await
    }

    async fn start_with(jetstream: bool) -> Self {
        let mut server = Self {
            child: None,
            port: 0,
            jetstream,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            if server.spawn_and_wait().await {
                return server;
            }
        }
        panic!(
            "nats-server did not start after {PORT_ATTEMPTS} ports; log:\n{}",
            server.log()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `nats://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
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

    /// Starts the server again on the same port and store folder (killing
    /// it first if it still runs) and waits until it answers PING. JetStream
    /// streams and durable consumers survive; core subscriptions do not.
    pub async fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn_and_wait().await,
            "nats-server did not restart on port {}; log:\n{}",
            self.port,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats.log")
    }

    /// Spawns on `self.port`; false when the server exits before answering
    /// (the port was taken).
    async fn spawn_and_wait(&mut self) -> bool {
        let port = self.port.to_string();
        let mut command = Command::new(binary());
        if self.jetstream {
            command.arg("-js");
        }
        let child = command
            .args(["-a", "127.0.0.1", "-p", &port])
            .arg("-sd")
            .arg(self.dir.path().join("store"))
            .arg("-l")
            .arg(self.log_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): scripts/tools.sh installs nats-server",
                    binary()
                )
            });
        self.child = Some(child);
        let port = self.port;
        let child = self.child.as_mut().expect("spawned");
        let ready = eventually(READY_TIMEOUT, "nats-server to answer PING", || {
            let exited = child.try_wait().expect("try_wait").is_some();
            async move {
                if exited {
                    return Some(false);
                }
                ping(port).await.then_some(true)
            }
        })
        .await;
        if !ready && let Some(mut exited) = self.child.take() {
            let _ = exited.wait();
        }
        ready
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn binary() -> String {
    std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".to_string())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// True when a NATS server on `port` greets with INFO and answers PING.
async fn ping(port: u16) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let (read, mut write) = stream.split();
        let mut lines = BufReader::new(read).lines();
        let info = lines.next_line().await.ok()??;
        if !info.starts_with("INFO ") {
            return None;
        }
        write
            .write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
            .await
            .ok()?;
        loop {
            let line = lines.next_line().await.ok()??;
            if line == "PONG" {
                return Some(());
            }
        }
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, probe).await,
        Ok(Some(()))
    )
}
