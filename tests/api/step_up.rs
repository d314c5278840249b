//! Issue 18 (step-up and re-authentication passed through): what an app asks of the login
//! reaches the upstream's authorization request, `max_age` against the upstream's `auth_time`,
//! unmet `acr_values`, and `prompt=none` tried silently at an upstream that allows it.

use crate::support::*;

/// The upstream's last authorization request.
fn last_upstream_request(app: &TestApp) -> std::collections::HashMap<String, String> {
    app.upstream
        .state
        .authorize_requests
        .lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn prompt_login_max_age_login_hint_and_ui_locales_reach_the_upstream() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid")
        .with("prompt", "login")
        .with("max_age", "300")
        .with("login_hint", "alice@example.com")
        .with("ui_locales", "de fr");
    app.tokens(&p).await;
    let asked = last_upstream_request(&app);
    assert_eq!(
        asked.get("prompt").map(String::as_str),
        Some("login"),
        "{asked:?}"
    );
    assert_eq!(asked.get("max_age").map(String::as_str), Some("300"));
    assert_eq!(
        asked.get("login_hint").map(String::as_str),
        Some("alice@example.com")
    );
    assert_eq!(asked.get("ui_locales").map(String::as_str), Some("de fr"));

    // A request that asks for none of them passes none on.
    let other = browser();
    app.login(&other, &AuthParams::new("app", "openid")).await;
    let asked = last_upstream_request(&app);
    for key in ["prompt", "max_age", "login_hint", "ui_locales"] {
        assert!(!asked.contains_key(key), "{key} in {asked:?}");
    }
}

#[tokio::test]
async fn auth_time_is_the_upstreams_when_it_sends_a_plausible_one() {
    let app = spawn_app().await;
    let now = unix_now();
    app.upstream.set(|b| {
        b.id_claims
            .insert("auth_time".into(), serde_json::json!(now - 3600));
    });
    let p = AuthParams::new("app", "openid").with("max_age", "7200");
    let tokens = app.tokens(&p).await;
    let id = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["auth_time"], now - 3600, "{id}");

    // One in the future is not believed: the login's own time stands.
    app.upstream.set(|b| {
        b.id_claims
            .insert("auth_time".into(), serde_json::json!(now + 3600));
    });
    let other = TestApp {
        browser: browser(),
        ..app
    };
    let tokens = other.tokens(&p).await;
    let auth_time = payload(tokens["id_token"].as_str().unwrap())["auth_time"]
        .as_i64()
        .unwrap();
    assert!((now..now + 60).contains(&auth_time), "{auth_time} vs {now}");
}

#[tokio::test]
async fn acr_values_reach_the_upstream_and_an_unmet_class_is_unmet_authentication_requirements() {
    let app = spawn_app().await;
    app.upstream.set(|b| {
        b.id_claims
            .insert("acr".into(), serde_json::json!("silver"));
    });
    let p = AuthParams::new("app", "openid").with("acr_values", "gold silver");
    app.tokens(&p).await;
    let asked = last_upstream_request(&app);
    assert_eq!(
        asked.get("acr_values").map(String::as_str),
        Some("gold silver")
    );

    // The same browser asks again: the remembered login is not reused for acr_values, and the
    // upstream now answers with a class the app did not ask for.
    app.upstream.set(|b| {
        b.id_claims
            .insert("acr".into(), serde_json::json!("bronze"));
    });
    let before = app.upstream.state.authorize_requests.lock().unwrap().len();
    let q = match app.start(&app.browser, &p).await {
        Outcome::Client(q) => q,
        other => panic!("expected a redirect to the app, got {other:?}"),
    };
    assert_eq!(
        app.upstream.state.authorize_requests.lock().unwrap().len(),
        before + 1
    );
    assert_eq!(q["error"], "unmet_authentication_requirements", "{q:?}");
    assert!(q["error_description"].contains("bronze"), "{q:?}");
    assert!(q.contains_key("iss") && q.contains_key("state"), "{q:?}");
}

fn auth_time_ago(app: &TestApp, secs: i64, ignore_prompt_login: bool) {
    let now = unix_now();
    app.upstream.set(|b| {
        b.id_claims
            .insert("auth_time".into(), serde_json::json!(now - secs));
        b.ignore_prompt_login = ignore_prompt_login;
    });
}

fn upstream_prompts(app: &TestApp) -> Vec<Option<String>> {
    app.upstream
        .state
        .authorize_requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.get("prompt").cloned())
        .collect()
}

#[tokio::test]
async fn an_upstream_login_older_than_max_age_is_asked_for_again_with_prompt_login() {
    let app = spawn_app().await;
    auth_time_ago(&app, 3600, false);
    let p = AuthParams::new("app", "openid").with("max_age", "60");
    let tokens = app.tokens(&p).await;
    // Asked twice: the second time with prompt=login, which the upstream honoured.
    assert_eq!(upstream_prompts(&app), [None, Some("login".to_string())]);
    let auth_time = payload(tokens["id_token"].as_str().unwrap())["auth_time"]
        .as_i64()
        .unwrap();
    let now = unix_now();
    assert!(now - auth_time <= 60, "{auth_time} vs {now}");
}

#[tokio::test]
async fn an_upstream_that_answers_with_an_old_login_again_is_login_required() {
    let app = spawn_app().await;
    auth_time_ago(&app, 3600, true);
    let p = AuthParams::new("app", "openid").with("max_age", "60");
    let q = match app.start(&app.browser, &p).await {
        Outcome::Client(q) => q,
        other => panic!("expected a redirect to the app, got {other:?}"),
    };
    assert_eq!(q["error"], "login_required", "{q:?}");
    assert!(q["error_description"].contains("max_age"), "{q:?}");
    assert_eq!(upstream_prompts(&app), [None, Some("login".to_string())]);
}

