use crate::support::*;

#[tokio::test]
async fn upstream_down_gives_a_clear_error_page_with_a_way_back() {
    let app = spawn_app().await;
    app.upstream.stop();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (status, body) = app.page_after_login().await;
    assert_eq!(status, 502);
    assert!(body.contains("unavailable"), "{body}");
    assert!(body.contains("error=temporarily_unavailable"), "{body}");
}

#[tokio::test]
async fn upstream_id_token_with_wrong_nonce_is_rejected() {
    let app = spawn_app().await;
    app.upstream.set(|b| b.wrong_nonce = true);
    let (status, body) = app.page_after_login().await;
    assert_eq!(status, 502);
    assert!(body.contains("security checks"), "{body}");
}

#[tokio::test]
async fn upstream_id_token_from_another_issuer_is_rejected() {
    let app = spawn_app().await;
    app.upstream.set(|b| b.wrong_issuer = true);
    assert_eq!(app.page_after_login().await.0, 502);
}

#[tokio::test]
async fn upstream_userinfo_for_another_subject_is_rejected() {
    let app = spawn_app().await;
    app.upstream
        .set(|b| b.userinfo_sub = Some("auth0|mallory".into()));
    assert_eq!(app.page_after_login().await.0, 502);
}

#[tokio::test]
async fn upstream_500_html_at_the_token_endpoint_is_a_clear_error() {
    let app = spawn_app().await;
    app.upstream.set(|b| b.token_status = Some(500));
    let (status, body) = app.page_after_login().await;
    assert_eq!(status, 502);
    assert!(body.contains("Return to"), "{body}");
}

