//! Topic rules of `prism.pubsub.v1`, shared by the proxy and every PubSub
//! pattern: dot-separated tokens; subscriptions may use `*` (one token) and
//! `>` (the rest, last token only); published topics never hold wildcards.

use crate::field::{FieldError, quote};

/// Longest topic accepted, in bytes.
pub const MAX_TOPIC_BYTES: usize = 256;

/// Refuses `topic` (naming `field`) unless it is a valid topic (or, with
/// `wildcards`, a valid subscription pattern). Messages quote the topic
/// only up to a short bound.
pub fn check(field: &str, topic: &str, wildcards: bool) -> Result<(), FieldError> {
    let invalid = |reason: String| Err(FieldError::new(field, reason));
    if topic.is_empty() {
        return invalid("must not be empty".into());
    }
    if topic.len() > MAX_TOPIC_BYTES {
        return invalid(format!(
            "{} bytes exceeds the limit of {MAX_TOPIC_BYTES} bytes",
            topic.len()
        ));
    }
    if topic.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("must not contain spaces or control characters".into());
    }
    let tokens: Vec<&str> = topic.split('.').collect();
    for (i, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return invalid(format!("`{}` has an empty token", quote(topic)));
        }
        let wild = *token == "*" || *token == ">";
        if !wild && (token.contains('*') || token.contains('>')) {
            return invalid(format!(
                "`{}`: wildcards must be whole tokens",
                quote(token)
            ));
        }
        if wild && !wildcards {
            return invalid(format!(
                "`{}`: wildcards are for subscriptions, not publishing",
                quote(topic)
            ));
        }
        if *token == ">" && i != tokens.len() - 1 {
            return invalid(format!("`{}`: `>` must be the last token", quote(topic)));
        }
    }
    Ok(())
}

/// Whether subscription `pattern` matches published `topic`.
pub fn matches(pattern: &str, topic: &str) -> bool {
    let mut topic_tokens = topic.split('.');
    for p in pattern.split('.') {
        match p {
            ">" => return topic_tokens.next().is_some(),
            "*" => {
                if topic_tokens.next().is_none() {
                    return false;
                }
            }
            literal => {
                if topic_tokens.next() != Some(literal) {
                    return false;
                }
            }
        }
    }
    topic_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_nats() {
        assert!(matches("orders.created", "orders.created"));
        assert!(!matches("orders.created", "orders.created.eu"));
        assert!(matches("orders.*", "orders.created"));
        assert!(!matches("orders.*", "orders.created.eu"));
        assert!(!matches("orders.*", "orders"));
        assert!(matches("orders.>", "orders.created.eu"));
        assert!(!matches("orders.>", "orders"));
        assert!(matches("*.created", "orders.created"));
        assert!(matches(">", "anything.at.all"));
    }

    #[test]
    fn rules_name_the_field() {
        assert!(check("topic", "orders.created", false).is_ok());
        assert!(check("topic", "orders.*", true).is_ok());
        assert!(check("topic", "orders.>", true).is_ok());
        for (topic, wild) in [
            ("", true),
            ("a..b", true),
            ("a b", true),
            ("orders.*", false),
            ("orders.>.x", true),
            ("ord*ers", true),
        ] {
            let err = check("topic", topic, wild).unwrap_err();
            assert_eq!(err.field, "topic", "{topic}");
            assert!(err.to_string().starts_with("topic: "), "{err}");
        }
        let long = "a".repeat(MAX_TOPIC_BYTES + 1);
        assert!(
            check("topic", &long, false)
                .unwrap_err()
                .problem
                .contains("256")
        );
    }

    #[test]
    fn messages_quote_the_topic_only_up_to_a_bound() {
        let long = format!("{}..b", "a".repeat(200));
        let err = check("topic", &long, true).unwrap_err();
        assert!(err.problem.len() < 100, "{err}");
        assert!(err.problem.contains('…'), "{err}");
    }
}
