//! Lossless-enough conversion between `serde_json::Value` and
//! `google.protobuf.Struct`, used to hand a namespace's YAML `config` block to
//! a pattern's `Initialize`. Numbers travel as f64, as in the protobuf JSON
//! mapping.

use prost_types::{ListValue, Struct, Value, value::Kind};
use serde_json::{Map, Number};

/// Converts a JSON object to a `Struct`. Anything but an object (or null) is
/// wrapped as `{"value": ...}` so nothing is silently dropped.
pub fn to_struct(json: &serde_json::Value) -> Struct {
    match json {
        serde_json::Value::Object(map) => Struct {
            fields: map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
        },
        serde_json::Value::Null => Struct::default(),
        other => Struct {
            fields: [("value".to_string(), to_value(other))].into(),
        },
    }
}

/// Converts a `Struct` back to a JSON object.
pub fn from_struct(s: &Struct) -> serde_json::Value {
    serde_json::Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), from_value(v)))
            .collect::<Map<_, _>>(),
    )
}

fn to_value(json: &serde_json::Value) -> Value {
    let kind = match json {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(_) => Kind::StructValue(to_struct(json)),
    };
    Value { kind: Some(kind) }
}

fn from_value(value: &Value) -> serde_json::Value {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.iter().map(from_value).collect())
        }
        Some(Kind::StructValue(s)) => from_struct(s),
    }
}

/// Whole numbers come back as integers so `max_keys: 10` deserializes into a
/// `u64` field on the pattern side.
fn number(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serde_json::Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_nested_config() {
        let config = json!({
            "address": "redis://127.0.0.1:6379",
            "max_keys": 10,
            "ratio": 0.5,
            "tls": false,
            "tags": ["a", 1],
            "pool": {"size": 4},
            "none": null
        });
        assert_eq!(from_struct(&to_struct(&config)), config);
    }

    #[test]
    fn wraps_non_objects() {
        assert_eq!(from_struct(&to_struct(&json!(3))), json!({"value": 3}));
        assert_eq!(from_struct(&to_struct(&json!(null))), json!({}));
    }
}
