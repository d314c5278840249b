//! The claim-mapping editor's rows: attributes and mappings as a plain form (no JavaScript),
//! each row's fields named `attr.N.FIELD` or `map.N.FIELD`; a row with an empty claim (or
//! `from`) is ignored, so the blank rows at the end add new ones, and a ticked `remove` drops a
//! row. Parsed into typed rows, shown again with their problems placed on the row a
//! check-config message names.

use serde_json::{Map, Value};

use super::base::Form;
use super::views::{AttrRow, MapRow, options, word};
use crate::claims::{Attribute, Mapping, OnMissing};

pub(super) const SOURCES: [&str; 3] = ["id_token", "userinfo", "access_token"];
pub(super) const TYPES: [&str; 7] = [
    "any",
    "string",
    "number",
    "integer",
    "boolean",
    "string_array",
    "object",
];
pub(super) const ON_MISSING: [&str; 3] = ["clear", "keep", "fail"];
pub(super) const MERGES: [&str; 5] = ["set", "set_if_empty", "add", "sum", "set_or_clear"];
/// Empty rows offered below the existing ones for additions.
pub(super) const BLANK_ROWS: usize = 2;
/// More rows than any upstream needs; a larger form is refused.
pub(super) const MAX_ROWS: usize = 500;

pub(super) fn attr_row(a: &Attribute, errors: Vec<String>) -> AttrRow {
    AttrRow {
        claim: a.claim.canonical(),
        sources: options(&SOURCES, a.source.as_str()),
        types: options(&TYPES, a.ty.as_str()),
        display_name: a.display_name.clone().unwrap_or_default(),
        required: a.required,
        on_missing: options(&ON_MISSING, &word(&a.on_missing)),
        errors,
    }
}

pub(super) fn blank_attr() -> AttrRow {
    AttrRow {
        claim: String::new(),
        sources: options(&SOURCES, "id_token"),
        types: options(&TYPES, "any"),
        display_name: String::new(),
        required: false,
        on_missing: options(&ON_MISSING, "clear"),
        errors: Vec::new(),
    }
}

pub(super) fn map_row(m: &Mapping, errors: Vec<String>) -> MapRow {
    // What the page has no field for travels in a hidden one, so saving the page keeps it.
    let mut kept = Map::new();
    if !m.transform.is_empty() {
        kept.insert("transform".into(), serde_json::json!(m.transform));
    }
    if m.on_missing != OnMissing::Clear {
        kept.insert("on_missing".into(), serde_json::json!(m.on_missing));
    }
    MapRow {
        from: m.from.as_ref().map(|f| f.canonical()).unwrap_or_default(),
        expr: m
            .expr
            .as_ref()
            .map(|e| e.source().to_owned())
            .unwrap_or_default(),
        when: m
            .when
            .as_ref()
            .map(|e| e.source().to_owned())
            .unwrap_or_default(),
        to: m.to.canonical(),
        merges: options(&MERGES, m.merge.as_str()),
        steps: m.transform.iter().map(|t| t.describe()).collect(),
        kept: if kept.is_empty() {
            String::new()
        } else {
            Value::Object(kept).to_string()
        },
        errors,
    }
}

pub(super) fn blank_map() -> MapRow {
    MapRow {
        from: String::new(),
        expr: String::new(),
        when: String::new(),
        to: String::new(),
        merges: options(&MERGES, "set"),
        steps: Vec::new(),
        kept: String::new(),
        errors: Vec::new(),
    }
}

/// One submitted row: its fields as typed, what they parse to, and its problems.
pub(super) struct Row<T> {
    fields: Map<String, Value>,
    parsed: Option<T>,
    errors: Vec<String>,
}

/// The submitted rows, in form order; blank and removed rows are already left out.
pub(super) struct Rows {
    attributes: Vec<Row<Attribute>>,
    mappings: Vec<Row<Mapping>>,
}

