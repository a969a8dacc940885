//! JSON to the filter tree, checking every rule on the way: each refusal is
//! a [`FieldError`] whose field says where in the filter the problem is
//! (`filter.$or[1].floor.$in`), with client keys shown through [`quote`].

use regex::RegexBuilder;
use serde_json::{Map, Value};

use super::{MAX_CLAUSES, MAX_DEPTH, MAX_REGEX_BYTES, Node, Op, Order, REGEX_SIZE_LIMIT};
use crate::field::{FieldError, quote};

/// The request field a filter arrives in.
const FIELD: &str = "filter";

/// Operators that test one field, for a clearer refusal when one stands
/// where a field name belongs.
pub(super) const FIELD_OPERATORS: &[&str] = &[
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
];

pub(super) fn parse(filter: &Value) -> Result<Node, FieldError> {
    Parser { clauses: 0 }.filter(FIELD, filter, 1)
}

struct Parser {
    /// Clauses seen so far, so a huge filter is refused before it is all read.
    clauses: usize,
}

impl Parser {
    /// A filter object at nesting level `depth`.
    fn filter(&mut self, at: &str, value: &Value, depth: usize) -> Result<Node, FieldError> {
        let Value::Object(keys) = value else {
            return Err(FieldError::new(
                at,
                format!("must be a JSON object, not {}", kind(value)),
            ));
        };
        let mut all = Vec::with_capacity(keys.len());
        for (key, operand) in keys {
            all.push(self.key(at, key, operand, depth)?);
        }
        Ok(all_of(all))
    }

    /// One key of a filter object: a logical operator or a field path.
    fn key(
        &mut self,
        at: &str,
        key: &str,
        operand: &Value,
        depth: usize,
    ) -> Result<Node, FieldError> {
        let here = format!("{at}.{}", quote(key));
        match key {
            "$and" | "$or" => {
                self.clause()?;
                let next = deeper(&here, depth)?;
                let Value::Array(items) = operand else {
                    return Err(FieldError::new(
                        here,
                        format!("must be an array of filters, not {}", kind(operand)),
                    ));
                };
                if items.is_empty() {
                    return Err(FieldError::new(here, "must not be an empty array"));
                }
                let mut children = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    children.push(self.nested(&format!("{here}[{i}]"), item, next)?);
                }
                Ok(if key == "$and" {
                    Node::And(children)
                } else {
                    Node::Or(children)
                })
            }
            "$not" => {
                self.clause()?;
                let next = deeper(&here, depth)?;
                Ok(Node::Not(Box::new(self.nested(&here, operand, next)?)))
            }
            op if FIELD_OPERATORS.contains(&op) => Err(FieldError::new(
                here,
                format!("`{op}` must be under a field, as in {{\"floor\": {{\"{op}\": ...}}}}"),
            )),
            op if op.starts_with('$') => Err(FieldError::new(
                at,
                format!("unknown operator `{}`", quote(op)),
            )),
            path => {
                let path = split_path(&here, path)?;
                self.field(&here, &path, operand, depth)
            }
        }
    }

    /// A filter inside `$and`, `$or` or `$not`, where `{}` would only hide
    /// a mistake.
    fn nested(&mut self, at: &str, value: &Value, depth: usize) -> Result<Node, FieldError> {
        if value.as_object().is_some_and(Map::is_empty) {
            return Err(FieldError::new(at, "must not be an empty filter"));
        }
        self.filter(at, value, depth)
    }

    /// The tests on one field: an operator object, or the value it equals.
    fn field(
        &mut self,
        at: &str,
        path: &[String],
        operand: &Value,
        depth: usize,
    ) -> Result<Node, FieldError> {
        match operand {
            Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
                self.operators(at, path, ops, depth)
            }
            value => {
                self.clause()?;
                Ok(test(path, Op::Eq(value.clone())))
            }
        }
    }

    /// An operator object on one field; several operators must all hold.
    fn operators(
        &mut self,
        at: &str,
        path: &[String],
        ops: &Map<String, Value>,
        depth: usize,
    ) -> Result<Node, FieldError> {
        let mut all = Vec::with_capacity(ops.len());
        for (name, operand) in ops {
            self.clause()?;
            let here = format!("{at}.{}", quote(name));
            if name != "$not" {
                all.push(test(path, operator(at, &here, name, operand)?));
                continue;
            }
            let next = deeper(&here, depth)?;
            match operand {
                Value::Object(inner)
                    if !inner.is_empty() && inner.keys().all(|k| k.starts_with('$')) =>
                {
                    let inner = self.operators(&here, path, inner, next)?;
                    all.push(Node::Not(Box::new(inner)));
                }
                _ => {
                    return Err(FieldError::new(
                        here,
                        "must be an operator object, as in {\"$gt\": 3}",
                    ));
                }
            }
        }
        Ok(all_of(all))
    }

    fn clause(&mut self) -> Result<(), FieldError> {
        self.clauses += 1;
        if self.clauses > MAX_CLAUSES {
            return Err(FieldError::new(
                FIELD,
                format!("more than {MAX_CLAUSES} clauses; the limit is {MAX_CLAUSES}"),
            ));
        }
        Ok(())
    }
}

