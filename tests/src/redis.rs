//! A real `redis-server` on a free port, stopped by PID on drop.
//!
//! `REDIS_SERVER` names the binary (`scripts/tools.sh` installs and exports
//! it); otherwise `redis-server` is looked up on `PATH`.

use std::{
    fs,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{procs, wait::eventually};

/// How long a server may take to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Fresh ports tried when another process takes the chosen one first.
const PORT_ATTEMPTS: usize = 5;

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Same as [`RedisServer::start`], with extra `redis-server` arguments
    /// such as `["--requirepass", "secret"]`.
    pub async fn start_with(args: &[&str]) -> Self {
        let mut server = Self {
            child: None,
            port: 0,
            args: args.iter().map(|s| s.to_string()).collect(),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            if server.spawn_and_wait().await {
                return server;
            }
        }
        panic!(
            "redis-server did not start after {PORT_ATTEMPTS} ports; log:\n{}",
            server.log()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
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

    /// Starts the server again on the same port (killing it first if it
    /// still runs) and waits until it answers PING. Its data is gone.
    pub async fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn_and_wait().await,
            "redis-server did not restart on port {}; log:\n{}",
            self.port,
            self.log()
        );
    }

    /// A client for checking what the pattern wrote.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("redis url")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Spawns on `self.port`; false when the server exits before answering
    /// (the port was taken).
    async fn spawn_and_wait(&mut self) -> bool {
        let port = self.port.to_string();
        let mut command = Command::new(binary());
        command
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log_path())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): scripts/tools.sh installs redis-server",
                binary()
            )
        });
        self.child = Some(child);
        let url = self.url();
        let child = self.child.as_mut().expect("spawned");
        let ready = eventually(READY_TIMEOUT, "redis-server to answer PING", || {
            let exited = child.try_wait().expect("try_wait").is_some();
            let url = url.clone();
            async move {
                if exited {
                    return Some(false);
                }
                ping(&url).await.then_some(true)
            }
        })
        .await;
        if !ready && let Some(mut exited) = self.child.take() {
            let _ = exited.wait();
        }
        ready
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// True when the server at `url` answers PING (NOAUTH counts: it is up).
async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    match redis::cmd("PING").query_async::<String>(&mut conn).await {
        Ok(_) => true,
        Err(e) => e.code() == Some("NOAUTH"),
    }
}
