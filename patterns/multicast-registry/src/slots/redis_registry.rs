//! The Redis registry slot: identities in Redis, so every process serving
//! a namespace on the same Redis sees the same ones. Layout and the
//! atomic writes are in [`scripts`]; reads are plain commands:
//!
//! - `get`: GET the record; one past its expiry counts as absent even if
//!   Redis has not dropped it yet (the caller's clock decides, as it does
//!   for the sweep).
//! - `select`: brings this process's copy of the records up to date from
//!   the change stream ([`cache`]), then filters it in memory in identity
//!   order, skipping expired records and counting every match for
//!   `total`. Reading the copy whole walks `ids` in byte order,
//!   [`SELECT_CHUNK`] at a time (ZRANGEBYLEX … LIMIT), MGETting each
//!   chunk's records while the next chunk of ids is fetched.
//! - `sweep`: runs [`scripts::SWEEP`] until nothing expired is left.
//!
//! Options are prism-redis's (`address`, `password`, `db`, `pool_size`,
//! timeouts…), read under `registry.`; `max_key_bytes` and
//! `max_value_bytes` are accepted and unused (the registry's own limits
//! apply). Redis down: calls fail with [`Error::Unreachable`], health is
//! [`SlotState::Unreachable`], and the slot heals when Redis is back.

mod cache;
mod scripts;
#[cfg(test)]
mod tests;

use std::sync::{Arc, atomic::AtomicU64};

use prism_pattern_sdk::ConfigError;
use prism_proto::{filter::Filter, registry::Registration};
use prism_redis::client::{Backend, Retry};
use redis::Cmd;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Page, Record, Registered, SlotHealth, SlotState, redis_backend};
use crate::error::Error;

/// Identities fetched per round trip by `select`.
const SELECT_CHUNK: usize = 1000;
/// Identities removed per sweep script, so one run never blocks Redis long.
const SWEEP_CHUNK: usize = 1000;

pub(crate) struct RedisRegistry {
    backend: Arc<Backend>,
    max_identities: usize,
    /// [`SELECT_CHUNK`]; tests make it small to cross chunk boundaries.
    select_chunk: usize,
    /// `prism:registry:{<namespace>}:id:`, followed by the identity.
    record_prefix: String,
    ids: String,
    expiry: String,
    /// The change counter and the change stream (see [`cache`]).
    seq: String,
    changes: String,
    /// Entries the change stream keeps; tests make it small.
    change_log: usize,
    /// This process's copy of the records, for `select` (boxed: the
    /// slot enums stay small).
    cache: Box<tokio::sync::Mutex<cache::Cache>>,
    /// Times the copy was read whole.
    reloads: AtomicU64,
}

/// A record as stored: JSON, one key per identity.
#[derive(Serialize)]
struct Stored<'a> {
    metadata: &'a Value,
    registered_at_ms: i64,
    expires_at_ms: Option<i64>,
}

#[derive(Deserialize)]
struct Loaded {
    metadata: Value,
    registered_at_ms: i64,
    expires_at_ms: Option<i64>,
}

impl RedisRegistry {
    /// Reads the options (errors name `registry.<option>`); connects on
    /// first use.
    pub(crate) fn open(
        namespace: &str,
        options: &Value,
        max_identities: usize,
    ) -> Result<Self, ConfigError> {
        let backend = redis_backend::open("registry", options)?;
        let prefix = redis_backend::key_prefix(namespace);
        Ok(Self {
            backend,
            max_identities,
            select_chunk: SELECT_CHUNK,
            record_prefix: format!("{prefix}id:"),
            ids: format!("{prefix}ids"),
            expiry: format!("{prefix}expiry"),
            seq: format!("{prefix}seq"),
            changes: format!("{prefix}changes"),
            change_log: cache::CHANGE_LOG,
            cache: Box::default(),
            reloads: AtomicU64::new(0),
        })
    }

    fn record_key(&self, identity: &str) -> String {
        format!("{}{identity}", self.record_prefix)
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &Cmd,
        retry: Retry,
    ) -> Result<T, Error> {
        self.backend
            .run(op, cmd, retry)
            .await
            .map_err(redis_backend::error)
    }

    pub(crate) async fn register(
        &self,
        registration: &Registration,
        now_ms: i64,
    ) -> Result<Registered, Error> {
        let expires_at_ms = registration.expires_at_ms(now_ms);
        let record = serde_json::to_vec(&Stored {
            metadata: &registration.metadata,
            registered_at_ms: now_ms,
            expires_at_ms,
        })
        .map_err(|e| Error::Internal(format!("encoding a record: {e}")))?;
        let identity = &registration.identity;
        let mut cmd = self.identity_script(scripts::REGISTER, identity);
        cmd.arg(record)
            .arg(expires_at_ms.map(|at| at.to_string()).unwrap_or_default())
            .arg(self.max_identities)
            .arg(now_ms)
            .arg(self.change_log);
        let created: i64 = self.run("EVAL register", &cmd, Retry::Never).await?;
        if created < 0 {
            return Err(Error::Exhausted(format!(
                "max_identities ({}) reached",
                self.max_identities
            )));
        }
        Ok(Registered {
            created: created == 1,
            registered_at_ms: now_ms,
            expires_at_ms,
        })
    }

