//! Redis Cluster: one multiplexed cluster connection (the redis crate's
//! cluster client hashes each key to its slot and follows MOVED and ASK
//! itself), scans that walk every master in turn, and a health probe that
//! looks at every node.
//!
//! Scan cursors name the shard and the position inside it:
//! `"<slot>@<single-node cursor>"`, where `<slot>` is the lowest slot the
//! shard serves (shards are walked in that order) and the rest is the
//! single-server cursor of [`crate::scan`] for that shard's master. A whole
//! scan is the concatenation of per-master scans, each of which never skips
//! or repeats a key on a stable keyspace, and every key lives on exactly one
//! master, so neither does the whole.
//!
//! [`health`] holds the health policy as a pure function of what the probe
//! saw.

pub(crate) mod health;

use std::time::Instant;

use prism_proto::{FieldError, cursor};
use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, FromRedisValue, Value,
    cluster::ClusterClientBuilder,
    cluster_async::ClusterConnection,
    cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr},
};
use tokio::sync::Mutex;

use crate::{
    config::RedisConfig,
    error::Error,
    scan::{self, Cursor},
};

use health::NodeView;

/// Slots in a Redis Cluster.
pub(crate) const SLOTS: u16 = 16_384;

pub(crate) struct Cluster {
    client: redis::cluster::ClusterClient,
    seeds: Vec<ConnectionInfo>,
    config: RedisConfig,
    /// Opened on first use, so a cluster down at `Initialize` only makes
    /// calls fail until it is back.
    conn: Mutex<Option<ClusterConnection>>,
}

impl Cluster {
    pub(crate) fn new(config: &RedisConfig, seeds: Vec<ConnectionInfo>) -> Result<Self, Error> {
        let client = ClusterClientBuilder::new(seeds.clone())
            .connection_timeout(config.connect_timeout())
            .response_timeout(config.command_timeout())
            .build()?;
        Ok(Self {
            client,
            seeds,
            config: config.clone(),
            conn: Mutex::new(None),
        })
    }

    /// The shared connection (a cheap clone), opening it if needed within
    /// `connect_timeout_ms`.
    pub(crate) async fn connection(&self) -> Result<ClusterConnection, Error> {
        let mut conn = self.conn.lock().await;
        if let Some(conn) = conn.as_ref() {
            return Ok(conn.clone());
        }
        let timeout = self.config.connect_timeout();
        let opened = tokio::time::timeout(timeout, self.client.get_async_connection())
            .await
            .map_err(|_| Error::ConnectTimeout(timeout))??;
        *conn = Some(opened.clone());
        Ok(opened)
    }

    pub(crate) async fn close(&self) {
        *self.conn.lock().await = None;
    }

