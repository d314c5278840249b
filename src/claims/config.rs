//! The admin-facing shape of claim mapping: attributes, mappings and the AMR override of one upstream.
//!
//! These types are what an upstream's TOML table deserializes into. Typos must not pass silently, so each
//! attribute and mapping refuses unknown keys. [`UpstreamMapping`] itself does not, so that the upstream's own
//! settings can sit beside it in the same table (`#[serde(flatten)]`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::{ClaimPath, Expression, Transform};

/// Where an upstream claim is read from. The declaration order is the order sources apply in.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The upstream's ID token (OIDC Core §2).
    IdToken,
    /// The upstream's userinfo response (OIDC Core §5.3).
    Userinfo,
    /// The upstream's access token, when it is a JWT.
    AccessToken,
    /// Computed by a mapping's `expr` (never an attribute's source).
    Computed,
}

impl Source {
    /// Sources in the order their values are applied: ID token, then userinfo, then access token.
    pub const APPLY_ORDER: [Source; 3] = [Source::IdToken, Source::Userinfo, Source::AccessToken];

    /// The config spelling, e.g. `id_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::IdToken => "id_token",
            Source::Userinfo => "userinfo",
            Source::AccessToken => "access_token",
            Source::Computed => "computed",
        }
    }

    /// How the source reads in a sentence for end users, e.g. "ID token".
    pub fn describe(self) -> &'static str {
        match self {
            Source::IdToken => "ID token",
            Source::Userinfo => "userinfo response",
            Source::AccessToken => "access token",
            Source::Computed => "computed value",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON type an attribute must have; values that do not fit are dropped (or fail the login when required).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AttrType {
    /// A JSON string.
    String,
    /// Any JSON number.
    Number,
    /// A whole number; `3.0` fits, `3.5` does not.
    Integer,
    /// `true` or `false`; the string `"true"` does not fit.
    Boolean,
    /// A list of strings; a lone string becomes a one-element list.
    StringArray,
    /// A JSON object.
    Object,
    /// Anything but `null`.
    #[default]
    Any,
}

impl AttrType {
    /// The config spelling, e.g. `string_array`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Number => "number",
            AttrType::Integer => "integer",
            AttrType::Boolean => "boolean",
            AttrType::StringArray => "string_array",
            AttrType::Object => "object",
            AttrType::Any => "any",
        }
    }

    /// How the type reads in a sentence, e.g. "a list of strings".
    pub fn describe(self) -> &'static str {
        match self {
            AttrType::String => "a string",
            AttrType::Number => "a number",
            AttrType::Integer => "a whole number",
            AttrType::Boolean => "true or false",
            AttrType::StringArray => "a list of strings",
            AttrType::Object => "an object",
            AttrType::Any => "any value",
        }
    }
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do when the upstream did not send an attribute's claim at all (or sent `null`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    /// The attribute is absent for this login.
    #[default]
    Clear,
    /// Reuse what this attribute's mappings produced in the user's previous context.
    Keep,
    /// Fail the login.
    Fail,
}

/// One upstream claim Herald reads, with its expected type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    /// The claim's path in the source, e.g. `https://example\.com/roles`.
    #[schema(value_type = String)]
    pub claim: ClaimPath,
    /// Which upstream artefact carries the claim.
    pub source: Source,
    /// The type the value must have.
    #[serde(rename = "type", default)]
    pub ty: AttrType,
    /// A label for admin pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Missing or ill-typed values fail the login instead of being dropped.
    #[serde(default)]
    pub required: bool,
    /// What to do when the claim is missing and the attribute is not required.
    #[serde(default)]
    pub on_missing: OnMissing,
}

/// How a mapping combines its value with what the context already holds at the target.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Merge {
    /// Overwrite: the last value applied wins.
    #[default]
    Set,
    /// Write only when the target is absent or empty: the first value applied wins.
    SetIfEmpty,
    /// Union for lists (first-seen order; strings count as one-element lists), sum for numbers.
    Add,
    /// Sum of numbers only: a value that is not a number is not added (a warning).
    Sum,
    /// Overwrite, or remove the target when no source of this mapping has a non-empty value.
    SetOrClear,
}

impl Merge {
    /// The config spelling, e.g. `set_if_empty`.
    pub fn as_str(self) -> &'static str {
        match self {
            Merge::Set => "set",
            Merge::SetIfEmpty => "set_if_empty",
            Merge::Add => "add",
            Merge::Sum => "sum",
            Merge::SetOrClear => "set_or_clear",
        }
    }
}

impl fmt::Display for Merge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes a value at `to` in the authentication context: the value of every attribute whose claim
/// is `from`, or what the CEL expression `expr` computes (exactly one of the two).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// An attribute's claim path (matching the attribute in every source it is declared for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub from: Option<ClaimPath>,
    /// A CEL expression over `id_token`, `userinfo`, `access_token` and `context` whose result is
    /// the value; `null` counts as missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub expr: Option<Expression>,
    /// The path in the authentication context.
    #[schema(value_type = String)]
    pub to: ClaimPath,
    /// How the value combines with what is already there.
    #[serde(default)]
    pub merge: Merge,
    /// A CEL condition over the same variables; when it is false the mapping is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub when: Option<Expression>,
    /// Steps applied to the value before it is merged (see [`Transform`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub transform: Vec<Transform>,
    /// For `expr`: what an evaluation error, a failed transform or a `null` result does
    /// (a `from` mapping's attribute has its own).
    #[serde(default, skip_serializing_if = "is_clear")]
    pub on_missing: OnMissing,
}

