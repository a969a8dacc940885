//! The in-memory key/value store: an ordered map so prefix scans page by key
//! order and never skip or repeat a key. Pure data, no I/O, no clock of its
//! own: callers pass `now`, so TTL behaviour is tested without waiting.

use std::{
    collections::BTreeMap,
    ops::Bound,
    time::{Duration, Instant},
};

use crate::error::Error;

#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

#[derive(Debug)]
pub(crate) struct Store {
    entries: BTreeMap<String, Entry>,
    max_keys: usize,
}

/// One page of a prefix scan.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Page {
    pub keys: Vec<String>,
    /// The last key of this page when more may follow.
    pub next_cursor: Option<String>,
}

impl Store {
    pub(crate) fn new(max_keys: usize) -> Self {
        Self {
            entries: BTreeMap::new(),
            max_keys,
        }
    }

    pub(crate) fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Keys held, counting expired ones the sweep has not removed yet.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Stores `value`; `ttl` of `None` never expires. An overwrite replaces
    /// both value and TTL. A new key beyond `max_keys` is refused.
    pub(crate) fn set(
        &mut self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
        now: Instant,
    ) -> Result<(), Error> {
        // An expiry past what the clock can hold is as good as none.
        let expires_at = ttl.and_then(|ttl| now.checked_add(ttl));
        if let Some(entry) = self.entries.get_mut(key) {
            *entry = Entry { value, expires_at };
            return Ok(());
        }
        if self.entries.len() >= self.max_keys {
            self.sweep(now);
            if self.entries.len() >= self.max_keys {
                return Err(Error::Full {
                    max_keys: self.max_keys,
                });
            }
        }
        self.entries
            .insert(key.to_string(), Entry { value, expires_at });
        Ok(())
    }

    /// The value of a live key; expired keys are invisible even before the sweep.
    pub(crate) fn get(&self, key: &str, now: Instant) -> Option<&[u8]> {
        self.entries
            .get(key)
            .filter(|e| e.live(now))
            .map(|e| e.value.as_slice())
    }

    pub(crate) fn exists(&self, key: &str, now: Instant) -> bool {
        self.get(key, now).is_some()
    }

    /// Removes `key`; true when a live key was removed.
    pub(crate) fn delete(&mut self, key: &str, now: Instant) -> bool {
        self.entries.remove(key).is_some_and(|e| e.live(now))
    }

    /// Up to `limit` live keys starting with `prefix`, in key order, after
    /// `cursor` (exclusive).
    pub(crate) fn scan(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
        now: Instant,
    ) -> Page {
        let start = match cursor {
            Some(c) if c >= prefix => Bound::Excluded(c),
            _ => Bound::Included(prefix),
        };
        let mut keys = Vec::with_capacity(limit.min(1024));
        let mut more = false;
        let candidates = self
            .entries
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, e)| e.live(now));
        for (key, _) in candidates {
            if keys.len() == limit {
                more = true;
                break;
            }
            keys.push(key.clone());
        }
        let next_cursor = if more { keys.last().cloned() } else { None };
        Page { keys, next_cursor }
    }

    /// Drops expired keys; returns how many.
    pub(crate) fn sweep(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.live(now));
        before - self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (Store, Instant) {
        (Store::new(100), Instant::now())
    }

    #[test]
    fn set_get_round_trip_and_empty_value() {
        let (mut s, now) = store();
        s.set("a", vec![0, 255], None, now).unwrap();
        s.set("empty", vec![], None, now).unwrap();
        assert_eq!(s.get("a", now), Some(&[0u8, 255][..]));
        assert_eq!(s.get("empty", now), Some(&[][..]));
        assert!(s.exists("empty", now));
        assert_eq!(s.get("missing", now), None);
    }

    #[test]
    fn ttl_is_enforced_on_read_before_sweep() {
        let (mut s, now) = store();
        s.set("k", b"v".to_vec(), Some(Duration::from_secs(2)), now)
            .unwrap();
        assert!(s.exists("k", now + Duration::from_millis(1999)));
        assert!(!s.exists("k", now + Duration::from_secs(2)));
        assert_eq!(s.len(), 1, "still held until swept");
        assert_eq!(s.sweep(now + Duration::from_secs(2)), 1);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn overwrite_without_ttl_clears_it_and_with_ttl_resets_it() {
        let (mut s, now) = store();
        s.set("k", b"1".to_vec(), Some(Duration::from_secs(1)), now)
            .unwrap();
        s.set("k", b"2".to_vec(), None, now).unwrap();
        assert!(s.exists("k", now + Duration::from_secs(100)));

        let later = now + Duration::from_secs(5);
        s.set("k", b"3".to_vec(), Some(Duration::from_secs(10)), now)
            .unwrap();
        s.set("k", b"4".to_vec(), Some(Duration::from_secs(10)), later)
            .unwrap();
        assert!(s.exists("k", now + Duration::from_secs(12)));
        assert!(!s.exists("k", later + Duration::from_secs(10)));
    }

    #[test]
    fn capacity_refuses_new_keys_but_allows_overwrites() {
        let now = Instant::now();
        let mut s = Store::new(2);
        s.set("a", vec![], None, now).unwrap();
        s.set("b", vec![], None, now).unwrap();
        assert_eq!(
            s.set("c", vec![], None, now),
            Err(Error::Full { max_keys: 2 })
        );
        s.set("a", b"x".to_vec(), None, now).unwrap();
    }

    #[test]
    fn capacity_reclaims_expired_keys() {
        let now = Instant::now();
        let mut s = Store::new(1);
        s.set("a", vec![], Some(Duration::from_secs(1)), now)
            .unwrap();
        s.set("b", vec![], None, now + Duration::from_secs(2))
            .unwrap();
        assert!(s.exists("b", now + Duration::from_secs(2)));
    }

    #[test]
    fn delete_reports_whether_a_live_key_went() {
        let (mut s, now) = store();
        s.set("k", vec![], None, now).unwrap();
        assert!(s.delete("k", now));
        assert!(!s.delete("k", now));
        assert!(!s.exists("k", now));
    }

    #[test]
    fn scan_by_prefix_pages_without_gaps_or_repeats() {
        let (mut s, now) = store();
        for k in ["user:1", "user:2", "post:1", "user:3", "usera", "user:10"] {
            s.set(k, vec![], None, now).unwrap();
        }
        let all = s.scan("user:", None, 100, now);
        assert_eq!(all.keys, ["user:1", "user:10", "user:2", "user:3"]);
        assert_eq!(all.next_cursor, None);

        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.scan("user:", cursor.as_deref(), 1, now);
            assert!(page.keys.len() <= 1);
            seen.extend(page.keys);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, all.keys);
    }

    #[test]
    fn scan_skips_expired_keys_and_handles_exact_pages() {
        let (mut s, now) = store();
        s.set("p:1", vec![], None, now).unwrap();
        s.set("p:2", vec![], Some(Duration::from_secs(1)), now)
            .unwrap();
        s.set("p:3", vec![], None, now).unwrap();
        let later = now + Duration::from_secs(1);
        let page = s.scan("p:", None, 2, later);
        assert_eq!(page.keys, ["p:1", "p:3"]);
        assert_eq!(page.next_cursor, None);
    }

    #[test]
    fn cursor_before_prefix_starts_at_prefix() {
        let (mut s, now) = store();
        s.set("a", vec![], None, now).unwrap();
        s.set("b:1", vec![], None, now).unwrap();
        assert_eq!(s.scan("b:", Some("a"), 10, now).keys, ["b:1"]);
    }
}
