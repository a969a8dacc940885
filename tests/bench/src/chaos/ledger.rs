//! What the soak is owed: every acknowledged KeyValue `Set` (key → last
//! acknowledged value) and every acknowledged JetStream publish, and what
//! was delivered. A call that failed may or may not have been applied: its
//! value is *in doubt*, acceptable when read back but never owed.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// One key's history since its last acknowledged write.
#[derive(Debug, Default, Clone)]
struct KeyRecord {
    acked: Option<String>,
    in_doubt: Vec<String>,
}

/// Acknowledged writes of one namespace.
#[derive(Debug, Default)]
pub struct KvLedger {
    keys: HashMap<String, KeyRecord>,
    acked_writes: u64,
}

/// An acknowledged write that did not read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LostWrite {
    pub key: String,
    pub expected: String,
    /// What was read instead (`None`: the key was missing).
    pub found: Option<String>,
}

impl KvLedger {
    /// The store acknowledged `key = value`.
    pub fn acked(&mut self, key: &str, value: &str) {
        let record = self.keys.entry(key.to_string()).or_default();
        record.acked = Some(value.to_string());
        record.in_doubt.clear();
        self.acked_writes += 1;
    }

    /// A `Set` of `key = value` failed: it may have been applied anyway.
    pub fn in_doubt(&mut self, key: &str, value: &str) {
        let record = self.keys.entry(key.to_string()).or_default();
        record.in_doubt.push(value.to_string());
    }

    pub fn acked_writes(&self) -> u64 {
        self.acked_writes
    }

    /// Keys with an acknowledged value, which a check must read.
    pub fn owed_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .keys
            .iter()
            .filter(|(_, r)| r.acked.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    /// Checks what `key` read back as: `None` when it is fine (the last
    /// acknowledged value, or a later one in doubt).
    pub fn check(&self, key: &str, found: Option<&str>) -> Option<LostWrite> {
        let record = self.keys.get(key)?;
        let expected = record.acked.as_deref()?;
        let fine = found.is_some_and(|v| v == expected || record.in_doubt.iter().any(|d| d == v));
        (!fine).then(|| LostWrite {
            key: key.to_string(),
            expected: expected.to_string(),
            found: found.map(str::to_string),
        })
    }
}

/// Publishes to one JetStream topic, by the sequence number each payload
/// carries, and their deliveries to the durable subscriber.
#[derive(Debug, Default)]
pub struct StreamLedger {
    acked: BTreeMap<u64, String>,
    failed: u64,
    deliveries: HashMap<u64, u32>,
}

impl StreamLedger {
    /// Publish `seq` was acknowledged with `message_id`.
    pub fn acked(&mut self, seq: u64, message_id: String) {
        self.acked.insert(seq, message_id);
    }

    /// Publish `seq` failed (it may still be delivered).
    pub fn failed(&mut self) {
        self.failed += 1;
    }

    /// The subscriber received `seq` (once more, on redelivery).
    pub fn delivered(&mut self, seq: u64) {
        *self.deliveries.entry(seq).or_default() += 1;
    }

    pub fn acked_count(&self) -> u64 {
        self.acked.len() as u64
    }

    pub fn failed_count(&self) -> u64 {
        self.failed
    }

    /// Acknowledged publishes not delivered (yet): sequence and message id.
    pub fn missing(&self) -> Vec<(u64, String)> {
        self.acked
            .iter()
            .filter(|(seq, _)| !self.deliveries.contains_key(seq))
            .map(|(seq, id)| (*seq, id.clone()))
            .collect()
    }

    /// Deliveries beyond the first of a message (at-least-once redelivery).
    pub fn duplicates(&self) -> u64 {
        self.deliveries
            .values()
            .map(|&n| u64::from(n.saturating_sub(1)))
            .sum()
    }

    /// Distinct messages delivered whose publish was not acknowledged.
    pub fn delivered_unacknowledged(&self) -> u64 {
        self.deliveries
            .keys()
            .filter(|seq| !self.acked.contains_key(seq))
            .count() as u64
    }
}

/// The payload of publish `seq`, and back.
pub fn payload(seq: u64) -> Vec<u8> {
    format!("chaos-{seq}").into_bytes()
}

pub fn parse_payload(payload: &[u8]) -> Option<u64> {
    std::str::from_utf8(payload)
        .ok()?
        .strip_prefix("chaos-")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_acknowledged_value_or_a_later_doubtful_one_is_fine() {
        let mut kv = KvLedger::default();
        kv.in_doubt("a", "v0");
        kv.acked("a", "v1");
        kv.in_doubt("a", "v2");
        assert_eq!(kv.check("a", Some("v1")), None);
        assert_eq!(kv.check("a", Some("v2")), None);
        // v0 was in doubt before v1 was acknowledged: reading it means v1 is lost.
        assert_eq!(
            kv.check("a", Some("v0")),
            Some(LostWrite {
                key: "a".into(),
                expected: "v1".into(),
                found: Some("v0".into())
            })
        );
        assert_eq!(kv.check("a", None).unwrap().found, None);
        kv.acked("a", "v3");
        assert!(kv.check("a", Some("v2")).is_some(), "doubt ends at an ack");
        assert_eq!(kv.acked_writes(), 2);
    }

    #[test]
    fn keys_never_acknowledged_are_not_owed() {
        let mut kv = KvLedger::default();
        kv.in_doubt("x", "v");
        kv.acked("y", "w");
        assert_eq!(kv.owed_keys(), ["y"]);
        assert_eq!(kv.check("x", None), None);
    }

    #[test]
    fn counts_missing_duplicate_and_unacknowledged_deliveries() {
        let mut js = StreamLedger::default();
        js.acked(1, "id1".into());
        js.acked(2, "id2".into());
        js.failed();
        js.delivered(1);
        js.delivered(1);
        js.delivered(3);
        assert_eq!(js.missing(), [(2, "id2".to_string())]);
        assert_eq!(js.duplicates(), 1);
        assert_eq!(js.delivered_unacknowledged(), 1);
        assert_eq!((js.acked_count(), js.failed_count()), (2, 1));
        js.delivered(2);
        assert!(js.missing().is_empty());
    }

    #[test]
    fn payloads_carry_their_sequence() {
        assert_eq!(parse_payload(&payload(42)), Some(42));
        assert_eq!(parse_payload(b"probe"), None);
    }
}
