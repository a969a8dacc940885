//! Judging metadata against the filter tree. Total by construction: every
//! type pairing has an answer, and a pairing with no sensible one is false.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::{Node, Op, Order};

pub(super) fn node(node_: &Node, metadata: &Value) -> bool {
    match node_ {
        Node::And(children) => children.iter().all(|child| node(child, metadata)),
        Node::Or(children) => children.iter().any(|child| node(child, metadata)),
        Node::Not(inner) => !node(inner, metadata),
        Node::Test { path, op } => test(op, lookup(metadata, path)),
    }
}

/// The value at a dotted path; anything but an object on the way means the
/// field is missing.
fn lookup<'a>(metadata: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(metadata, |value, key| value.as_object()?.get(key))
}

fn test(op: &Op, value: Option<&Value>) -> bool {
    let Some(value) = value else {
        // A missing field fails every comparison but this one.
        return matches!(op, Op::Exists(false));
    };
    match op {
        Op::Exists(want) => *want,
        Op::Eq(expected) => equal(value, expected),
        Op::Ne(expected) => !equal(value, expected),
        Op::Order(order, bound) => compare(value, bound).is_some_and(|o| order.accepts(o)),
        Op::In(values) => values.iter().any(|v| equal(value, v)),
        Op::Nin(values) => !values.iter().any(|v| equal(value, v)),
        Op::Prefix(prefix) => value
            .as_str()
            .is_some_and(|s| s.starts_with(prefix.as_str())),
        Op::Suffix(suffix) => value.as_str().is_some_and(|s| s.ends_with(suffix.as_str())),
        Op::Contains(needle) => match (value, needle) {
            (Value::String(s), Value::String(sub)) => s.contains(sub.as_str()),
            (Value::Array(items), needle) => items.iter().any(|item| equal(item, needle)),
            _ => false,
        },
        Op::Regex(re) => value.as_str().is_some_and(|s| re.is_match(s)),
    }
}

impl Order {
    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Order::Lt => ordering.is_lt(),
            Order::Lte => ordering.is_le(),
            Order::Gt => ordering.is_gt(),
            Order::Gte => ordering.is_ge(),
        }
    }
}

/// Deep equality in which numbers are equal by value, not by spelling.
fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers(x, y) == Some(Ordering::Equal),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| equal(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(key, x)| ys.get(key).is_some_and(|y| equal(x, y)))
        }
        _ => a == b,
    }
}

/// Order between two numbers or two strings; `None` for anything else.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers(x, y),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Numeric order, exact between integers (no rounding through `f64` past
/// 2^53) and between an integer and a float.
fn numbers(x: &Number, y: &Number) -> Option<Ordering> {
    match (integer(x), integer(y)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        (None, Some(b)) => float_to_integer(x.as_f64()?, b),
        (Some(a), None) => float_to_integer(y.as_f64()?, a).map(Ordering::reverse),
        (None, None) => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

fn integer(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

/// How float `f` orders against integer `i`, compared exactly: the whole
/// part first (the cast saturates, which keeps huge floats beyond every
/// integer a JSON number can hold), then the fraction.
fn float_to_integer(f: f64, i: i128) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    let whole = f.trunc() as i128;
    match whole.cmp(&i) {
        Ordering::Equal => f.fract().partial_cmp(&0.0),
        unequal => Some(unequal),
    }
}