    pub(crate) async fn unregister(&self, identity: &str, now_ms: i64) -> Result<bool, Error> {
        let mut cmd = self.identity_script(scripts::UNREGISTER, identity);
        cmd.arg(now_ms).arg(self.change_log);
        let existed: i64 = self.run("EVAL unregister", &cmd, Retry::Never).await?;
        Ok(existed == 1)
    }

    /// `EVAL script` over one identity's record and the namespace's id set,
    /// expiry index, change counter and change stream, then the identity;
    /// the caller adds the script's other arguments.
    fn identity_script(&self, script: &str, identity: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script)
            .arg(5)
            .arg(self.record_key(identity))
            .arg(&self.ids)
            .arg(&self.expiry)
            .arg(&self.seq)
            .arg(&self.changes)
            .arg(identity);
        cmd
    }

    pub(crate) async fn get(&self, identity: &str, now_ms: i64) -> Result<Option<Record>, Error> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.record_key(identity));
        let value: Option<Vec<u8>> = self.run("GET", &cmd, Retry::Idempotent).await?;
        match value {
            None => Ok(None),
            Some(bytes) => {
                let record = decode(identity.to_string(), &bytes)?;
                Ok((!expired(&record, now_ms)).then_some(record))
            }
        }
    }

    pub(crate) async fn select(
        &self,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page, Error> {
        let mut page = Page {
            records: Vec::new(),
            more: false,
            total: 0,
        };
        let records = {
            let mut cache = self.cache.lock().await;
            self.catch_up(&mut cache).await?;
            cache.records.clone()
        };
        for record in records.values() {
            if expired(record, now_ms) || !filter.matches(&record.metadata) {
                continue;
            }
            page.total += 1;
            if after.is_some_and(|after| record.identity.as_str() <= after) {
                continue;
            }
            if page.records.len() < limit {
                page.records.push(record.clone());
            } else {
                page.more = true;
            }
        }
        Ok(page)
    }

    /// Up to `select_chunk` identities from `start` (a ZRANGEBYLEX bound).
    async fn ids_from(&self, start: String) -> Result<Vec<String>, Error> {
        let mut cmd = redis::cmd("ZRANGEBYLEX");
        cmd.arg(&self.ids)
            .arg(start)
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(self.select_chunk);
        self.run("ZRANGEBYLEX", &cmd, Retry::Idempotent).await
    }

    async fn records(&self, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let mut cmd = redis::cmd("MGET");
        for identity in ids {
            cmd.arg(self.record_key(identity));
        }
        self.run("MGET", &cmd, Retry::Idempotent).await
    }

    pub(crate) async fn sweep(&self, now_ms: i64) -> Result<Vec<String>, Error> {
        let mut removed = Vec::new();
        loop {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(scripts::SWEEP)
                .arg(4)
                .arg(&self.ids)
                .arg(&self.expiry)
                .arg(&self.seq)
                .arg(&self.changes)
                .arg(now_ms)
                .arg(SWEEP_CHUNK)
                .arg(&self.record_prefix)
                .arg(self.change_log);
            let gone: Vec<String> = self.run("EVAL sweep", &cmd, Retry::Never).await?;
            let done = gone.len() < SWEEP_CHUNK;
            removed.extend(gone);
            if done {
                return Ok(removed);
            }
        }
    }

    /// PING, then `identities` (ZCARD of the id set: expired identities
    /// count until the sweep removes them, as they do for `max_identities`).
    pub(crate) async fn health(&self) -> SlotHealth {
        let mut health = redis_backend::health(&self.backend).await;
        if matches!(health.state, SlotState::Unreachable { .. }) {
            return health;
        }
        let mut cmd = redis::cmd("ZCARD");
        cmd.arg(&self.ids);
        match self.run::<u64>("ZCARD", &cmd, Retry::Idempotent).await {
            Ok(count) => health
                .details
                .push(("identities".to_string(), count.to_string())),
            Err(Error::Unreachable { backend, reason }) => {
                health.state = SlotState::Unreachable { backend, reason };
            }
            Err(err) => health.state = SlotState::Degraded(err.to_string()),
        }
        health
    }
}

/// The stored record; `Err` for bytes this pattern did not write.
fn decode(identity: String, bytes: &[u8]) -> Result<Record, Error> {
    let loaded: Loaded = serde_json::from_slice(bytes).map_err(|e| {
        Error::Internal(format!(
            "the record of `{}` in redis is not one this pattern wrote: {e}",
            prism_proto::field::quote(&identity)
        ))
    })?;
    Ok(Record {
        identity,
        metadata: Arc::new(loaded.metadata),
        registered_at_ms: loaded.registered_at_ms,
        expires_at_ms: loaded.expires_at_ms,
    })
}

fn expired(record: &Record, now_ms: i64) -> bool {
    record.expires_at_ms.is_some_and(|at| at <= now_ms)
}
