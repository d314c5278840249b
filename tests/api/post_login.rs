//! Issue 18: the post-authentication application. After the upstream login Herald sends the
//! user to the upstream's `post_login_url` with a signed, single-use continue token; the
//! application (here, the test) sends them back to `/login/continue` with a context JWT signed
//! by its client's registered key, whose claims reach the tokens. The consent page cannot be
//! reached before the application has answered, its answer is required and is never a client
//! assertion, and a replayed, forged or foreign token ends on a clear page.

use serde_json::{Value, json};

use crate::support::test_keys::{CLIENT, STRANGER, TestKey};
use crate::support::*;

const ONBOARDING: &str = "http://127.0.0.1:9000/onboard";

async fn app_with_onboarding() -> TestApp {
    let jwk = CLIENT.jwk();
    let upstream_keys =
        format!("post_login_url = \"{ONBOARDING}?step=1\"\npost_login_client = \"onboarding\"\n");
    let extra = format!(
        r#"
[[clients]]
client_id = "onboarding"
redirect_uris = []
scopes = []
grant_types = ["client_credentials"]
jwks = {{ keys = [ {{ kty = "EC", crv = "P-256", x = "{x}", y = "{y}", kid = "{kid}", use = "sig", alg = "ES256" }} ] }}

[[clients]]
client_id = "shop"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid", "plan"]

[scopes.plan]
description = "Your plan"
claims = ["plan"]
"#,
        x = jwk["x"].as_str().unwrap(),
        y = jwk["y"].as_str().unwrap(),
        kid = jwk["kid"].as_str().unwrap(),
    );
    spawn_app_configured(&upstream_keys, &extra).await
}

/// The application's answer: a context JWT for continue token `jti`, signed by `key`.
fn context(app: &TestApp, key: &TestKey, jti: &str, extra: Value) -> String {
    let now = app.state.now();
    let mut claims = json!({
        "iss": "onboarding", "aud": format!("{}/login/continue", app.base), "iat": now, "exp": now + 120, "continue": jti,
    });
    claims
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    key.sign(&claims)
}

fn continue_url(app: &TestApp, token: &str, context: Option<&str>) -> String {
    let mut url = url::Url::parse(&format!("{}/login/continue", app.base)).unwrap();
    url.query_pairs_mut().append_pair("token", token);
    if let Some(c) = context {
        url.query_pairs_mut().append_pair("context", c);
    }
    url.to_string()
}

/// Starts a login for the shop and returns the continue token the application receives.
async fn to_application(app: &TestApp, browser: &reqwest::Client, p: &AuthParams) -> String {
    match app.start(browser, p).await {
        Outcome::Client(q) => {
            assert_eq!(q.get("step").map(String::as_str), Some("1"), "{q:?}");
            assert!(!q.contains_key("code"), "{q:?}");
            q["token"].clone()
        }
        other => panic!("expected the post-login application, got {other:?}"),
    }
}

#[tokio::test]
async fn the_application_round_trip_merges_its_context_into_the_tokens() {
    let app = app_with_onboarding().await;
    let browser = browser();
    let p = AuthParams::new("shop", "openid plan");
    let token = to_application(&app, &browser, &p).await;
    let claims = payload(&token);
    let jti = claims["jti"].as_str().unwrap().to_string();
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 300);

    // Until the application answers, the login is not the browser's: no consent page.
    let request = claims["request"].as_str().unwrap();
    let res = browser
        .get(format!("{}/consent?request={request}", app.base))
        .send()
        .await
        .unwrap();
    assert_ne!(
        res.status(),
        200,
        "the consent page before the application answered"
    );

    let ctx = context(
        &app,
        &CLIENT,
        &jti,
        json!({"plan": "gold", "sub": "forged", "acr": "x", "email_verified": false}),
    );
    let html = match app
        .follow(&browser, continue_url(&app, &token, Some(&ctx)))
        .await
    {
        Outcome::Consent(html) => html,
        other => panic!("expected the consent page, got {other:?}"),
    };
    let q = match app.decide(&browser, &html, "allow").await {
        Outcome::Client(q) => q,
        other => panic!("expected the app, got {other:?}"),
    };
    let tokens: Value = app.redeem(&p, &q["code"]).await.json().await.unwrap();
    let id = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["plan"], "gold");
    // The context's own envelope and the claims Herald sets are not taken from it.
    assert_ne!(id["sub"], "forged");
    assert!(id.get("acr").is_none_or(|a| a != "x"), "{id}");
    let info: Value = app
        .userinfo(tokens["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert!(
        info.get("email_verified").is_none_or(|v| v != false),
        "{info}"
    );

    // The same continue token and answer again: a clear page, nothing issued.
    app.expect_page(
        &browser,
        continue_url(&app, &token, Some(&ctx)),
        400,
        "used already",
    )
    .await;
}