#[tokio::test]
async fn upstream_access_denied_goes_back_to_the_client() {
    let app = spawn_app().await;
    app.upstream
        .set(|b| b.authorize_error = Some("access_denied".into()));
    let p = AuthParams::new("app", "openid");
    match app.start(&app.browser, &p).await {
        Outcome::Client(q) => {
            assert_eq!(q["error"], "access_denied");
            assert_eq!(q["state"], p.state);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn callback_with_unknown_or_replayed_state_is_refused() {
    let app = spawn_app().await;
    let res = app
        .browser
        .get(format!("{}/callback/test?code=x&state=forged", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app
        .browser
        .get(format!("{}/callback/test?code=x", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

/// The upstream's answer counts only in the browser that started the sign-in (its
/// `herald_binding` cookie): the callback URL opened in another browser (a link passed on, a
/// forced login) is refused there, signs nobody in, and spends its state.
#[tokio::test]
async fn a_callback_in_another_browser_is_refused_and_signs_nobody_in() {
    let app = spawn_app().await;
    let p = AuthParams::new("trusted", "openid");
    let res = app.browser.get(app.authorize_url(&p)).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let to_upstream = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to_upstream.starts_with(app.upstream.issuer()),
        "{to_upstream}"
    );
    // The upstream signs the user in and answers with Herald's callback URL.
    let res = browser().get(&to_upstream).send().await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let callback = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        callback.starts_with(&format!("{}/callback/", app.base)),
        "{callback}"
    );

    let elsewhere = browser();
    let res = elsewhere.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let page = res.text().await.unwrap();
    assert!(page.contains("started in another browser"), "{page}");
    assert!(
        elsewhere
            .get(format!("{}/account", app.base))
            .send()
            .await
            .unwrap()
            .headers()
            .get("location")
            .is_some_and(|l| !l.to_str().unwrap().starts_with("/account")),
        "the other browser was signed in"
    );
    // The refused answer spent its state: the starting browser cannot use it either.
    let res = app.browser.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("expired or was already used")
    );
}

#[tokio::test]
async fn the_same_upstream_subject_keeps_one_herald_sub_and_another_gets_another() {
    let app = spawn_app().await;
    let a1 = payload(
        app.tokens(&AuthParams::new("trusted", "openid")).await["id_token"]
            .as_str()
            .unwrap(),
    )["sub"]
        .clone();
    let fresh = TestApp {
        browser: browser(),
        ..app
    };
    let a2 = payload(
        fresh.tokens(&AuthParams::new("trusted", "openid")).await["id_token"]
            .as_str()
            .unwrap(),
    )["sub"]
        .clone();
    assert_eq!(a1, a2);
    fresh.upstream.set(|b| b.subject = "auth0|bob".into());
    let other = TestApp {
        browser: browser(),
        ..fresh
    };
    let b = payload(
        other.tokens(&AuthParams::new("trusted", "openid")).await["id_token"]
            .as_str()
            .unwrap(),
    )["sub"]
        .clone();
    assert_ne!(a1, b);
}

#[tokio::test]
async fn an_upstream_key_rotated_right_after_discovery_is_picked_up_and_refetches_are_bounded() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid");
    // The first login fetches discovery and the JWKS.
    app.login(&browser(), &p).await;
    // A key rotated at once (well within the refetch cooldown) is still picked up: the cached
    // keys came on schedule, so one refetch is allowed.
    app.upstream.rotate_key();
    app.login(&browser(), &p).await;
    // That refetch starts the cooldown: another unknown key within it is refused, not fetched,
    // so tokens naming made-up keys cannot make Herald hammer the upstream.
    app.upstream.rotate_key();
    let outcome = app.start(&browser(), &p).await;
    match outcome {
        Outcome::Page(status, body) => {
            assert_eq!(status, 502, "{body}");
            assert!(body.contains("could not be verified"), "{body}");
        }
        other => panic!("expected the refusal page, got {other:?}"),
    }
}

/// An upstream that stalls is given up on after its `timeout`, with a clear page and an OAuth
/// error for the app; meanwhile every other endpoint answers at its usual speed.
#[tokio::test]
async fn a_stalled_upstream_times_out_and_slows_nothing_else() {
    let app = spawn_app_configured("timeout = \"1s\"", "").await;
    app.upstream
        .set(|b| b.token_stall = Some(std::time::Duration::from_secs(30)));
    let started = std::time::Instant::now();
    let login = app.page_after_login();
    let others = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut slowest = std::time::Duration::ZERO;
        for path in ["/healthz", "/.well-known/openid-configuration", "/jwks"] {
            let t = std::time::Instant::now();
            let res = app
                .api
                .get(format!("{}{path}", app.base))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{path}");
            slowest = slowest.max(t.elapsed());
        }
        slowest
    };
    let ((status, body), slowest) = tokio::join!(login, others);
    let took = started.elapsed();
    assert_eq!(status, 502);
    assert!(body.contains("unavailable"), "{body}");
    assert!(body.contains("error=temporarily_unavailable"), "{body}");
    assert!(
        took >= std::time::Duration::from_secs(1) && took < std::time::Duration::from_secs(10),
        "gave up after {took:?}"
    );
    assert!(
        slowest < std::time::Duration::from_millis(900),
        "another endpoint waited {slowest:?}"
    );
}

/// HTML where JSON belongs, at discovery and at the token endpoint: a clear page, not a panic
/// or a 500.
#[tokio::test]
async fn html_instead_of_json_is_a_clear_error() {
    let html = (
        "text/html",
        b"<html><body>Maintenance</body></html>".to_vec(),
    );
    let app = spawn_app().await;
    app.upstream.set(|b| b.discovery_body = Some(html.clone()));
    let (status, body) = app.page_after_login().await;
    assert_eq!(status, 502);
    assert!(body.contains("Return to"), "{body}");

    let app = spawn_app().await;
    app.upstream.set(|b| b.token_body = Some(html));
    let (status, body) = app.page_after_login().await;
    assert_eq!(status, 502);
    assert!(body.contains("Return to"), "{body}");
}

/// A 5 MB answer from discovery or the token endpoint, otherwise valid, is dropped past 1 MiB
/// with a clear page; a padded answer under the bound is read.
#[tokio::test]
async fn five_megabyte_answers_are_refused() {
    let app = spawn_app().await;
    app.upstream.set(|b| b.padding = 512 * 1024);
    let q = app
        .login(&app.browser, &AuthParams::new("app", "openid"))
        .await;
    assert!(q.contains_key("code"), "{q:?}");

    let app = spawn_app().await;
    app.upstream.set(|b| b.padding = 5 * 1024 * 1024);
    let (status, body) = app.page_after_login().await;
    assert_eq!(status, 502);
    assert!(body.contains("error=temporarily_unavailable"), "{body}");

    // Discovery read while small; then only the token response is large.
    let app = spawn_app().await;
    app.login(&app.browser, &AuthParams::new("app", "openid"))
        .await;
    app.upstream.set(|b| b.padding = 5 * 1024 * 1024);
    let (status, body) = match app
        .start(
            &app.browser,
            &AuthParams::new("app", "openid").with("prompt", "login"),
        )
        .await
    {
        Outcome::Page(s, b) => (s, b),
        other => panic!("{other:?}"),
    };
    assert_eq!(status, 502);
    assert!(body.contains("error=temporarily_unavailable"), "{body}");
}

/// Discovery, the JWKS and userinfo each answering 503 or 500: a clear 502 page that sends the
/// app `temporarily_unavailable`, never a 500 from Herald.
#[tokio::test]
async fn discovery_jwks_and_userinfo_failures_are_clear_errors() {
    type Knob = fn(&mut upstream::Behaviour);
    let knobs: [(&str, Knob); 4] = [
        ("discovery 503", |b| b.discovery_status = Some(503)),
        ("jwks 500", |b| b.jwks_status = Some(500)),
        ("userinfo 503", |b| b.userinfo_status = Some(503)),
        ("userinfo 500", |b| b.userinfo_status = Some(500)),
    ];
    for (what, knob) in knobs {
        let app = spawn_app().await;
        app.upstream.set(knob);
        let (status, body) = app.page_after_login().await;
        assert_eq!(status, 502, "{what}");
        assert!(
            body.contains("error=temporarily_unavailable"),
            "{what}: {body}"
        );
    }
}

/// ID tokens a hostile or broken upstream sends: expired, for another audience, issued in the
/// future, `alg: none`, HS256 keyed with the upstream's public key, a flipped signature bit, a
/// signature by another key under the published kid. Each is refused with the
/// "security checks" page, and the app is told `server_error`.
#[tokio::test]
async fn spoiled_upstream_id_tokens_are_refused() {
    use upstream::Spoil;
    for spoil in [
        Spoil::Expired,
        Spoil::WrongAudience,
        Spoil::IssuedInTheFuture,
        Spoil::AlgNone,
        Spoil::Hs256WithThePublicKey,
        Spoil::FlippedSignatureBit,
        Spoil::SignedByAnotherKey,
    ] {
        let app = spawn_app().await;
        app.upstream.set(|b| b.spoil = Some(spoil));
        let (status, body) = app.page_after_login().await;
        assert_eq!(status, 502, "{spoil:?}");
        assert!(body.contains("security checks"), "{spoil:?}: {body}");
        assert!(body.contains("error=server_error"), "{spoil:?}: {body}");
    }
}

/// The upstream's answer to a login started with `p`: the callback URL it redirects the browser
/// to, not yet followed.
async fn callback_url(app: &TestApp, p: &AuthParams) -> String {
    let mut url = app.authorize_url(p);
    loop {
        let res = app.browser.get(&url).send().await.unwrap();
        assert!(res.status().is_redirection(), "{}", res.status());
        let next = res
            .url()
            .join(res.headers()["location"].to_str().unwrap())
            .unwrap();
        if next.path().starts_with("/callback/") {
            return next.to_string();
        }
        url = next.to_string();
    }
}

/// Checklist 51: the upstream's answer is used once. Replaying the callback URL that completed a
/// login (same code, same state, same browser) is refused with 400 before any token request.
#[tokio::test]
async fn a_replayed_callback_is_refused_before_any_token_request() {
    let app = spawn_app().await;
    let p = AuthParams::new("trusted", "openid");
    let callback = callback_url(&app, &p).await;
    match app.follow(&app.browser, callback.clone()).await {
        Outcome::Client(q) => assert!(q.contains_key("code"), "{q:?}"),
        other => panic!("{other:?}"),
    }
    let exchanges = app.upstream.token_requests();
    let res = app.browser.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        app.upstream.token_requests(),
        exchanges,
        "the replayed code was sent to the upstream"
    );
}

/// A failed answer spends its state as a successful one does: the callback that failed at the
/// upstream's token endpoint, sent again once the upstream works, is refused before any token
/// request (the login's store transaction no longer takes the state first).
#[tokio::test]
async fn a_failed_callback_spends_its_state() {
    let app = spawn_app().await;
    app.upstream.set(|b| b.token_status = Some(500));
    let p = AuthParams::new("trusted", "openid");
    let callback = callback_url(&app, &p).await;
    let res = app.browser.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 502);
    app.upstream.set(|b| b.token_status = None);
    let exchanges = app.upstream.token_requests();
    let res = app.browser.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.text().await.unwrap().contains("already used"),
        "the refusal says why"
    );
    assert_eq!(app.upstream.token_requests(), exchanges);
}

