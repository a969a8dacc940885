//! What filters match, operator by operator, on one sensor's metadata.

use serde_json::{Value, json};

use super::*;

mod properties;
mod refusals;

fn filter(value: Value) -> Filter {
    Filter::parse(&value).unwrap_or_else(|err| panic!("{value} should parse: {err}"))
}

fn refused(value: Value) -> FieldError {
    Filter::parse(&value).expect_err("should be refused")
}

fn sensor() -> Value {
    json!({
        "type": "sensor",
        "floor": 2,
        "temp": 21.5,
        "active": true,
        "note": null,
        "tags": ["eu", "indoor", 7],
        "location": {"building": "north", "floor": 3, "room": {"id": "r-101"}},
    })
}

fn hits(value: Value) -> bool {
    filter(value).matches(&sensor())
}

#[test]
fn empty_filter_matches_everything() {
    let all = filter(json!({}));
    for metadata in [sensor(), json!({}), json!(null), json!([1, 2]), json!("x")] {
        assert!(all.matches(&metadata), "{metadata}");
    }
}

#[test]
fn a_plain_value_is_equality() {
    assert!(hits(json!({"type": "sensor"})));
    assert!(!hits(json!({"type": "hub"})));
    assert!(hits(json!({"note": null})));
    assert!(hits(json!({"tags": ["eu", "indoor", 7.0]})));
    assert!(!hits(json!({"tags": "eu"})), "$eq does not search arrays");
    assert!(hits(json!({"location.room": {"id": "r-101"}})));
    assert!(!hits(json!({"location.room": {}})));
}

#[test]
fn eq_and_ne() {
    assert!(hits(json!({"floor": {"$eq": 2}})));
    assert!(!hits(json!({"floor": {"$eq": 3}})));
    assert!(hits(json!({"floor": {"$ne": 3}})));
    assert!(!hits(json!({"floor": {"$ne": 2}})));
    // Another type is simply not equal.
    assert!(hits(json!({"floor": {"$ne": "2"}})));
    assert!(!hits(json!({"floor": {"$eq": "2"}})));
}

#[test]
fn ordering_operators_on_numbers() {
    for (op, bound, want) in [
        ("$lt", 3, true),
        ("$lt", 2, false),
        ("$lte", 2, true),
        ("$lte", 1, false),
        ("$gt", 1, true),
        ("$gt", 2, false),
        ("$gte", 2, true),
        ("$gte", 3, false),
    ] {
        assert_eq!(hits(json!({"floor": {op: bound}})), want, "{op} {bound}");
    }
    assert!(hits(json!({"temp": {"$gt": 21, "$lt": 22}})));
    assert!(!hits(json!({"temp": {"$gt": 21.5}})));
}

#[test]
fn ordering_operators_on_strings_are_lexicographic() {
    assert!(hits(json!({"type": {"$gt": "hub"}})));
    assert!(hits(json!({"type": {"$lt": "sensors"}})));
    assert!(hits(json!({"type": {"$gte": "sensor", "$lte": "sensor"}})));
    assert!(
        !hits(json!({"type": {"$lt": "Sensor"}})),
        "bytes: 's' > 'S'"
    );
    let versions = filter(json!({"v": {"$lt": "10"}}));
    assert!(
        !versions.matches(&json!({"v": "9"})),
        "strings, not numbers"
    );
}

#[test]
fn ints_and_floats_compare_by_value() {
    assert!(hits(json!({"floor": 2.0})));
    assert!(hits(json!({"floor": {"$in": [1.0, 2.0]}})));
    assert!(hits(json!({"floor": {"$gte": 1.5, "$lt": 2.5}})));
    assert!(!hits(json!({"floor": {"$gt": 2.0}})));
    assert!(filter(json!({"n": {"$gt": -3}})).matches(&json!({"n": -2.5})));
    assert!(filter(json!({"n": {"$lt": -2}})).matches(&json!({"n": -2.5})));
    // Exact past f64's 2^53, where rounding would call these equal.
    let big = filter(json!({"n": 9_007_199_254_740_993_u64}));
    assert!(!big.matches(&json!({"n": 9_007_199_254_740_992.0})));
    assert!(big.matches(&json!({"n": 9_007_199_254_740_993_u64})));
    assert!(filter(json!({"n": {"$gt": u64::MAX}})).matches(&json!({"n": 1e300})));
    assert!(filter(json!({"n": {"$lt": i64::MIN}})).matches(&json!({"n": -1e300})));
}

#[test]
fn a_type_mismatch_is_false() {
    assert!(!hits(json!({"floor": {"$gt": "1"}})));
    assert!(!hits(json!({"type": {"$lt": 5}})));
    assert!(!hits(json!({"active": {"$gte": 0}})));
    assert!(!hits(json!({"floor": {"$prefix": "2"}})));
    assert!(!hits(json!({"floor": {"$regex": "2"}})));
    assert!(!hits(json!({"active": {"$contains": "t"}})));
    assert!(!hits(json!({"location": {"$suffix": "h"}})));
    assert!(!hits(json!({"type": {"$contains": 5}})));
}