#[tokio::test]
async fn a_missing_forged_or_foreign_answer_or_token_is_refused() {
    let app = app_with_onboarding().await;
    let browser = browser();
    let token = to_application(&app, &browser, &AuthParams::new("shop", "openid plan")).await;
    let jti = payload(&token)["jti"].as_str().unwrap().to_string();

    // A context signed by a key the application's client did not register.
    let forged = context(&app, &STRANGER, &jti, json!({"plan": "gold"}));
    app.expect_page(
        &browser,
        continue_url(&app, &token, Some(&forged)),
        400,
        "could not be verified",
    )
    .await;
    // A context made for another continue token.
    let elsewhere = context(&app, &CLIENT, "another-jti", json!({"plan": "gold"}));
    app.expect_page(
        &browser,
        continue_url(&app, &token, Some(&elsewhere)),
        400,
        "could not be verified",
    )
    .await;
    // A continue token with its signature changed.
    let mut tampered = token.clone();
    tampered.push('A');
    app.expect_page(
        &browser,
        continue_url(&app, &tampered, Some(&elsewhere)),
        400,
        "invalid or has expired",
    )
    .await;
    // No answer from the application at all: the sign-in stops.
    app.expect_page(
        &browser,
        continue_url(&app, &token, None),
        400,
        "did not send its answer back",
    )
    .await;
    // The untouched token still works (refusals spent nothing) with the application's answer.
    let answer = context(&app, &CLIENT, &jti, json!({}));
    match app
        .follow(&browser, continue_url(&app, &token, Some(&answer)))
        .await
    {
        Outcome::Consent(_) => {}
        other => panic!("expected the consent page, got {other:?}"),
    }
}

#[tokio::test]
async fn a_continue_token_from_another_browser_is_refused() {
    let app = app_with_onboarding().await;
    let token = to_application(&app, &browser(), &AuthParams::new("shop", "openid plan")).await;
    let jti = payload(&token)["jti"].as_str().unwrap().to_string();
    let answer = context(&app, &CLIENT, &jti, json!({}));
    app.expect_page(
        &browser(),
        continue_url(&app, &token, Some(&answer)),
        403,
        "started in another browser",
    )
    .await;
}

#[tokio::test]
async fn a_browser_signed_in_before_cannot_reach_consent_while_the_application_waits() {
    let app = app_with_onboarding().await;
    let browser = browser();
    // A whole login first: the browser is signed in.
    let p = AuthParams::new("shop", "openid plan");
    let token = to_application(&app, &browser, &p).await;
    let jti = payload(&token)["jti"].as_str().unwrap().to_string();
    let answer = context(&app, &CLIENT, &jti, json!({"plan": "silver"}));
    let Outcome::Consent(_) = app
        .follow(&browser, continue_url(&app, &token, Some(&answer)))
        .await
    else {
        panic!("expected the consent page");
    };
    // A second login that goes upstream again (prompt=login) waits at the application: its
    // request's consent page refuses the browser's earlier login.
    let again = AuthParams::new("shop", "openid plan").with("prompt", "login");
    let token = to_application(&app, &browser, &again).await;
    let request = payload(&token)["request"].as_str().unwrap().to_string();
    let res = browser
        .get(format!("{}/consent?request={request}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn the_applications_answer_is_never_a_client_assertion() {
    let app = app_with_onboarding().await;
    let now = app.state.now();
    // Even with the claims an assertion has, its audience is the continue endpoint.
    let answer = CLIENT.sign(&json!({
        "iss": "onboarding", "sub": "onboarding", "aud": format!("{}/login/continue", app.base),
        "jti": "j1", "iat": now, "exp": now + 60, "continue": "x",
    }));
    let res = app
        .api
        .post(format!("{}/token", app.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "onboarding"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", answer.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn prompt_none_with_an_id_token_hint_is_never_tried_silently() {
    let app = spawn_app_configured("silent_login = true", "").await;
    let tokens = app
        .tokens(&AuthParams::new("trusted", "openid email"))
        .await;
    let hint = tokens["id_token"].as_str().unwrap().to_string();
    let before = app.upstream.state.authorize_requests.lock().unwrap().len();
    let p = AuthParams::new("trusted", "openid email")
        .with("prompt", "none")
        .with("id_token_hint", &hint);
    let Outcome::Client(q) = app.start(&browser(), &p).await else {
        panic!("expected the app");
    };
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("login_required"),
        "{q:?}"
    );
    assert_eq!(
        app.upstream.state.authorize_requests.lock().unwrap().len(),
        before
    );
}

#[test]
fn a_post_login_client_without_keys_is_a_check_config_error() {
    let toml = config_with_upstream(
        r#"post_login_url = "https://onboarding.example.com/start"
post_login_client = "web"

[[clients]]
client_id = "web"
client_secret = "a-secret-of-enough-length-for-herald"
redirect_uris = ["https://web.example.com/cb"]
scopes = ["openid"]
"#,
    );
    let err = herald::config::from_toml(&toml).unwrap_err().to_string();
    assert!(
        err.contains("post_login_client `web` must authenticate with private_key_jwt"),
        "{err}"
    );
    let no_client = config_with_upstream(r#"post_login_url = "https://onboarding.example.com""#);
    let err = herald::config::from_toml(&no_client)
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs post_login_client"), "{err}");
    let bad_url = config_with_upstream(
        "post_login_url = \"javascript:alert(1)\"\npost_login_client = \"web\"",
    );
    let err = herald::config::from_toml(&bad_url).unwrap_err().to_string();
    assert!(err.contains("post_login_url"), "{err}");
}