/// Auth0's "Token Endpoint Authentication Method": Basic by default, the body when the
/// upstream says `client_secret_post`; anything else is refused by check-config.
#[tokio::test]
async fn the_upstream_secret_goes_by_basic_or_in_the_body_as_configured() {
    let basic = spawn_app().await;
    basic.tokens(&AuthParams::new("app", "openid")).await;
    assert_eq!(*basic.upstream.state.token_auth.lock().unwrap(), ["basic"]);
    let post =
        spawn_app_configured("token_endpoint_auth_method = \"client_secret_post\"\n", "").await;
    post.tokens(&AuthParams::new("app", "openid")).await;
    assert_eq!(*post.upstream.state.token_auth.lock().unwrap(), ["post"]);
    let err =
        herald::config::from_toml(&post.config.replace("client_secret_post", "private_key_jwt"))
            .unwrap_err()
            .to_string();
    assert!(
        err.contains(
            "upstreams[0].token_endpoint_auth_method: `private_key_jwt` is not one Herald uses"
        ),
        "{err}"
    );
}

/// Issue 19's rough edge: a JWKS that fails was reported as a failed discovery. The connection
/// test names the step that failed, and the message names the keys and their address.
#[tokio::test]
async fn a_failing_jwks_is_named_as_such_not_as_discovery() {
    let app = spawn_app().await;
    app.upstream.set(|b| b.jwks_status = Some(500));
    let v = app
        .admin_ok(
            reqwest::Method::POST,
            "/admin/api/upstreams/test/test",
            None,
            200,
        )
        .await;
    assert_eq!(v["ok"], false, "{v}");
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(
        (steps[0]["step"].as_str(), steps[0]["ok"].as_bool()),
        (Some("discovery"), Some(true)),
        "{v}"
    );
    assert_eq!(
        (steps[1]["step"].as_str(), steps[1]["ok"].as_bool()),
        (Some("jwks"), Some(false)),
        "{v}"
    );
    let detail = steps[1]["detail"].as_str().unwrap();
    assert!(detail.contains("signing keys (JWKS)"), "{detail}");
    assert!(detail.contains("/jwks"), "{detail}");
    assert!(!detail.contains("discovery failed"), "{detail}");
}
