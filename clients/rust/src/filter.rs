//! Which identities a registry call selects: a MongoDB-style JSON filter
//! over their metadata, given as a `serde_json::Value` or built field by
//! field. The proxy checks it (a bad filter is `INVALID_ARGUMENT` naming
//! the place); here only the shape that cannot travel is refused.

use prost_types::Struct;
use serde_json::{Map, Value};

use crate::Error;

/// A registry filter: `{"type": "sensor", "floor": {"$gte": 2}}`. Empty
/// ([`Filter::all`]) selects every identity.
///
/// ```
/// use prism_client::Filter;
/// use serde_json::json;
///
/// let built = Filter::all().eq("type", "sensor").gte("floor", 2).lt("floor", 5);
/// assert_eq!(
///     built.to_json(),
///     json!({"type": {"$eq": "sensor"}, "floor": {"$gte": 2, "$lt": 5}})
/// );
/// let given = Filter::from(json!({"type": "sensor", "floor": 1}));
/// assert_eq!(given.to_json(), json!({"type": "sensor", "floor": 1}));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Filter(Value);

impl Default for Filter {
    fn default() -> Self {
        Self::all()
    }
}

impl Filter {
    /// Every identity.
    pub fn all() -> Self {
        Self(Value::Object(Map::new()))
    }

    /// The filter as JSON.
    pub fn to_json(&self) -> Value {
        self.0.clone()
    }

    /// `field` (a dotted path) equals `value`.
    pub fn eq(self, field: &str, value: impl Into<Value>) -> Self {
        self.op(field, "$eq", value.into())
    }

    /// `field` is present and differs from `value`.
    pub fn ne(self, field: &str, value: impl Into<Value>) -> Self {
        self.op(field, "$ne", value.into())
    }

    /// `field` is less than `value`.
    pub fn lt(self, field: &str, value: impl Into<Value>) -> Self {
        self.op(field, "$lt", value.into())
    }

    /// `field` is at most `value`.
    pub fn lte(self, field: &str, value: impl Into<Value>) -> Self {
        self.op(field, "$lte", value.into())
    }

    /// `field` is greater than `value`.
    pub fn gt(self, field: &str, value: impl Into<Value>) -> Self {
        self.op(field, "$gt", value.into())
    }

    /// `field` is at least `value`.
    pub fn gte(self, field: &str, value: impl Into<Value>) -> Self {
        self.op(field, "$gte", value.into())
    }

    /// `field` equals one of `values`.
    pub fn is_in<V: Into<Value>>(self, field: &str, values: impl IntoIterator<Item = V>) -> Self {
        let values = values.into_iter().map(Into::into).collect();
        self.op(field, "$in", Value::Array(values))
    }

    /// `field` is present (`true`) or absent (`false`).
    pub fn exists(self, field: &str, present: bool) -> Self {
        self.op(field, "$exists", Value::Bool(present))
    }

    /// `field` is a string starting with `prefix`.
    pub fn prefix(self, field: &str, prefix: &str) -> Self {
        self.op(field, "$prefix", Value::from(prefix))
    }

    /// Adds `operator: value` to `field`'s conditions, so several on one
    /// field all hold (`floor >= 2 and floor < 5`). On a filter given as
    /// JSON whose `field` is a plain value, that value becomes `$eq`.
    fn op(mut self, field: &str, operator: &str, value: Value) -> Self {
        let Value::Object(fields) = &mut self.0 else {
            // Not an object: `struct_value` refuses it before any call.
            return self;
        };
        let conditions = fields
            .entry(field.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        let is_operators = conditions
            .as_object()
            .is_some_and(|m| m.keys().all(|k| k.starts_with('$')));
        if !is_operators {
            let plain = conditions.take();
            *conditions = Value::Object(Map::from_iter([("$eq".to_string(), plain)]));
        }
        if let Value::Object(conditions) = conditions {
            conditions.insert(operator.to_string(), value);
        }
        self
    }

    /// The filter as the proto's `Struct`; a filter that is not a JSON
    /// object (or null, meaning every identity) cannot be one.
    pub(crate) fn to_struct(&self) -> Result<Option<Struct>, Error> {
        match &self.0 {
            Value::Null => Ok(None),
            Value::Object(map) if map.is_empty() => Ok(None),
            object @ Value::Object(_) => Ok(Some(prism_proto::json::to_struct(object))),
            other => Err(Error::Local {
                what: "filter",
                reason: format!("must be a JSON object of fields, got {other}"),
            }),
        }
    }
}

impl From<Value> for Filter {
    fn from(json: Value) -> Self {
        Self(json)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn conditions_on_one_field_merge_and_a_plain_value_becomes_eq() {
        let filter = Filter::all()
            .eq("type", "sensor")
            .gte("floor", 2)
            .lt("floor", 5)
            .is_in("zone", ["a", "b"])
            .exists("retired", false)
            .prefix("name", "s-");
        assert_eq!(
            filter.to_json(),
            json!({
                "type": {"$eq": "sensor"},
                "floor": {"$gte": 2, "$lt": 5},
                "zone": {"$in": ["a", "b"]},
                "retired": {"$exists": false},
                "name": {"$prefix": "s-"},
            })
        );
        let widened = Filter::from(json!({"floor": 1, "loc": {"room": 3}})).ne("floor", 0);
        assert_eq!(
            widened.to_json(),
            json!({"floor": {"$eq": 1, "$ne": 0}, "loc": {"room": 3}})
        );
    }

    #[test]
    fn only_objects_travel_and_empty_means_every_identity() {
        assert_eq!(Filter::all().to_struct().unwrap(), None);
        assert_eq!(Filter::from(Value::Null).to_struct().unwrap(), None);
        let sent = Filter::from(json!({"type": "sensor"})).to_struct().unwrap();
        assert_eq!(
            prism_proto::json::from_struct(&sent.unwrap()),
            json!({"type": "sensor"})
        );
        for bad in [json!("sensor"), json!([1, 2]), json!(3)] {
            let error = Filter::from(bad.clone()).to_struct().unwrap_err();
            assert!(
                matches!(error, Error::Local { what: "filter", .. }),
                "{error}"
            );
            assert!(error.to_string().contains(&bad.to_string()), "{error}");
        }
    }
}
