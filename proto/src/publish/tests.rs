//! The shared publish rules, case by case: what passes, what is refused and
//! how the refusal reads.

use super::*;

fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn problem(pairs: &[(&str, &str)]) -> String {
    let err = check_metadata(&meta(pairs)).unwrap_err();
    assert_eq!(err.field, "metadata");
    err.problem
}

fn publish(topic: &str, payload: usize, metadata: &[(&str, &str)]) -> PublishRequest {
    PublishRequest {
        topic: topic.into(),
        payload: vec![0; payload],
        metadata: meta(metadata),
    }
}

#[test]
fn ordinary_metadata_passes() {
    check_metadata(&meta(&[
        ("content-type", "application/json"),
        ("X-Tenant", "äöü 42"),
        ("empty", ""),
    ]))
    .unwrap();
}

#[test]
fn bad_metadata_is_named() {
    assert!(problem(&[("", "v")]).contains("empty"));
    for key in [
        "prism-message-id",
        "Prism-X",
        "traceparent",
        "TraceState",
        "Nats-Msg-Id",
    ] {
        assert!(problem(&[(key, "v")]).contains("reserved"), "{key}");
    }
    assert!(problem(&[("a b", "v")]).contains("visible ASCII"));
    assert!(problem(&[("a:b", "v")]).contains("visible ASCII"));
    assert!(problem(&[("a\nb", "v")]).contains("visible ASCII"));
    assert!(problem(&[("ключ", "v")]).contains("visible ASCII"));
    assert!(problem(&[("k", "line\r\nbreak")]).contains("CR or LF"));
    let long = "k".repeat(MAX_METADATA_KEY_BYTES + 1);
    assert!(problem(&[(&long, "v")]).contains("limit of 256 bytes"));
    let big = "v".repeat(MAX_METADATA_BYTES);
    assert!(problem(&[("k", &big)]).contains("limit of 65536 bytes"));
}

#[test]
fn metadata_errors_quote_keys_only_up_to_a_bound() {
    let huge = "k".repeat(60_000);
    let reason = problem(&[(&huge, "v")]);
    assert!(!reason.contains(&"k".repeat(65)), "{reason}");
    let reserved = format!("prism-{}", "x".repeat(200));
    let reason = problem(&[(&reserved, "v")]);
    assert!(reason.contains('…') && reason.len() < 150, "{reason}");
}

#[test]
fn publish_checks_name_the_field() {
    assert!(check_publish(&publish("a.b", 10, &[("k", "v")]), 10, "max_value_bytes").is_ok());
    for (request, field) in [
        (publish("a.*", 1, &[]), "topic"),
        (publish("a", 11, &[]), "payload"),
        (publish("a", 1, &[("prism-id", "x")]), "metadata"),
        (publish("a", 1, &[("traceparent", "x")]), "metadata"),
    ] {
        let err = check_publish(&request, 10, "max_value_bytes").unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    let err = check_publish(&publish("a", 11, &[]), 10, "max_payload_bytes").unwrap_err();
    assert_eq!(
        err.to_string(),
        "payload: 11 bytes exceeds the limit of 10 bytes (max_payload_bytes)"
    );
}

#[test]
fn a_batch_is_refused_whole_naming_the_first_bad_message() {
    let request = |messages: Vec<PublishRequest>| PublishBatchRequest { messages };
    let good = || publish("a.b", 10, &[("k", "v")]);
    let check = |r: &PublishBatchRequest| check_publish_batch(r, 10, "max_value_bytes");
    assert!(check(&request(vec![good(); batch::MAX_MESSAGES])).is_ok());
    assert_eq!(check(&request(vec![])).unwrap_err().field, "messages");
    let err = check(&request(vec![good(); batch::MAX_MESSAGES + 1])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "messages: 1001 messages exceeds the limit of 1000 messages"
    );
    let mut messages = vec![good(); 5];
    messages[3] = publish("a.b", 11, &[]);
    messages[4] = publish("a.*", 1, &[]);
    assert_eq!(
        check(&request(messages)).unwrap_err().to_string(),
        "messages[3].payload: 11 bytes exceeds the limit of 10 bytes (max_value_bytes)"
    );
}

#[test]
fn subscriber_ids_are_bounded_and_printable() {
    check_subscriber_id("", false).unwrap();
    check_subscriber_id("worker-1 ü", true).unwrap();
    check_subscriber_id(&"x".repeat(MAX_SUBSCRIBER_ID_BYTES), true).unwrap();
    for (id, required, says) in [
        ("", true, "empty"),
        ("a\nb", false, "control"),
        ("a\u{0}b", true, "control"),
    ] {
        let err = check_subscriber_id(id, required).unwrap_err();
        assert_eq!(err.field, "subscriber_id");
        assert!(err.problem.contains(says), "{err}");
    }
    let err = check_subscriber_id(&"x".repeat(1 << 20), false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "subscriber_id: 1048576 bytes exceeds the limit of 256 bytes"
    );
}

#[test]
fn acks_are_bounded() {
    check_ack_ids(MAX_ACK_IDS).unwrap();
    assert_eq!(
        check_ack_ids(MAX_ACK_IDS + 1).unwrap_err().field,
        "message_ids"
    );
}

#[test]
fn unsubscribe_and_ack_name_topic_and_subscriber() {
    assert!(check_subscription("orders.*", "worker").is_ok());
    assert_eq!(check_subscription("", "worker").unwrap_err().field, "topic");
    for id in ["", "a\nb"] {
        assert_eq!(
            check_subscription("t", id).unwrap_err().field,
            "subscriber_id"
        );
    }
}