/// One comparison operator with its operand checked; `field` names the
/// field's place for an unknown operator, `at` the operator's own place.
fn operator(field: &str, at: &str, name: &str, operand: &Value) -> Result<Op, FieldError> {
    let wrong = |expected: &str| {
        Err(FieldError::new(
            at,
            format!("must be {expected}, not {}", kind(operand)),
        ))
    };
    let order = |order: Order| match operand {
        Value::Number(_) | Value::String(_) => Ok(Op::Order(order, operand.clone())),
        _ => wrong("a number or a string"),
    };
    match name {
        "$eq" => Ok(Op::Eq(operand.clone())),
        "$ne" => Ok(Op::Ne(operand.clone())),
        "$lt" => order(Order::Lt),
        "$lte" => order(Order::Lte),
        "$gt" => order(Order::Gt),
        "$gte" => order(Order::Gte),
        "$in" | "$nin" => match operand {
            Value::Array(values) if name == "$in" => Ok(Op::In(values.clone())),
            Value::Array(values) => Ok(Op::Nin(values.clone())),
            _ => wrong("an array"),
        },
        "$exists" => match operand {
            Value::Bool(want) => Ok(Op::Exists(*want)),
            _ => wrong("a bool"),
        },
        "$prefix" | "$suffix" => match operand {
            Value::String(s) if name == "$prefix" => Ok(Op::Prefix(s.clone())),
            Value::String(s) => Ok(Op::Suffix(s.clone())),
            _ => wrong("a string"),
        },
        "$contains" => match operand {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                Ok(Op::Contains(operand.clone()))
            }
            _ => wrong("a string, a number or a bool"),
        },
        "$regex" => match operand {
            Value::String(pattern) => regex(at, pattern).map(Op::Regex),
            _ => wrong("a string"),
        },
        other => Err(FieldError::new(
            field,
            format!("unknown operator `{}`", quote(other)),
        )),
    }
}

fn regex(at: &str, pattern: &str) -> Result<regex::Regex, FieldError> {
    if pattern.len() > MAX_REGEX_BYTES {
        return Err(FieldError::new(
            at,
            format!(
                "{} bytes exceeds the limit of {MAX_REGEX_BYTES} bytes",
                pattern.len()
            ),
        ));
    }
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|err| {
            // The syntax error's own text repeats the whole pattern, so
            // only the bounded quote is shown.
            let problem = match err {
                regex::Error::CompiledTooBig(_) => format!(
                    "`{}` compiles past the limit of {REGEX_SIZE_LIMIT} bytes",
                    quote(pattern)
                ),
                _ => format!("`{}` is not a valid regex", quote(pattern)),
            };
            FieldError::new(at, problem)
        })
}

/// The nesting level below `depth`, refused past [`MAX_DEPTH`].
fn deeper(at: &str, depth: usize) -> Result<usize, FieldError> {
    if depth >= MAX_DEPTH {
        return Err(FieldError::new(
            at,
            format!("nests deeper than the limit of {MAX_DEPTH} levels"),
        ));
    }
    Ok(depth + 1)
}

fn split_path(at: &str, path: &str) -> Result<Vec<String>, FieldError> {
    if path.split('.').any(str::is_empty) {
        return Err(FieldError::new(
            at,
            "a field path must not be empty or hold an empty segment",
        ));
    }
    Ok(path.split('.').map(str::to_owned).collect())
}

fn test(path: &[String], op: Op) -> Node {
    Node::Test {
        path: path.to_vec(),
        op,
    }
}

/// Several nodes that must all hold, without a needless `And` of one.
fn all_of(mut nodes: Vec<Node>) -> Node {
    if nodes.len() == 1 {
        nodes.pop().expect("one node is present")
    } else {
        Node::And(nodes)
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
