//! Topics and the NATS names made from them: which topics are valid, how a
//! topic maps to a subject under the namespace's prefix and back, and the
//! durable consumer name of a subscriber. Pure functions.

use crate::error::NatsError;

/// How much of a subscriber id shows in its consumer name (the rest is hashed).
const READABLE_ID_CHARS: usize = 32;

/// `INVALID_ARGUMENT` (naming `topic`) unless `topic` is a valid subscribed
/// topic: dot-separated non-empty tokens within [`prism_proto::topic::MAX_TOPIC_BYTES`], without
/// whitespace, `*` (one token) and `>` (the last token) allowed. Published
/// topics are checked with the other publish rules (`prism_proto::publish`);
/// both use `prism_proto::topic`, so the proxy and every pattern word them
/// alike.
pub(crate) fn check_subscribed_topic(topic: &str) -> Result<(), NatsError> {
    Ok(prism_proto::topic::check("topic", topic, true)?)
}

/// Checks a configured subject prefix: tokens as in a published topic.
pub(crate) fn check_prefix(prefix: &str) -> Result<(), String> {
    prism_proto::topic::check("subject_prefix", prefix, false).map_err(|e| e.problem)
}

/// Maps topics to NATS subjects under a prefix, and back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subjects {
    /// Empty, or the prefix followed by `.`.
    prefix: String,
}

impl Subjects {
    pub(crate) fn new(prefix: &str) -> Self {
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}.")
        };
        Self { prefix }
    }

    /// The subject of `topic` (wildcards stay wildcards).
    pub(crate) fn subject(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }

    /// The topic of a received `subject`.
    pub(crate) fn topic<'a>(&self, subject: &'a str) -> &'a str {
        subject.strip_prefix(&self.prefix).unwrap_or(subject)
    }

    /// The subjects a JetStream stream captures to hold every topic.
    pub(crate) fn stream_subjects(&self) -> String {
        format!("{}>", self.prefix)
    }
}

/// `s` as one safe NATS token or name part: anything but ASCII letters,
/// digits, `-` and `_` becomes `_`.
pub(crate) fn token(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() { "_".into() } else { t }
}

/// The durable consumer of `subscriber_id` on `topic`: readable, valid as a
/// JetStream name whatever the id holds, stable across restarts, and distinct
/// per (id, topic) pair.
pub(crate) fn consumer_name(subscriber_id: &str, topic: &str) -> String {
    let readable: String = token(subscriber_id)
        .chars()
        .take(READABLE_ID_CHARS)
        .collect();
    let mut hash = Fnv1a::new();
    hash.write(subscriber_id.as_bytes());
    hash.write(&[0]);
    hash.write(topic.as_bytes());
    format!("prism_{readable}_{:016x}", hash.finish())
}

/// FNV-1a, 64 bits: a fixed hash, unlike std's, so names survive upgrades.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use prism_proto::topic::MAX_TOPIC_BYTES;

    use super::*;

    /// What a topic is used for: published topics name one subject,
    /// subscribed ones may use wildcards.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Use {
        Publish,
        Subscribe,
    }

    fn check_topic(topic: &str, usage: Use) -> Result<(), NatsError> {
        match usage {
            Use::Subscribe => check_subscribed_topic(topic),
            Use::Publish => Ok(prism_proto::topic::check("topic", topic, false)?),
        }
    }

    fn message(topic: &str, usage: Use) -> String {
        match check_topic(topic, usage) {
            Err(NatsError::InvalidArgument { field, reason }) => {
                assert_eq!(field, "topic");
                reason
            }
            other => panic!("{topic:?}: {other:?}"),
        }
    }

    #[test]
    fn plain_topics_are_valid_for_both_uses() {
        for topic in ["orders", "orders.eu.created", "a-b_c.ü.1"] {
            check_topic(topic, Use::Publish).unwrap();
            check_topic(topic, Use::Subscribe).unwrap();
        }
    }

    #[test]
    fn wildcards_only_when_subscribing_and_only_as_tokens() {
        for topic in ["orders.*", "*.created", "orders.>", ">", "*.*.>"] {
            check_topic(topic, Use::Subscribe).unwrap();
            assert!(message(topic, Use::Publish).contains("wildcards"));
        }
        assert!(message("orders.>.eu", Use::Subscribe).contains("last token"));
        assert!(message("ord*", Use::Subscribe).contains("whole tokens"));
        assert!(message("a.b>", Use::Subscribe).contains("whole tokens"));
        assert!(
            !message("a.b>", Use::Subscribe).starts_with("topic"),
            "named once"
        );
    }

    #[test]
    fn malformed_topics_are_invalid() {
        assert!(message("", Use::Publish).contains("empty"));
        assert!(message("a b", Use::Publish).contains("spaces"));
        assert!(message("a\tb", Use::Subscribe).contains("spaces"));
        assert!(message("a\u{0}b", Use::Subscribe).contains("control"));
        for topic in [".a", "a.", "a..b", "."] {
            assert!(
                message(topic, Use::Publish).contains("empty token"),
                "{topic}"
            );
        }
    }

    #[test]
    fn length_limit_is_named() {
        let at_limit = "a".repeat(MAX_TOPIC_BYTES);
        check_topic(&at_limit, Use::Publish).unwrap();
        let reason = message(&format!("{at_limit}b"), Use::Publish);
        assert!(reason.contains("257 bytes"), "{reason}");
        assert!(reason.contains("256 bytes"), "{reason}");
    }

    #[test]
    fn subjects_round_trip_under_the_prefix() {
        let s = Subjects::new("prism.orders");
        assert_eq!(s.subject("eu.created"), "prism.orders.eu.created");
        assert_eq!(s.subject("eu.*"), "prism.orders.eu.*");
        assert_eq!(s.subject(">"), "prism.orders.>");
        assert_eq!(s.topic("prism.orders.eu.created"), "eu.created");
        assert_eq!(s.stream_subjects(), "prism.orders.>");
    }

    #[test]
    fn empty_prefix_maps_topics_unchanged() {
        let s = Subjects::new("");
        assert_eq!(s.subject("eu.created"), "eu.created");
        assert_eq!(s.topic("eu.created"), "eu.created");
    }

    #[test]
    fn prefix_check_drops_the_field_name() {
        assert!(check_prefix("prism.ns").is_ok());
        let reason = check_prefix("a.>").unwrap_err();
        assert!(!reason.starts_with("topic"), "{reason}");
    }

    #[test]
    fn tokens_are_safe() {
        assert_eq!(token("my-ns_1"), "my-ns_1");
        assert_eq!(token("a.b c*>/"), "a_b_c___");
        assert_eq!(token(""), "_");
    }

    #[test]
    fn consumer_names_are_valid_stable_and_distinct() {
        let name = consumer_name("billing worker.1", "orders.*");
        assert!(name.starts_with("prism_billing_worker_1_"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
        assert_eq!(name, consumer_name("billing worker.1", "orders.*"));
        assert_ne!(name, consumer_name("billing worker.1", "orders.>"));
        assert_ne!(name, consumer_name("billing_worker_1", "orders.*"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(consumer_name("ab", "c"), consumer_name("a", "bc"));
        let long = consumer_name(&"x".repeat(500), "t");
        assert!(long.len() <= 6 + READABLE_ID_CHARS + 1 + 16, "{long}");
    }
}
