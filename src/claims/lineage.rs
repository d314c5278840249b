//! Lineage and preview: the admin's answers to "where does this token claim come from?" and "what would
//! this login produce?".
//!
//! Lineage is computed from config alone: for every claim a scope can release, each upstream attribute
//! and mapping (standard or explicit) that can write it. Preview runs the real [`build_traced`] and
//! [`release`](fn@release) on sample upstream claims, so what it shows is what a login would mint.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::mapping::{STANDARD_CLAIMS, STANDARD_MAPPING, STANDARD_SOURCES};
use super::{
    AttrType, AuthContext, Merge, ScopeCatalog, Source, Step, TokenKind, UpstreamClaims,
    UpstreamMapping, Warning, build_traced, release,
};

/// One way a releasable token claim can get its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineageRow {
    /// The released claim's path in the token, canonical.
    pub claim: String,
    /// The scope that releases it.
    pub scope: String,
    /// The tokens the scope releases it to.
    pub tokens: Vec<TokenKind>,
    /// Where the value comes from; `None` when no upstream writes it.
    #[serde(flatten)]
    pub origin: Option<LineageOrigin>,
    /// Something the admin should know about this row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// In the OpenAPI document the origin's fields, flattened into the row, are optional properties
/// of the row: all there, or all absent when no upstream writes the claim. (Derived, the schema
/// would say that the row is an origin or `null`, which no row is.)
impl utoipa::PartialSchema for LineageRow {
    fn schema() -> RefOr<Schema> {
        let text = |d: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(d))
        };
        let tokens = ArrayBuilder::new().items(Ref::from_schema_name(TokenKind::name()));
        let mut row = ObjectBuilder::new()
            .description(Some(
                "One way a releasable token claim can get its value; the origin's fields are \
                 there when an upstream writes the claim.",
            ))
            .property(
                "claim",
                text("The released claim's path in the token, canonical."),
            )
            .property("scope", text("The scope that releases it."))
            .property(
                "tokens",
                tokens.description(Some("The tokens the scope releases it to.")),
            )
            .property(
                "note",
                text("Something the admin should know about this row."),
            )
            .required("claim")
            .required("scope")
            .required("tokens");
        if let RefOr::T(Schema::Object(origin)) = LineageOrigin::schema() {
            for (name, property) in origin.properties {
                row = row.property(name, property);
            }
        }
        RefOr::T(Schema::Object(row.build()))
    }
}

impl ToSchema for LineageRow {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((TokenKind::name().into(), TokenKind::schema()));
        <LineageOrigin as ToSchema>::schemas(schemas);
    }
}

/// The upstream end of a lineage row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LineageOrigin {
    /// The upstream's id.
    pub upstream: String,
    /// Where the upstream claim is read.
    pub source: Source,
    /// The upstream claim, canonical.
    pub upstream_claim: String,
    /// The attribute's type (the standard claims have fixed types).
    pub attribute_type: AttrType,
    /// `standard`, or the mapping as `from → to`, with its condition and transforms in
    /// parentheses.
    pub mapping: String,
    /// The mapping's merge strategy.
    pub merge: Merge,
}

const NOTE_ACCESS_TOKEN: &str = "needs a JWT access token; an opaque token yields no claims";
const NOTE_USERINFO: &str = "read only when the upstream's userinfo is fetched";
const NOTE_UNMAPPED: &str = "no upstream maps this claim; it is never released";