impl Rows {
    pub(super) fn parse(form: &Form) -> Result<Self, String> {
        let mut attr_fields: Vec<Map<String, Value>> = Vec::new();
        let mut map_fields: Vec<Map<String, Value>> = Vec::new();
        for (name, value) in form.fields() {
            let (list, rest) = if let Some(rest) = name.strip_prefix("attr.") {
                (&mut attr_fields, rest)
            } else if let Some(rest) = name.strip_prefix("map.") {
                (&mut map_fields, rest)
            } else {
                continue;
            };
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else {
                return Err(format!("“{name}” is not a field of this form."));
            };
            if n >= MAX_ROWS {
                return Err(format!("At most {MAX_ROWS} rows can be saved at once."));
            }
            if list.len() <= n {
                list.resize_with(n + 1, Map::new);
            }
            list[n].insert(field.to_string(), Value::String(value.trim().to_string()));
        }
        let kept = |f: &Map<String, Value>, key: &str| {
            !f.contains_key("remove")
                && f.get(key)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
        };
        Ok(Self {
            attributes: attr_fields
                .into_iter()
                .filter(|f| kept(f, "claim"))
                .map(|fields| parse_row(fields, attribute_json))
                .collect(),
            mappings: map_fields
                .into_iter()
                .filter(|f| kept(f, "from") || kept(f, "expr"))
                .map(|fields| parse_row(fields, mapping_json))
                .collect(),
        })
    }

    pub(super) fn has_errors(&self) -> bool {
        self.attributes.iter().any(|r| !r.errors.is_empty())
            || self.mappings.iter().any(|r| !r.errors.is_empty())
    }

    pub(super) fn attributes(&self) -> Vec<Attribute> {
        self.attributes
            .iter()
            .filter_map(|r| r.parsed.clone())
            .collect()
    }

    pub(super) fn mappings(&self) -> Vec<Mapping> {
        self.mappings
            .iter()
            .filter_map(|r| r.parsed.clone())
            .collect()
    }

    /// Puts each check-config problem about this upstream (`upstreams[N]…`) next to the row it
    /// names; returns the others, for the top of the page.
    pub(super) fn place(&mut self, position: Option<usize>, problems: Vec<String>) -> Vec<String> {
        let mut rest = Vec::new();
        for p in problems {
            let ours = position.is_some_and(|n| p.starts_with(&format!("upstreams[{n}]")));
            // The row is the first list index after the upstream's own: `upstreams[0]:
            // mappings[1] (… attributes[3] …)` is about mapping 1.
            let slot = match ours.then(|| first_row(&p)).flatten() {
                Some(Named::Attribute(i)) => self.attributes.get_mut(i).map(|r| &mut r.errors),
                Some(Named::Mapping(i)) => self.mappings.get_mut(i).map(|r| &mut r.errors),
                None => None,
            };
            match slot {
                Some(errors) => errors.push(p),
                None => rest.push(p),
            }
        }
        if rest.is_empty() {
            rest.push("Some rows have problems; see the messages next to them.".into());
        }
        rest
    }

    pub(super) fn into_views(self) -> (Vec<AttrRow>, Vec<MapRow>) {
        let text = |f: &Map<String, Value>, k: &str| {
            f.get(k).and_then(Value::as_str).unwrap_or("").to_string()
        };
        let attributes = self
            .attributes
            .into_iter()
            .map(|r| AttrRow {
                claim: text(&r.fields, "claim"),
                sources: options(&SOURCES, &text(&r.fields, "source")),
                types: options(&TYPES, &text(&r.fields, "type")),
                display_name: text(&r.fields, "display_name"),
                required: r.fields.contains_key("required"),
                on_missing: options(&ON_MISSING, &text(&r.fields, "on_missing")),
                errors: r.errors,
            })
            .chain((0..BLANK_ROWS).map(|_| blank_attr()))
            .collect();
        let mappings = self
            .mappings
            .into_iter()
            .map(|r| MapRow {
                from: text(&r.fields, "from"),
                expr: text(&r.fields, "expr"),
                when: text(&r.fields, "when"),
                to: text(&r.fields, "to"),
                merges: options(&MERGES, &text(&r.fields, "merge")),
                steps: r
                    .parsed
                    .as_ref()
                    .map(|m| m.transform.iter().map(|t| t.describe()).collect())
                    .unwrap_or_default(),
                kept: text(&r.fields, "kept"),
                errors: r.errors,
            })
            .chain((0..BLANK_ROWS).map(|_| blank_map()))
            .collect();
        (attributes, mappings)
    }
}