fn is_clear(o: &OnMissing) -> bool {
    *o == OnMissing::Clear
}

impl Mapping {
    /// A plain copy from `from` to `to`.
    pub fn copy(from: ClaimPath, to: ClaimPath, merge: Merge) -> Self {
        Self {
            from: Some(from),
            expr: None,
            to,
            merge,
            when: None,
            transform: Vec::new(),
            on_missing: OnMissing::Clear,
        }
    }

    /// What the value is read from, as lineage and origins spell it: the `from` path, or the
    /// expression as written.
    pub fn input(&self) -> &str {
        match (&self.from, &self.expr) {
            (Some(from), _) => from.canonical_str(),
            (None, Some(expr)) => expr.source(),
            (None, None) => "",
        }
    }

    /// How lineage and origins name this mapping: `from → to`.
    pub fn describe(&self) -> String {
        let mut out = self.input().to_owned();
        out.push_str(" → ");
        self.to.write_canonical(&mut out);
        out
    }

    /// [`describe`](Self::describe), then the condition and the transforms, e.g.
    /// `groups → teams (when id_token.email_verified; lowercase)`.
    pub fn describe_with_steps(&self) -> String {
        let mut out = self.describe();
        let steps: Vec<String> = self
            .when
            .iter()
            .map(|w| format!("when {}", w.source()))
            .chain(self.transform.iter().map(Transform::describe))
            .collect();
        if !steps.is_empty() {
            out.push_str(" (");
            out.push_str(&steps.join("; "));
            out.push(')');
        }
        out
    }
}

/// Everything one upstream contributes to claim mapping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpstreamMapping {
    /// Upstream claims Herald reads.
    #[serde(default)]
    pub attributes: Vec<Attribute>,
    /// Where those claims land in the context; applied after the standard OIDC claims.
    #[serde(default)]
    pub mappings: Vec<Mapping>,
    /// Authentication methods to report instead of the upstream's `amr` (`"mfa"` or `["pwd", "mfa"]`).
    #[serde(
        default,
        deserialize_with = "string_or_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub amr: Option<Vec<String>>,
}

fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(
        untagged,
        expecting = "a string or a list of strings, such as \"mfa\" or [\"pwd\", \"mfa\"]"
    )]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_defaults_to_any_type_optional_and_clear() {
        let a: Attribute = toml::from_str(
            r#"claim = 'https://example\.com/roles'
               source = "id_token""#,
        )
        .unwrap();
        assert_eq!(a.claim.segments(), ["https://example.com/roles"]);
        assert_eq!(a.ty, AttrType::Any);
        assert!(!a.required);
        assert_eq!(a.on_missing, OnMissing::Clear);
    }

    #[test]
    fn attribute_reads_type_under_its_config_name() {
        let a: Attribute = toml::from_str(
            r#"claim = "groups"
               source = "userinfo"
               type = "string_array"
               required = true
               on_missing = "fail"
               display_name = "Groups""#,
        )
        .unwrap();
        assert_eq!(a.ty, AttrType::StringArray);
        assert_eq!(a.on_missing, OnMissing::Fail);
        assert_eq!(a.display_name.as_deref(), Some("Groups"));
    }

    #[test]
    fn attribute_refuses_unknown_keys() {
        let err = toml::from_str::<Attribute>(
            r#"claim = "a"
               source = "id_token"
               requird = true"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("requird"), "{err}");
    }

    #[test]
    fn bad_claim_path_in_config_reports_the_parser_error() {
        let err = toml::from_str::<Mapping>(
            r#"from = "a..b"
                                               to = "x""#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("column 3: empty segment"), "{err}");
    }

    #[test]
    fn amr_accepts_a_string_or_a_list() {
        let one: UpstreamMapping = toml::from_str(r#"amr = "mfa""#).unwrap();
        assert_eq!(one.amr, Some(vec!["mfa".to_owned()]));
        let many: UpstreamMapping = toml::from_str(r#"amr = ["pwd", "mfa"]"#).unwrap();
        assert_eq!(many.amr, Some(vec!["pwd".to_owned(), "mfa".to_owned()]));
        let none: UpstreamMapping = toml::from_str("").unwrap();
        assert_eq!(none.amr, None);
        assert!(toml::from_str::<UpstreamMapping>("amr = 3").is_err());
    }

    #[test]
    fn mapping_merge_defaults_to_set() {
        let m: Mapping = toml::from_str(
            r#"from = "a"
               to = "b""#,
        )
        .unwrap();
        assert_eq!(m.merge, Merge::Set);
        assert_eq!(m.describe(), "a → b");
    }

    #[test]
    fn a_mapping_may_compute_its_value_under_a_condition() {
        let m: Mapping = toml::from_str(
            r#"expr = "id_token.groups.map(g, 'team:' + g)"
               when = "id_token.email_verified"
               to = "teams"
               on_missing = "keep"
               transform = ["lowercase"]"#,
        )
        .unwrap();
        assert!(m.from.is_none());
        assert_eq!(m.describe(), "id_token.groups.map(g, 'team:' + g) → teams");
        assert_eq!(m.on_missing, OnMissing::Keep);
        let err = toml::from_str::<Mapping>(
            r#"expr = "id_token.groups.map(g, lower(g))"
               to = "teams""#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown function `lower`"),
            "{err}"
        );
    }
}
