//! The in-memory registry slot: identities in a `BTreeMap` (identity order
//! is page order) beside an expiry index. Reads judge expiry against the
//! clock they are given, so an expired identity is invisible before the
//! sweep removes it; the sweep only frees the memory.

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Bound,
    sync::{Arc, RwLock},
};

use prism_pattern_sdk::ConfigError;
use prism_proto::{filter::Filter, registry::Registration};
use serde::Deserialize;
use serde_json::Value;

use super::{Page, Record, Registered, SlotHealth, SlotState};
use crate::error::Error;

/// The slot takes no options; an unknown one is refused rather than ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {}

pub(crate) struct MemRegistry {
    state: RwLock<State>,
    max_identities: usize,
}

#[derive(Default)]
struct State {
    records: BTreeMap<String, Record>,
    /// `(expires_at_ms, identity)` of every record that expires.
    expiry: BTreeSet<(i64, String)>,
}

impl State {
    /// Whether the record is still alive at `now_ms`.
    fn live(record: &Record, now_ms: i64) -> bool {
        record.expires_at_ms.is_none_or(|at| at > now_ms)
    }

    /// Records stored but expired at `now_ms` (not swept yet).
    fn expired(&self, now_ms: i64) -> usize {
        self.expiry.range(..due_before(now_ms)).count()
    }

    fn remove(&mut self, identity: &str) -> Option<Record> {
        let record = self.records.remove(identity)?;
        if let Some(at) = record.expires_at_ms {
            self.expiry.remove(&(at, record.identity.clone()));
        }
        Some(record)
    }
}

/// The first expiry-index entry still alive at `now_ms`: every entry
/// before it expired (identities are never empty, so `""` sorts first).
fn due_before(now_ms: i64) -> (i64, String) {
    (now_ms.saturating_add(1), String::new())
}

impl MemRegistry {
    pub(crate) fn open(options: &Value, max_identities: usize) -> Result<Self, ConfigError> {
        let _: Options = prism_pattern_sdk::parse_config(options.clone())
            .map_err(|e| ConfigError::new(format!("registry.{}", e.field), e.reason))?;
        Ok(Self {
            state: RwLock::new(State::default()),
            max_identities,
        })
    }

    pub(crate) async fn register(
        &self,
        registration: &Registration,
        now_ms: i64,
    ) -> Result<Registered, Error> {
        let expires_at_ms = registration
            .ttl
            .map(|ttl| now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)));
        let mut state = self.state.write().expect("registry lock");
        let created = !state
            .records
            .get(&registration.identity)
            .is_some_and(|r| State::live(r, now_ms));
        if created {
            let live = state.records.len() - state.expired(now_ms);
            let replaces = state.records.contains_key(&registration.identity);
            if live >= self.max_identities && !replaces {
                return Err(Error::Exhausted(format!(
                    "max_identities ({}) reached",
                    self.max_identities
                )));
            }
        }
        state.remove(&registration.identity);
        if let Some(at) = expires_at_ms {
            state.expiry.insert((at, registration.identity.clone()));
        }
        state.records.insert(
            registration.identity.clone(),
            Record {
                identity: registration.identity.clone(),
                metadata: Arc::new(registration.metadata.clone()),
                registered_at_ms: now_ms,
                expires_at_ms,
            },
        );
        Ok(Registered {
            created,
            registered_at_ms: now_ms,
            expires_at_ms,
        })
    }

    pub(crate) async fn unregister(&self, identity: &str, now_ms: i64) -> Result<bool, Error> {
        let mut state = self.state.write().expect("registry lock");
        Ok(state
            .remove(identity)
            .is_some_and(|r| State::live(&r, now_ms)))
    }

    pub(crate) async fn get(&self, identity: &str, now_ms: i64) -> Result<Option<Record>, Error> {
        let state = self.state.read().expect("registry lock");
        Ok(state
            .records
            .get(identity)
            .filter(|r| State::live(r, now_ms))
            .cloned())
    }

    pub(crate) async fn select(
        &self,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
        now_ms: i64,
    ) -> Result<Page, Error> {
        let state = self.state.read().expect("registry lock");
        let selected = |r: &&Record| State::live(r, now_ms) && filter.matches(&r.metadata);
        // `total` counts every page, so the identities before the cursor too.
        let before = match after {
            Some(after) => state
                .records
                .range::<str, _>((Bound::Unbounded, Bound::Included(after)))
                .map(|(_, r)| r)
                .filter(selected)
                .count(),
            None => 0,
        };
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rest = state
            .records
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(_, r)| r)
            .filter(selected);
        let records: Vec<Record> = rest.by_ref().take(limit).cloned().collect();
        let after_page = rest.count();
        Ok(Page {
            more: after_page > 0,
            total: u64::try_from(before + records.len() + after_page).unwrap_or(u64::MAX),
            records,
        })
    }

    pub(crate) async fn sweep(&self, now_ms: i64) -> Result<Vec<String>, Error> {
        let mut state = self.state.write().expect("registry lock");
        let due: Vec<String> = state
            .expiry
            .range(..due_before(now_ms))
            .map(|(_, identity)| identity.clone())
            .collect();
        for identity in &due {
            state.remove(identity);
        }
        Ok(due)
    }

    pub(crate) async fn health(&self) -> SlotHealth {
        let state = self.state.read().expect("registry lock");
        let live = state.records.len() - state.expired(crate::pattern::now_ms());
        SlotHealth {
            state: SlotState::Ready,
            details: vec![("identities".into(), live.to_string())],
        }
    }
}

#[cfg(test)]
mod tests {}
