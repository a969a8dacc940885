//! This process's copy of a namespace's records, so `select` filters in
//! memory instead of fetching every record from Redis on every call.
//!
//! Every write script bumps the namespace's change counter (`seq`) and
//! appends `{seq, id}` to the change stream (`changes`, trimmed to
//! [`CHANGE_LOG`] entries). Before each `select` the copy catches up: read
//! `seq` and the stream's last id together; both as the copy has them →
//! nothing changed anywhere; ahead → replay the stream entries after the
//! copy's last one, re-reading only the identities they name (MGET; gone →
//! removed). A gap in the sequence (the stream was trimmed past us), a
//! counter behind ours or equal with another last entry (Redis lost its
//! data and counts again), or more than [`MAX_REPLAY`] changes → reload
//! the whole set (the chunked walk). So a select sees every write committed
//! before it began, from any process, and costs one or two round trips
//! plus the in-memory filter when little has changed.
//!
//! Expiry needs no event: records carry `expires_at_ms` and the caller's
//! clock decides, as everywhere else.

#[cfg(test)]
mod tests;

use std::{
    collections::BTreeMap,
    sync::{Arc, atomic::Ordering},
};

use prism_redis::client::Retry;
use redis::Value as RedisValue;

use super::{Record, RedisRegistry, decode};
use crate::error::Error;

/// Changes kept in the stream: a reader further behind than
/// [`MAX_REPLAY`] reads whole anyway, so more would only cost Redis memory.
pub(super) const CHANGE_LOG: usize = 2 * MAX_REPLAY as usize;
/// More changes than this since the last select: reloading is cheaper.
pub(super) const MAX_REPLAY: u64 = 5_000;

#[derive(Default)]
pub(super) struct Cache {
    /// Changes applied, by the namespace's counter; `None`: never loaded.
    seq: Option<u64>,
    /// Stream id of the last change applied (`0-0` when there is none).
    last_id: String,
    /// Shared with the selects filtering it, so they filter without the
    /// lock; a change while one still holds it copies the map first.
    pub(super) records: Arc<BTreeMap<String, Record>>,
}

/// One change stream entry: its id, counter value and identity.
struct Change {
    id: String,
    seq: u64,
    identity: String,
}

impl RedisRegistry {
    /// Brings the copy up to date with every write committed so far.
    pub(super) async fn catch_up(&self, cache: &mut Cache) -> Result<(), Error> {
        let (current, last_id) = self.position().await?;
        let seq = match cache.seq {
            Some(seq) if seq == current && last_id == cache.last_id => return Ok(()),
            // Equal counts with another last entry, or a counter behind
            // ours: Redis lost its data and counts again.
            Some(seq) if current > seq && current - seq <= MAX_REPLAY => seq,
            _ => return self.reload(cache, current, last_id).await,
        };
        let changes = self.changes_after(&cache.last_id, current - seq).await?;
        if changes.first().is_none_or(|c| c.seq != seq + 1)
            || changes.windows(2).any(|w| w[1].seq != w[0].seq + 1)
        {
            return self.reload(cache, current, last_id).await;
        }
        let mut identities: Vec<String> = changes.iter().map(|c| c.identity.clone()).collect();
        identities.sort();
        identities.dedup();
        for chunk in identities.chunks(self.select_chunk) {
            let values = self.records(chunk).await?;
            for (identity, value) in chunk.iter().zip(values) {
                apply(cache, identity, value);
            }
        }
        let last = changes.last().expect("checked non-empty above");
        cache.seq = Some(last.seq);
        cache.last_id = last.id.clone();
        Ok(())
    }

    /// Reads the whole set afresh, from position `seq`/`last_id` read
    /// before: changes made during the walk are replayed next time
    /// (re-reading a record is harmless).
    async fn reload(&self, cache: &mut Cache, seq: u64, last_id: String) -> Result<(), Error> {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        let mut records = BTreeMap::new();
        let mut ids = self.ids_from("-".to_string()).await?;
        while !ids.is_empty() {
            let (values, next) = match ids.last() {
                // A full chunk: fetch the next ids while these records come.
                Some(last) if ids.len() == self.select_chunk => {
                    tokio::try_join!(self.records(&ids), self.ids_from(format!("({last}")))?
                }
                _ => (self.records(&ids).await?, Vec::new()),
            };
            for (identity, value) in ids.into_iter().zip(values) {
                if let Some(record) = readable(identity, value) {
                    records.insert(record.identity.clone(), record);
                }
            }
            ids = next;
        }
        *cache = Cache {
            seq: Some(seq),
            last_id,
            records: Arc::new(records),
        };
        Ok(())
    }

    /// The change counter and the change stream's last id, read together.
    async fn position(&self) -> Result<(u64, String), Error> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(super::scripts::POSITION)
            .arg(2)
            .arg(&self.seq)
            .arg(&self.changes);
        self.run("EVAL position", &cmd, Retry::Idempotent).await
    }

    async fn changes_after(&self, last_id: &str, count: u64) -> Result<Vec<Change>, Error> {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(&self.changes)
            .arg(format!("({last_id}"))
            .arg("+")
            .arg("COUNT")
            .arg(count);
        let entries: Vec<(String, Vec<(String, RedisValue)>)> =
            self.run("XRANGE", &cmd, Retry::Idempotent).await?;
        entries
            .into_iter()
            .map(|(id, fields)| {
                let mut seq = None;
                let mut identity = None;
                for (name, value) in fields {
                    match name.as_str() {
                        "seq" => seq = redis::from_redis_value::<u64>(value).ok(),
                        "id" => identity = redis::from_redis_value::<String>(value).ok(),
                        _ => {}
                    }
                }
                match (seq, identity) {
                    (Some(seq), Some(identity)) => Ok(Change { id, seq, identity }),
                    _ => Err(Error::Internal(format!(
                        "change {id} in redis is not one this pattern wrote"
                    ))),
                }
            })
            .collect()
    }
}

/// Puts what Redis holds for `identity` into the copy: a record, or its
/// absence.
fn apply(cache: &mut Cache, identity: &str, value: Option<Vec<u8>>) {
    match readable(identity.to_string(), value) {
        Some(record) => {
            Arc::make_mut(&mut cache.records).insert(identity.to_string(), record);
        }
        None => {
            if cache.records.contains_key(identity) {
                Arc::make_mut(&mut cache.records).remove(identity);
            }
        }
    }
}

/// The record, or `None` when it is gone or unreadable (logged: data this
/// pattern did not write must not stop every select).
fn readable(identity: String, value: Option<Vec<u8>>) -> Option<Record> {
    match decode(identity, &value?) {
        Ok(record) => Some(record),
        Err(err) => {
            tracing::warn!(%err, "skipping a record this pattern cannot read");
            None
        }
    }
}
