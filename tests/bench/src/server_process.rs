//! The backend server a run shares across its paths: `redis-server` for
//! `--backend redis`, `nats-server` for `--backend nats`. Either one named by
//! URL (`--redis`, `--nats`), polled with a deadline until it answers, or one
//! the bench starts with `prism-harness` on a free loopback port (Redis with
//! persistence off, NATS without JetStream) and stops by PID at the end. A
//! [`Kind`] says only how its server is addressed and probed.

use std::{
    net::{SocketAddr, ToSocketAddrs},
    time::Duration,
};

use prism_harness::{Nats, NatsServer, Redis, RedisServer, wait::poll};

use crate::BenchError;

/// How long a named server may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Redis,
    Nats,
}

impl Kind {
    /// The binary's usual name, for messages.
    pub(crate) fn binary_name(self) -> &'static str {
        match self {
            Self::Redis => "redis-server",
            Self::Nats => "nats-server",
        }
    }

    /// Its role in the report's process table.
    pub(crate) fn role(self) -> &'static str {
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

    /// Checks that `url` has one of this kind's schemes. Fails with
    /// [`BenchError::Usage`] naming the flag.
    pub(crate) fn check_url(self, url: &str) -> Result<(), BenchError> {
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

pub(crate) struct ServerProcess {
    kind: Kind,
    url: String,
    addr: SocketAddr,
    started: Option<Started>,
}

/// A server the bench started (stopped by PID on drop).
enum Started {
    Redis(RedisServer),
    Nats(NatsServer),
}

impl ServerProcess {
    /// Uses `url` when given, else starts the kind's server; returns once it
    /// answers.
    pub(crate) async fn start(kind: Kind, url: Option<&str>) -> Result<Self, BenchError> {
        if let Some(url) = url {
            let addr = kind.resolve(url)?;
            let last = std::sync::Mutex::new(String::new());
            let answered = poll(READY_TIMEOUT, || {
                let last = &last;
                async move {
                    match kind.ping(url).await {
                        Ok(()) => Some(()),
                        Err(e) => {
                            if let Ok(mut last) = last.lock() {
                                *last = e;
                            }
                            None
                        }
                    }
                }
            })
            .await;
            return match answered {
                Some(()) => Ok(Self {
                    kind,
                    url: url.to_string(),
                    addr,
                    started: None,
                }),
                None => Err(BenchError::NotReady {
                    what: format!("{} at {url}", kind.binary_name()),
                    timeout: READY_TIMEOUT,
                    detail: last.into_inner().unwrap_or_default(),
                }),
            };
        }
        let (url, started) = match kind {
            Kind::Redis => {
                let server = Redis::default().start().await?;
                (server.url(), Started::Redis(server))
            }
            Kind::Nats => {
                let server = Nats::default().start().await?;
                (server.url(), Started::Nats(server))
            }
        };
        Ok(Self {
            kind,
            addr: kind.resolve(&url)?,
            url,
            started: Some(started),
        })
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// `redis://HOST:PORT` or `nats://HOST:PORT`
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PID of the server the bench started, if it started one.
    pub(crate) fn pid(&self) -> Option<u32> {
        match self.started.as_ref()? {
            Started::Redis(server) => server.pid(),
            Started::Nats(server) => server.pid(),
        }
    }

    /// Stops the server the bench started, by PID.
    pub(crate) async fn stop(self) {
        drop(self.started);
    }
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
}
