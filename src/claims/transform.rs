//! Declarative transforms (issue 18): the common edits of a mapped value, written as keys
//! instead of CEL, applied in order after the value is read (or computed) and before it is merged.
//!
//! ```toml
//! [[upstreams.mappings]]
//! from = "https://example\\.com/groups"
//! to = "teams"
//! transform = [
//!   { keep = "^okta-" },                            # only the groups that match
//!   { replace = { pattern = "^okta-", with = "" } },
//!   "lowercase",
//!   { prefix = "team:" },
//!   { value_map = { "team:admins" = "herald-admins" } },
//! ]
//! ```
//!
//! Each step works on a string, and on each string of a list; `split` turns a string into a
//! list. A value that is neither a string nor a list of strings cannot be transformed: the step
//! fails, and the mapping treats the value as missing.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One step of a mapping's `transform`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// Lower case (Unicode).
    Lowercase,
    /// Upper case (Unicode).
    Uppercase,
    /// Leading and trailing white space removed.
    Trim,
    /// The text put before the value.
    Prefix(String),
    /// The text put after the value.
    Suffix(String),
    /// Every match of a regular expression replaced (`$1` names a group).
    Replace { pattern: Pattern, with: String },
    /// A string split at a separator into a list (empty parts dropped).
    Split(String),
    /// Only the strings that match a regular expression (in a list; a lone string that does not
    /// match becomes missing).
    Keep(Pattern),
    /// Values looked up in a table; those it does not list stay as they are.
    ValueMap(BTreeMap<String, String>),
}

impl Transform {
    /// How lineage and previews name the step, e.g. `prefix "team:"`.
    pub fn describe(&self) -> String {
        match self {
            Transform::Lowercase => "lowercase".into(),
            Transform::Uppercase => "uppercase".into(),
            Transform::Trim => "trim".into(),
            Transform::Prefix(p) => format!("prefix {p:?}"),
            Transform::Suffix(s) => format!("suffix {s:?}"),
            Transform::Replace { pattern, with } => format!("replace /{pattern}/ with {with:?}"),
            Transform::Split(sep) => format!("split at {sep:?}"),
            Transform::Keep(pattern) => format!("keep /{pattern}/"),
            Transform::ValueMap(table) => format!("value_map of {} entries", table.len()),
        }
    }

