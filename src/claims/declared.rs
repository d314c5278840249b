//! The declared authentication context (issue 18): `[[context]]` entries name the attributes
//! the context may hold, with a type and a description, as Cloudentity's context schema does.
//!
//! ```toml
//! strict_context = true          # a mapping to an undeclared path is an error, not a warning
//!
//! [[context]]
//! path = "teams"
//! type = "string_array"
//! description = "The user's teams, from the IdP's groups"
//! ```
//!
//! Declaring is opt-in: with no entry and without `strict_context`, nothing is checked. The
//! standard OIDC claims the built-in mapping writes are declared by Herald itself.

use serde::{Deserialize, Serialize};

use super::mapping::STANDARD_CLAIMS;
use super::{AttrType, ClaimPath, UpstreamMapping};

/// One `[[context]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextDecl {
    /// The attribute's path in the context, e.g. `org.tenant`.
    #[schema(value_type = String)]
    pub path: ClaimPath,
    /// The type its values have.
    #[serde(rename = "type", default)]
    pub ty: AttrType,
    /// What it holds, for admins.
    #[serde(default)]
    pub description: String,
}

/// What the check found about one mapping: `strict` says whether it stops Herald.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub message: String,
    pub strict: bool,
}

/// Whether `to` is declared: a declared path equal to it or above it (a declared object holds
/// what is written inside it), or one below it (writing an object fills declared parts).
fn declares(decls: &[ContextDecl], to: &ClaimPath) -> Option<AttrType> {
    if let Some(&(_, ty)) = STANDARD_CLAIMS
        .iter()
        .find(|(name, _)| to.segments().len() == 1 && to.first() == *name)
    {
        return Some(ty);
    }
    decls
        .iter()
        .find(|d| d.path == *to)
        .map(|d| d.ty)
        .or_else(|| {
            decls
                .iter()
                .any(|d| to.starts_with(&d.path) || d.path.starts_with(to))
                .then_some(AttrType::Any)
        })
}

/// Checks upstream `index`'s mappings against the declared context. Nothing is checked when
/// nothing is declared and `strict` is off.
pub fn check_mappings(
    decls: &[ContextDecl],
    strict: bool,
    index: usize,
    cfg: &UpstreamMapping,
) -> Vec<Finding> {
    if decls.is_empty() && !strict {
        return Vec::new();
    }
    let mut found = Vec::new();
    for (j, m) in cfg.mappings.iter().enumerate() {
        // `ext.*` is declared when `ext` is.
        let to = if m.to.is_wildcard_target() {
            let parent = &m.to.segments()[..m.to.segments().len() - 1];
            match ClaimPath::from_segments(parent.to_vec()) {
                Some(p) => p,
                None => continue,
            }
        } else {
            m.to.clone()
        };
        let key = format!(
            "upstreams[{index}].mappings[{j}] (→ `{}`)",
            m.to.canonical()
        );
        match declares(decls, &to) {
            None => found.push(Finding {
                message: format!(
                    "{key}: writes `{}`, which no [[context]] entry declares; declare it (path, \
                     type, description) or fix the mapping's `to`",
                    to.canonical()
                ),
                strict,
            }),
            Some(declared) if declared != AttrType::Any => {
                let attr_ty = m.from.as_ref().and_then(|from| {
                    cfg.attributes
                        .iter()
                        .find(|a| a.claim == *from)
                        .map(|a| a.ty)
                });
                if let Some(ty) = attr_ty.filter(|ty| *ty != AttrType::Any && *ty != declared) {
                    found.push(Finding {
                        message: format!(
                            "{key}: copies an attribute of type `{ty}` into `{}`, declared as \
                             `{declared}`",
                            to.canonical()
                        ),
                        strict: false,
                    });
                }
            }
            Some(_) => {}
        }
    }
    found
}

/// Problems with the declarations themselves: a path declared twice.
pub fn check_declarations(decls: &[ContextDecl]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, d) in decls.iter().enumerate() {
        if decls[..i].iter().any(|e| e.path == d.path) {
            problems.push(format!(
                "context[{i}].path: `{}` is declared twice",
                d.path.canonical()
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        context: Vec<ContextDecl>,
        mappings: UpstreamMapping,
    }

    fn doc(text: &str) -> Doc {
        toml::from_str(text).unwrap()
    }

    const MAPPINGS: &str = r#"
        [[mappings.attributes]]
        claim = "groups"
        source = "id_token"
        type = "string_array"
        [[mappings.mappings]]
        from = "groups"
        to = "teams"
        [[mappings.mappings]]
        from = "groups"
        to = "org.groups"
        [[mappings.mappings]]
        expr = "id_token.email"
        to = "email"
    "#;

    #[test]
    fn undeclared_targets_are_found_and_strict_makes_them_errors() {
        let d = doc(&format!(
            r#"
            [[context]]
            path = "org"
            type = "object"
            description = "The organisation"
            {MAPPINGS}
        "#
        ));
        let found = check_mappings(&d.context, false, 0, &d.mappings);
        // `org.groups` is inside a declared object; `email` is a standard claim.
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .message
                .contains("writes `teams`, which no [[context]] entry declares")
        );
        assert!(!found[0].strict);
        assert!(check_mappings(&d.context, true, 0, &d.mappings)[0].strict);
        // Nothing declared, not strict: nothing checked.
        assert!(check_mappings(&[], false, 0, &d.mappings).is_empty());
    }

    #[test]
    fn a_type_other_than_the_declared_one_is_a_warning() {
        let d = doc(&format!(
            r#"
            [[context]]
            path = "teams"
            type = "string"
            [[context]]
            path = "org"
            {MAPPINGS}
        "#
        ));
        let found = check_mappings(&d.context, true, 0, &d.mappings);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .message
                .contains("type `string_array` into `teams`, declared as `string`")
        );
        assert!(!found[0].strict);
        let twice = doc(&format!(
            r#"
            [[context]]
            path = "org"
            [[context]]
            path = "org"
            {MAPPINGS}
        "#
        ));
        assert_eq!(
            check_declarations(&twice.context),
            ["context[1].path: `org` is declared twice"]
        );
    }
}