pub(super) enum Named {
    Attribute(usize),
    Mapping(usize),
}

/// The row a check-config message about one upstream names first: `attributes[3]` or
/// `mappings[3]`, after the `upstreams[N]` it starts with.
pub(super) fn first_row(message: &str) -> Option<Named> {
    let rest = message.split_once(']').map_or(message, |(_, r)| r);
    let index = |prefix: &str| {
        let at = rest.find(prefix)?;
        let start = at + prefix.len();
        let end = start + rest[start..].find(']')?;
        Some((at, rest[start..end].parse::<usize>().ok()?))
    };
    match (index("attributes["), index("mappings[")) {
        (Some((a, i)), Some((m, _))) if a < m => Some(Named::Attribute(i)),
        (_, Some((_, i))) => Some(Named::Mapping(i)),
        (Some((_, i)), None) => Some(Named::Attribute(i)),
        (None, None) => None,
    }
}

pub(super) fn parse_row<T: serde::de::DeserializeOwned>(
    fields: Map<String, Value>,
    to_json: fn(&Map<String, Value>) -> Value,
) -> Row<T> {
    match serde_json::from_value::<T>(to_json(&fields)) {
        Ok(parsed) => Row {
            fields,
            parsed: Some(parsed),
            errors: Vec::new(),
        },
        Err(e) => Row {
            fields,
            parsed: None,
            errors: vec![e.to_string()],
        },
    }
}

/// An attribute row as the configuration writes it. Checkbox fields are present when ticked.
pub(super) fn attribute_json(f: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for k in ["claim", "source", "type", "on_missing"] {
        if let Some(v) = f.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    if let Some(Value::String(name)) = f.get("display_name")
        && !name.is_empty()
    {
        out.insert("display_name".into(), Value::String(name.clone()));
    }
    out.insert("required".into(), Value::Bool(f.contains_key("required")));
    Value::Object(out)
}

/// A mapping row as the configuration writes it: empty `from`, `expr` and `when` are left out, and
/// the hidden `kept` field brings back what the page does not edit (transforms, `on_missing`).
pub(super) fn mapping_json(f: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for k in ["from", "expr", "when", "to", "merge"] {
        if let Some(v) = f.get(k).filter(|v| v.as_str() != Some("") || k == "to") {
            out.insert(k.into(), v.clone());
        }
    }
    if let Some(Value::Object(kept)) = f
        .get("kept")
        .and_then(Value::as_str)
        .and_then(|k| serde_json::from_str::<Value>(k).ok())
    {
        for (k, v) in kept {
            if k == "transform" || k == "on_missing" {
                out.insert(k, v);
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_lands_on_the_row_its_message_names_first() {
        let row = |m: &str| match first_row(m) {
            Some(Named::Attribute(i)) => format!("attribute {i}"),
            Some(Named::Mapping(i)) => format!("mapping {i}"),
            None => "page".into(),
        };
        assert_eq!(
            row("upstreams[0]: attributes[2] (claim `x`): bad"),
            "attribute 2"
        );
        assert_eq!(
            row("upstreams[1]: mappings[1] (`a` → `sub`): reads attributes[3], which…"),
            "mapping 1"
        );
        assert_eq!(row("upstreams[0].auth_context_ttl: not a duration"), "page");
    }
}
