//! A real `redis-server` on a free port, stopped by PID on drop (see
//! [`prism_harness::redis`] for its options and binary).

use crate::server::ServerProcess;

pub use prism_harness::redis::Redis;

/// A running `redis-server`; see [`ServerProcess`] for kill, restart and logs.
pub type RedisServer = ServerProcess<Redis>;

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Same as [`RedisServer::start`], with extra `redis-server` arguments
    /// such as `["--requirepass", "secret"]`.
    pub async fn start_with(args: &[&str]) -> Self {
        Self::launch(Redis::with_args(args)).await
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