/// Every releasable token claim with each origin it can have, in scope-name order, then in the order
/// each scope lists its claims, then by upstream, standard mapping first, then mappings in config order.
pub fn lineage(upstreams: &[(&str, &UpstreamMapping)], catalog: &ScopeCatalog) -> Vec<LineageRow> {
    let mut rows = Vec::new();
    for (scope, def) in catalog.iter() {
        for entry in &def.claims {
            let released = entry.claim();
            let row = |origin: Option<LineageOrigin>, note: Option<&str>| LineageRow {
                claim: released.canonical(),
                scope: scope.to_owned(),
                tokens: entry.tokens().to_vec(),
                origin,
                note: note.map(str::to_owned),
            };
            let before = rows.len();
            for &(upstream, cfg) in upstreams {
                for &(name, ty) in STANDARD_CLAIMS {
                    if released.first() != name {
                        continue;
                    }
                    for source in STANDARD_SOURCES {
                        let origin = LineageOrigin {
                            upstream: upstream.to_owned(),
                            source,
                            upstream_claim: name.to_owned(),
                            attribute_type: ty,
                            mapping: STANDARD_MAPPING.to_owned(),
                            merge: Merge::Set,
                        };
                        let note = (source == Source::Userinfo).then_some(NOTE_USERINFO);
                        rows.push(row(Some(origin), note));
                    }
                }
                for mapping in &cfg.mappings {
                    // Writing `org` also writes `org.tenant`, and writing `org.tenant` fills part of `org`.
                    if !released.starts_with(&mapping.to) && !mapping.to.starts_with(released) {
                        continue;
                    }
                    let Some(from) = &mapping.from else {
                        // A computed mapping: its one origin is the expression.
                        let origin = LineageOrigin {
                            upstream: upstream.to_owned(),
                            source: Source::Computed,
                            upstream_claim: mapping.input().to_owned(),
                            attribute_type: AttrType::Any,
                            mapping: mapping.describe_with_steps(),
                            merge: mapping.merge,
                        };
                        rows.push(row(Some(origin), None));
                        continue;
                    };
                    let mut attrs: Vec<_> =
                        cfg.attributes.iter().filter(|a| a.claim == *from).collect();
                    attrs.sort_by_key(|a| a.source);
                    for attr in attrs {
                        let origin = LineageOrigin {
                            upstream: upstream.to_owned(),
                            source: attr.source,
                            upstream_claim: attr.claim.canonical(),
                            attribute_type: attr.ty,
                            mapping: mapping.describe_with_steps(),
                            merge: mapping.merge,
                        };
                        let note = match attr.source {
                            Source::AccessToken => Some(NOTE_ACCESS_TOKEN),
                            Source::Userinfo => Some(NOTE_USERINFO),
                            Source::IdToken | Source::Computed => None,
                        };
                        rows.push(row(Some(origin), note));
                    }
                }
            }
            if rows.len() == before {
                rows.push(row(None, Some(NOTE_UNMAPPED)));
            }
        }
    }
    rows
}

