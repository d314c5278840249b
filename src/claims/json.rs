//! Small words about JSON values, shared by the mapping and the transforms.

use serde_json::Value;

/// What a JSON value is, as it reads in a sentence.
pub fn describe_json(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
