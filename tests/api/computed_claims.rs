//! Issue 18: computed mappings. A mapping's `expr` (CEL over the upstream's claims and the
//! context so far), its `when` condition and its declarative transforms, seen in real tokens;
//! a bad expression as a `check-config` error with its place; the admin preview's steps.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// After the test upstream's own mappings (groups from the namespaced claim): teams computed
/// from the context, and the admin groups only for a verified email, filtered and upper-cased.
pub(crate) const COMPUTED: &str = r#"
[[upstreams.mappings]]
expr = "context.groups.map(g, 'team:' + g)"
to = "teams"

[[upstreams.mappings]]
from = "https://example\\.com/groups"
to = "admin_groups"
when = "id_token.email_verified == true"
transform = [{ keep = "^adm" }, "uppercase"]

[[upstreams.mappings]]
expr = "id_token.email.split('@')[1]"
to = "email_domain"

[scopes.teams]
description = "Your teams"
claims = ["teams", "admin_groups", "email_domain"]

[[clients]]
client_id = "teams-app"
client_secret = "app-secret-for-tests"
redirect_uris = ["http://127.0.0.1:9000/cb"]
scopes = ["openid", "teams"]
"#;

fn id_payload(t: &Value) -> Value {
    payload(t["id_token"].as_str().unwrap())
}

#[tokio::test]
async fn computed_values_and_conditions_reach_the_tokens() {
    // The client above is written with the support module's secret and callback.
    assert_eq!(
        (SECRET, APP_CB),
        ("app-secret-for-tests", "http://127.0.0.1:9000/cb")
    );
    let app = spawn_app_with(COMPUTED).await;
    let t = app
        .tokens(&AuthParams::new("teams-app", "openid teams"))
        .await;
    let id = id_payload(&t);
    assert_eq!(id["teams"], json!(["team:staff", "team:admins"]));
    assert_eq!(id["admin_groups"], json!(["ADMINS"]));
    assert_eq!(id["email_domain"], "example.com");

    // An unverified email: the condition is false, the mapping skipped.
    app.upstream.set(|b| {
        b.id_claims.insert("email_verified".into(), json!(false));
    });
    let other = TestApp {
        browser: browser(),
        ..app
    };
    let t = other
        .tokens(&AuthParams::new("teams-app", "openid teams"))
        .await;
    let id = id_payload(&t);
    assert!(id.get("admin_groups").is_none(), "{id}");
    assert_eq!(id["teams"], json!(["team:staff", "team:admins"]));
}

#[tokio::test]
async fn the_admin_preview_shows_each_step_and_lineage_the_expression() {
    let app = spawn_app_with(COMPUTED).await;
    let preview = app
        .admin_ok(
            Method::POST,
            "/admin/api/preview",
            Some(json!({
                "id_token": {"sub": "u1", "email": "bo@corp.example", "email_verified": true,
                             "https://example.com/groups": ["admins", "ops"]},
                "userinfo": {"sub": "u1"},
                "scopes": ["openid", "teams"]
            })),
            200,
        )
        .await;
    assert_eq!(
        preview["id_token"]["teams"],
        json!(["team:admins", "team:ops"])
    );
    assert_eq!(preview["id_token"]["email_domain"], "corp.example");
    let steps = preview["steps"].as_array().unwrap();
    let step = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no step {name} in {steps:?}"))
    };
    assert_eq!(step("when id_token.email_verified == true")["output"], true);
    assert_eq!(step("keep /^adm/")["input"], json!(["admins", "ops"]));
    assert_eq!(step("keep /^adm/")["output"], json!(["admins"]));
    assert_eq!(step("uppercase")["output"], json!(["ADMINS"]));
    let lineage = app
        .admin_ok(Method::GET, "/admin/api/lineage", None, 200)
        .await;
    let rows = lineage.as_array().unwrap();
    let teams = rows.iter().find(|r| r["claim"] == "teams").unwrap();
    assert_eq!(teams["source"], "computed");
    assert_eq!(
        teams["upstream_claim"],
        "context.groups.map(g, 'team:' + g)"
    );
    let admin = rows.iter().find(|r| r["claim"] == "admin_groups").unwrap();
    assert!(
        admin["mapping"]
            .as_str()
            .unwrap()
            .contains("(when id_token.email_verified == true; keep /^adm/; uppercase)"),
        "{admin}"
    );
}

#[test]
fn a_bad_expression_is_a_check_config_error_naming_its_place() {
    let bad = config_with_upstream(
        r#"
[[upstreams.mappings]]
expr = "id_token.groups.map(g, lower(g))"
to = "teams"
"#,
    );
    let err = herald::config::from_toml(&bad).unwrap_err().to_string();
    // The mapping by its line in the file, then the place in the expression.
    assert!(err.contains("line 12"), "{err}");
    assert!(
        err.contains("expr = \"id_token.groups.map(g, lower(g))\""),
        "{err}"
    );
    assert!(
        err.contains("invalid CEL expression: line 1, column 24: unknown function `lower`"),
        "{err}"
    );
    let typo = config_with_upstream(
        r#"
[[upstreams.mappings]]
expr = "idtoken.email"
to = "mail"
"#,
    );
    let err = herald::config::from_toml(&typo).unwrap_err().to_string();
    assert!(err.contains("unknown name `idtoken`"), "{err}");
    let both = config_with_upstream(
        r#"
[[upstreams.attributes]]
claim = "email"
source = "id_token"
[[upstreams.mappings]]
from = "email"
expr = "id_token.email"
to = "mail"
"#,
    );
    let err = herald::config::from_toml(&both).unwrap_err().to_string();
    assert!(
        err.contains("mappings[0] (→ `mail`): has both `from` and `expr`"),
        "{err}"
    );
}
