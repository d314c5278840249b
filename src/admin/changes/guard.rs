//! What only an admin may change, however the change is made (API or pages, an editor's token
//! or an editor's sign-in): the roles must not be reachable from the editor role.
//!
//! Two things would reach them. A client holding one of Herald's own scopes (`herald:admin`,
//! `herald:edit`, `herald:read`, `herald:account-link`) acts on Herald with that scope's
//! power, so creating one, changing one (its scopes, its secret), rotating its secret or
//! removing one is an admin's. And the admin pages read their roles from one claim of the
//! authentication context (`[admin] role_claim`), which only mappings write, so a mapping that
//! writes that claim, or an object above it, is an admin's to add, change or remove: an
//! editor's new upstream can then sign people in, but never into a role.

use std::collections::BTreeMap;

use toml::Value;

use crate::admin::error::ApiError;
use crate::claims::{ClaimPath, Mapping};
use crate::config::ManagedConfig;

/// Refuses `after` when it differs from `before` in what only an admin may change.
/// `role_claim`: the claim the admin roles are read from, when roles are configured.
pub fn admin_only(
    before: &ManagedConfig,
    after: &ManagedConfig,
    role_claim: Option<&ClaimPath>,
) -> Result<(), ApiError> {
    if privileged_clients(before) != privileged_clients(after) {
        return Err(needs_admin(
            "only an admin may register, change, rotate the secret of or remove a client that \
             holds one of Herald's own scopes (herald:admin, herald:edit, herald:read, \
             herald:account-link)",
        ));
    }
    // A post-login application writes into the context what its signed answer says; pointing
    // an upstream at one (with a client whose keys an editor holds) would write the roles.
    if post_login_applications(before) != post_login_applications(after) {
        return Err(needs_admin(
            "only an admin may set, change or remove an upstream's post_login_url or \
             post_login_client: the application's answers are written into the authentication \
             context",
        ));
    }
    if let Some(claim) = role_claim
        && role_mappings(before, claim) != role_mappings(after, claim)
    {
        return Err(needs_admin(&format!(
            "only an admin may add, change or remove a mapping to “{}”, the claim the admin \
             roles are read from",
            claim.canonical()
        )));
    }
    Ok(())
}

fn needs_admin(what: &str) -> ApiError {
    ApiError::insufficient_scope_for(
        format!("{what}; this needs the admin role (scope herald:admin)"),
        crate::config::ADMIN_SCOPE,
    )
}

/// The clients holding one of Herald's own scopes, whole (secrets included), by client_id.
fn privileged_clients(doc: &ManagedConfig) -> BTreeMap<String, toml::Table> {
    doc.entries("clients")
        .filter(|c| {
            c.get("scopes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|s| s.starts_with("herald:"))
        })
        .map(|c| {
            let id = c.get("client_id").and_then(Value::as_str).unwrap_or("");
            (id.to_string(), c.clone())
        })
        .collect()
}

/// Each upstream's mappings that write `claim` or an object above it, in order, as what they
/// mean (a mapping written with its defaults spelled out is the same mapping).
fn role_mappings(doc: &ManagedConfig, claim: &ClaimPath) -> BTreeMap<String, Vec<String>> {
    doc.entries("upstreams")
        .map(|u| {
            let id = u.get("id").and_then(Value::as_str).unwrap_or("");
            let writing: Vec<String> = u
                .get("mappings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_table)
                .filter(|m| writes(m, claim))
                .map(meaning)
                .collect();
            (id.to_string(), writing)
        })
        .filter(|(_, writing)| !writing.is_empty())
        .collect()
}

/// Each upstream's post-login application (`post_login_url`, `post_login_client`), by id.
fn post_login_applications(doc: &ManagedConfig) -> BTreeMap<String, (String, String)> {
    doc.entries("upstreams")
        .filter_map(|u| {
            let text = |k: &str| u.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let app = (text("post_login_url"), text("post_login_client"));
            (app != Default::default()).then(|| (text("id"), app))
        })
        .collect()
}

/// A mapping as Herald reads it, written out in one form; as written, when it does not read.
fn meaning(m: &toml::Table) -> String {
    Value::Table(m.clone())
        .try_into::<Mapping>()
        .ok()
        .and_then(|typed| serde_json::to_string(&typed).ok())
        .unwrap_or_else(|| m.to_string())
}

/// Whether mapping `m` writes `claim`: its `to` is the claim or an object above it.
fn writes(m: &toml::Table, claim: &ClaimPath) -> bool {
    let Some(to) = m.get("to").and_then(Value::as_str) else {
        return false;
    };
    let Ok(to) = ClaimPath::parse(to) else {
        return false;
    };
    claim.segments().starts_with(to.segments())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> ManagedConfig {
        ManagedConfig::parse(text).unwrap()
    }

    const BASE: &str = r#"
[[upstreams]]
id = "a"
kind = "dev"
[[upstreams.mappings]]
from = "x"
to = "groups"
[[upstreams.mappings]]
from = "y"
to = "department"

[[clients]]
client_id = "ops"
scopes = ["herald:admin"]
client_secret_hash = "sha256:AAAA"

[[clients]]
client_id = "app"
scopes = ["openid"]
"#;

    #[test]
    fn an_editor_may_change_what_reaches_no_role_and_nothing_that_does() {
        let groups = ClaimPath::parse("groups").unwrap();
        let before = doc(BASE);
        let ok = [
            BASE.replace("to = \"department\"", "to = \"team\""),
            // The same mapping with a default spelled out, as the API writes it back.
            BASE.replace("to = \"groups\"", "to = \"groups\"\nmerge = \"set\""),
            BASE.replace(
                "scopes = [\"openid\"]",
                "scopes = [\"openid\", \"profile\"]",
            ),
        ];
        for after in ok {
            assert!(
                admin_only(&before, &doc(&after), Some(&groups)).is_ok(),
                "{after}"
            );
        }
        let refused = [
            // The admin client's secret rotated, or its scopes changed.
            BASE.replace("sha256:AAAA", "sha256:BBBB"),
            BASE.replace("[\"herald:admin\"]", "[\"herald:read\"]"),
            // A client given a role scope.
            BASE.replace("scopes = [\"openid\"]", "scopes = [\"herald:edit\"]"),
            // The role claim's mapping changed, or a new one writes it (or an object above it).
            BASE.replace("from = \"x\"", "from = \"z\""),
            BASE.replace("to = \"department\"", "to = \"groups\""),
            // A post-login application, whose answers are written into the context.
            BASE.replace(
                "kind = \"dev\"",
                "kind = \"dev\"\npost_login_url = \"https://x.example\"\npost_login_client = \"app\"",
            ),
        ];
        for after in refused {
            let e = admin_only(&before, &doc(&after), Some(&groups)).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::FORBIDDEN, "{after}");
        }
        let nested = ClaimPath::parse("org.roles").unwrap();
        let above = BASE.replace("to = \"department\"", "to = \"org\"");
        assert!(admin_only(&before, &doc(&above), Some(&nested)).is_err());
        // Without roles configured, mappings to groups are anyone's.
        let remapped = BASE.replace("from = \"x\"", "from = \"z\"");
        assert!(admin_only(&before, &doc(&remapped), None).is_ok());
    }
}
