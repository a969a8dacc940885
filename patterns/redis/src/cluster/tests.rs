//! Cursor encoding and shard order, without a cluster.

use redis::Value;

use super::*;

fn range(start: i64, end: i64, port: i64) -> Value {
    Value::Array(vec![
        Value::Int(start),
        Value::Int(end),
        Value::Array(vec![
            Value::BulkString(b"127.0.0.1".to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ]),
    ])
}

#[test]
fn shards_are_ordered_by_their_lowest_slot() {
    let reply = Value::Array(vec![
        range(10923, 16383, 3),
        range(5461, 10922, 2),
        range(0, 100, 1),
        range(101, 5460, 2),
        Value::Int(7),
    ]);
    assert_eq!(shard_starts(&reply), vec![0, 101, 10923]);
    assert!(shard_starts(&Value::Nil).is_empty());
}

#[test]
fn cursors_name_the_shard_and_the_position_inside_it() {
    let within = Cursor::Within {
        start: 4,
        end: 9,
        count: 100,
        after: "k:1".into(),
    };
    for (slot, inner) in [(0, Cursor::Start), (5461, Cursor::At(17)), (16383, within)] {
        let text = encode_cursor(slot, &inner);
        assert_eq!(parse_cursor(&text, 1024).unwrap(), Some((slot, inner)));
    }
    assert_eq!(encode_cursor(5461, &Cursor::Start), "5461@");
    assert_eq!(parse_cursor("", 1024).unwrap(), None);
}

#[test]
fn foreign_cursors_are_refused_naming_the_cursor() {
    for text in ["17", "16384@", "x@0", "-1@", "5@1:2", "@"] {
        let err = parse_cursor(text, 1024).unwrap_err();
        assert_eq!(err.field, "cursor", "{text}: {err}");
    }
}
