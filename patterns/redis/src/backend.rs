//! One configured Redis server or Redis Cluster: the pool (or the cluster
//! connection), the commands KeyValue needs, each in its own client span,
//! and the health probe.

use std::time::{Duration, Instant};

use redis::{Cmd, FromRedisValue, aio::MultiplexedConnection};
use tokio::sync::Mutex;
use tracing::{Instrument, field::Empty};

use crate::{
    cluster::{Cluster, health::NodeView},
    config::{Endpoint, RedisConfig},
    error::Error,
    pool::{self, Object, Pool, PoolStats},
    scan::{self, Cursor},
};

pub struct Backend {
    config: RedisConfig,
    /// The server, or the first cluster seed, for spans and details.
    endpoint: Endpoint,
    conns: Conns,
}

enum Conns {
    Single {
        pool: Pool,
        /// The health probe's own connection, so a busy pool never makes the
        /// server look unreachable (and a dead server is noticed while idle).
        probe: Mutex<Option<MultiplexedConnection>>,
    },
    /// The cluster client multiplexes one connection per node itself
    /// (boxed: its client holds every setting and is much the larger).
    Cluster(Box<Cluster>),
}

/// A failed attempt; `stale` when it failed on a reused connection that broke.
struct Failed {
    err: Error,
    stale: bool,
}

/// Whether a failed command may run again on a fresh connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads: the result does not depend on how many times they ran.
    Idempotent,
    Never,
}

impl Backend {
    /// Prepares the pool; nothing connects until the first command or
    /// health probe, so a Redis that is down now does not fail this.
    pub fn new(config: RedisConfig) -> Result<Self, prism_pattern_sdk::ConfigError> {
        if config.is_cluster() {
            let seeds = config.cluster_nodes()?;
            let endpoint = Endpoint::of(&seeds[0]);
            let cluster = Cluster::new(&config, seeds)
                .map_err(|e| prism_pattern_sdk::ConfigError::new("cluster", e.to_string()))?;
            return Ok(Self {
                config,
                endpoint,
                conns: Conns::Cluster(Box::new(cluster)),
            });
        }
        let info = config.connection_info()?;
        let endpoint = Endpoint::of(&info);
        let client = redis::Client::open(info)
            .map_err(|e| prism_pattern_sdk::ConfigError::new("address", e.to_string()))?;
        let pool = pool::build(client, &config)
            .map_err(|e| prism_pattern_sdk::ConfigError::new("pool_size", e.to_string()))?;
        Ok(Self {
            config,
            endpoint,
            conns: Conns::Single {
                pool,
                probe: Mutex::new(None),
            },
        })
    }

    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The pool's figures; a cluster has no pool (`None`).
    pub fn pool_stats(&self) -> Option<PoolStats> {
        match &self.conns {
            Conns::Single { pool, .. } => Some(PoolStats::of(pool)),
            Conns::Cluster(_) => None,
        }
    }

    /// Every cluster node as a probe sees it now (`None`: not a cluster;
    /// `Err`: no node answered `CLUSTER NODES`).
    pub(crate) async fn cluster_probe(&self) -> Option<Result<Vec<NodeView>, String>> {
        match &self.conns {
            Conns::Cluster(cluster) => Some(cluster.probe().await),
            Conns::Single { .. } => None,
        }
    }