#[tokio::test]
async fn the_parameters_an_upstream_takes_through_reach_it_and_no_others() {
    let app = spawn_app_configured(r#"pass_through = ["connection", "organization"]"#, "").await;
    let p = AuthParams::new("app", "openid")
        .with("connection", "google-oauth2")
        .with("organization", "org_123")
        .with("audience", "https://api.example.com");
    app.tokens(&p).await;
    let asked = last_upstream_request(&app);
    assert_eq!(
        asked.get("connection").map(String::as_str),
        Some("google-oauth2")
    );
    assert_eq!(
        asked.get("organization").map(String::as_str),
        Some("org_123")
    );
    assert!(!asked.contains_key("audience"), "{asked:?}");

    // Herald's own parameters cannot be named.
    let toml = config_with_upstream(r#"pass_through = ["prompt"]"#);
    let err = herald::config::from_toml(&toml).unwrap_err().to_string();
    assert!(err.contains("upstreams[0].pass_through: `prompt`"), "{err}");
}

/// The test upstream, opted in to silent attempts.
async fn silent_app() -> TestApp {
    spawn_app_configured("silent_login = true", "").await
}

#[tokio::test]
async fn prompt_none_without_a_login_is_tried_silently_at_an_upstream_that_allows_it() {
    let app = silent_app().await;
    // A trusted app: a silent login needs no consent page, so it ends with a code.
    let p = AuthParams::new("trusted", "openid email").with("prompt", "none");
    let q = match app.start(&browser(), &p).await {
        Outcome::Client(q) => q,
        other => panic!("expected the app, got {other:?}"),
    };
    assert!(q.contains_key("code"), "{q:?}");
    let asked = last_upstream_request(&app);
    assert_eq!(
        asked.get("prompt").map(String::as_str),
        Some("none"),
        "{asked:?}"
    );

    // An app whose scopes need consent hears consent_required, as without an upstream trip.
    let p = AuthParams::new("app", "openid groups").with("prompt", "none");
    let Outcome::Client(q) = app.start(&browser(), &p).await else {
        panic!("expected the app");
    };
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("consent_required"),
        "{q:?}"
    );
}

#[tokio::test]
async fn an_upstream_that_needs_the_user_for_a_silent_attempt_is_login_required_at_the_app() {
    let app = silent_app().await;
    for (upstream_says, app_hears) in [
        ("login_required", "login_required"),
        ("interaction_required", "interaction_required"),
        ("consent_required", "interaction_required"),
    ] {
        app.upstream
            .set(|b| b.authorize_error = Some(upstream_says.into()));
        let p = AuthParams::new("trusted", "openid email").with("prompt", "none");
        let q = match app.start(&browser(), &p).await {
            Outcome::Client(q) => q,
            other => panic!("{upstream_says}: expected the app, got {other:?}"),
        };
        assert_eq!(q.get("error").map(String::as_str), Some(app_hears), "{q:?}");
        assert_eq!(q.get("state"), Some(&p.state), "{q:?}");
        assert_eq!(q.get("iss"), Some(&app.base), "{q:?}");
    }
}

/// A silent attempt shows no page (OIDC Core §3.1.2.6), also when the upstream cannot be
/// reached at `/authorize`: the app hears `temporarily_unavailable` with its `state` and `iss`.
#[tokio::test]
async fn a_silent_attempt_at_an_unreachable_upstream_is_an_error_at_the_app_not_a_page() {
    let app = silent_app().await;
    app.upstream.set(|b| b.discovery_status = Some(503));
    let p = AuthParams::new("trusted", "openid email").with("prompt", "none");
    let q = match app.start(&browser(), &p).await {
        Outcome::Client(q) => q,
        other => panic!("expected the app, got {other:?}"),
    };
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("temporarily_unavailable"),
        "{q:?}"
    );
    assert_eq!(q.get("state"), Some(&p.state), "{q:?}");
    assert_eq!(q.get("iss"), Some(&app.base), "{q:?}");
}

#[tokio::test]
async fn without_silent_login_prompt_none_never_reaches_the_upstream() {
    let app = spawn_app().await;
    let before = app.upstream.state.authorize_requests.lock().unwrap().len();
    let p = AuthParams::new("trusted", "openid email").with("prompt", "none");
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

#[tokio::test]
async fn a_silent_attempt_that_fails_goes_back_to_the_app_instead_of_showing_a_page() {
    let app = silent_app().await;
    let p = AuthParams::new("trusted", "openid email").with("prompt", "none");
    // The upstream reports another error: no page, the app hears server_error.
    app.upstream
        .set(|b| b.authorize_error = Some("server_error".into()));
    let q = match app.start(&browser(), &p).await {
        Outcome::Client(q) => q,
        other => panic!("expected the app, got {other:?}"),
    };
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("server_error"),
        "{q:?}"
    );
    assert_eq!(q.get("state"), Some(&p.state));
    // The upstream's token endpoint fails: no page either.
    app.upstream.set(|b| {
        b.authorize_error = None;
        b.token_status = Some(503);
    });
    let q = match app.start(&browser(), &p).await {
        Outcome::Client(q) => q,
        other => panic!("expected the app, got {other:?}"),
    };
    assert!(q.contains_key("error"), "{q:?}");
    assert!(!q.contains_key("code"), "{q:?}");
}
