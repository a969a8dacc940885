//! The Redis of `--backend redis`: a `redis-server` the bench starts on a
//! free loopback port with persistence off (`$REDIS_SERVER`, else found on
//! `PATH`), or one named by `--redis URL`. Shared by every path of a run and
//! stopped by PID at the end.

use std::{
    net::{SocketAddr, TcpListener, ToSocketAddrs},
    process::Stdio,
    time::Duration,
};

use tokio::{
    process::{Child, Command},
    time::Instant,
};

use crate::BenchError;

/// How long a started `redis-server` may take to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long it may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Redis {
    url: String,
    addr: SocketAddr,
    child: Option<Child>,
}

impl Redis {
    /// Uses `url` when given, else starts `redis-server`; returns once it
    /// answers PING.
    pub async fn start(url: Option<&str>) -> Result<Self, BenchError> {
        let (url, child) = match url {
            Some(url) => (url.to_string(), None),
            None => {
                let port = free_port()?;
                let child = spawn(port)?;
                (format!("redis://127.0.0.1:{port}"), Some(child))
            }
        };
        let addr = resolve(&url)?;
        let mut redis = Self { url, addr, child };
        redis.wait_ready().await?;
        Ok(redis)
    }

    /// `redis://HOST:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PID of the `redis-server` the bench started, if it started one.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    async fn wait_ready(&mut self) -> Result<(), BenchError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut delay = Duration::from_millis(5);
        loop {
            let last = match ping(&self.url).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(self.not_ready(format!("redis-server exited ({status})")));
            }
            if Instant::now() >= deadline {
                return Err(self.not_ready(last));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }

    fn not_ready(&self, detail: String) -> BenchError {
        BenchError::NotReady {
            what: format!("Redis at {}", self.url),
            timeout: READY_TIMEOUT,
            detail,
        }
    }

    /// SIGTERM by PID, then SIGKILL if it has not exited in time.
    pub async fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

fn binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_string())
}

fn spawn(port: u16) -> Result<Child, BenchError> {
    let binary = binary();
    Command::new(&binary)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| BenchError::Spawn {
            binary: binary.into(),
            source,
        })
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| BenchError::io("finding a free port for redis-server", e))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| BenchError::io("finding a free port for redis-server", e))
}

/// The TCP address of a `redis://` URL, for the report.
fn resolve(url: &str) -> Result<SocketAddr, BenchError> {
    let bad = |detail: String| BenchError::Usage(format!("--redis `{url}`: {detail}"));
    let info = redis::parse_redis_url(url).ok_or_else(|| bad("not a Redis URL".into()))?;
    let host = info
        .host_str()
        .ok_or_else(|| bad("has no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = info.port().unwrap_or(6379);
    (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("resolves to no address".into()))
}

async fn ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_address_of_a_url() {
        assert_eq!(
            resolve("redis://127.0.0.1:7000").unwrap(),
            "127.0.0.1:7000".parse().unwrap()
        );
        assert_eq!(resolve("redis://127.0.0.1").unwrap().port(), 6379);
        assert!(resolve("http://").is_err());
    }
}
