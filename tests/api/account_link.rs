//! The consent center by link, and exports (issue 16): a single-use link opens one user's
//! consent center without an upstream login and lets it list and withdraw grants only; the
//! admin export and `/account/data.json` hold everything Herald keeps about the user, and no
//! credential.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

/// A consent platform's client: it may make account links and nothing else.
const LINKER: &str = r#"
[[clients]]
client_id = "cmp"
client_secret = "cmp-secret-for-tests"
redirect_uris = []
scopes = ["herald:account-link"]
grant_types = ["client_credentials"]
"#;

async fn cmp_token(app: &TestApp) -> String {
    app.client_credentials("cmp", "cmp-secret-for-tests", "herald:account-link")
        .await
}

/// A user with grants to `app` and `trusted`; returns their sub.
async fn user_with_grants(app: &TestApp) -> String {
    let tokens = app
        .tokens(&AuthParams::new("app", "openid email groups"))
        .await;
    app.login(&app.browser, &AuthParams::new("trusted", "openid"))
        .await;
    payload(tokens["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Opens `url` (an account link) in `b` and presses the button; the answer to the POST.
async fn open_link(app: &TestApp, b: &reqwest::Client, url: &str) -> reqwest::Response {
    let page = b.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    b.post(format!("{}/account/link", app.base))
        .form(&[
            ("token", form_field(&html, "token").as_str()),
            ("csrf", form_field(&html, "csrf").as_str()),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_link_opens_one_users_consent_center_once_for_listing_and_withdrawing_only() {
    let app = spawn_app_with(LINKER).await;
    let sub = user_with_grants(&app).await;
    let upstream_logins = app.upstream.state.authorize_requests.lock().unwrap().len();

    // The consent platform makes the link; its token opens nothing else of the admin API.
    let token = cmp_token(&app).await;
    let path = format!("/admin/api/users/{sub}/account-link");
    let res = app.admin(Method::POST, &path, Some(&token), None).await;
    assert_eq!(res.status(), 201);
    let link: Value = res.json().await.unwrap();
    let url = link["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("{}/account/link?token=", app.base)),
        "{url}"
    );
    let expires = link["expires_at"].as_str().unwrap();
    assert_eq!(
        time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp(),
        app.state.now() + 900,
        "15 minutes by default"
    );
    let other = app
        .admin(
            Method::GET,
            &format!("/admin/api/users/{sub}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(other.status(), 403);

    // A mail scanner fetching the link spends nothing.
    let scanner = browser();
    assert_eq!(scanner.get(&url).send().await.unwrap().status(), 200);

    // The user's browser, signed in nowhere, opens it.
    let b = browser();
    let res = open_link(&app, &b, &url).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/account");
    let html = b
        .get(format!("{}/account", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("You opened this page with a link"), "{html}");
    assert!(html.contains(r#"name="withdraw" value="app""#), "{html}");
    assert!(
        html.contains(r#"name="withdraw" value="trusted""#),
        "{html}"
    );
    assert!(!html.contains("/account/data.json"), "no downloads by link");
    // No upstream login was needed.
    assert_eq!(
        app.upstream.state.authorize_requests.lock().unwrap().len(),
        upstream_logins
    );

    // It withdraws, recorded as the user's own withdrawal.
    let res = b
        .post(format!("{}/account", app.base))
        .form(&[
            ("csrf", form_field(&html, "csrf").as_str()),
            ("withdraw", "app"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(app.state.store.grant(&sub, "app").await.unwrap().is_none());
    let last = app.state.store.consent_records(&sub).await.unwrap();
    let last = last.last().unwrap();
    assert_eq!(last.method, herald::store::ConsentMethod::ConsentCenter);

    // Nothing else: no downloads, and no login at Herald for apps.
    for path in ["/account/data.json", "/account/consents.json"] {
        let res = b.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
    match app
        .start(
            &b,
            &AuthParams::new("trusted", "openid").with("prompt", "none"),
        )
        .await
    {
        Outcome::Client(q) => assert_eq!(q["error"], "login_required", "{q:?}"),
        other => panic!("{other:?}"),
    }

    // A second use, in any browser, is refused with a page that says so.
    let res = open_link(&app, &browser(), &url).await;
    assert_eq!(res.status(), StatusCode::GONE);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("This link was already used")
    );
}

#[tokio::test]
async fn an_expired_a_forged_and_a_cross_browser_link_are_refused_clearly() {
    let app = spawn_app_with(LINKER).await;
    let sub = user_with_grants(&app).await;
    let path = format!("/admin/api/users/{sub}/account-link");
    let link = app
        .admin_ok(Method::POST, &path, Some(json!({"expires_in": 60})), 201)
        .await;
    let url = link["url"].as_str().unwrap().to_string();
    app.clock.advance(61);
    let res = open_link(&app, &browser(), &url).await;
    assert_eq!(res.status(), StatusCode::GONE);
    assert!(res.text().await.unwrap().contains("This link has expired"));

    let forged = format!("{}/account/link?token=not-a-real-token", app.base);
    let res = open_link(&app, &browser(), &forged).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.text().await.unwrap().contains("This link is not valid"));

    // The button's form from one browser does not work from another (CSRF in the session).
    let fresh = app.admin_ok(Method::POST, &path, None, 201).await;
    let url = fresh["url"].as_str().unwrap();
    let html = browser()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = browser()
        .post(format!("{}/account/link", app.base))
        .form(&[
            ("token", form_field(&html, "token").as_str()),
            ("csrf", form_field(&html, "csrf").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // ... and did not spend the link.
    assert_eq!(open_link(&app, &browser(), url).await.status(), 303);

    // Opened in a browser where someone is signed in, a link ends that login: the browser
    // never shows one person's consents beside another's downloads.
    let mine = app
        .browser
        .get(format!("{}/account/data.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(mine.status(), 200);
    let third = app.admin_ok(Method::POST, &path, None, 201).await;
    let res = open_link(&app, &app.browser, third["url"].as_str().unwrap()).await;
    assert_eq!(res.status(), 303);
    let after = app
        .browser
        .get(format!("{}/account/data.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);

    // Bad lifetimes and unknown users are refused; a user's token cannot make links.
    let res = app
        .admin(
            Method::POST,
            &path,
            Some(ADMIN_TOKEN),
            Some(&json!({"expires_in": 5})),
        )
        .await;
    assert_eq!(res.status(), 400);
    let res = app
        .admin(
            Method::POST,
            "/admin/api/users/nobody/account-link",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn the_export_holds_everything_about_the_user_and_no_credential() {
    let app = spawn_app().await;
    let p = AuthParams::new("rp", "openid email offline_access");
    let tokens = app.tokens(&p).await;
    let sub = payload(tokens["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string();
    let export = app
        .admin_ok(
            Method::GET,
            &format!("/admin/api/users/{sub}/export"),
            None,
            200,
        )
        .await;
    assert_eq!(export["sub"], sub.as_str());
    assert_eq!(export["profile"]["upstream"], "test");
    assert!(
        export["profile"]["created_at"]["utc"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    // The stored login, with each value's origin.
    let login = &export["logins"][0];
    assert_eq!(login["upstream"], "test");
    assert!(
        login["context"]["attributes"]["email"].is_string(),
        "{login}"
    );
    assert!(login["context"]["origins"]["email"].is_array(), "{login}");
    assert_eq!(export["grants"][0]["client_id"], "rp");
    assert_eq!(export["consent_records"][0]["decision"], "granted");
    assert_eq!(export["access_tokens"][0]["client_id"], "rp");
    assert_eq!(
        export["refresh_tokens"][0]["scope"],
        "openid email offline_access"
    );
    assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
    // No token, digest or session id in it.
    let text = export.to_string();
    for secret in [
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
        tokens["id_token"].as_str().unwrap(),
    ] {
        assert!(!text.contains(secret));
    }
    assert!(
        !text.contains("token_hash") && !text.contains("code_hash"),
        "{text}"
    );

    // The user downloads the same from the consent center.
    let res = app
        .browser
        .get(format!("{}/account/data.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let mine: Value = res.json().await.unwrap();
    assert_eq!(mine["sub"], sub.as_str());
    assert_eq!(mine["grants"], export["grants"]);
    // Nobody else's browser does.
    let res = browser()
        .get(format!("{}/account/data.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // The export is in the audit log.
    let audit = app
        .admin_ok(
            Method::GET,
            &format!("/admin/api/audit?target=user:{sub}"),
            None,
            200,
        )
        .await;
    assert!(audit.to_string().contains("user.export"), "{audit}");
    let res = app
        .admin(
            Method::GET,
            "/admin/api/users/nobody/export",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(res.status(), 404);
}