    /// Runs `cmd` where the cluster client routes it (by its key's slot).
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        let mut conn = self.connection().await?;
        Ok(cmd.query_async(&mut conn).await?)
    }

    /// The lowest slot of every master's ranges, ascending: one entry per
    /// shard, in the order scans walk them.
    async fn shards(&self) -> Result<Vec<u16>, Error> {
        let value: Value = self.query(redis::cmd("CLUSTER").arg("SLOTS")).await?;
        Ok(shard_starts(&value))
    }

    /// One page of at most `limit` keys starting with `prefix`, from the API
    /// cursor `text`; returns the keys and the next API cursor (`""` when
    /// every master has been walked).
    pub(crate) async fn scan(
        &self,
        prefix: &str,
        text: &str,
        limit: usize,
    ) -> Result<(Vec<String>, String), Error> {
        let shards = self.shards().await?;
        let Some(&first) = shards.first() else {
            return Ok((Vec::new(), String::new()));
        };
        let (mut slot, mut inner) = match parse_cursor(text, self.config.max_key_bytes)? {
            None => (first, Cursor::Start),
            Some(at) => at,
        };
        let pattern = scan::match_pattern(prefix);
        let mut keys = Vec::new();
        loop {
            let page = scan::page(prefix, inner, limit - keys.len(), |at, count| {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(at)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(count);
                self.scan_on(slot, cmd)
            })
            .await?;
            keys.extend(page.keys);
            if let Some(next) = page.next {
                return Ok((keys, encode_cursor(slot, &next)));
            }
            let Some(&next_shard) = shards.iter().find(|&&s| s > slot) else {
                return Ok((keys, String::new()));
            };
            slot = next_shard;
            inner = Cursor::Start;
            if keys.len() == limit {
                return Ok((keys, encode_cursor(slot, &inner)));
            }
        }
    }

    /// One `SCAN` on the master serving `slot`.
    async fn scan_on(&self, slot: u16, cmd: Cmd) -> Result<(u64, Vec<String>), Error> {
        let mut conn = self.connection().await?;
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
            slot,
            SlotAddr::Master,
        )));
        let value = conn.route_command(cmd, route).await?;
        let (next, keys): (u64, Vec<Vec<u8>>) =
            FromRedisValue::from_redis_value(value).map_err(redis::RedisError::from)?;
        // Keys that are not UTF-8 cannot be named through this API.
        let keys = keys
            .into_iter()
            .filter_map(|k| String::from_utf8(k).ok())
            .collect();
        Ok((next, keys))
    }

    /// Every node the cluster knows (`CLUSTER NODES` from the first seed or
    /// known node that answers), each PINGed on a connection of its own.
    pub(crate) async fn probe(&self) -> Result<Vec<NodeView>, String> {
        let mut last_err = String::from("no node listed");
        let mut nodes_text = None;
        for seed in &self.seeds {
            match direct(
                &self.config,
                seed.clone(),
                redis::cmd("CLUSTER").arg("NODES"),
            )
            .await
            {
                Ok(Value::BulkString(bytes)) => {
                    nodes_text = Some(String::from_utf8_lossy(&bytes).into_owned());
                    break;
                }
                Ok(Value::VerbatimString { text, .. }) => {
                    nodes_text = Some(text);
                    break;
                }
                Ok(other) => last_err = format!("unexpected CLUSTER NODES reply {other:?}"),
                Err(e) => last_err = e,
            }
        }
        let text = nodes_text.ok_or(last_err)?;
        let mut views = health::parse_nodes(&text);
        // Every node at once: a stopped node must not delay the others.
        let mut pings = tokio::task::JoinSet::new();
        for (i, view) in views.iter().enumerate() {
            let info = self.seeds[0]
                .clone()
                .set_addr(ConnectionAddr::Tcp(view.host.clone(), view.port));
            let config = self.config.clone();
            pings.spawn(async move {
                let sent = Instant::now();
                let answer = direct(&config, info, &redis::cmd("PING")).await;
                (i, answer.map(|_| sent.elapsed()))
            });
        }
        while let Some(Ok((i, result))) = pings.join_next().await {
            views[i].ping = result.ok();
        }
        Ok(views)
    }

    /// A plain connection to the first seed that answers, for Pub/Sub (a
    /// message published on any node reaches subscribers on every node).
    pub(crate) async fn pubsub(&self) -> Result<redis::aio::PubSub, Error> {
        let timeout = self.config.connect_timeout();
        let mut last = Error::ConnectTimeout(timeout);
        for seed in &self.seeds {
            let client = redis::Client::open(seed.clone())?;
            match tokio::time::timeout(timeout, client.get_async_pubsub()).await {
                Ok(Ok(pubsub)) => return Ok(pubsub),
                Ok(Err(e)) => last = e.into(),
                Err(_) => last = Error::ConnectTimeout(timeout),
            }
        }
        Err(last)
    }
}

/// `cmd` on a fresh plain connection to one node, within
/// `health_timeout_ms`.
async fn direct(config: &RedisConfig, info: ConnectionInfo, cmd: &Cmd) -> Result<Value, String> {
    let timeout = config.health_timeout();
    let work = async {
        let client = redis::Client::open(info)?;
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&crate::pool::connection_config(config))
            .await?;
        cmd.query_async::<Value>(&mut conn).await
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {timeout:?} (health_timeout_ms)")),
    }
}

/// The lowest start slot of each master's ranges in a `CLUSTER SLOTS` reply
/// (`[[start, end, [host, port, id], replicas…], …]`), ascending.
pub(crate) fn shard_starts(value: &Value) -> Vec<u16> {
    let mut lowest: Vec<(String, u16)> = Vec::new();
    let Value::Array(ranges) = value else {
        return Vec::new();
    };
    for range in ranges {
        let Value::Array(fields) = range else {
            continue;
        };
        let (Some(Value::Int(start)), Some(Value::Array(master))) = (fields.first(), fields.get(2))
        else {
            continue;
        };
        let id = match (master.first(), master.get(1)) {
            (Some(Value::BulkString(host)), Some(Value::Int(port))) => {
                format!("{}:{port}", String::from_utf8_lossy(host))
            }
            _ => continue,
        };
        let start = *start as u16;
        match lowest.iter_mut().find(|(m, _)| *m == id) {
            Some((_, low)) => *low = (*low).min(start),
            None => lowest.push((id, start)),
        }
    }
    let mut starts: Vec<u16> = lowest.into_iter().map(|(_, s)| s).collect();
    starts.sort_unstable();
    starts
}

/// `"<slot>@<cursor>"`.
pub(crate) fn encode_cursor(slot: u16, inner: &Cursor) -> String {
    format!("{slot}@{}", inner.encode())
}

/// `None` for the first page; a cursor this server did not issue is
/// refused, naming `cursor`.
pub(crate) fn parse_cursor(
    text: &str,
    max_key_bytes: usize,
) -> Result<Option<(u16, Cursor)>, FieldError> {
    if text.is_empty() {
        return Ok(None);
    }
    let (slot, inner) = text.split_once('@').ok_or_else(cursor::invalid)?;
    let slot: u16 = slot
        .parse()
        .ok()
        .filter(|s| *s < SLOTS)
        .ok_or_else(cursor::invalid)?;
    Ok(Some((slot, Cursor::parse(inner, max_key_bytes)?)))
}

#[cfg(test)]
mod tests;
