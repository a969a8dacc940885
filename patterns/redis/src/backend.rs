//! One configured Redis server: the pool, the commands KeyValue needs, each
//! in its own client span, and the health probe.

use std::time::{Duration, Instant};

use redis::{Cmd, FromRedisValue, aio::MultiplexedConnection};
use tokio::sync::Mutex;
use tracing::{Instrument, field::Empty};

use crate::{
    config::{Endpoint, RedisConfig},
    error::Error,
    pool::{self, Object, Pool, PoolStats},
    scan::{self, Cursor, Page},
};

pub struct Backend {
    config: RedisConfig,
    endpoint: Endpoint,
    pool: Pool,
    /// The health probe's own connection, so a busy pool never makes the
    /// server look unreachable (and a dead server is noticed while idle).
    probe: Mutex<Option<MultiplexedConnection>>,
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
        let info = config.connection_info()?;
        let endpoint = Endpoint::of(&info);
        let client = redis::Client::open(info)
            .map_err(|e| prism_pattern_sdk::ConfigError::new("address", e.to_string()))?;
        let pool = pool::build(client, &config)
            .map_err(|e| prism_pattern_sdk::ConfigError::new("pool_size", e.to_string()))?;
        Ok(Self {
            config,
            endpoint,
            pool,
            probe: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn pool_stats(&self) -> PoolStats {
        PoolStats::of(&self.pool)
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

    /// One page of keys starting with `prefix` (see [`scan`]).
    pub(crate) async fn scan(
        &self,
        prefix: &str,
        cursor: Cursor,
        limit: usize,
    ) -> Result<Page, Error> {
        let pattern = scan::match_pattern(prefix);
        scan::page(prefix, cursor, limit, |at, count| {
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
                Ok((next, keys))
            }
        })
        .await
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
                    pool::drop_idle(&self.pool);
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
        self.pool.get().await.map_err(|err| {
            let err = Error::from_pool(
                err,
                self.config.pool_size,
                self.config.command_timeout(),
                self.config.connect_timeout(),
            );
            if err.breaks_connection() {
                pool::drop_idle(&self.pool);
            }
            err
        })
    }

    /// PINGs the server on the probe's own connection, reconnecting if it
    /// has none, within `health_timeout_ms`. Returns the round trip, or why
    /// the server cannot be reached.
    pub async fn ping(&self) -> Result<Duration, String> {
        let timeout = self.config.health_timeout();
        let mut probe = self.probe.lock().await;
        let result = tokio::time::timeout(timeout, async {
            if probe.is_none() {
                *probe = Some(self.pool.manager().connect().await?);
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
        pool::drop_idle(&self.pool);
        Err(err)
    }

    /// Opens a connection of its own for Pub/Sub (a subscribed connection
    /// can run nothing else), with the pool's address, credentials and
    /// connect timeout. Dropping what it returns closes it, which ends its
    /// subscriptions.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, Error> {
        let timeout = self.config.connect_timeout();
        match tokio::time::timeout(timeout, self.pool.manager().client().get_async_pubsub()).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(Error::ConnectTimeout(timeout)),
        }
    }

    /// Closes the pool; later commands fail with UNAVAILABLE.
    pub async fn close(&self) {
        self.pool.close();
        *self.probe.lock().await = None;
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
