use crate::support::*;

async fn code_for(app: &TestApp, p: &AuthParams) -> String {
    app.login(&app.browser, p).await["code"].clone()
}

async fn error_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    let v: serde_json::Value = res.json().await.unwrap();
    (status, v["error"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn code_reuse_is_invalid_grant_and_revokes_the_first_tokens() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid");
    let code = code_for(&app, &p).await;
    let first: serde_json::Value = app.redeem(&p, &code).await.json().await.unwrap();
    let at = first["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(at).await.status(), 200);
    assert_eq!(
        error_of(app.redeem(&p, &code).await).await,
        (400, "invalid_grant".into())
    );
    let res = app.userinfo(at).await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}

/// A code is read with the login it was issued from: an unused code whose login has ended (a
/// revoked context, as a back-channel logout leaves one) or is gone is `invalid_grant`, and the
/// description says which.
#[tokio::test]
async fn a_code_whose_login_has_ended_or_is_gone_is_refused_and_says_which() {
    let app = spawn_app().await;
    let now = app.state.now();
    let store = &app.state.store;
    let ended = herald::store::StoredContext {
        revoked_at: Some(now),
        ..stored_login("ctx-ended", "sub-1", "test", now)
    };
    store.insert_context(&ended).await.unwrap();
    // The codes were issued without PKCE.
    let p = AuthParams {
        verifier: None,
        ..AuthParams::new("rp", "openid")
    };
    for (ctx, why) in [("ctx-ended", "has ended"), ("ctx-never-stored", "is gone")] {
        let value = herald::tokens::random_token();
        let hash = herald::tokens::hashing::digest_hex(&value);
        store
            .insert_code(&stored_code(&hash, "sub-1", "openid", ctx, now))
            .await
            .unwrap();
        let (status, error, description) = oauth_error(app.redeem(&p, &value).await).await;
        assert_eq!(
            (status.as_u16(), error.as_str()),
            (400, "invalid_grant"),
            "{ctx}"
        );
        assert!(description.contains(why), "{ctx}: {description}");
    }
}

#[tokio::test]
async fn parallel_redemptions_of_one_code_yield_exactly_one_success() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid");
    let code = code_for(&app, &p).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (api, base, p, code) = (app.api.clone(), app.base.clone(), p.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            redemption(&api, &base, &p, &code, Some(SECRET))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            400 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn wrong_code_verifier_is_invalid_grant_and_burns_the_code() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid");
    let code = code_for(&app, &p).await;
    let mut wrong = p.clone();
    wrong.verifier = Some(herald::tokens::random_token());
    assert_eq!(
        error_of(app.redeem(&wrong, &code).await).await.1,
        "invalid_grant"
    );
    assert_eq!(
        error_of(app.redeem(&p, &code).await).await.1,
        "invalid_grant",
        "the failed attempt burned the code"
    );
}

#[tokio::test]
async fn redirect_uri_must_match_and_codes_belong_to_their_client() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid");
    let code = code_for(&app, &p).await;
    let mut other = p.clone();
    other.redirect_uri = "http://127.0.0.1:9000/other".into();
    assert_eq!(
        error_of(app.redeem(&other, &code).await).await.1,
        "invalid_grant"
    );
    let mut thief = p.clone();
    thief.client_id = "trusted".into();
    assert_eq!(
        error_of(app.redeem(&thief, &code).await).await.1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn expired_code_is_invalid_grant() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid");
    let code = code_for(&app, &p).await;
    app.clock.advance(61);
    assert_eq!(
        error_of(app.redeem(&p, &code).await).await.1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn wrong_secret_is_401_invalid_client_with_basic_challenge() {
    let app = spawn_app().await;
    let res = app
        .api
        .post(format!("{}/token", app.base))
        .basic_auth("app", Some("wrong"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", APP_CB),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(error_of(res).await.1, "invalid_client");
}

#[tokio::test]
async fn malformed_token_requests_get_the_spec_error_codes() {
    let app = spawn_app().await;
    let url = format!("{}/token", app.base);
    assert_eq!(
        error_of(app.api.get(&url).send().await.unwrap()).await,
        (400, "invalid_request".into())
    );
    let json_body = app
        .api
        .post(&url)
        .basic_auth("app", Some(SECRET))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(json_body).await.1, "invalid_request");
    let unknown = app
        .api
        .post(&url)
        .basic_auth("app", Some(SECRET))
        .form(&[("grant_type", "urn:nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(unknown).await.1, "unsupported_grant_type");
    let not_allowed = app
        .api
        .post(&url)
        .basic_auth("app", Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(not_allowed).await.1, "unauthorized_client");
    let both = app
        .api
        .post(&url)
        .basic_auth("app", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(both).await.1, "invalid_request");
}

#[tokio::test]
async fn userinfo_refuses_missing_tokens_and_id_tokens() {
    let app = spawn_app().await;
    let res = app
        .api
        .get(format!("{}/userinfo", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let t = app.tokens(&AuthParams::new("app", "openid")).await;
    let res = app.userinfo(t["id_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 401, "an ID token is not an access token");
    // POST with a form body works too.
    let res = app
        .api
        .post(format!("{}/userinfo", app.base))
        .form(&[("access_token", t["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
