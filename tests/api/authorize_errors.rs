use crate::support::*;

async fn get(app: &TestApp, p: &AuthParams) -> reqwest::Response {
    app.browser.get(app.authorize_url(p)).send().await.unwrap()
}

fn redirected(res: &reqwest::Response) -> std::collections::HashMap<String, String> {
    assert_eq!(res.status(), 303, "expected a redirect to the client");
    let loc = res.headers()["location"].to_str().unwrap();
    assert!(loc.starts_with(APP_CB), "{loc}");
    query_of(loc)
}

#[tokio::test]
async fn unknown_client_gets_an_error_page_and_no_redirect() {
    let app = spawn_app().await;
    let res = get(&app, &AuthParams::new("nobody", "openid")).await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert!(res.text().await.unwrap().contains("not registered"));
}

#[tokio::test]
async fn unregistered_or_altered_redirect_uri_gets_an_error_page() {
    let app = spawn_app().await;
    for uri in [
        "http://127.0.0.1:9000/cb/",
        "http://127.0.0.1:9000/CB",
        "http://127.0.0.1:9001/cb",
        "http://127.0.0.1:9000/cb?x=1",
        "https://evil.example/cb",
    ] {
        let mut p = AuthParams::new("app", "openid");
        p.redirect_uri = uri.into();
        let res = get(&app, &p).await;
        assert_eq!(res.status(), 400, "{uri}");
        assert!(res.headers().get("location").is_none(), "{uri}");
    }
    let mut p = AuthParams::new("app", "openid");
    p.extra.push(("redirect_uri".into(), APP_CB.into()));
    assert_eq!(get(&app, &p).await.status(), 400, "duplicated redirect_uri");
}

#[tokio::test]
async fn missing_or_unsupported_response_type_is_redirected_with_state_and_iss() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid");
    let mut u = url::Url::parse(&format!("{}/authorize", app.base)).unwrap();
    u.query_pairs_mut()
        .extend_pairs(p.query().into_iter().filter(|(k, _)| k != "response_type"));
    let q = redirected(&app.browser.get(u.as_str()).send().await.unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], p.state);
    assert_eq!(q["iss"], app.base);
    let q = redirected(
        &get(
            &app,
            &AuthParams::new("app", "openid").with("response_type", "token"),
        )
        .await,
    );
    assert_eq!(q["error"], "invalid_request", "response_type twice");
}

#[tokio::test]
async fn duplicate_parameters_are_invalid_request() {
    let app = spawn_app().await;
    let q = redirected(
        &get(
            &app,
            &AuthParams::new("app", "openid").with("nonce", "again"),
        )
        .await,
    );
    assert_eq!(q["error"], "invalid_request");
}

#[tokio::test]
async fn unknown_or_unallowed_scope_is_invalid_scope() {
    let app = spawn_app().await;
    assert_eq!(
        redirected(&get(&app, &AuthParams::new("app", "openid nonsense")).await)["error"],
        "invalid_scope"
    );
    assert_eq!(
        redirected(&get(&app, &AuthParams::new("spa", "openid email")).await)["error"],
        "invalid_scope"
    );
}

#[tokio::test]
async fn pkce_is_required_for_public_clients_and_plain_is_refused() {
    let app = spawn_app().await;
    let mut p = AuthParams::new("spa", "openid");
    p.verifier = None;
    assert_eq!(redirected(&get(&app, &p).await)["error"], "invalid_request");
    let mut p = AuthParams::new("app", "openid");
    p.verifier = None;
    let p = p
        .with("code_challenge", &"a".repeat(43))
        .with("code_challenge_method", "plain");
    assert_eq!(redirected(&get(&app, &p).await)["error"], "invalid_request");
    let mut p = AuthParams::new("app", "openid");
    p.verifier = None;
    let p = p
        .with("code_challenge", "short")
        .with("code_challenge_method", "S256");
    assert_eq!(redirected(&get(&app, &p).await)["error"], "invalid_request");
}

#[tokio::test]
async fn request_objects_are_refused_never_ignored() {
    let app = spawn_app().await;
    assert_eq!(
        redirected(
            &get(
                &app,
                &AuthParams::new("app", "openid").with("request", "x.y.z")
            )
            .await
        )["error"],
        "request_not_supported"
    );
    assert_eq!(
        redirected(
            &get(
                &app,
                &AuthParams::new("app", "openid").with("request_uri", "https://x")
            )
            .await
        )["error"],
        "request_uri_not_supported"
    );
}

#[tokio::test]
async fn unknown_parameters_and_display_hints_are_ignored() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid")
        .with("foo", "bar")
        .with("display", "popup")
        .with("ui_locales", "de")
        .with("login_hint", "x");
    let q = app.login(&app.browser, &p).await;
    assert!(q.contains_key("code"));
}

#[tokio::test]
async fn authorization_by_post_works() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid");
    let res = app
        .browser
        .post(format!("{}/authorize", app.base))
        .form(&p.query())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    match app.after(&app.browser, res).await {
        Outcome::Consent(_) => {}
        other => panic!("{other:?}"),
    }
}
