//! The registry's filter language: which registered identities a filter
//! selects, judged on each identity's JSON metadata. [`Filter::parse`]
//! checks a filter once (a refusal is a [`FieldError`] naming the place
//! and the problem); [`Filter::matches`] then judges metadata and never
//! fails.
//!
//! # The language
//! A filter is a JSON object in a MongoDB-like form.
//! - `{"type": "sensor"}`: the field equals the value (an implicit `$eq`).
//! - `{"floor": {"$gte": 2, "$lt": 5}}`: operators on one field; several
//!   keys in one object, at either level, must all hold (an implicit AND).
//! - `"location.floor"`: a dotted path reaches into nested objects.
//! - Comparisons: `$eq $ne` (any JSON value); `$lt $lte $gt $gte` (a number
//!   or a string); `$in $nin` (an array of values); `$exists` (a bool);
//!   `$prefix $suffix` (a string); `$contains` (a string, number or bool:
//!   a substring of a string field, a member of an array field); `$regex`
//!   (a pattern of the `regex` crate, found anywhere in a string field
//!   unless anchored with `^`/`$`; matching takes linear time).
//! - Logic: `$and` and `$or` take a non-empty array of filters; `$not`
//!   takes a filter at the top level (`{"$not": {"type": "hub"}}`) or an
//!   operator object under a field (`{"floor": {"$not": {"$gt": 3}}}`).
//! - `{}` matches everything.
//!
//! # How values compare
//! - A missing field fails every comparison, `$ne` and `$nin` included,
//!   except `{"$exists": false}`. (MongoDB's `$ne` would match a missing
//!   field; here "not equal" speaks only of values that exist.) A field
//!   holding `null` exists. `$not` is plain negation, so
//!   `{"x": {"$not": {"$eq": 1}}}` does match metadata without `x`.
//! - Numbers compare numerically whether written as int or float
//!   (`2` equals `2.0`); strings compare lexicographically by bytes.
//! - Equality is deep (arrays element by element, objects key by key) with
//!   that numeric rule; `$in`/`$nin` and array `$contains` use it too. An
//!   array field is not searched by `$eq`: `{"tags": "x"}` asks for the
//!   value `"x"`, `{"tags": {"$contains": "x"}}` for membership.
//! - A type mismatch is false, never an error: `$lt` between a number and a
//!   string, `$prefix` on a number, `$contains` on a bool. For `$ne` and
//!   `$nin` a value of another type is simply not equal, so they hold.
//!
//! # Limits
//! At most [`MAX_DEPTH`] levels of nesting (each `$and`, `$or` and `$not`
//! is one more), at most [`MAX_CLAUSES`] clauses in all (each comparison
//! and each logical operator is one), `$regex` patterns of at most
//! [`MAX_REGEX_BYTES`] bytes that compile within [`REGEX_SIZE_LIMIT`]
//! bytes. A filter nested in `$and`, `$or` or `$not` must not be empty.

mod eval;
mod parse;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::field::FieldError;

/// Deepest nesting accepted; the top-level filter is level 1.
pub const MAX_DEPTH: usize = 5;
/// Most clauses (comparisons and logical operators) in one filter.
pub const MAX_CLAUSES: usize = 20;
/// Longest `$regex` pattern accepted, in bytes.
pub const MAX_REGEX_BYTES: usize = 512;
/// Most memory one compiled `$regex` may take, in bytes: enough for
/// `\w{20}` (Unicode classes are large; `(?-u:\w)` is far smaller), small
/// enough that twenty of them in one filter stay modest.
pub const REGEX_SIZE_LIMIT: usize = 1024 * 1024;

/// A checked filter, ready to judge metadata.
#[derive(Debug, Clone)]
pub struct Filter {
    root: Node,
}

impl Filter {
    /// Parses a filter (see the module docs). Errors name the field
    /// `filter` or the place inside it (`filter.$or[1].floor.$in`) and the
    /// problem: not an object, an unknown operator, a wrong operand type,
    /// a regex that does not compile, an empty `$and`/`$or`, or a filter
    /// past [`MAX_DEPTH`] or [`MAX_CLAUSES`].
    pub fn parse(filter: &Value) -> Result<Filter, FieldError> {
        parse::parse(filter).map(|root| Filter { root })
    }

    /// Whether `metadata` (an identity's JSON object) passes the filter.
    /// Metadata that is not an object has no fields at all.
    pub fn matches(&self, metadata: &Value) -> bool {
        eval::node(&self.root, metadata)
    }
}

/// A filter as a tree: logic over tests of one field each.
#[derive(Debug, Clone)]
enum Node {
    /// Every child holds; no children holds always (`{}`).
    And(Vec<Node>),
    /// Some child holds.
    Or(Vec<Node>),
    Not(Box<Node>),
    /// One operator on the value at `path` (the dotted path, split).
    Test {
        path: Vec<String>,
        op: Op,
    },
}

/// A test of one field's value.
#[derive(Debug, Clone)]
enum Op {
    Eq(Value),
    Ne(Value),
    Order(Order, Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    Prefix(String),
    Suffix(String),
    Contains(Value),
    Regex(regex::Regex),
}

/// Which orderings an ordering operator accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Lt,
    Lte,
    Gt,
    Gte,
}
