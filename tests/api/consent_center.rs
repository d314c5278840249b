//! The consent lifecycle end to end: what the consent page asks, what grants and tokens carry,
//! the consent center at `/account` (withdrawal, CSRF, export) and proof of consent.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;

/// `email` made optional, with its description spelled out so a test can reword it.
const OPTIONAL_EMAIL: &str = r#"
[scopes.email]
description = "Your email address"
claims = ["email", "email_verified"]
optional = true
"#;

/// The consent center's page for a browser, signing in through the upstream when needed.
async fn account_page(app: &TestApp, b: &reqwest::Client) -> String {
    match app.follow(b, format!("{}/account", app.base)).await {
        Outcome::Page(StatusCode::OK, html) => html,
        other => panic!("expected the consent center, got {other:?}"),
    }
}

fn csrf_of(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn withdraw(
    app: &TestApp,
    b: &reqwest::Client,
    csrf: Option<&str>,
    client_id: &str,
) -> reqwest::Response {
    let mut form = vec![("withdraw", client_id)];
    if let Some(c) = csrf {
        form.push(("csrf", c));
    }
    b.post(format!("{}/account", app.base))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Allows on the consent page with only `checked` among its optional checkboxes ticked.
async fn allow_with(
    app: &TestApp,
    b: &reqwest::Client,
    html: &str,
    checked: &[&str],
) -> std::collections::HashMap<String, String> {
    let (request, csrf) = consent_fields(html);
    let mut form = vec![
        ("request", request.as_str()),
        ("csrf", csrf.as_str()),
        ("decision", "allow"),
    ];
    form.extend(checked.iter().map(|s| ("scope", *s)));
    let res = b
        .post(format!("{}/consent", app.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    match app.after(b, res).await {
        Outcome::Client(q) => q,
        other => panic!("after consent: {other:?}"),
    }
}

async fn sub_of(app: &TestApp, access_token: &str) -> String {
    let info: Value = app.userinfo(access_token).await.json().await.unwrap();
    info["sub"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn withdrawing_in_the_consent_center_revokes_tokens_deletes_the_grant_and_asks_again() {
    let app = spawn_app().await;
    let t = app.tokens(&AuthParams::new("app", "openid email")).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status(), 200);
    let sub = sub_of(&app, access).await;

    // The browser's login at Herald signs it in to the consent center: no second upstream trip.
    let upstream_logins = app.upstream.state.authorize_requests.lock().unwrap().len();
    let res = app
        .browser
        .get(format!("{}/account", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(
        res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    assert_eq!(
        app.upstream.state.authorize_requests.lock().unwrap().len(),
        upstream_logins
    );
    assert!(html.contains("Test &#60;App&#62;") || html.contains("Test &lt;App&gt;"));
    assert!(!html.contains("Test <App>"));
    assert!(html.contains("Your email address"), "{html}");
    assert!(html.contains(r#"<form method="post">"#));
    assert!(html.contains(r#"name="withdraw" value="app""#));
    assert!(html.contains(" UTC</time>"), "readable UTC dates: {html}");

    let res = withdraw(&app, &app.browser, Some(&csrf_of(&html)), "app").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/account?withdrawn=app");
    let after = app
        .browser
        .get(format!("{}/account?withdrawn=app", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        after.contains("You withdrew your consent for Test"),
        "{after}"
    );
    assert!(!after.contains(r#"value="app""#));

    assert_eq!(app.userinfo(access).await.status(), 401);
    assert!(app.state.store.grant(&sub, "app").await.unwrap().is_none());
    let last = app.state.store.consent_records(&sub).await.unwrap();
    let last = last.last().unwrap();
    assert_eq!(
        (
            last.method.as_str(),
            last.allowed.as_str(),
            last.denied.as_str()
        ),
        ("consent_center", "", "email openid")
    );
    // A withdrawal is its own decision, not a denial.
    assert_eq!(last.decision, herald::store::ConsentOutcome::Withdrawn);
    // The next login asks again.
    assert!(matches!(
        app.start(&app.browser, &AuthParams::new("app", "openid email"))
            .await,
        Outcome::Consent(_)
    ));
}

#[tokio::test]
async fn withdraw_without_csrf_with_a_wrong_one_or_from_another_session_is_refused_and_the_grant_stays()
 {
    let app = spawn_app().await;
    let t = app.tokens(&AuthParams::new("app", "openid")).await;
    let access = t["access_token"].as_str().unwrap();
    let sub = sub_of(&app, access).await;
    let csrf = csrf_of(&account_page(&app, &app.browser).await);

    // The same user signed in to the consent center in a second browser.
    let other = browser();
    let other_csrf = csrf_of(&account_page(&app, &other).await);
    assert_ne!(csrf, other_csrf, "each session has its own token");

    for (b, token, why) in [
        (&app.browser, None, "no token"),
        (&app.browser, Some("forged"), "wrong token"),
        (
            &app.browser,
            Some(other_csrf.as_str()),
            "another session's token",
        ),
        (&other, Some(csrf.as_str()), "token used in another session"),
        (
            &browser(),
            Some(csrf.as_str()),
            "a browser that is not signed in",
        ),
    ] {
        let res = withdraw(&app, b, token, "app").await;
        assert_eq!(res.status(), 403, "{why}");
        let page = res.text().await.unwrap();
        assert!(page.contains("Request refused"), "{why}: {page}");
        assert!(page.contains("nothing was changed"), "{why}: {page}");
    }
    assert!(app.state.store.grant(&sub, "app").await.unwrap().is_some());
    assert_eq!(
        app.state.store.consent_records(&sub).await.unwrap().len(),
        1
    );
    assert_eq!(app.userinfo(access).await.status(), 200);
}

#[tokio::test]
async fn consent_records_are_appended_never_rewritten_and_export_as_json() {
    let app = spawn_app().await;
    let t = app.tokens(&AuthParams::new("app", "openid")).await;
    let sub = sub_of(&app, t["access_token"].as_str().unwrap()).await;
    let first = app.state.store.consent_records(&sub).await.unwrap();
    assert_eq!(first.len(), 1);

    // Widen, withdraw, use a trusted app, allow again: four more decisions.
    app.login(&app.browser, &AuthParams::new("app", "openid email"))
        .await;
    let csrf = csrf_of(&account_page(&app, &app.browser).await);
    assert_eq!(
        withdraw(&app, &app.browser, Some(&csrf), "app")
            .await
            .status(),
        303
    );
    app.login(&app.browser, &AuthParams::new("trusted", "openid email"))
        .await;
    app.login(&app.browser, &AuthParams::new("app", "openid"))
        .await;

    let records = app.state.store.consent_records(&sub).await.unwrap();
    assert_eq!(records.len(), 5);
    assert_eq!(records[0], first[0], "the first record is unchanged");
    let methods: Vec<&str> = records.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        ["page", "page", "consent_center", "trusted_app", "page"]
    );

    let res = app
        .browser
        .get(format!("{}/account/consents.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let export: Value = res.json().await.unwrap();
    assert_eq!(export["sub"], sub.as_str());
    let exported = export["records"].as_array().unwrap();
    assert_eq!(exported.len(), 5);
    assert_eq!(exported[0]["id"], records[0].id.as_str());
    assert_eq!(exported[0]["client_name"], "Test <App>");
    assert_eq!(exported[0]["allowed"], serde_json::json!(["openid"]));
    assert_eq!(
        exported[2]["denied"],
        serde_json::json!(["email", "openid"])
    );
    assert_eq!(exported[2]["decision"], "withdrawn");
    assert_eq!(exported[3]["method"], "trusted_app");
    assert!(exported[0]["text_versions"]["openid"].is_string());
    // A receipt: the words shown, in the locale shown, not only their version.
    assert_eq!(exported[0]["locale"], "en");
    assert_eq!(
        exported[0]["wording"]["scopes"]["openid"],
        "Sign you in with your account"
    );
    assert!(
        exported[0]["decided_at_utc"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // The trusted app is listed too, so its consent can be withdrawn like any other.
    let html = account_page(&app, &app.browser).await;
    assert!(html.contains(r#"name="withdraw" value="trusted""#));

    // Nobody else's browser gets the records.
    let res = browser()
        .get(format!("{}/account/consents.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn the_consent_center_signs_in_through_the_upstream_and_grants_nothing_to_itself() {
    let app = spawn_app().await;
    let before = app.upstream.state.authorize_requests.lock().unwrap().len();
    let html = account_page(&app, &app.browser).await;
    assert_eq!(
        app.upstream.state.authorize_requests.lock().unwrap().len(),
        before + 1,
        "signed in at the upstream"
    );
    assert!(html.contains("No app has access"), "{html}");
    // The login it made is Herald's login: an app now skips the upstream but still asks.
    assert!(matches!(
        app.start(&app.browser, &AuthParams::new("app", "openid"))
            .await,
        Outcome::Consent(_)
    ));
    assert_eq!(
        app.upstream.state.authorize_requests.lock().unwrap().len(),
        before + 1
    );
    let export: Value = app
        .browser
        .get(format!("{}/account/consents.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(export["records"], serde_json::json!([]));
    // The consent center's client is not one an app can name.
    let p = AuthParams {
        redirect_uri: format!("{}/account", app.base),
        ..AuthParams::new("herald-account", "openid")
    };
    match app.start(&browser(), &p).await {
        Outcome::Page(status, body) => {
            assert_eq!(status, 400);
            assert!(body.contains("not registered"), "{body}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_cancelled_consent_center_login_says_so_instead_of_looping() {
    let app = spawn_app().await;
    app.upstream
        .set(|b| b.authorize_error = Some("access_denied".into()));
    match app
        .follow(&app.browser, format!("{}/account", app.base))
        .await
    {
        Outcome::Page(status, body) => {
            assert_eq!(status, 200);
            assert!(body.contains("You are not signed in"), "{body}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_unchecked_optional_scope_is_left_out_of_the_grant_and_the_tokens() {
    let app = spawn_app_with(OPTIONAL_EMAIL).await;
    let p = AuthParams::new("app", "openid email");
    let Outcome::Consent(html) = app.start(&app.browser, &p).await else {
        panic!("no consent page")
    };
    assert!(
        html.contains(r#"<input type="checkbox" name="scope" value="email" checked>"#),
        "{html}"
    );
    assert!(
        !html.contains(r#"name="scope" value="openid""#),
        "required scopes have no checkbox"
    );
    let q = allow_with(&app, &app.browser, &html, &[]).await;
    let res = app.redeem(&p, &q["code"]).await;
    assert_eq!(res.status(), 200);
    let t: Value = res.json().await.unwrap();
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(payload(access)["scope"], "openid");
    assert!(
        payload(t["id_token"].as_str().unwrap())
            .get("email")
            .is_none()
    );
    let info: Value = app.userinfo(access).await.json().await.unwrap();
    assert!(info.get("email").is_none(), "{info}");
    let sub = info["sub"].as_str().unwrap().to_string();
    let grant = app.state.store.grant(&sub, "app").await.unwrap().unwrap();
    assert_eq!(grant.scopes, "openid");
    let records = app.state.store.consent_records(&sub).await.unwrap();
    assert_eq!(
        (records[0].allowed.as_str(), records[0].denied.as_str()),
        ("openid", "email")
    );

    // Asked again, only for email, with openid shown as already allowed; ticked, it is granted.
    let p = AuthParams::new("app", "openid email");
    let Outcome::Consent(html) = app.start(&app.browser, &p).await else {
        panic!("no consent page for the declined scope")
    };
    assert!(html.contains("already allowed"));
    let q = allow_with(&app, &app.browser, &html, &["email"]).await;
    let t: Value = app.redeem(&p, &q["code"]).await.json().await.unwrap();
    assert_eq!(
        payload(t["access_token"].as_str().unwrap())["scope"],
        "openid email"
    );
    assert_eq!(
        payload(t["id_token"].as_str().unwrap())["email"],
        "alice@example.com"
    );
}

#[tokio::test]
async fn a_reworded_scope_description_asks_for_that_scope_again() {
    let app = spawn_app().await;
    app.login(&app.browser, &AuthParams::new("app", "openid profile"))
        .await;
    assert!(matches!(
        app.start(&app.browser, &AuthParams::new("app", "openid profile"))
            .await,
        Outcome::Client(_)
    ));

    let reworded = format!(
        "{}\n[scopes.profile]\ndescription = \"Your name, picture and birthday\"\nclaims = [\"name\"]\n",
        app.config
    );
    let (settings, _) = herald::config::from_toml(&reworded).unwrap();
    app.state.replace_settings(settings);

    match app
        .start(&app.browser, &AuthParams::new("app", "openid profile"))
        .await
    {
        Outcome::Consent(html) => {
            assert!(html.contains("Your name, picture and birthday"), "{html}");
            assert_eq!(
                html.matches("already allowed").count(),
                1,
                "only openid is still granted: {html}"
            );
        }
        other => panic!("expected consent for the reworded scope, got {other:?}"),
    }
}

#[tokio::test]
async fn prompt_consent_asks_again_for_everything_granted() {
    let app = spawn_app().await;
    app.login(&app.browser, &AuthParams::new("app", "openid email"))
        .await;
    match app
        .start(
            &app.browser,
            &AuthParams::new("app", "openid email").with("prompt", "consent"),
        )
        .await
    {
        Outcome::Consent(html) => assert!(!html.contains("already allowed"), "{html}"),
        other => panic!("prompt=consent must ask, got {other:?}"),
    }
}

#[tokio::test]
async fn refused_consent_posts_explain_themselves_and_store_no_grant() {
    let app = spawn_app().await;
    let Outcome::Consent(html) = app
        .start(&app.browser, &AuthParams::new("app", "openid"))
        .await
    else {
        panic!()
    };
    let (request, csrf) = consent_fields(&html);
    let post = |b: reqwest::Client, csrf: Option<String>| {
        let url = format!("{}/consent", app.base);
        let request = request.clone();
        async move {
            let mut form = vec![("request", request), ("decision", "allow".to_string())];
            if let Some(c) = csrf {
                form.push(("csrf", c));
            }
            let res = b.post(url).form(&form).send().await.unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let (status, page) = post(app.browser.clone(), None).await;
    assert_eq!(status, 403);
    assert!(page.contains("missing its security token"), "{page}");
    let (status, page) = post(browser(), Some(csrf.clone())).await;
    assert_eq!(status, 403);
    assert!(page.contains("another browser"), "{page}");
    let sub = app
        .state
        .store
        .auth_request(&request)
        .await
        .unwrap()
        .unwrap()
        .sub
        .unwrap();
    assert!(app.state.store.grant(&sub, "app").await.unwrap().is_none());
    assert!(
        app.state
            .store
            .consent_records(&sub)
            .await
            .unwrap()
            .is_empty()
    );

    let (status, _) = post(app.browser.clone(), Some(csrf.clone())).await;
    assert_eq!(status, 303);
    // A replay stores nothing more, and tells this browser its first answer went through.
    let (status, page) = post(app.browser.clone(), Some(csrf)).await;
    assert_eq!(status, 200);
    assert!(page.contains("You have already answered"), "{page}");
    assert_eq!(
        app.state.store.consent_records(&sub).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn withdrawing_consent_also_kills_the_apps_refresh_tokens() {
    let app = spawn_app().await;
    let p = AuthParams::new("rp", "openid offline_access");
    let t = app.tokens(&p).await;
    let refresh = t["refresh_token"]
        .as_str()
        .expect("offline_access yields a refresh token")
        .to_string();

    let html = account_page(&app, &app.browser).await;
    let res = withdraw(&app, &app.browser, Some(&csrf_of(&html)), "rp").await;
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );

    let res = app
        .api
        .post(format!("{}/token", app.base))
        .basic_auth("rp", Some(SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        app.userinfo(t["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
}