    /// Applies the step. `Ok(None)`: nothing is left (a lone string `keep` refused).
    pub fn apply(&self, value: &Value) -> Result<Option<Value>, String> {
        match (self, value) {
            (Transform::Split(sep), Value::String(s)) => Ok(Some(split(s, sep))),
            (Transform::Split(sep), Value::Array(items)) => {
                let mut out = Vec::new();
                for item in items {
                    let Value::String(s) = item else {
                        return Err(not_text(self, item));
                    };
                    if let Value::Array(parts) = split(s, sep) {
                        out.extend(parts);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            (Transform::Keep(pattern), Value::String(s)) => {
                Ok(pattern.0.is_match(s).then(|| value.clone()))
            }
            (Transform::Keep(pattern), Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let Value::String(s) = item else {
                        return Err(not_text(self, item));
                    };
                    if pattern.0.is_match(s) {
                        out.push(item.clone());
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            (_, Value::String(s)) => Ok(Some(Value::String(self.edit(s)))),
            (_, Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let Value::String(s) = item else {
                        return Err(not_text(self, item));
                    };
                    out.push(Value::String(self.edit(s)));
                }
                Ok(Some(Value::Array(out)))
            }
            (_, other) => Err(not_text(self, other)),
        }
    }

    fn edit(&self, s: &str) -> String {
        match self {
            Transform::Lowercase => s.to_lowercase(),
            Transform::Uppercase => s.to_uppercase(),
            Transform::Trim => s.trim().to_owned(),
            Transform::Prefix(p) => format!("{p}{s}"),
            Transform::Suffix(x) => format!("{s}{x}"),
            Transform::Replace { pattern, with } => {
                pattern.0.replace_all(s, with.as_str()).into_owned()
            }
            Transform::ValueMap(table) => table.get(s).cloned().unwrap_or_else(|| s.to_owned()),
            Transform::Split(_) | Transform::Keep(_) => s.to_owned(),
        }
    }
}

fn split(s: &str, sep: &str) -> Value {
    Value::Array(
        s.split(sep)
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| Value::String(p.to_owned()))
            .collect(),
    )
}

fn not_text(step: &Transform, value: &Value) -> String {
    format!(
        "`{}` works on strings and lists of strings, not {}",
        step.describe(),
        super::json::describe_json(value)
    )
}

/// What a step was given and what it gave, as [`run`] shows it to its observer.
pub type Outcome = Result<Option<Value>, String>;

/// Runs `steps` over `value`, showing `seen` each step with its input and its outcome; stops at
/// the first step that fails or leaves nothing.
pub fn run(
    steps: &[Transform],
    value: Value,
    mut seen: impl FnMut(&Transform, &Value, &Outcome),
) -> Outcome {
    let mut current = value;
    for step in steps {
        let out = step.apply(&current);
        seen(step, &current, &out);
        match out? {
            Some(v) => current = v,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// A regular expression from configuration, compiled when it is read.
#[derive(Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        // Bounded: a pattern from configuration may not build an automaton larger than 1 MiB.
        regex::RegexBuilder::new(source)
            .size_limit(1 << 20)
            .build()
            .map(Pattern)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}/", self.0.as_str())
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        Pattern::new(&source).map_err(|e| {
            serde::de::Error::custom(format!("invalid regular expression {source:?}: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Steps {
        transform: Vec<Transform>,
    }

    fn steps(toml_text: &str) -> Vec<Transform> {
        toml::from_str::<Steps>(toml_text).unwrap().transform
    }

    #[test]
    fn steps_apply_in_order_to_each_string_of_a_list() {
        let t = steps(
            r#"transform = [
                { keep = "^okta-" },
                { replace = { pattern = "^okta-(.*)$", with = "$1" } },
                "lowercase",
                { prefix = "team:" },
                { value_map = { "team:admins" = "herald-admins" } },
            ]"#,
        );
        let mut trace = Vec::new();
        let out = run(
            &t,
            json!(["okta-Admins", "other", "okta-Dev"]),
            |step, _, out| {
                trace.push((step.describe(), out.clone().unwrap().unwrap_or(Value::Null)));
            },
        )
        .unwrap();
        assert_eq!(out, Some(json!(["herald-admins", "team:dev"])));
        assert_eq!(trace.len(), 5);
        assert_eq!(
            trace[0],
            (
                "keep /^okta-/".to_owned(),
                json!(["okta-Admins", "okta-Dev"])
            )
        );
    }

    #[test]
    fn split_turns_a_string_into_a_list_and_keep_can_leave_nothing() {
        let t = steps(r#"transform = [{ split = "," }, "trim", "uppercase"]"#);
        assert_eq!(
            run(&t, json!("a, b,,c"), |_, _, _| {}).unwrap(),
            Some(json!(["A", "B", "C"]))
        );
        let keep = steps(r#"transform = [{ keep = "^x" }]"#);
        assert_eq!(run(&keep, json!("y"), |_, _, _| {}).unwrap(), None);
        assert_eq!(
            run(&keep, json!("xy"), |_, _, _| {}).unwrap(),
            Some(json!("xy"))
        );
    }

    #[test]
    fn a_value_that_is_not_text_fails_the_step() {
        let t = steps(r#"transform = ["lowercase"]"#);
        let err = run(&t, json!(3), |_, _, _| {}).unwrap_err();
        assert!(err.contains("not a number"), "{err}");
        let err = run(&t, json!(["a", 1]), |_, _, _| {}).unwrap_err();
        assert!(err.contains("not a number"), "{err}");
    }

    #[test]
    fn a_bad_pattern_or_an_unknown_step_is_a_config_error() {
        let err = toml::from_str::<Steps>(r#"transform = [{ keep = "(" }]"#).unwrap_err();
        assert!(
            err.to_string().contains("invalid regular expression"),
            "{err}"
        );
        let err = toml::from_str::<Steps>(r#"transform = ["lowercas"]"#).unwrap_err();
        assert!(err.to_string().contains("lowercas"), "{err}");
    }
}
