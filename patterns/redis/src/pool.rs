//! Pooled connections to one Redis server.
//!
//! A checkout hands out a connection without a round trip: instead of
//! PINGing on every checkout, a connection that saw a connection-level
//! failure is marked broken and dropped when it comes back, and the idle
//! ones are dropped with it (if one connection died with the server, they
//! all did). New connections are opened on demand, so the pool heals by
//! itself once Redis is back.

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use redis::{AsyncConnectionConfig, Client, aio::MultiplexedConnection};

use crate::{config::RedisConfig, error::Error};

/// One pooled connection.
pub(crate) struct Conn {
    pub inner: MultiplexedConnection,
    /// Set after a failure that may have left the connection unusable.
    broken: bool,
}

impl Conn {
    pub(crate) fn mark_broken(&mut self) {
        self.broken = true;
    }
}

pub(crate) struct Manager {
    client: Client,
    connection: AsyncConnectionConfig,
}

impl Manager {
    pub(crate) fn new(client: Client, config: &RedisConfig) -> Self {
        Self {
            client,
            connection: connection_config(config),
        }
    }

    /// The client the pool's connections come from.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Opens a connection outside the pool (the health probe has its own).
    pub(crate) async fn connect(&self) -> Result<MultiplexedConnection, redis::RedisError> {
        self.client
            .get_multiplexed_async_connection_with_config(&self.connection)
            .await
    }
}

/// Connect and reply timeouts for every connection.
pub(crate) fn connection_config(config: &RedisConfig) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout()))
        .set_response_timeout(Some(config.command_timeout()))
}

impl managed::Manager for Manager {
    type Type = Conn;
    type Error = redis::RedisError;

    async fn create(&self) -> Result<Conn, redis::RedisError> {
        Ok(Conn {
            inner: self.connect().await?,
            broken: false,
        })
    }

    async fn recycle(&self, conn: &mut Conn, _: &Metrics) -> RecycleResult<redis::RedisError> {
        if conn.broken {
            Err(RecycleError::message("connection broke"))
        } else {
            Ok(())
        }
    }
}

pub(crate) type Pool = managed::Pool<Manager>;
pub(crate) type Object = managed::Object<Manager>;

/// Builds the pool; it opens no connection until the first checkout.
pub(crate) fn build(client: Client, config: &RedisConfig) -> Result<Pool, Error> {
    Pool::builder(Manager::new(client, config))
        .max_size(config.pool_size)
        .wait_timeout(Some(config.command_timeout()))
        // The client bounds connecting itself; this is a backstop.
        .create_timeout(Some(config.connect_timeout() * 2))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| Error::Pool(e.to_string()))
}

/// Drops every idle connection, so the next checkouts connect afresh.
pub(crate) fn drop_idle(pool: &Pool) {
    pool.retain(|_, _| false);
}

/// Figures for health details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    pub max_size: usize,
    /// Connections open now.
    pub open: usize,
    pub in_use: usize,
    pub available: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

impl PoolStats {
    pub(crate) fn of(pool: &Pool) -> Self {
        let s = pool.status();
        Self {
            max_size: s.max_size,
            open: s.size,
            in_use: s.size - s.available,
            available: s.available,
            waiting: s.waiting,
        }
    }

    /// Share of the pool's capacity in use or waited for, 0.0 to ≥ 1.0.
    pub fn busy(&self) -> f64 {
        if self.max_size == 0 {
            return 1.0;
        }
        (self.in_use + self.waiting) as f64 / self.max_size as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_counts_waiters_too() {
        let stats = PoolStats {
            max_size: 10,
            open: 10,
            in_use: 8,
            available: 2,
            waiting: 1,
        };
        assert!((stats.busy() - 0.9).abs() < 1e-9);
        assert_eq!(PoolStats::default().busy(), 1.0);
    }

    #[tokio::test]
    async fn a_fresh_pool_opens_nothing() {
        let client = Client::open("redis://127.0.0.1:1").unwrap();
        let pool = build(client, &RedisConfig::default()).unwrap();
        let stats = PoolStats::of(&pool);
        assert_eq!((stats.max_size, stats.open, stats.in_use), (16, 0, 0));
    }
}
