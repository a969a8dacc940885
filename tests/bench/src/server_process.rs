//! The backend server a run shares across its paths: `redis-server` for
//! `--backend redis`, `nats-server` for `--backend nats`. Either one named by
//! URL (`--redis`, `--nats`), or one the bench starts on a free loopback port
//! (`$REDIS_SERVER` / `$NATS_SERVER`, else found on `PATH`; Redis with
//! persistence off, NATS without JetStream), polled with a deadline until it
//! answers, and stopped by PID at the end. A [`Kind`] says only how its
//! server is launched, addressed and probed.

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

/// How long a started server may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long it may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Fresh ports tried when another process takes the chosen one first.
const PORT_ATTEMPTS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Redis,
    Nats,
}

impl Kind {
    /// The binary's usual name, for messages.
    pub fn binary_name(self) -> &'static str {
        match self {
            Self::Redis => "redis-server",
            Self::Nats => "nats-server",
        }
    }

    /// Its role in the report's process table.
    pub fn role(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Nats => "nats",
        }
    }

    /// The flag that names a running server instead.
    fn flag(self) -> &'static str {
        match self {
            Self::Redis => "--redis",
            Self::Nats => "--nats",
        }
    }

    fn binary(self) -> String {
        let var = match self {
            Self::Redis => "REDIS_SERVER",
            Self::Nats => "NATS_SERVER",
        };
        std::env::var(var).unwrap_or_else(|_| self.binary_name().to_string())
    }

    fn args(self, port: u16) -> Vec<String> {
        let port = port.to_string();
        let args: &[&str] = match self {
            Self::Redis => &[
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            Self::Nats => &["-a", "127.0.0.1", "-p", &port],
        };
        args.iter().map(|a| a.to_string()).collect()
    }

    fn schemes(self) -> &'static [&'static str] {
        match self {
            Self::Redis => &["redis", "rediss"],
            Self::Nats => &["nats", "tls"],
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Redis => 6379,
            Self::Nats => 4222,
        }
    }

    fn local_url(self, port: u16) -> String {
        format!("{}://127.0.0.1:{port}", self.schemes()[0])
    }

    /// Checks that `url` has one of this kind's schemes. Fails with
    /// [`BenchError::Usage`] naming the flag.
    pub fn check_url(self, url: &str) -> Result<(), BenchError> {
        self.resolve(url).map(drop)
    }

    /// The TCP address of `scheme://[user[:pass]@]host[:port][/…]`, for the
    /// report and the path straight to the server.
    fn resolve(self, url: &str) -> Result<SocketAddr, BenchError> {
        let bad = |detail: &str| BenchError::Usage(format!("{} `{url}`: {detail}", self.flag()));
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("needs a scheme"))?;
        if !self.schemes().contains(&scheme) {
            return Err(bad(&format!(
                "is not a {}:// URL",
                self.schemes().join(":// or ")
            )));
        }
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                (host, port.parse().map_err(|_| bad("has a bad port"))?)
            }
            _ => (host_port, self.default_port()),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        (host, port)
            .to_socket_addrs()
            .map_err(|e| bad(&e.to_string()))?
            .next()
            .ok_or_else(|| bad("resolves to no address"))
    }

    /// One readiness probe: Redis answers PING, NATS accepts a client and a
    /// flush.
    async fn ping(self, url: &str) -> Result<(), String> {
        match self {
            Self::Redis => {
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
            Self::Nats => {
                let client = async_nats::connect(url).await.map_err(|e| e.to_string())?;
                client.flush().await.map_err(|e| e.to_string())
            }
        }
    }
}

pub struct ServerProcess {
    kind: Kind,
    url: String,
    addr: SocketAddr,
    child: Option<Child>,
}

impl ServerProcess {
    /// Uses `url` when given, else starts the kind's server (on another free
    /// port if the first was taken); returns once it answers.
    pub async fn start(kind: Kind, url: Option<&str>) -> Result<Self, BenchError> {
        if let Some(url) = url {
            let mut server = Self {
                kind,
                url: url.to_string(),
                addr: kind.resolve(url)?,
                child: None,
            };
            return match server.wait_ready().await {
                Ok(()) => Ok(server),
                Err(Exited(e) | NotReady(e)) => Err(e),
            };
        }
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port(kind)?;
            let url = kind.local_url(port);
            let mut server = Self {
                kind,
                addr: kind.resolve(&url)?,
                url,
                child: Some(spawn(kind, port)?),
            };
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                Err(Exited(e)) => last = Some(e),
                Err(NotReady(e)) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// `redis://HOST:PORT` or `nats://HOST:PORT`
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PID of the server the bench started, if it started one.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    async fn wait_ready(&mut self) -> Result<(), Failure> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut delay = Duration::from_millis(5);
        loop {
            let last = match self.kind.ping(&self.url).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                let name = self.kind.binary_name();
                return Err(Exited(self.not_ready(format!("{name} exited ({status})"))));
            }
            if Instant::now() >= deadline {
                return Err(NotReady(self.not_ready(last)));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }

    fn not_ready(&self, detail: String) -> BenchError {
        BenchError::NotReady {
            what: format!("{} at {}", self.kind.binary_name(), self.url),
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

/// Why a started server is not usable: it exited (perhaps the port was
/// taken; another may do), or it never answered.
enum Failure {
    Exited(BenchError),
    NotReady(BenchError),
}
use Failure::{Exited, NotReady};

fn spawn(kind: Kind, port: u16) -> Result<Child, BenchError> {
    let binary = kind.binary();
    Command::new(&binary)
        .args(kind.args(port))
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
fn free_port(kind: Kind) -> Result<u16, BenchError> {
    let context = || format!("finding a free port for {}", kind.binary_name());
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| BenchError::io(context(), e))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| BenchError::io(context(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_the_address_of_a_url() {
        let addr = |kind: Kind, url: &str| kind.resolve(url).map_err(|e| e.to_string());
        assert_eq!(
            addr(Kind::Redis, "redis://127.0.0.1:7000"),
            Ok("127.0.0.1:7000".parse().unwrap())
        );
        assert_eq!(
            addr(Kind::Redis, "redis://:secret@127.0.0.1/2")
                .unwrap()
                .port(),
            6379
        );
        assert_eq!(
            addr(Kind::Nats, "nats://alice:pw@127.0.0.1:4333"),
            Ok("127.0.0.1:4333".parse().unwrap())
        );
        assert_eq!(addr(Kind::Nats, "tls://[::1]").unwrap().port(), 4222);
        for (kind, url) in [
            (Kind::Redis, "http://"),
            (Kind::Redis, "nats://127.0.0.1:1"),
            (Kind::Nats, "127.0.0.1:4222"),
            (Kind::Nats, "nats://:4222"),
            (Kind::Nats, "nats://127.0.0.1:port"),
        ] {
            let err = kind.check_url(url).unwrap_err();
            assert!(err.is_usage(), "{url}: {err}");
            assert!(err.to_string().starts_with(kind.flag()), "{err}");
        }
    }

    #[test]
    fn each_kind_serves_on_loopback_at_the_port() {
        assert_eq!(Kind::Nats.args(4000), ["-a", "127.0.0.1", "-p", "4000"]);
        assert!(Kind::Redis.args(4000).starts_with(&[
            "--port".to_string(),
            "4000".into(),
            "--bind".into(),
            "127.0.0.1".into()
        ]));
        assert_eq!(Kind::Nats.local_url(4000), "nats://127.0.0.1:4000");
        assert_eq!(Kind::Redis.local_url(4000), "redis://127.0.0.1:4000");
    }
}
