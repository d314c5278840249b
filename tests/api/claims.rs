//! The claims engine seen from outside: what upstream claims become in Herald's tokens.

use serde_json::json;

use crate::support::*;

fn id_payload(t: &serde_json::Value) -> serde_json::Value {
    payload(t["id_token"].as_str().unwrap())
}

#[tokio::test]
async fn userinfo_only_claim_is_released_nested_by_its_scope() {
    let app = spawn_app().await;
    app.upstream.set(|b| {
        b.userinfo_claims
            .insert("https://example.com/tenant".into(), json!("acme"));
    });
    let t = app.tokens(&AuthParams::new("app", "openid org")).await;
    assert_eq!(id_payload(&t)["org"], json!({"tenant": "acme"}));
    let info: serde_json::Value = app
        .userinfo(t["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["org"]["tenant"], "acme");
    // Only granted scopes release: without `org`, no tenant.
    let other = TestApp {
        browser: browser(),
        ..app
    };
    let t = other.tokens(&AuthParams::new("app", "openid groups")).await;
    assert!(id_payload(&t).get("org").is_none());
}

#[tokio::test]
async fn a_lone_string_for_a_string_array_attribute_becomes_a_one_element_array() {
    let app = spawn_app().await;
    app.upstream.set(|b| {
        b.id_claims
            .insert("https://example.com/groups".into(), json!("solo"));
    });
    let t = app.tokens(&AuthParams::new("app", "openid groups")).await;
    assert_eq!(id_payload(&t)["groups"], json!(["solo"]));
}

#[tokio::test]
async fn a_string_email_verified_in_userinfo_never_becomes_true() {
    let app = spawn_app().await;
    app.upstream.set(|b| {
        b.id_claims.remove("email_verified");
        b.userinfo_claims
            .insert("email_verified".into(), json!("true"));
    });
    let t = app.tokens(&AuthParams::new("app", "openid email")).await;
    assert!(id_payload(&t).get("email_verified").is_none());
}

#[tokio::test]
async fn an_id_token_with_a_string_email_verified_is_refused_as_invalid() {
    let app = spawn_app().await;
    app.upstream.set(|b| {
        b.id_claims.insert("email_verified".into(), json!("true"));
    });
    match app
        .start(&app.browser, &AuthParams::new("app", "openid email"))
        .await
    {
        Outcome::Page(status, body) => {
            assert_eq!(status, 502);
            assert!(body.contains("could not be verified"), "{body}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_missing_required_attribute_refuses_the_login_with_a_clear_page() {
    let extra = r#"
[[upstreams.attributes]]
claim = "https://example\\.com/employee_id"
source = "id_token"
type = "string"
required = true
"#;
    let app = spawn_app_with(extra).await;
    match app
        .start(&app.browser, &AuthParams::new("app", "openid"))
        .await
    {
        Outcome::Page(status, body) => {
            assert_eq!(status, 403);
            assert!(body.contains("employee_id"), "{body}");
            assert!(
                body.contains("error=access_denied"),
                "the page links back to the app: {body}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn configured_amr_replaces_the_upstreams_and_upstream_amr_passes_through_otherwise() {
    let app = spawn_app_configured(r#"amr = "mfa""#, "").await;
    app.upstream.set(|b| {
        b.id_claims.insert("amr".into(), json!(["pwd"]));
    });
    let t = app.tokens(&AuthParams::new("trusted", "openid")).await;
    assert_eq!(id_payload(&t)["amr"], json!(["mfa"]));

    let plain = spawn_app().await;
    plain.upstream.set(|b| {
        b.id_claims.insert("amr".into(), json!(["pwd", "otp"]));
    });
    let t = plain.tokens(&AuthParams::new("trusted", "openid")).await;
    assert_eq!(id_payload(&t)["amr"], json!(["pwd", "otp"]));
}

#[tokio::test]
async fn an_expired_auth_context_needs_a_fresh_upstream_login() {
    let app = spawn_app_configured(r#"auth_context_ttl = "10m""#, "").await;
    app.login(&app.browser, &AuthParams::new("trusted", "openid"))
        .await;
    let silent = AuthParams::new("trusted", "openid").with("prompt", "none");
    match app.start(&app.browser, &silent).await {
        Outcome::Client(q) => assert!(q.contains_key("code"), "{q:?}"),
        other => panic!("{other:?}"),
    }
    app.clock.advance(601);
    match app
        .start(
            &app.browser,
            &AuthParams::new("trusted", "openid").with("prompt", "none"),
        )
        .await
    {
        Outcome::Client(q) => assert_eq!(q["error"], "login_required"),
        other => panic!("{other:?}"),
    }
    let before = app.upstream.state.authorize_requests.lock().unwrap().len();
    app.login(&app.browser, &AuthParams::new("trusted", "openid"))
        .await;
    assert_eq!(
        app.upstream.state.authorize_requests.lock().unwrap().len(),
        before + 1
    );
}

#[tokio::test]
async fn on_missing_keep_reuses_the_value_from_the_previous_login() {
    let extra = r#"
[[upstreams.attributes]]
claim = "department"
source = "id_token"
type = "string"
on_missing = "keep"

[[upstreams.mappings]]
from = "department"
to = "department"

[[clients]]
client_id = "hr"
client_secret = "app-secret-for-tests"
redirect_uris = ["http://127.0.0.1:9000/cb"]
scopes = ["openid", "hr"]
trusted = true

[scopes.hr]
description = "Your department"
claims = ["department"]
"#;
    let app = spawn_app_with(extra).await;
    app.upstream.set(|b| {
        b.id_claims.insert("department".into(), json!("finance"));
    });
    let t = app.tokens(&AuthParams::new("hr", "openid hr")).await;
    assert_eq!(id_payload(&t)["department"], "finance");
    app.upstream.set(|b| {
        b.id_claims.remove("department");
    });
    let again = TestApp {
        browser: browser(),
        ..app
    };
    let t = again.tokens(&AuthParams::new("hr", "openid hr")).await;
    assert_eq!(
        id_payload(&t)["department"],
        "finance",
        "kept from the previous login"
    );
}

/// "Map the remaining fields": every claim under the namespace that no other attribute reads.
const REMAINING: &str = r#"
[[upstreams.attributes]]
claim = "https://example\\.com/*"
source = "id_token"

[[upstreams.mappings]]
from = "https://example\\.com/*"
to = "ext.*"
"#;

#[tokio::test]
async fn the_remaining_namespaced_claims_reach_tokens_under_a_prefix_and_preview_shows_each() {
    let extra = format!(
        r#"
[scopes.ext]
description = "Your extra profile"
claims = ["ext"]

[[clients]]
client_id = "extapp"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid", "ext", "groups"]
"#
    );
    let app = spawn_app_configured(REMAINING, &extra).await;
    app.upstream.set(|b| {
        b.id_claims
            .insert("https://example.com/plan".into(), json!("gold"));
        b.id_claims
            .insert("https://example.com/seats".into(), json!(3));
    });
    let t = app
        .tokens(&AuthParams::new("extapp", "openid ext groups"))
        .await;
    let id = id_payload(&t);
    // Groups has its own attribute and mapping, so it is not one of "the remaining".
    assert_eq!(id["ext"], json!({"plan": "gold", "seats": 3}), "{id}");
    assert_eq!(id["groups"], json!(["staff", "admins"]));

    let preview = app
        .admin_ok(
            reqwest::Method::POST,
            "/admin/api/preview",
            Some(json!({
                "upstream": "test",
                "id_token": {"sub": "u1", "https://example.com/tier": "pro"},
            })),
            200,
        )
        .await;
    assert_eq!(
        preview["context"]["attributes"]["ext"]["tier"], "pro",
        "{preview}"
    );
    assert!(
        preview["context"]["origins"].get("ext.tier").is_some(),
        "{preview}"
    );
}
