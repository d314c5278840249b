//! Issue 21: pushed authorization requests (RFC 9126). A client pushes its request to `/par`
//! and gets a request_uri that `/authorize` accepts once, for that client, within a minute; a
//! pushed request is checked as `/authorize` checks one; a client that must push cannot start a
//! login any other way; discovery lists the endpoint.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

/// Pushes `p` for its client (with the test secret by Basic; a public client by client_id).
async fn push(app: &TestApp, p: &AuthParams) -> reqwest::Response {
    let mut req = app.api.post(format!("{}/par", app.base));
    let mut form = p.query();
    if p.client_id == "spa" {
        form.retain(|(k, _)| k != "client_id");
        form.push(("client_id".into(), "spa".into()));
    } else {
        req = req.basic_auth(&p.client_id, Some(SECRET));
    }
    req.form(&form).send().await.unwrap()
}

async fn request_uri(app: &TestApp, p: &AuthParams) -> String {
    let res = push(app, p).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    let uri = body["request_uri"].as_str().unwrap().to_string();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{uri}"
    );
    uri
}

fn authorize_with(app: &TestApp, client_id: &str, uri: &str) -> String {
    let mut u = url::Url::parse(&format!("{}/authorize", app.base)).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request_uri", uri);
    u.to_string()
}

#[tokio::test]
async fn a_pushed_request_starts_a_login_once_and_its_code_is_redeemed() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid groups");
    let uri = request_uri(&app, &p).await;
    let browser = browser();
    let html = match app
        .follow(&browser, authorize_with(&app, "app", &uri))
        .await
    {
        Outcome::Consent(html) => html,
        other => panic!("expected the consent page, got {other:?}"),
    };
    let q = match app.decide(&browser, &html, "allow").await {
        Outcome::Client(q) => q,
        other => panic!("expected the app, got {other:?}"),
    };
    // The pushed state comes back, and the pushed PKCE challenge binds the code.
    assert_eq!(q.get("state"), Some(&p.state));
    let tokens: Value = app.redeem(&p, &q["code"]).await.json().await.unwrap();
    let id = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["nonce"], p.nonce.as_str());

    // Once only.
    app.expect_page(
        &browser,
        authorize_with(&app, "app", &uri),
        400,
        "used already",
    )
    .await;
}

#[tokio::test]
async fn a_request_uri_is_for_its_client_and_a_minute() {
    let app = spawn_app().await;
    let uri = request_uri(&app, &AuthParams::new("app", "openid")).await;
    // Named with another client: refused (and spent).
    app.expect_page(
        &browser(),
        authorize_with(&app, "spa", &uri),
        400,
        "pushed by another client",
    )
    .await;
    // Expired after its minute.
    let uri = request_uri(&app, &AuthParams::new("app", "openid")).await;
    app.clock.advance(61);
    app.expect_page(
        &browser(),
        authorize_with(&app, "app", &uri),
        400,
        "expired",
    )
    .await;
}

#[tokio::test]
async fn a_pushed_request_is_checked_as_authorize_checks_one() {
    let app = spawn_app().await;
    let error = |res: reqwest::Response| async move {
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        (
            status.as_u16(),
            body["error"].as_str().unwrap_or_default().to_string(),
        )
    };
    // A scope the client may not have.
    let res = push(&app, &AuthParams::new("app", "openid api")).await;
    assert_eq!(error(res).await, (400, "invalid_scope".to_string()));
    // A redirect_uri the client did not register.
    let mut p = AuthParams::new("app", "openid");
    p.redirect_uri = "https://evil.example/cb".into();
    assert_eq!(
        error(push(&app, &p).await).await,
        (400, "invalid_request".to_string())
    );
    // A public client without PKCE.
    let mut p = AuthParams::new("spa", "openid");
    p.verifier = None;
    assert_eq!(
        error(push(&app, &p).await).await,
        (400, "invalid_request".to_string())
    );
    // No client authentication.
    let res = app
        .api
        .post(format!("{}/par", app.base))
        .form(&AuthParams::new("app", "openid").query())
        .send()
        .await
        .unwrap();
    assert_eq!(error(res).await, (401, "invalid_client".to_string()));
    // A request_uri pushed in turn.
    let p = AuthParams::new("app", "openid").with("request_uri", "urn:x");
    assert_eq!(
        error(push(&app, &p).await).await,
        (400, "invalid_request".to_string())
    );
    // A client_id in the body that is not the authenticated client.
    let res = app
        .api
        .post(format!("{}/par", app.base))
        .basic_auth("app", Some(SECRET))
        .form(&AuthParams::new("trusted", "openid").query())
        .send()
        .await
        .unwrap();
    assert_eq!(error(res).await, (400, "invalid_request".to_string()));
}

#[tokio::test]
async fn a_client_that_must_push_cannot_start_a_login_otherwise() {
    let app = spawn_app_with(&format!(
        r#"
[[clients]]
client_id = "fapi"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid"]
trusted = true
require_pushed_authorization_requests = true
"#
    ))
    .await;
    let p = AuthParams::new("fapi", "openid");
    let Outcome::Client(q) = app.start(&browser(), &p).await else {
        panic!("expected the app");
    };
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("invalid_request"),
        "{q:?}"
    );
    assert!(q["error_description"].contains("/par"), "{q:?}");
    let uri = request_uri(&app, &p).await;
    let Outcome::Client(q) = app
        .follow(&browser(), authorize_with(&app, "fapi", &uri))
        .await
    else {
        panic!("expected the app");
    };
    assert!(q.contains_key("code"), "{q:?}");

    let discovery: Value = app
        .api
        .get(format!("{}/.well-known/openid-configuration", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["pushed_authorization_request_endpoint"],
        format!("{}/par", app.base)
    );
    // Only one client must push: discovery does not say that every one must.
    assert!(
        discovery
            .get("require_pushed_authorization_requests")
            .is_none()
    );
}

#[tokio::test]
async fn when_every_client_must_push_discovery_says_so_and_plain_requests_are_refused() {
    let app = spawn_app_full("require_pushed_authorization_requests = true", "", "").await;
    let discovery: Value = app
        .api
        .get(format!("{}/.well-known/openid-configuration", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["require_pushed_authorization_requests"], true);
    let p = AuthParams::new("trusted", "openid email");
    let Outcome::Client(q) = app.start(&browser(), &p).await else {
        panic!("expected the app");
    };
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("invalid_request"),
        "{q:?}"
    );
    let uri = request_uri(&app, &p).await;
    let Outcome::Client(q) = app
        .follow(&browser(), authorize_with(&app, "trusted", &uri))
        .await
    else {
        panic!("expected the app");
    };
    assert!(q.contains_key("code"), "{q:?}");
}
