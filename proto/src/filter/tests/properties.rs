//! Properties over generated input: nothing panics, `{}` matches all,
//! `$not` negates and De Morgan's laws hold.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::filter::Filter;

/// Keys a generated filter is built from: a few field names, the logical
/// operators and one unknown one, besides every field operator.
const OTHER_KEYS: &[&str] = &["a", "b", "a.b", "", "$and", "$or", "$not", "$bogus"];

fn keys() -> Vec<&'static str> {
    OTHER_KEYS
        .iter()
        .chain(crate::filter::parse::FIELD_OPERATORS)
        .copied()
        .collect()
}

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
        4 => proptest::sample::select(keys()).prop_map(str::to_owned),
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