    /// `SET key value [EX ttl]`: the TTL is part of the write, and a write
    /// without one clears any earlier TTL.
    pub(crate) async fn set(&self, key: &str, value: &[u8], ttl_seconds: u64) -> Result<(), Error> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        if ttl_seconds > 0 {
            cmd.arg("EX").arg(ttl_seconds);
        }
        self.run("SET", &cmd, Retry::Never).await
    }

    /// The value, or `None` for a missing (or expired) key.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.run("GET", redis::cmd("GET").arg(key), Retry::Idempotent)
            .await
    }

    /// True when a key was removed.
    pub(crate) async fn delete(&self, key: &str) -> Result<bool, Error> {
        let removed: i64 = self
            .run("DEL", redis::cmd("DEL").arg(key), Retry::Never)
            .await?;
        Ok(removed > 0)
    }

    pub(crate) async fn exists(&self, key: &str) -> Result<bool, Error> {
        let found: i64 = self
            .run("EXISTS", redis::cmd("EXISTS").arg(key), Retry::Idempotent)
            .await?;
        Ok(found > 0)
    }

    /// One page of at most `limit` keys starting with `prefix` from the
    /// API cursor `text` (see [`scan`] and, on a cluster, [`crate::cluster`]):
    /// the keys and the next API cursor, `""` when done. A cursor this
    /// server did not issue is [`Error::Invalid`].
    pub(crate) async fn scan(
        &self,
        prefix: &str,
        text: &str,
        limit: usize,
    ) -> Result<(Vec<String>, String), Error> {
        if let Conns::Cluster(cluster) = &self.conns {
            return cluster.scan(prefix, text, limit).await;
        }
        let cursor = Cursor::parse(text, self.config.max_key_bytes)?;
        let pattern = scan::match_pattern(prefix);
        let page = scan::page(prefix, cursor, limit, |at, count| {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(at)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(count);
            async move {
                let (next, keys): (u64, Vec<Vec<u8>>) =
                    self.run("SCAN", &cmd, Retry::Idempotent).await?;
                // Keys that are not UTF-8 cannot be named through this API.
                let keys = keys
                    .into_iter()
                    .filter_map(|k| String::from_utf8(k).ok())
                    .collect();
                Ok::<_, Error>((next, keys))
            }
        })
        .await?;
        Ok((page.keys, page.next.map(|c| c.encode()).unwrap_or_default()))
    }

    /// Runs `cmd` on a pooled connection inside a client span named
    /// `redis <op>`; a read that failed on a reused connection that turned
    /// out broken (say, Redis restarted since) runs again on a fresh one.
    pub async fn run<T: FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &Cmd,
        retry: Retry,
    ) -> Result<T, Error> {
        let attempts = match retry {
            Retry::Idempotent => 1 + self.config.read_retries,
            Retry::Never => 1,
        };
        let mut attempt = 1;
        loop {
            match self.attempt(op, cmd).await {
                Ok(value) => return Ok(value),
                Err(failed) if failed.stale && attempt < attempts => {
                    tracing::debug!(op, attempt, error = %failed.err, "retrying a read on a fresh connection");
                    attempt += 1;
                }
                Err(failed) => return Err(failed.err),
            }
        }
    }

    /// One checkout and one command, inside a client span.
    async fn attempt<T: FromRedisValue>(&self, op: &'static str, cmd: &Cmd) -> Result<T, Failed> {
        let span = tracing::info_span!(
            "redis",
            otel.name = %format!("redis {op}"),
            otel.kind = "client",
            db.system = "redis",
            db.operation.name = op,
            server.address = %self.endpoint.host,
            server.port = Empty,
            otel.status_code = Empty,
        );
        if let Some(port) = self.endpoint.port {
            span.record("server.port", port);
        }
        let call = async {
            let pool = match &self.conns {
                Conns::Single { pool, .. } => pool,
                // The cluster client follows MOVED/ASK and reconnects itself.
                Conns::Cluster(cluster) => {
                    return cluster
                        .query(cmd)
                        .await
                        .map_err(|err| Failed { err, stale: false });
                }
            };
            let mut conn = self
                .checkout()
                .await
                .map_err(|err| Failed { err, stale: false })?;
            let reused = Object::metrics(&conn).recycle_count > 0;
            cmd.query_async::<T>(&mut conn.inner).await.map_err(|err| {
                let err = Error::Redis(err);
                let broke = err.breaks_connection();
                if broke {
                    conn.mark_broken();
                    pool::drop_idle(pool);
                }
                Failed {
                    err,
                    stale: broke && reused,
                }
            })
        };
        let result = call.instrument(span.clone()).await;
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    async fn checkout(&self) -> Result<Object, Error> {
        let Conns::Single { pool, .. } = &self.conns else {
            return Err(Error::Pool("a cluster has no pool".into()));
        };
        pool.get().await.map_err(|err| {
            let err = Error::from_pool(
                err,
                self.config.pool_size,
                self.config.command_timeout(),
                self.config.connect_timeout(),
            );
            if err.breaks_connection() {
                pool::drop_idle(pool);
            }
            err
        })
    }

    /// PINGs the server on the probe's own connection, reconnecting if it
    /// has none, within `health_timeout_ms`. Returns the round trip, or why
    /// the server cannot be reached.
    ///
    /// On a cluster: the slowest node's round trip, or an error when some
    /// slot has no reachable master.
    pub async fn ping(&self) -> Result<Duration, String> {
        let (pool, probe) = match &self.conns {
            Conns::Single { pool, probe } => (pool, probe),
            Conns::Cluster(cluster) => {
                let nodes = cluster.probe().await?;
                let health =
                    crate::cluster::health::health_for(Ok(nodes.clone()), self.config.slow_ping());
                if health.unreachable_backend.is_some() {
                    return Err(health.message);
                }
                return Ok(nodes
                    .iter()
                    .filter_map(|n| n.ping)
                    .max()
                    .unwrap_or_default());
            }
        };
        let timeout = self.config.health_timeout();
        let mut probe = probe.lock().await;
        let result = tokio::time::timeout(timeout, async {
            if probe.is_none() {
                *probe = Some(pool.manager().connect().await?);
            }
            let conn = probe.as_mut().expect("connected above");
            // Only the round trip counts, not reconnecting.
            let sent = Instant::now();
            redis::cmd("PING").query_async::<String>(conn).await?;
            Ok::<_, redis::RedisError>(sent.elapsed())
        })
        .await;
        let err = match result {
            Ok(Ok(rtt)) => return Ok(rtt),
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no PONG within {timeout:?} (health_timeout_ms)"),
        };
        // Whatever broke, start over; pooled connections are suspect too.
        *probe = None;
        pool::drop_idle(pool);
        Err(err)
    }

    /// Opens a connection of its own for Pub/Sub (a subscribed connection
    /// can run nothing else), with the pool's address, credentials and
    /// connect timeout. Dropping what it returns closes it, which ends its
    /// subscriptions.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, Error> {
        let pool = match &self.conns {
            Conns::Single { pool, .. } => pool,
            Conns::Cluster(cluster) => return cluster.pubsub().await,
        };
        let timeout = self.config.connect_timeout();
        match tokio::time::timeout(timeout, pool.manager().client().get_async_pubsub()).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(Error::ConnectTimeout(timeout)),
        }
    }

    /// Closes the pool; later commands fail with UNAVAILABLE.
    pub async fn close(&self) {
        match &self.conns {
            Conns::Single { pool, probe } => {
                pool.close();
                *probe.lock().await = None;
            }
            Conns::Cluster(cluster) => cluster.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::{
        Subscriber,
        field::{Field, Visit},
        span::{Attributes, Id, Record},
    };
    use tracing_subscriber::{Layer, layer::Context, prelude::*};

    use super::*;

    /// Every span field as `name=value`, in the order set.
    #[derive(Clone, Default)]
    struct Fields(Arc<Mutex<Vec<String>>>);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let value = format!("{value:?}");
            let value = value.trim_matches('"');
            self.0
                .lock()
                .unwrap()
                .push(format!("{}={value}", field.name()));
        }
    }

    impl<S: Subscriber> Layer<S> for Fields {
        fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            attrs.record(&mut self.clone());
        }
        fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
            values.record(&mut self.clone());
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn each_command_runs_in_a_client_span_that_names_no_key() {
        let fields = Fields::default();
        let _subscriber = tracing_subscriber::registry()
            .with(fields.clone())
            .set_default();
        let config = RedisConfig {
            address: "redis://127.0.0.1:1".into(),
            read_retries: 0,
            ..RedisConfig::default()
        };
        let backend = Backend::new(config).unwrap();
        let err = backend.get("secret-key").await.unwrap_err();
        assert_eq!(
            crate::error::to_status(&err).code(),
            tonic::Code::Unavailable,
            "{err}"
        );

        let fields = fields.0.lock().unwrap().clone();
        for expected in [
            "otel.name=redis GET",
            "otel.kind=client",
            "db.system=redis",
            "db.operation.name=GET",
            "server.address=127.0.0.1",
            "server.port=1",
            "otel.status_code=ERROR",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected} in {fields:?}"
            );
        }
        assert!(
            fields.iter().all(|f| !f.contains("secret-key")),
            "a key leaked into a span: {fields:?}"
        );
    }
}
