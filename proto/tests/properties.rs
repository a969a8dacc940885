//! Property tests of the rules every edge applies to what clients send:
//! no input makes them panic, refusals stay short whatever the input, and
//! what can round-trip does.

use std::collections::HashMap;

use prism_proto::{cursor, json, limits::Limits, publish, topic};
use proptest::prelude::*;

/// Longest refusal any rule may produce, whatever the input's size.
const MAX_MESSAGE: usize = 256;

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_-]{1,8}"
}

fn topic_tokens() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(token(), 1..6)
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i32>().prop_map(|n| serde_json::json!(n)),
        (-1.0e6..1.0e6f64)
            .prop_filter("not whole", |f| f.fract() != 0.0)
            .prop_map(|f| serde_json::json!(f)),
        ".{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn topic_rules_never_panic_and_stay_short(text in any::<String>(), wild in any::<bool>()) {
        if let Err(err) = topic::check("topic", &text, wild) {
            prop_assert_eq!(err.field.as_str(), "topic");
            prop_assert!(err.to_string().len() <= MAX_MESSAGE, "{}", err);
        }
        let _ = topic::matches(&text, &text);
    }

    #[test]
    fn long_topics_are_refused_briefly(text in ".{300,2000}") {
        let err = topic::check("topic", &text, true).unwrap_err();
        prop_assert!(err.to_string().len() <= MAX_MESSAGE);
    }

    #[test]
    fn valid_topics_match_themselves_and_their_wildcards(
        tokens in topic_tokens(),
        star in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let topic_text = tokens.join(".");
        prop_assert!(topic::check("topic", &topic_text, false).is_ok());
        prop_assert!(topic::matches(&topic_text, &topic_text));

        let mut starred = tokens.clone();
        starred[star.index(tokens.len())] = "*".into();
        let pattern = starred.join(".");
        prop_assert!(topic::check("topic", &pattern, true).is_ok());
        prop_assert!(topic::check("topic", &pattern, false).is_err());
        prop_assert!(topic::matches(&pattern, &topic_text));

        // `prefix.>` matches what has at least one token after the prefix.
        let keep = cut.index(tokens.len());
        let mut tail = tokens[..keep].to_vec();
        tail.push(">".into());
        let pattern = tail.join(".");
        prop_assert!(topic::check("topic", &pattern, true).is_ok());
        prop_assert!(topic::matches(&pattern, &topic_text));
        prop_assert!(!topic::matches(&pattern, &tokens[..keep].join(".")) || keep == 0);
    }

    #[test]
    fn a_pattern_without_wildcards_matches_only_itself(a in topic_tokens(), b in topic_tokens()) {
        let (a, b) = (a.join("."), b.join("."));
        prop_assert_eq!(topic::matches(&a, &b), a == b);
    }

    #[test]
    fn json_objects_round_trip_through_struct(
        fields in prop::collection::btree_map(".{0,8}", json_value(), 0..8)
    ) {
        let object = serde_json::Value::Object(fields.into_iter().collect());
        prop_assert_eq!(json::from_struct(&json::to_struct(&object)), object);
    }

    #[test]
    fn any_json_converts_without_panic(value in json_value()) {
        let back = json::from_struct(&json::to_struct(&value));
        prop_assert!(back.is_object());
    }

    #[test]
    fn key_rules_never_panic_and_stay_short(
        key in any::<String>(),
        prefix in any::<String>(),
        cursor_text in any::<String>(),
        max_key in 1usize..64,
    ) {
        let limits = Limits { max_key_bytes: max_key, max_value_bytes: 16 };
        for result in [
            limits.check_key(&key),
            limits.check_set(&key, key.as_bytes(), key.len() as i64 - 3),
            limits.check_scan(&prefix, &cursor_text),
        ] {
            if let Err(err) = result {
                prop_assert!(err.to_string().len() <= MAX_MESSAGE, "{}", err);
            }
        }
        prop_assert_eq!(limits.check_key(&key).is_ok(), !key.is_empty() && key.len() <= max_key);
    }

    #[test]
    fn metadata_rules_never_panic_and_stay_short(
        metadata in prop::collection::hash_map(any::<String>(), any::<String>(), 0..4),
        huge in "[a-z]{300,3000}",
    ) {
        let mut with_huge: HashMap<String, String> = metadata.clone();
        with_huge.insert(huge, "v".into());
        for map in [metadata, with_huge] {
            if let Err(err) = publish::check_metadata(&map) {
                prop_assert_eq!(err.field.as_str(), "metadata");
                prop_assert!(err.to_string().len() <= MAX_MESSAGE, "{}", err);
            }
        }
    }

    #[test]
    fn header_safe_metadata_passes(
        metadata in prop::collection::hash_map("[a-z][a-z0-9_-]{0,20}", "[ -~]{0,40}", 0..8)
    ) {
        let metadata: HashMap<String, String> = metadata
            .into_iter()
            .filter(|(k, _)| !publish::reserved_key(k))
            .collect();
        prop_assert!(publish::check_metadata(&metadata).is_ok());
    }

    #[test]
    fn subscriber_id_rules_never_panic(id in any::<String>(), required in any::<bool>()) {
        if let Err(err) = publish::check_subscriber_id(&id, required) {
            prop_assert!(err.to_string().len() <= MAX_MESSAGE, "{}", err);
        }
    }

    #[test]
    fn cursor_keys_round_trip(key in ".{0,40}") {
        let text = cursor::encode_key(&key);
        prop_assert!(text.bytes().all(|b| b.is_ascii_hexdigit()));
        prop_assert_eq!(cursor::decode_key(&text, 4096).unwrap(), key);
    }

    #[test]
    fn any_cursor_text_decodes_or_is_refused(text in any::<String>()) {
        match cursor::decode_key(&text, 64) {
            Ok(key) => prop_assert_eq!(cursor::encode_key(&key), text),
            Err(err) => prop_assert_eq!(err.field.as_str(), "cursor"),
        }
    }
}
