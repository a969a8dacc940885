use serde_json::{Value, json};

use super::*;

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

fn problem(value: Value) -> String {
    refused(value).to_string()
}

#[test]
fn refuses_anything_but_an_object() {
    for value in [json!(null), json!(1), json!("type"), json!([{"a": 1}])] {
        let err = refused(value);
        assert_eq!(err.field, "filter");
        assert!(err.problem.contains("must be a JSON object"), "{err}");
    }
}

#[test]
fn refuses_unknown_operators_by_name() {
    let err = refused(json!({"floor": {"$gtx": 2}}));
    assert_eq!(err.to_string(), "filter.floor: unknown operator `$gtx`");
    let err = refused(json!({"$nor": [{"a": 1}]}));
    assert_eq!(err.to_string(), "filter: unknown operator `$nor`");
    let err = refused(json!({"floor": {"$gt": 1, "lt": 3}}));
    assert_eq!(err.to_string(), "filter.floor: unknown operator `lt`");
    let err = refused(json!({"floor": {"$and": [{"a": 1}]}}));
    assert_eq!(err.to_string(), "filter.floor: unknown operator `$and`");
    let err = refused(json!({"$gt": 2}));
    assert_eq!(err.field, "filter.$gt");
    assert!(err.problem.contains("must be under a field"), "{err}");
    let long = format!("${}", "x".repeat(1000));
    let err = refused(json!({"a": {long: 1}}));
    assert!(err.problem.len() < 100, "quoted briefly: {err}");
}

#[test]
fn refuses_wrong_operand_types() {
    for (f, field, expected) in [
        (
            json!({"a": {"$in": "x"}}),
            "filter.a.$in",
            "must be an array, not a string",
        ),
        (
            json!({"a": {"$nin": {}}}),
            "filter.a.$nin",
            "must be an array, not an object",
        ),
        (
            json!({"a": {"$exists": 1}}),
            "filter.a.$exists",
            "must be a bool, not a number",
        ),
        (
            json!({"a": {"$regex": 1}}),
            "filter.a.$regex",
            "must be a string",
        ),
        (
            json!({"a": {"$prefix": 1}}),
            "filter.a.$prefix",
            "must be a string",
        ),
        (
            json!({"a": {"$suffix": null}}),
            "filter.a.$suffix",
            "must be a string",
        ),
        (
            json!({"a": {"$contains": [1]}}),
            "filter.a.$contains",
            "must be a string, a number or a bool",
        ),
        (
            json!({"a": {"$gt": true}}),
            "filter.a.$gt",
            "must be a number or a string",
        ),
        (
            json!({"a": {"$lte": null}}),
            "filter.a.$lte",
            "must be a number or a string",
        ),
        (
            json!({"$and": {"a": 1}}),
            "filter.$and",
            "must be an array of filters",
        ),
        (
            json!({"$or": [1]}),
            "filter.$or[0]",
            "must be a JSON object",
        ),
        (json!({"$not": "a"}), "filter.$not", "must be a JSON object"),
        (
            json!({"a": {"$not": 3}}),
            "filter.a.$not",
            "must be an operator object",
        ),
        (
            json!({"a": {"$not": {"b": 3}}}),
            "filter.a.$not",
            "must be an operator object",
        ),
    ] {
        let err = refused(f.clone());
        assert_eq!(err.field, field, "{f}");
        assert!(err.problem.contains(expected), "{f}: {err}");
    }
}

#[test]
fn refuses_empty_logic_and_empty_paths() {
    assert_eq!(
        problem(json!({"$and": []})),
        "filter.$and: must not be an empty array"
    );
    assert_eq!(
        problem(json!({"$or": []})),
        "filter.$or: must not be an empty array"
    );
    assert_eq!(
        problem(json!({"$or": [{"a": 1}, {}]})),
        "filter.$or[1]: must not be an empty filter"
    );
    assert_eq!(
        problem(json!({"$not": {}})),
        "filter.$not: must not be an empty filter"
    );
    for path in ["", "a.", ".a", "a..b"] {
        let err = refused(json!({path: 1}));
        assert!(err.problem.contains("empty segment"), "{path:?}: {err}");
    }
}

#[test]
fn refuses_bad_and_oversized_regexes() {
    let err = refused(json!({"a": {"$regex": "(unclosed"}}));
    assert_eq!(
        err.to_string(),
        "filter.a.$regex: `(unclosed` is not a valid regex"
    );
    let err = refused(json!({"a": {"$regex": "x".repeat(MAX_REGEX_BYTES + 1)}}));
    assert!(
        err.problem.contains("exceeds the limit of 512 bytes"),
        "{err}"
    );
    // Short to write, huge to compile.
    let err = refused(json!({"a": {"$regex": r"\w{100}\w{100}\w{100}"}}));
    assert!(err.problem.contains("compiles past the limit"), "{err}");
    filter(json!({"a": {"$regex": "x".repeat(MAX_REGEX_BYTES)}}));
}

/// `{"$not": {"$not": ... {"a": 1}}}` with `levels` filters in all.
fn nested_nots(levels: usize) -> Value {
    (1..levels).fold(json!({"a": 1}), |inner, _| json!({"$not": inner}))
}

#[test]
fn refuses_nesting_past_the_depth_limit() {
    filter(nested_nots(MAX_DEPTH));
    let err = refused(nested_nots(MAX_DEPTH + 1));
    assert_eq!(err.field, "filter.$not.$not.$not.$not.$not");
    assert!(err.problem.contains("limit of 5 levels"), "{err}");
    let deep_or = json!({"$or": [{"$and": [{"$or": [{"$and": [{"$or": [{"a": 1}]}]}]}]}]});
    assert!(problem(deep_or).contains("limit of 5 levels"));
    let deep_field =
        json!({"$and": [{"$and": [{"$and": [{"$and": [{"a": {"$not": {"$eq": 1}}}]}]}]}]});
    assert!(problem(deep_field).contains("limit of 5 levels"));
}

