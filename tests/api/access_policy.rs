//! Issue 18: a client's access policy, a CEL condition over the login's context. A user it
//! refuses never sees the consent page: the app gets `access_denied` (with `state` and `iss`)
//! and the user a page naming the app; a refresh it refuses is `invalid_grant` and ends the
//! family; a policy that is not CEL is a `check-config` error.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

fn gated(policy: &str) -> String {
    format!(
        r#"
[[clients]]
client_id = "gated"
client_name = "Admin Console"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid", "groups", "offline_access"]
grant_types = ["authorization_code", "refresh_token"]
access_policy = "{policy}"
"#
    )
}

const ADMINS_ONLY: &str = "'herald-admins' in context.groups";

/// The admin changes the console's policy through the API.
async fn set_policy(app: &TestApp, policy: &str) -> reqwest::Response {
    app.admin(
        Method::PUT,
        "/admin/api/clients/gated",
        Some(ADMIN_TOKEN),
        Some(&json!({
            "client_name": "Admin Console",
            "redirect_uris": [APP_CB],
            "scopes": ["openid", "groups", "offline_access"],
            "grant_types": ["authorization_code", "refresh_token"],
            "access_policy": policy,
        })),
    )
    .await
}

fn params() -> AuthParams {
    AuthParams::new("gated", "openid groups offline_access")
}

#[tokio::test]
async fn a_user_the_policy_refuses_gets_a_page_and_the_app_access_denied() {
    let app = spawn_app_configured("", &gated(ADMINS_ONLY)).await;
    // The test upstream's groups are staff and admins: not herald-admins.
    let (status, page) = match app.start(&app.browser, &params()).await {
        Outcome::Page(status, page) => (status, page),
        other => panic!("expected the refusal page, got {other:?}"),
    };
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("Admin Console"), "{page}");
    assert!(
        !page.contains("name=\"decision\""),
        "no consent form: {page}"
    );
    assert!(page.contains("error=access_denied"), "{page}");
    assert!(page.contains("state="), "{page}");
    assert!(page.contains("iss="), "{page}");

    // Someone in herald-admins is let in.
    app.upstream.set(|b| {
        b.id_claims.insert(
            "https://example.com/groups".into(),
            json!(["herald-admins"]),
        );
    });
    let other = TestApp {
        browser: browser(),
        ..app
    };
    let tokens = other.tokens(&params()).await;
    assert_eq!(
        payload(tokens["id_token"].as_str().unwrap())["groups"],
        json!(["herald-admins"])
    );
}

async fn refresh(app: &TestApp, tokens: &Value) -> (StatusCode, Value) {
    app.refresh_as("gated", tokens).await
}

#[tokio::test]
async fn a_refresh_the_policy_refuses_is_invalid_grant_and_ends_the_family() {
    let app = spawn_app_configured("", &gated(ADMINS_ONLY)).await;
    app.upstream.set(|b| {
        b.id_claims.insert(
            "https://example.com/groups".into(),
            json!(["herald-admins"]),
        );
    });
    let tokens = app.tokens(&params()).await;
    let (status, fresh) = refresh(&app, &tokens).await;
    assert_eq!(status, 200, "{fresh}");

    // The admin narrows the policy: the same login no longer qualifies.
    let res = set_policy(&app, "'root' in context.groups").await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let (status, refused) = refresh(&app, &fresh).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"], "invalid_grant");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("access policy"),
        "{refused}"
    );
    let detail = app
        .admin_ok(Method::GET, "/admin/api/clients/gated", None, 200)
        .await;
    assert_eq!(detail["access_policy"], "'root' in context.groups");
    // The family is revoked: its newest token fails even once the policy is lifted again.
    let res = set_policy(&app, ADMINS_ONLY).await;
    assert_eq!(res.status(), 200);
    let (status, _) = refresh(&app, &fresh).await;
    assert_eq!(status, 400);
}

#[test]
fn a_policy_that_is_not_cel_is_a_check_config_error() {
    let toml = format!(
        r#"
issuer = "https://herald.example"
listen = "127.0.0.1:0"
database_url = "sqlite://unused.db"

[[upstreams]]
id = "dev"
kind = "dev"

[scopes.groups]
description = "Your groups"
claims = ["groups"]
{}
"#,
        gated("context.groups.exists(g, g ==")
    );
    let err = herald::config::from_toml(&toml).unwrap_err().to_string();
    assert!(
        err.contains("clients[0].access_policy: not a CEL condition"),
        "{err}"
    );
}
