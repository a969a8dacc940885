//! Every refusal names the place in the filter and the problem.

use serde_json::{Value, json};

use super::{filter, refused};
use crate::filter::{MAX_CLAUSES, MAX_DEPTH, MAX_REGEX_BYTES};

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
    // The limits still leave room for ordinary patterns.
    filter(json!({"a": {"$regex": "x".repeat(MAX_REGEX_BYTES)}}));
    filter(json!({"a": {"$regex": r"^\w{20}-\d{1,6}$"}}));
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