#[test]
fn in_and_nin() {
    assert!(hits(json!({"type": {"$in": ["hub", "sensor"]}})));
    assert!(!hits(json!({"type": {"$in": ["hub"]}})));
    assert!(!hits(json!({"type": {"$in": []}})));
    assert!(hits(json!({"type": {"$nin": ["hub"]}})));
    assert!(hits(json!({"type": {"$nin": []}})));
    assert!(!hits(json!({"type": {"$nin": ["hub", "sensor"]}})));
    assert!(hits(json!({"location.room": {"$in": [{"id": "r-101"}]}})));
}

#[test]
fn exists() {
    assert!(hits(json!({"type": {"$exists": true}})));
    assert!(hits(json!({"note": {"$exists": true}})), "null is present");
    assert!(!hits(json!({"owner": {"$exists": true}})));
    assert!(hits(json!({"owner": {"$exists": false}})));
    assert!(!hits(json!({"type": {"$exists": false}})));
    assert!(hits(json!({"location.room.id": {"$exists": true}})));
    assert!(hits(json!({"type.name": {"$exists": false}})));
}

#[test]
fn string_operators() {
    assert!(hits(json!({"type": {"$prefix": "sen"}})));
    assert!(!hits(json!({"type": {"$prefix": "sor"}})));
    assert!(hits(json!({"type": {"$suffix": "sor"}})));
    assert!(!hits(json!({"type": {"$suffix": "sen"}})));
    assert!(hits(json!({"type": {"$prefix": "", "$suffix": ""}})));
    assert!(hits(json!({"type": {"$contains": "nso"}})));
    assert!(!hits(json!({"type": {"$contains": "xyz"}})));
    assert!(hits(json!({"type": {"$regex": "^s.n"}})));
    assert!(hits(json!({"type": {"$regex": "ns"}})), "unanchored search");
    assert!(!hits(json!({"type": {"$regex": "^ns"}})));
    assert!(hits(json!({"location.room.id": {"$regex": "^r-[0-9]+$"}})));
}

#[test]
fn contains_on_an_array_is_membership() {
    assert!(hits(json!({"tags": {"$contains": "eu"}})));
    assert!(hits(json!({"tags": {"$contains": 7.0}})));
    assert!(
        !hits(json!({"tags": {"$contains": "e"}})),
        "not a substring"
    );
    assert!(!hits(json!({"tags": {"$contains": true}})));
}

#[test]
fn a_missing_field_fails_every_comparison_but_exists_false() {
    let missing = [
        json!({"owner": "x"}),
        json!({"owner": null}),
        json!({"owner": {"$eq": null}}),
        json!({"owner": {"$ne": "x"}}),
        json!({"owner": {"$lt": 1}}),
        json!({"owner": {"$lte": 1}}),
        json!({"owner": {"$gt": 1}}),
        json!({"owner": {"$gte": 1}}),
        json!({"owner": {"$in": ["x", null]}}),
        json!({"owner": {"$nin": ["x"]}}),
        json!({"owner": {"$nin": []}}),
        json!({"owner": {"$exists": true}}),
        json!({"owner": {"$prefix": ""}}),
        json!({"owner": {"$suffix": ""}}),
        json!({"owner": {"$contains": ""}}),
        json!({"owner": {"$regex": ""}}),
        json!({"location.owner": {"$ne": 1}}),
        json!({"floor.level": {"$ne": 1}}),
    ];
    for f in missing {
        assert!(!hits(f.clone()), "{f} should fail on a missing field");
    }
    assert!(hits(json!({"owner": {"$exists": false}})));
    // `$not` is plain negation, so it turns a failed comparison around.
    assert!(hits(json!({"owner": {"$not": {"$eq": "x"}}})));
}

#[test]
fn dotted_paths_reach_nested_metadata() {
    assert!(hits(json!({"location.floor": 3})));
    assert!(hits(json!({"location.room.id": "r-101"})));
    assert!(!hits(json!({"location.floor": 2})));
    assert!(!hits(json!({"tags.0": "eu"})), "paths do not index arrays");
    assert!(hits(
        json!({"location": {"building": "north", "floor": 3.0, "room": {"id": "r-101"}}})
    ));
}

#[test]
fn several_keys_are_an_implicit_and() {
    assert!(hits(json!({"type": "sensor", "floor": 2})));
    assert!(!hits(json!({"type": "sensor", "floor": 3})));
    assert!(!hits(json!({"floor": {"$gte": 2, "$lt": 2}})));
}

#[test]
fn and_or_not() {
    assert!(hits(json!({"$and": [{"type": "sensor"}, {"floor": 2}]})));
    assert!(!hits(json!({"$and": [{"type": "sensor"}, {"floor": 3}]})));
    assert!(hits(json!({"$or": [{"type": "hub"}, {"floor": 2}]})));
    assert!(!hits(json!({"$or": [{"type": "hub"}, {"floor": 3}]})));
    assert!(hits(json!({"$not": {"type": "hub"}})));
    assert!(!hits(json!({"$not": {"type": "sensor", "floor": 2}})));
    assert!(hits(json!({"$not": {"type": "sensor", "floor": 3}})));
    assert!(hits(json!({"floor": {"$not": {"$gt": 2}}})));
    assert!(!hits(json!({"floor": {"$not": {"$gte": 2, "$lte": 2}}})));
    assert!(hits(json!({
        "$or": [
            {"$and": [{"type": "hub"}, {"floor": 2}]},
            {"$and": [{"location.building": {"$in": ["north"]}}, {"$not": {"active": false}}]},
        ]
    })));
}
