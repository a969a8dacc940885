//! The backend server a run shares across its paths: `redis-server` for
//! `--backend redis`, `nats-server` for `--backend nats`, or a cluster of
//! them for `redis-cluster` and `nats-cluster`. Either named by URL
//! (`--redis`, `--nats`, `--redis-cluster`, `--nats-cluster`), polled with a
//! deadline until every node answers, or started by the bench with
//! `prism-harness` on free loopback ports and stopped by PID at the end: one
//! Redis with persistence off, one NATS without JetStream, the harness's
//! Redis Cluster (three masters, three replicas, every write fsynced to the
//! append-only file) or its three routed NATS nodes (JetStream on, unused
//! here). A [`Kind`] says only how its servers are addressed and probed.

use std::{
    net::{SocketAddr, ToSocketAddrs},
    time::Duration,
};

use prism_harness::{Nats, NatsCluster, NatsServer, Redis, RedisCluster, RedisServer, wait::poll};

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
        self.resolve_named(self.flag(), url)
    }

    /// The same, errors naming `flag`.
    fn resolve_named(self, flag: &str, url: &str) -> Result<SocketAddr, BenchError> {
        let bad = |detail: &str| BenchError::Usage(format!("{flag} `{url}`: {detail}"));
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
    /// Every node's URL; one for a single server.
    urls: Vec<String>,
    /// The first node's address.
    addr: SocketAddr,
    started: Option<Started>,
}

/// Servers the bench started (stopped by PID on drop).
enum Started {
    Redis(RedisServer),
    Nats(NatsServer),
    RedisCluster(RedisCluster),
    NatsCluster(NatsCluster),
}

impl ServerProcess {
    /// Uses the servers at `urls` when given, else starts the kind's server
    /// (a cluster of them when `cluster`); returns once every one answers.
    pub(crate) async fn start(
        kind: Kind,
        cluster: bool,
        urls: Option<&[String]>,
    ) -> Result<Self, BenchError> {
        if let Some(urls) = urls {
            let first = urls
                .first()
                .ok_or_else(|| BenchError::Usage(format!("{}: no URL", kind.flag())))?;
            let addr = kind.resolve(first)?;
            for url in urls {
                kind.resolve(url)?;
                wait_answers(kind, url).await?;
            }
            return Ok(Self {
                kind,
                urls: urls.to_vec(),
                addr,
                started: None,
            });
        }
        let (urls, started) = match (kind, cluster) {
            (Kind::Redis, false) => {
                let server = Redis::default().start().await?;
                (vec![server.url()], Started::Redis(server))
            }
            (Kind::Nats, false) => {
                let server = Nats::default().start().await?;
                (vec![server.url()], Started::Nats(server))
            }
            (Kind::Redis, true) => {
                let cluster = RedisCluster::start().await?;
                (cluster.urls(), Started::RedisCluster(cluster))
            }
            (Kind::Nats, true) => {
                let cluster = NatsCluster::start().await?;
                (cluster.urls(), Started::NatsCluster(cluster))
            }
        };
        Ok(Self {
            kind,
            addr: kind.resolve(&urls[0])?,
            urls,
            started: Some(started),
        })
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// `redis://HOST:PORT` or `nats://HOST:PORT` of every node.
    pub(crate) fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The first node's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PIDs of the servers the bench started (none if it started none).
    pub(crate) fn pids(&self) -> Vec<u32> {
        match &self.started {
            None => Vec::new(),
            Some(Started::Redis(server)) => server.pid().into_iter().collect(),
            Some(Started::Nats(server)) => server.pid().into_iter().collect(),
            Some(Started::RedisCluster(cluster)) => {
                cluster.nodes.iter().filter_map(|n| n.pid()).collect()
            }
            Some(Started::NatsCluster(cluster)) => {
                cluster.nodes.iter().filter_map(|n| n.pid()).collect()
            }
        }
    }

    /// Stops the servers the bench started, by PID.
    pub(crate) async fn stop(self) {
        // Stopping waits for each exit by polling; off the runtime's threads.
        let started = self.started;
        let _ = tokio::task::spawn_blocking(move || drop(started)).await;
    }
}

/// Polls the server at `url` until it answers, within [`READY_TIMEOUT`].
async fn wait_answers(kind: Kind, url: &str) -> Result<(), BenchError> {
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
    answered.ok_or_else(|| BenchError::NotReady {
        what: format!("{} at {url}", kind.binary_name()),
        timeout: READY_TIMEOUT,
        detail: last.into_inner().unwrap_or_default(),
    })
}

/// Splits `URL,URL,…` (a `--redis-cluster` or `--nats-cluster` value) and
/// checks each URL; a cluster needs at least two. Fails with
/// [`BenchError::Usage`] naming `flag`.
pub(crate) fn parse_cluster_urls(
    kind: Kind,
    flag: &str,
    list: &str,
) -> Result<Vec<String>, BenchError> {
    let urls: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(String::from)
        .collect();
    if urls.len() < 2 {
        return Err(BenchError::Usage(format!(
            "{flag}: name at least two nodes, comma separated (got {})",
            urls.len()
        )));
    }
    for url in &urls {
        kind.resolve_named(flag, url)?;
    }
    Ok(urls)
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
    fn a_cluster_list_names_two_nodes_or_more() {
        let urls = parse_cluster_urls(
            Kind::Redis,
            "--redis-cluster",
            "redis://127.0.0.1:7000, redis://127.0.0.1:7001,",
        )
        .unwrap();
        assert_eq!(urls, ["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]);
        for list in [
            "redis://127.0.0.1:7000",
            "",
            "redis://127.0.0.1:1,nats://127.0.0.1:2",
        ] {
            let err = parse_cluster_urls(Kind::Redis, "--redis-cluster", list).unwrap_err();
            assert!(err.is_usage(), "{list}: {err}");
            assert!(err.to_string().starts_with("--redis-cluster"), "{err}");
        }
    }
}