/// Lineage as a plain text table with aligned columns, for the CLI.
pub fn render_lineage_table(rows: &[LineageRow]) -> String {
    const HEADER: [&str; 10] = [
        "CLAIM",
        "SCOPE",
        "TOKENS",
        "UPSTREAM",
        "SOURCE",
        "UPSTREAM CLAIM",
        "TYPE",
        "MAPPING",
        "MERGE",
        "NOTE",
    ];
    let cells: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            let tokens = r
                .tokens
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(",");
            let o = r.origin.as_ref();
            let or_dash =
                |f: &dyn Fn(&LineageOrigin) -> String| o.map_or_else(|| "-".to_owned(), f);
            [
                r.claim.clone(),
                r.scope.clone(),
                tokens,
                or_dash(&|o| o.upstream.clone()),
                or_dash(&|o| o.source.to_string()),
                or_dash(&|o| o.upstream_claim.clone()),
                or_dash(&|o| o.attribute_type.to_string()),
                or_dash(&|o| o.mapping.clone()),
                or_dash(&|o| o.merge.to_string()),
                r.note.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |row: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, w) in row.zip(widths) {
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut HEADER.iter().copied());
    for row in &cells {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// What one login would produce: the context, each token's released claims, and any problems.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// The built context, unless mapping failed.
    pub context: Option<AuthContext>,
    /// Claims the granted scopes release into the ID token (besides those Herald always sets).
    #[schema(value_type = Object)]
    pub id_token: Map<String, Value>,
    /// Claims the userinfo response would carry.
    #[schema(value_type = Object)]
    pub userinfo: Map<String, Value>,
    /// Claims the granted scopes release into the access token.
    #[schema(value_type = Object)]
    pub access_token: Map<String, Value>,
    /// Warnings raised while building the context.
    pub warnings: Vec<Warning>,
    /// What each mapping's condition, expression and transforms made of their inputs, in order.
    pub steps: Vec<Step>,
    /// The message the user would see if the login failed.
    pub error: Option<String>,
    /// What this preview lets pass but a real login or a client would meet: a userinfo answer
    /// a login refuses, a granted scope nobody defined, a mapped claim no scope releases.
    pub notes: Vec<String>,
}

/// Runs a login's claim mapping and release on sample claims, without failing: errors land in the preview.
pub fn preview(
    upstream_id: &str,
    cfg: &UpstreamMapping,
    catalog: &ScopeCatalog,
    claims: &UpstreamClaims,
    previous: Option<&AuthContext>,
    scopes: &[String],
) -> Preview {
    let notes = notes(cfg, catalog, claims, scopes);
    match build_traced(upstream_id, cfg, claims, previous) {
        Ok(built) => Preview {
            steps: built.steps,
            id_token: release(&built.context, catalog, scopes, TokenKind::IdToken),
            userinfo: release(&built.context, catalog, scopes, TokenKind::Userinfo),
            access_token: release(&built.context, catalog, scopes, TokenKind::AccessToken),
            context: Some(built.context),
            warnings: built.warnings,
            error: None,
            notes,
        },
        Err(e) => Preview {
            context: None,
            id_token: Map::new(),
            userinfo: Map::new(),
            access_token: Map::new(),
            warnings: Vec::new(),
            steps: Vec::new(),
            error: Some(e.to_string()),
            notes,
        },
    }
}

/// What a preview cannot show by running the mapping: see [`Preview::notes`].
fn notes(
    cfg: &UpstreamMapping,
    catalog: &ScopeCatalog,
    claims: &UpstreamClaims,
    scopes: &[String],
) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(info) = &claims.userinfo {
        let (id, ui) = (claims.id_token.get("sub"), info.get("sub"));
        if ui.is_none() || ui != id {
            notes.push(
                "a real login refuses this answer: the userinfo sub is missing or differs from \
                 the ID token's (OIDC Core §5.3.2)"
                    .to_string(),
            );
        }
    }
    for s in scopes {
        if catalog.get(s).is_none() {
            notes.push(format!(
                "scope “{s}” is not defined, so no client can be granted it"
            ));
        }
    }
    for m in &cfg.mappings {
        let to = m.to.segments();
        let released = catalog.iter().any(|(_, def)| {
            def.claims.iter().any(|e| {
                let c = e.claim().segments();
                c.starts_with(to) || to.starts_with(c)
            })
        });
        if !released {
            notes.push(format!(
                "“{}” is mapped, but no scope releases it, so it reaches no token",
                m.to.canonical()
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::AccessTokenClaims;
    use serde_json::json;

    /// An Auth0-like upstream: namespaced roles and groups in the ID token, an app_metadata object whose
    /// tenant lands at `org.tenant`, a userinfo-only claim and permissions from a JWT access token.
    fn auth0() -> UpstreamMapping {
        toml::from_str(
            r#"
            amr = ["pwd", "mfa"]

            [[attributes]]
            claim = 'https://example\.com/roles'
            source = "id_token"
            type = "string_array"

            [[attributes]]
            claim = '["https://example.com/groups"]'
            source = "id_token"
            type = "string_array"

            [[attributes]]
            claim = 'https://example\.com/app_metadata.tenant'
            source = "id_token"
            type = "string"
            required = true

            [[attributes]]
            claim = "https://example\\.com/department"
            source = "userinfo"
            type = "string"

            [[attributes]]
            claim = "permissions"
            source = "access_token"
            type = "string_array"

            [[mappings]]
            from = 'https://example\.com/roles'
            to = "roles"

            [[mappings]]
            from = 'https://example\.com/groups'
            to = "groups"
            merge = "add"

            [[mappings]]
            from = 'https://example\.com/app_metadata.tenant'
            to = "org.tenant"

            [[mappings]]
            from = 'https://example\.com/department'
            to = "org.department"
            merge = "set_or_clear"

            [[mappings]]
            from = "permissions"
            to = "permissions"
        "#,
        )
        .unwrap()
    }

    fn catalog() -> ScopeCatalog {
        ScopeCatalog::new(
            toml::from_str(
                r#"
                [org]
                description = "Your organisation and roles"
                claims = ["org", "roles", "groups", { claim = "permissions", to = ["access_token"] }]

                [tenant]
                description = "Your tenant"
                claims = [{ claim = "org.tenant", to = ["id_token", "access_token"] }, "unmapped"]
            "#,
            )
            .unwrap(),
        )
        .unwrap()
    }

    fn login() -> UpstreamClaims {
        UpstreamClaims {
            id_token: json!({
                "sub": "auth0|42",
                "email": "ann@example.com",
                "email_verified": true,
                "name": "Ann",
                "https://example.com/roles": "admin",
                "https://example.com/groups": ["eng", "ops"],
                "https://example.com/app_metadata": {"tenant": "acme", "plan": "pro"},
                "amr": ["pwd"],
            })
            .as_object()
            .unwrap()
            .clone(),
            userinfo: Some(
                json!({"sub": "auth0|42", "https://example.com/department": "R&D", "locale": "en-NZ"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            access_token: AccessTokenClaims::Jwt(
                json!({"permissions": ["read:reports"]}).as_object().unwrap().clone(),
            ),
        }
    }

    fn scopes(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lineage_traces_a_nested_tenant_back_to_the_app_metadata_claim() {
        let cfg = auth0();
        let rows = lineage(&[("auth0", &cfg)], &catalog());
        let tenant: Vec<_> = rows.iter().filter(|r| r.claim == "org.tenant").collect();
        assert_eq!(tenant.len(), 1);
        let origin = tenant[0].origin.as_ref().unwrap();
        assert_eq!(tenant[0].scope, "tenant");
        assert_eq!(
            tenant[0].tokens,
            [TokenKind::IdToken, TokenKind::AccessToken]
        );
        assert_eq!(
            origin.upstream_claim,
            r"https://example\.com/app_metadata.tenant"
        );
        assert_eq!(origin.source, Source::IdToken);
        assert_eq!(origin.attribute_type, AttrType::String);
        assert_eq!(
            origin.mapping,
            r"https://example\.com/app_metadata.tenant → org.tenant"
        );
        assert_eq!(origin.merge, Merge::Set);
    }

    #[test]
    fn lineage_of_a_released_parent_lists_every_mapping_into_it() {
        let cfg = auth0();
        let rows = lineage(&[("auth0", &cfg)], &catalog());
        let org: Vec<_> = rows
            .iter()
            .filter(|r| r.claim == "org")
            .map(|r| r.origin.as_ref().unwrap().mapping.as_str())
            .collect();
        assert_eq!(
            org,
            [
                r"https://example\.com/app_metadata.tenant → org.tenant",
                r"https://example\.com/department → org.department"
            ]
        );
        let department = rows
            .iter()
            .find(|r| {
                r.origin
                    .as_ref()
                    .is_some_and(|o| o.source == Source::Userinfo && r.claim == "org")
            })
            .unwrap();
        assert_eq!(department.origin.as_ref().unwrap().merge, Merge::SetOrClear);
        assert_eq!(department.note.as_deref(), Some(NOTE_USERINFO));
    }

    #[test]
    fn lineage_notes_that_access_token_claims_need_a_jwt() {
        let cfg = auth0();
        let rows = lineage(&[("auth0", &cfg)], &catalog());
        let permissions = rows.iter().find(|r| r.claim == "permissions").unwrap();
        assert_eq!(permissions.tokens, [TokenKind::AccessToken]);
        assert_eq!(
            permissions.origin.as_ref().unwrap().source,
            Source::AccessToken
        );
        assert_eq!(permissions.note.as_deref(), Some(NOTE_ACCESS_TOKEN));
    }

    #[test]
    fn lineage_shows_standard_claims_from_both_sources_and_unmapped_claims() {
        let cfg = auth0();
        let rows = lineage(&[("auth0", &cfg)], &catalog());
        let email: Vec<_> = rows.iter().filter(|r| r.claim == "email").collect();
        assert_eq!(email.len(), 2);
        assert!(email.iter().all(|r| r.scope == "email"
            && r.origin.as_ref().unwrap().mapping == "standard"
            && r.tokens == [TokenKind::IdToken, TokenKind::Userinfo]));
        let unmapped = rows.iter().find(|r| r.claim == "unmapped").unwrap();
        assert!(unmapped.origin.is_none());
        assert_eq!(unmapped.note.as_deref(), Some(NOTE_UNMAPPED));
        assert!(!rows.iter().any(|r| r.claim == "sub"));
    }

    #[test]
    fn lineage_rows_serialize_flat() {
        let cfg = auth0();
        let rows = lineage(&[("auth0", &cfg)], &catalog());
        let json = serde_json::to_value(rows.iter().find(|r| r.claim == "roles").unwrap()).unwrap();
        assert_eq!(
            json,
            json!({
                "claim": "roles", "scope": "org", "tokens": ["id_token", "userinfo"],
                "upstream": "auth0", "source": "id_token", "upstream_claim": r"https://example\.com/roles",
                "attribute_type": "string_array", "mapping": r"https://example\.com/roles → roles",
                "merge": "set"
            })
        );
    }

    #[test]
    fn lineage_table_aligns_columns() {
        let cfg = auth0();
        let rows = lineage(&[("auth0", &cfg)], &catalog());
        let table = render_lineage_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), rows.len() + 1);
        assert!(lines[0].starts_with("CLAIM"));
        let scope_column = lines[0].find("SCOPE").unwrap();
        let tenant = lines.iter().find(|l| l.starts_with("org.tenant ")).unwrap();
        assert_eq!(&tenant[scope_column..scope_column + 6], "tenant");
        let unmapped = lines.iter().find(|l| l.starts_with("unmapped ")).unwrap();
        assert!(unmapped.contains(" - ") && unmapped.ends_with(NOTE_UNMAPPED));
    }

    #[test]
    fn preview_notes_what_a_real_login_or_a_client_would_meet() {
        let clean = preview(
            "auth0",
            &auth0(),
            &catalog(),
            &login(),
            None,
            &scopes(&["openid"]),
        );
        assert_eq!(clean.notes, Vec::<String>::new());

        let mut other_user = login();
        other_user
            .userinfo
            .as_mut()
            .unwrap()
            .insert("sub".into(), json!("auth0|43"));
        let mut cfg = auth0();
        cfg.mappings.push(
            toml::from_str(
                r#"from = 'https://example\.com/roles'
to = "nowhere""#,
            )
            .unwrap(),
        );
        let p = preview(
            "auth0",
            &cfg,
            &catalog(),
            &other_user,
            None,
            &scopes(&["openid", "bogus"]),
        );
        let all = p.notes.join("\n");
        assert!(all.contains("userinfo sub is missing or differs"), "{all}");
        assert!(all.contains("scope “bogus” is not defined"), "{all}");
        assert!(
            all.contains("“nowhere” is mapped, but no scope releases it"),
            "{all}"
        );
        assert_eq!(p.notes.len(), 3, "{all}");
    }

    #[test]
    fn preview_shows_what_each_token_would_carry() {
        let p = preview(
            "auth0",
            &auth0(),
            &catalog(),
            &login(),
            None,
            &scopes(&["openid", "email", "org"]),
        );
        assert_eq!(p.error, None);
        assert_eq!(
            Value::Object(p.id_token.clone()),
            json!({
                "email": "ann@example.com", "email_verified": true,
                "org": {"tenant": "acme", "department": "R&D"},
                "roles": ["admin"], "groups": ["eng", "ops"]
            })
        );
        assert_eq!(p.userinfo, p.id_token);
        assert_eq!(
            Value::Object(p.access_token),
            json!({"permissions": ["read:reports"]})
        );
        let ctx = p.context.unwrap();
        assert_eq!(ctx.amr, Some(vec!["pwd".to_owned(), "mfa".to_owned()]));
        assert_eq!(ctx.attributes["locale"], "en-NZ");
        assert_eq!(
            ctx.origins["org.tenant"][0].claim,
            r"https://example\.com/app_metadata.tenant"
        );
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn preview_with_an_opaque_access_token_warns_and_releases_no_permissions() {
        let mut claims = login();
        claims.access_token = AccessTokenClaims::Opaque;
        let p = preview(
            "auth0",
            &auth0(),
            &catalog(),
            &claims,
            None,
            &scopes(&["org"]),
        );
        assert!(p.access_token.is_empty());
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(p.warnings[0].path, "permissions");
        assert!(p.warnings[0].message.contains("opaque"));
    }

    #[test]
    fn preview_of_a_failing_login_shows_the_users_error_message() {
        let mut claims = login();
        claims
            .id_token
            .shift_remove("https://example.com/app_metadata");
        let p = preview(
            "auth0",
            &auth0(),
            &catalog(),
            &claims,
            None,
            &scopes(&["org"]),
        );
        assert!(p.context.is_none() && p.id_token.is_empty());
        let error = p.error.unwrap();
        assert!(
            error.contains(r"`https://example\.com/app_metadata.tenant`"),
            "{error}"
        );
        assert!(
            error.contains("ID token") && error.contains("An administrator must fix"),
            "{error}"
        );
    }

    #[test]
    fn auth0_like_config_passes_validation() {
        let cfg = auth0();
        let warnings = crate::claims::validate_upstream(&cfg, true).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].message.contains("JWT access tokens"));
        assert!(crate::claims::validate_upstream(&cfg, false).is_err());
    }
}