#[test]
fn refuses_more_than_the_clause_limit() {
    let keys = |n: usize| Value::Object((0..n).map(|i| (format!("k{i}"), json!(i))).collect());
    filter(keys(MAX_CLAUSES));
    assert_eq!(
        problem(keys(MAX_CLAUSES + 1)),
        "filter: more than 20 clauses; the limit is 20"
    );
    // Operators on one field and logical operators count too.
    let ops = json!({"a": {"$gt": 1, "$lt": 9, "$ne": 5}, "$or": [keys(17)]});
    assert!(problem(ops).contains("more than 20 clauses"));
    let many_ors = Value::Array((0..30).map(|i| json!({"a": i})).collect());
    assert!(problem(json!({"$or": many_ors})).contains("more than 20 clauses"));
}

mod properties {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::super::Filter;

    const KEYS: &[&str] = &[
        "a",
        "b",
        "a.b",
        "",
        "$eq",
        "$ne",
        "$lt",
        "$lte",
        "$gt",
        "$gte",
        "$in",
        "$nin",
        "$exists",
        "$prefix",
        "$suffix",
        "$contains",
        "$regex",
        "$and",
        "$or",
        "$not",
        "$bogus",
    ];

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-5i64..5).prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            (-5.0f64..5.0).prop_map(Value::from),
            "[a-c(\\[*.^$]{0,4}".prop_map(Value::String),
        ]
    }

    /// Any JSON, with keys drawn mostly from the language's own words so
    /// that the parser is driven past its first check.
    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
            1 => ".{0,6}",
        ];
        scalar().prop_recursive(8, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((key.clone(), inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// One comparison on one field, always valid.
    fn leaf() -> impl Strategy<Value = Value> {
        let path = proptest::sample::select(&["a", "b", "a.b", "c.a"][..]);
        let comparable = prop_oneof![
            (-3i64..3).prop_map(Value::from),
            (-3.0f64..3.0).prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::String),
        ];
        let op = prop_oneof![
            scalar().prop_map(|v| json!({"$eq": v})),
            scalar().prop_map(|v| json!({"$ne": v})),
            scalar(),
            (
                proptest::sample::select(&["$lt", "$lte", "$gt", "$gte"][..]),
                comparable.clone()
            )
                .prop_map(|(op, v)| json!({op: v})),
            proptest::collection::vec(scalar(), 0..3).prop_map(|v| json!({"$in": v})),
            proptest::collection::vec(scalar(), 0..3).prop_map(|v| json!({"$nin": v})),
            any::<bool>().prop_map(|b| json!({"$exists": b})),
            "[a-c]{0,2}".prop_map(|s| json!({"$prefix": s})),
            "[a-c]{0,2}".prop_map(|s| json!({"$suffix": s})),
            comparable.prop_map(|v| json!({"$contains": v})),
            proptest::sample::select(&["^a", "b$", "[0-9]", "a|c"][..])
                .prop_map(|re| json!({"$regex": re})),
            "[a-c]{0,2}".prop_map(|s| json!({"$not": {"$prefix": s}})),
        ];
        (path, op).prop_map(|(path, op)| json!({path: op}))
    }

    /// A valid filter of at most depth 2 and 3 clauses, so two of them fit
    /// inside `$not`/`$and`/`$or` within the limits.
    fn small_filter() -> impl Strategy<Value = Value> {
        prop_oneof![
            leaf(),
            (leaf(), leaf()).prop_map(|(x, y)| json!({"$and": [x, y]})),
            (leaf(), leaf()).prop_map(|(x, y)| json!({"$or": [x, y]})),
            leaf().prop_map(|x| json!({"$not": x})),
        ]
    }

    /// Metadata over the same few keys the filters ask about.
    fn metadata() -> impl Strategy<Value = Value> {
        let key = proptest::sample::select(&["a", "b", "c"][..]).prop_map(str::to_owned);
        scalar().prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec((key.clone(), inner), 0..4)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    fn parsed(value: Value) -> Filter {
        Filter::parse(&value).unwrap_or_else(|err| panic!("{value}: {err}"))
    }

    proptest! {
        #[test]
        fn parse_never_panics(value in json_value()) {
            let _ = Filter::parse(&value);
        }

        #[test]
        fn whatever_parses_judges_any_metadata(value in json_value(), meta in metadata()) {
            if let Ok(filter) = Filter::parse(&value) {
                let _ = filter.matches(&meta);
            }
        }

        #[test]
        fn the_empty_filter_matches_any_metadata(meta in json_value()) {
            let everything = parsed(json!({}));
            prop_assert!(everything.matches(&meta));
        }

        #[test]
        fn not_negates(f in small_filter(), meta in metadata()) {
            let plain = parsed(f.clone()).matches(&meta);
            prop_assert_eq!(parsed(json!({"$not": f})).matches(&meta), !plain);
        }

        #[test]
        fn de_morgan_holds(f in small_filter(), g in small_filter(), meta in metadata()) {
            let not_and = parsed(json!({"$not": {"$and": [f.clone(), g.clone()]}}));
            let or_nots = parsed(json!({"$or": [{"$not": f.clone()}, {"$not": g.clone()}]}));
            prop_assert_eq!(not_and.matches(&meta), or_nots.matches(&meta));
            let not_or = parsed(json!({"$not": {"$or": [f.clone(), g.clone()]}}));
            let and_nots = parsed(json!({"$and": [{"$not": f}, {"$not": g}]}));
            prop_assert_eq!(not_or.matches(&meta), and_nots.matches(&meta));
        }
    }
}
