//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

use crate::support::*;

const BYE: &str = "http://127.0.0.1:9000/bye";

const CLIENT: &str = r#"
[[clients]]
client_id = "lo"
client_secret = "app-secret-for-tests"
redirect_uris = ["http://127.0.0.1:9000/cb"]
post_logout_redirect_uris = ["http://127.0.0.1:9000/bye"]
scopes = ["openid"]
trusted = true
"#;

fn logout_url(app: &TestApp, params: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&format!("{}/logout", app.base)).unwrap();
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

async fn is_logged_in(app: &TestApp) -> bool {
    match app
        .start(
            &app.browser,
            &AuthParams::new("lo", "openid").with("prompt", "none"),
        )
        .await
    {
        Outcome::Client(q) => q.contains_key("code"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_valid_hint_ends_the_session_and_returns_to_the_registered_uri_with_state() {
    let app = spawn_app_with(CLIENT).await;
    let t = app.tokens(&AuthParams::new("lo", "openid")).await;
    assert!(is_logged_in(&app).await);
    let url = logout_url(
        &app,
        &[
            ("id_token_hint", t["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", BYE),
            ("state", "s1"),
        ],
    );
    let res = app.browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], format!("{BYE}?state=s1"));
    // The browser's binding ends with its session: a sign-in it left pending cannot go on.
    let removed = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("herald_binding="));
    let removed = removed.expect("the logout removes the binding cookie");
    assert!(removed.starts_with("herald_binding=;"), "{removed}");
    assert!(removed.contains("Max-Age=0"), "{removed}");
    assert!(
        !is_logged_in(&app).await,
        "prompt=none now answers login_required"
    );
    let d: serde_json::Value = app
        .api
        .get(format!("{}/.well-known/openid-configuration", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["end_session_endpoint"], format!("{}/logout", app.base));
}

#[tokio::test]
async fn an_unregistered_post_logout_redirect_uri_gets_a_page_and_no_redirect() {
    let app = spawn_app_with(CLIENT).await;
    let t = app.tokens(&AuthParams::new("lo", "openid")).await;
    let url = logout_url(
        &app,
        &[
            ("id_token_hint", t["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
    );
    let res = app.browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert!(is_logged_in(&app).await, "still signed in");
}

#[tokio::test]
async fn logout_without_a_hint_asks_first_and_needs_the_forms_token() {
    let app = spawn_app_with(CLIENT).await;
    app.tokens(&AuthParams::new("lo", "openid")).await;
    let page = app
        .browser
        .get(logout_url(
            &app,
            &[("client_id", "lo"), ("post_logout_redirect_uri", BYE)],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign out of Herald?"));
    let forged = app
        .browser
        .post(format!("{}/logout", app.base))
        .form(&[("confirm", "yes"), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(is_logged_in(&app).await, "a forged form signs nobody out");

    let page = app
        .browser
        .get(logout_url(
            &app,
            &[
                ("client_id", "lo"),
                ("post_logout_redirect_uri", BYE),
                ("state", "s2"),
            ],
        ))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).unwrap() + marker.len();
    let csrf = html[start..].split('"').next().unwrap();
    let res = app
        .browser
        .post(format!("{}/logout", app.base))
        .form(&[
            ("confirm", "yes"),
            ("csrf", csrf),
            ("client_id", "lo"),
            ("post_logout_redirect_uri", BYE),
            ("state", "s2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], format!("{BYE}?state=s2"));
    assert!(!is_logged_in(&app).await);
}

#[tokio::test]
async fn with_upstream_logout_configured_the_browser_visits_the_upstream_and_comes_back() {
    let app = spawn_app_configured("logout = true", CLIENT).await;
    let t = app.tokens(&AuthParams::new("lo", "openid")).await;
    let url = logout_url(
        &app,
        &[
            ("id_token_hint", t["id_token"].as_str().unwrap()),
            ("post_logout_redirect_uri", BYE),
            ("state", "s3"),
        ],
    );
    let res = app.browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let to_upstream = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to_upstream.starts_with(&format!("{}/logout", app.upstream.issuer())),
        "{to_upstream}"
    );
    // The upstream sends the browser back to Herald, which returns it to the app.
    let back = app.browser.get(&to_upstream).send().await.unwrap();
    let done = back.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(done, format!("{}/logout/done", app.base));
    let res = app.browser.get(&done).send().await.unwrap();
    assert_eq!(res.headers()["location"], format!("{BYE}?state=s3"));
    let calls = app.upstream.state.logout_requests.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["client_id"], "herald-at-upstream");
}
