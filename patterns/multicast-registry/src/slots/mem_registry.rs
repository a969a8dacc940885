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
        let expires_at_ms = registration.expires_at_ms(now_ms);
        let mut state = self.state.write().expect("registry lock");
        let created = !state
            .records
            .get(&registration.identity)
            .is_some_and(|r| State::live(r, now_ms));
        if created {
            // A new live identity, also when it replaces its own expired record.
            let live = state.records.len() - state.expired(now_ms);
            if live >= self.max_identities {
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
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn registry(max_identities: usize) -> MemRegistry {
        MemRegistry::open(&json!({}), max_identities).unwrap()
    }

    fn registration(identity: &str, metadata: Value, ttl_s: u64) -> Registration {
        Registration {
            identity: identity.into(),
            metadata,
            ttl: (ttl_s > 0).then(|| Duration::from_secs(ttl_s)),
        }
    }

    fn all() -> Filter {
        Filter::parse(&json!({})).unwrap()
    }

    fn ids(page: &Page) -> Vec<&str> {
        page.records.iter().map(|r| r.identity.as_str()).collect()
    }

    #[tokio::test]
    async fn expired_identities_vanish_before_the_sweep() {
        let r = registry(10);
        r.register(&registration("a", json!({}), 1), 1_000)
            .await
            .unwrap();
        r.register(&registration("b", json!({}), 0), 1_000)
            .await
            .unwrap();
        assert!(r.get("a", 1_999).await.unwrap().is_some());
        // Expired at exactly its expiry time, with nothing swept yet.
        assert_eq!(r.get("a", 2_000).await.unwrap(), None);
        let page = r.select(&all(), None, 10, 2_000).await.unwrap();
        assert_eq!((ids(&page), page.total), (vec!["b"], 1));
        assert!(!r.unregister("a", 2_000).await.unwrap());
        r.register(&registration("c", json!({}), 1), 1_000)
            .await
            .unwrap();
        assert_eq!(r.sweep(5_000).await.unwrap(), vec!["c".to_string()]);
        assert_eq!(r.state.read().unwrap().records.len(), 1);
        assert!(r.state.read().unwrap().expiry.is_empty());
    }

    #[tokio::test]
    async fn registering_again_replaces_metadata_and_refreshes_the_ttl() {
        let r = registry(10);
        let first = r
            .register(&registration("a", json!({"v": 1}), 10), 0)
            .await
            .unwrap();
        assert_eq!((first.created, first.expires_at_ms), (true, Some(10_000)));
        let again = r
            .register(&registration("a", json!({"v": 2}), 10), 9_000)
            .await
            .unwrap();
        assert_eq!((again.created, again.expires_at_ms), (false, Some(19_000)));
        let record = r.get("a", 15_000).await.unwrap().unwrap();
        assert_eq!((*record.metadata).clone(), json!({"v": 2}));
        assert_eq!(record.registered_at_ms, 9_000);
        // The old expiry no longer sweeps it.
        assert!(r.sweep(15_000).await.unwrap().is_empty());
        // After expiring, registering it again creates it anew.
        let later = r
            .register(&registration("a", json!({}), 0), 20_000)
            .await
            .unwrap();
        assert_eq!((later.created, later.expires_at_ms), (true, None));
        assert!(r.sweep(30_000).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn max_identities_counts_the_living() {
        let r = registry(2);
        r.register(&registration("a", json!({}), 1), 0)
            .await
            .unwrap();
        r.register(&registration("b", json!({}), 0), 0)
            .await
            .unwrap();
        let err = r
            .register(&registration("c", json!({}), 0), 500)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "max_identities (2) reached");
        // Refreshing one already there is not a new one.
        r.register(&registration("b", json!({"x": 1}), 0), 500)
            .await
            .unwrap();
        // Once `a` has expired (unswept), there is room again.
        r.register(&registration("c", json!({}), 0), 1_000)
            .await
            .unwrap();
        assert_eq!(
            r.health().await.details,
            vec![("identities".into(), "2".into())]
        );
        // Bringing the expired `a` back would make three.
        let err = r
            .register(&registration("a", json!({}), 0), 1_000)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "max_identities (2) reached");
    }

    #[tokio::test]
    async fn pages_run_in_identity_order_and_count_every_match() {
        let r = registry(100);
        for (id, floor) in [("s3", 1), ("s1", 1), ("a1", 2), ("s2", 1), ("s4", 3)] {
            r.register(&registration(id, json!({"floor": floor}), 0), 0)
                .await
                .unwrap();
        }
        let floor1 = Filter::parse(&json!({"floor": 1})).unwrap();
        let first = r.select(&floor1, None, 2, 0).await.unwrap();
        assert_eq!(
            (ids(&first), first.more, first.total),
            (vec!["s1", "s2"], true, 3)
        );
        let second = r.select(&floor1, Some("s2"), 2, 0).await.unwrap();
        assert_eq!(
            (ids(&second), second.more, second.total),
            (vec!["s3"], false, 3)
        );
        let none = Filter::parse(&json!({"floor": 9})).unwrap();
        let empty = r.select(&none, None, 2, 0).await.unwrap();
        assert_eq!(
            (empty.records.len(), empty.more, empty.total),
            (0, false, 0)
        );
    }

    #[test]
    fn unknown_options_are_refused() {
        let err = MemRegistry::open(&json!({"adress": "x"}), 1).err().unwrap();
        assert!(err.field.starts_with("registry"), "{err}");
        assert!(err.to_string().contains("adress"), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Walking every page with any page size yields each selected
        /// identity exactly once, in order, and each page counts them all.
        #[test]
        fn paging_never_skips_or_repeats(
            entries in proptest::collection::btree_map("[a-c]{1,4}", 0..4i64, 0..40),
            limit in 1usize..7,
            wanted in 0..4i64,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let r = registry(1000);
                for (id, kind) in &entries {
                    r.register(&registration(id, json!({"kind": kind}), 0), 0).await.unwrap();
                }
                let filter = Filter::parse(&json!({"kind": {"$ne": wanted}})).unwrap();
                let expected: Vec<&String> =
                    entries.iter().filter(|(_, k)| **k != wanted).map(|(id, _)| id).collect();
                let mut seen = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let page = r.select(&filter, after.as_deref(), limit, 0).await.unwrap();
                    prop_assert_eq!(page.total, expected.len() as u64);
                    prop_assert!(page.records.len() <= limit);
                    seen.extend(page.records.iter().map(|r| r.identity.clone()));
                    if !page.more {
                        break;
                    }
                    after = page.records.last().map(|r| r.identity.clone());
                }
                prop_assert_eq!(seen.iter().collect::<Vec<_>>(), expected);
                Ok(())
            })?;
        }
    }
}
