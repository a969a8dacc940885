//! A real `redis-server` on a free port, stopped by PID on drop.
//!
//! `REDIS_SERVER` names the binary (`scripts/tools.sh` installs and exports
//! it); otherwise `redis-server` is looked up on `PATH`.

use std::{path::Path, process::Command, time::Duration};

use crate::server::{Launch, ServerProcess};

/// A running `redis-server`; see [`ServerProcess`] for kill, restart and logs.
pub type RedisServer = ServerProcess<Redis>;

pub struct Redis {
    args: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Same as [`RedisServer::start`], with extra `redis-server` arguments
    /// such as `["--requirepass", "secret"]`.
    pub async fn start_with(args: &[&str]) -> Self {
        Self::launch(Redis {
            args: args.iter().map(|s| s.to_string()).collect(),
        })
        .await
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port())
    }

    /// A client for checking what the pattern wrote.
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url()).expect("redis url")
    }
}

impl Launch for Redis {
    const NAME: &'static str = "redis-server";
    const READY_TIMEOUT: Duration = Duration::from_secs(10);

    fn binary(&self) -> String {
        std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string())
    }

    /// No persistence: a restarted server starts empty.
    fn args(&self, command: &mut Command, port: u16, dir: &Path, log: &Path) {
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(log)
            .args(&self.args);
    }

    fn ready(&self, port: u16) -> impl Future<Output = bool> + Send {
        ping(format!("redis://127.0.0.1:{port}"))
    }
}

/// True when the server at `url` answers PING (NOAUTH counts: it is up).
async fn ping(url: String) -> bool {
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
