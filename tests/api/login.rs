use crate::support::*;
use serde_json::json;

#[tokio::test]
async fn full_login_issues_signed_tokens_with_the_mapped_dotted_claim() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid profile email groups");
    let q = app.login(&app.browser, &p).await;
    assert_eq!(q["state"], p.state);
    assert_eq!(q["iss"], app.base, "RFC 9207 iss on the success redirect");
    let res = app.redeem(&p, &q["code"]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let t: serde_json::Value = res.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");

    // Verify the ID token's signature with Herald's published JWKS, independently.
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .api
        .get(format!("{}/jwks", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = t["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let key =
        jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap())
            .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&["app"]);
    v.set_issuer(&[app.base.as_str()]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(id_token, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(claims["nonce"], p.nonce.as_str());
    assert_eq!(
        claims["groups"],
        json!(["staff", "admins"]),
        "https://example.com/groups mapped to groups"
    );
    assert_eq!(claims["email"], "alice@example.com");
    assert!(claims["auth_time"].is_i64());
    assert!(claims.get("https://example.com/groups").is_none());

    let info: serde_json::Value = app
        .userinfo(t["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], claims["sub"]);
    assert_eq!(info["groups"], json!(["staff", "admins"]));
    assert_eq!(
        payload(t["access_token"].as_str().unwrap())["client_id"],
        "app"
    );
}

#[tokio::test]
async fn second_login_with_same_scopes_skips_consent() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid email");
    assert!(matches!(
        app.start(&app.browser, &p).await,
        Outcome::Consent(_)
    ));
    let first = app
        .login(&app.browser, &AuthParams::new("app", "openid email"))
        .await;
    assert!(first.contains_key("code"));
    // Same browser, same scopes: straight back with a code.
    match app
        .start(&app.browser, &AuthParams::new("app", "openid email"))
        .await
    {
        Outcome::Client(q) => assert!(q.contains_key("code")),
        other => panic!("expected no consent page, got {other:?}"),
    }
    // A new browser logs in upstream again, and still skips consent for the same user.
    let other_browser = browser();
    match app
        .start(&other_browser, &AuthParams::new("app", "openid email"))
        .await
    {
        Outcome::Client(q) => assert!(q.contains_key("code")),
        other => panic!("expected no consent page, got {other:?}"),
    }
    // Asking for more asks again, showing the granted scope as such.
    match app
        .start(
            &app.browser,
            &AuthParams::new("app", "openid email profile"),
        )
        .await
    {
        Outcome::Consent(html) => assert!(html.contains("already allowed")),
        other => panic!("expected consent for the new scope, got {other:?}"),
    }
}

#[tokio::test]
async fn consent_page_escapes_the_app_name_and_denies_framing() {
    let app = spawn_app().await;
    let res = app
        .browser
        .get(app.authorize_url(&AuthParams::new("app", "openid")))
        .send()
        .await
        .unwrap();
    let mut url = res.headers()["location"].to_str().unwrap().to_string();
    loop {
        let full = if url.starts_with('/') {
            format!("{}{url}", app.base)
        } else {
            url.clone()
        };
        let res = app.browser.get(&full).send().await.unwrap();
        if res.status().is_redirection() {
            url = res.headers()["location"].to_str().unwrap().to_string();
            continue;
        }
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        assert!(
            res.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(res.headers()["cache-control"], "no-store");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("Test &#60;App&#62;") || html.contains("Test &lt;App&gt;"),
            "{html}"
        );
        assert!(!html.contains("Test <App>"));
        assert!(
            html.contains(
                r#"<button class="primary" type="submit" name="decision" value="allow">"#
            )
        );
        break;
    }
}

#[tokio::test]
async fn trusted_client_never_sees_consent() {
    let app = spawn_app().await;
    match app
        .start(&app.browser, &AuthParams::new("trusted", "openid email"))
        .await
    {
        Outcome::Client(q) => assert!(q.contains_key("code")),
        other => panic!("trusted app saw {other:?}"),
    }
}

#[tokio::test]
async fn deny_redirects_access_denied_with_state_and_iss() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid");
    let Outcome::Consent(html) = app.start(&app.browser, &p).await else {
        panic!("no consent page")
    };
    match app.decide(&app.browser, &html, "deny").await {
        Outcome::Client(q) => {
            assert_eq!(q["error"], "access_denied");
            assert_eq!(q["state"], p.state);
            assert_eq!(q["iss"], app.base);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn consent_post_with_wrong_csrf_or_from_another_browser_is_refused_and_stores_no_grant() {
    let app = spawn_app().await;
    let Outcome::Consent(html) = app
        .start(&app.browser, &AuthParams::new("app", "openid"))
        .await
    else {
        panic!()
    };
    let (request, csrf) = consent_fields(&html);
    let post = |b: reqwest::Client, csrf: String| {
        let url = format!("{}/consent", app.base);
        let request = request.clone();
        async move {
            b.post(url)
                .form(&[
                    ("request", request.as_str()),
                    ("csrf", csrf.as_str()),
                    ("decision", "allow"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        post(app.browser.clone(), "forged".into()).await.status(),
        403
    );
    assert_eq!(
        post(browser(), csrf.clone()).await.status(),
        403,
        "another browser session"
    );
    let no_csrf = app
        .browser
        .post(format!("{}/consent", app.base))
        .form(&[("request", request.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
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
    // The genuine one works once; its replay changes nothing and says the first went through.
    assert_eq!(post(app.browser.clone(), csrf.clone()).await.status(), 303);
    let replay = post(app.browser.clone(), csrf).await;
    assert_eq!(replay.status(), 200);
    assert!(
        replay
            .text()
            .await
            .unwrap()
            .contains("You have already answered")
    );
}

#[tokio::test]
async fn prompt_none_without_a_session_answers_login_required_and_with_one_succeeds() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid").with("prompt", "none");
    match app.start(&app.browser, &p).await {
        Outcome::Client(q) => {
            assert_eq!(q["error"], "login_required");
            assert_eq!(q["state"], p.state);
        }
        other => panic!("{other:?}"),
    }
    app.login(&app.browser, &AuthParams::new("app", "openid"))
        .await;
    match app
        .start(
            &app.browser,
            &AuthParams::new("app", "openid").with("prompt", "none"),
        )
        .await
    {
        Outcome::Client(q) => assert!(q.contains_key("code"), "{q:?}"),
        other => panic!("{other:?}"),
    }
    match app
        .start(
            &app.browser,
            &AuthParams::new("app", "openid email").with("prompt", "none"),
        )
        .await
    {
        Outcome::Client(q) => assert_eq!(q["error"], "consent_required"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn prompt_login_goes_back_to_the_upstream() {
    let app = spawn_app().await;
    app.login(&app.browser, &AuthParams::new("app", "openid"))
        .await;
    let before = app.upstream.state.authorize_requests.lock().unwrap().len();
    app.login(
        &app.browser,
        &AuthParams::new("app", "openid").with("prompt", "login"),
    )
    .await;
    assert_eq!(
        app.upstream.state.authorize_requests.lock().unwrap().len(),
        before + 1
    );
    // Upstream requests carry PKCE S256, state and nonce.
    let last = app
        .upstream
        .state
        .authorize_requests
        .lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last["code_challenge_method"], "S256");
    assert!(last.contains_key("nonce") && last.contains_key("state"));
}

#[tokio::test]
async fn public_client_logs_in_with_pkce_and_no_secret() {
    let app = spawn_app().await;
    let p = AuthParams::new("spa", "openid profile");
    let t = app.tokens(&p).await;
    assert_eq!(payload(t["id_token"].as_str().unwrap())["aud"], "spa");
}

#[tokio::test]
async fn discovery_is_truthful_and_jwks_has_only_public_keys() {
    let app = spawn_app().await;
    let d: serde_json::Value = app
        .api
        .get(format!("{}/.well-known/openid-configuration", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], app.base);
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert!(
        d["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("groups"))
    );
    let jwks: serde_json::Value = app
        .api
        .get(format!("{}/jwks", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for k in jwks["keys"].as_array().unwrap() {
        assert!(k.get("d").is_none() && k.get("p").is_none());
        assert!(k["kid"].is_string());
    }
}

#[tokio::test]
async fn id_token_hint_of_the_logged_in_user_allows_silent_login_and_another_users_does_not() {
    let app = spawn_app().await;
    let mine = app.tokens(&AuthParams::new("app", "openid")).await;
    let my_hint = mine["id_token"].as_str().unwrap().to_string();
    let silent = |hint: &str| {
        AuthParams::new("app", "openid")
            .with("prompt", "none")
            .with("id_token_hint", hint)
    };
    match app.start(&app.browser, &silent(&my_hint)).await {
        Outcome::Client(q) => assert!(q.contains_key("code"), "{q:?}"),
        other => panic!("{other:?}"),
    }
    // Bob logs in on another browser; his ID token is no hint for Alice's session.
    app.upstream.set(|b| b.subject = "auth0|bob".into());
    let bob_browser = browser();
    let p = AuthParams::new("app", "openid");
    let q = app.login(&bob_browser, &p).await;
    let bob: serde_json::Value = app.redeem(&p, &q["code"]).await.json().await.unwrap();
    let bob_hint = bob["id_token"].as_str().unwrap().to_string();
    match app.start(&app.browser, &silent(&bob_hint)).await {
        Outcome::Client(q) => assert_eq!(q["error"], "login_required"),
        other => panic!("{other:?}"),
    }
    match app.start(&app.browser, &silent("not.a.token")).await {
        Outcome::Client(q) => assert_eq!(q["error"], "invalid_request"),
        other => panic!("{other:?}"),
    }
}

/// OIDC Core §3.1.2.1 `max_age`: a malformed one is `invalid_request` back at the client; a
/// login older than it goes back to the upstream and the ID token's `auth_time` is the new
/// login's; one within it is silent and carries the old `auth_time`; `prompt=none` with a
/// login that is too old answers `login_required`.
#[tokio::test]
async fn max_age_forces_a_fresh_login_and_auth_time_tells_when_it_was() {
    let app = spawn_app().await;
    for bad in ["soon", "-1", "1.5"] {
        let p = AuthParams::new("app", "openid").with("max_age", bad);
        match app.start(&app.browser, &p).await {
            Outcome::Client(q) => {
                assert_eq!(q["error"], "invalid_request", "max_age={bad}");
                assert_eq!(q["state"], p.state);
            }
            other => panic!("max_age={bad}: {other:?}"),
        }
    }
    let upstream_visits = || app.upstream.state.authorize_requests.lock().unwrap().len();
    let first = app.tokens(&AuthParams::new("app", "openid")).await;
    let first_auth_time = payload(first["id_token"].as_str().unwrap())["auth_time"]
        .as_i64()
        .unwrap();
    let visits = upstream_visits();

    app.clock.advance(120);
    let within = AuthParams::new("app", "openid").with("max_age", "10000");
    let t = app.tokens(&within).await;
    assert_eq!(
        upstream_visits(),
        visits,
        "a login within max_age is reused"
    );
    assert_eq!(
        payload(t["id_token"].as_str().unwrap())["auth_time"],
        first_auth_time
    );

    let silent = AuthParams::new("app", "openid")
        .with("max_age", "60")
        .with("prompt", "none");
    match app.start(&app.browser, &silent).await {
        Outcome::Client(q) => assert_eq!(q["error"], "login_required"),
        other => panic!("{other:?}"),
    }

    let too_old = AuthParams::new("app", "openid").with("max_age", "60");
    let t = app.tokens(&too_old).await;
    assert_eq!(
        upstream_visits(),
        visits + 1,
        "a login older than max_age is redone"
    );
    let auth_time = payload(t["id_token"].as_str().unwrap())["auth_time"]
        .as_i64()
        .unwrap();
    assert!(
        auth_time >= first_auth_time + 120,
        "{auth_time} vs {first_auth_time}"
    );
}

/// Issue 19's rough edges: a double-submitted Allow showed "Already completed" although the
/// login succeeded, and Back to an answered consent page showed "expired" with no way on.
#[tokio::test]
async fn a_second_allow_or_back_to_an_answered_consent_page_says_it_is_done_and_links_to_the_app() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid profile");
    let Outcome::Consent(html) = app.start(&app.browser, &p).await else {
        panic!("expected the consent page");
    };
    let request = form_field(&html, "request");
    match app.decide(&app.browser, &html, "allow").await {
        Outcome::Client(q) => assert!(q.contains_key("code"), "{q:?}"),
        other => panic!("{other:?}"),
    }
    let back_to_app = "href=\"http://127.0.0.1:9000/\"";
    // The same form submitted again: the first answer went through, and the page says so.
    match app.decide(&app.browser, &html, "allow").await {
        Outcome::Page(status, page) => {
            assert_eq!(status, 200, "{page}");
            assert!(page.contains("You have already answered"), "{page}");
            assert!(
                page.contains("Your answer to Test &#60;App&#62; was already sent"),
                "{page}"
            );
            assert!(page.contains(back_to_app), "{page}");
        }
        other => panic!("{other:?}"),
    }
    // Back to the consent page: the same (a 200 at /consent, which the helper calls Consent).
    let consent = format!("{}/consent?request={request}", app.base);
    match app.follow(&app.browser, consent.clone()).await {
        Outcome::Consent(page) => {
            assert!(page.contains("You have already answered"), "{page}");
            assert!(
                !page.contains("name=\"decision\""),
                "no form to answer again: {page}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The link replayed in another browser: expired there, with the way back to the app.
    match app.follow(&browser(), consent).await {
        Outcome::Page(status, page) => {
            assert_eq!(status, 400);
            assert!(page.contains("This sign-in has expired"), "{page}");
            assert!(page.contains(back_to_app), "{page}");
        }
        other => panic!("{other:?}"),
    }
    // An unknown request names no app, so it links nowhere.
    match app
        .follow(&app.browser, format!("{}/consent?request=nope", app.base))
        .await
    {
        Outcome::Page(status, page) => {
            assert_eq!(status, 400);
            assert!(page.contains("This sign-in has expired"), "{page}");
            assert!(!page.contains("Return to"), "{page}");
        }
        other => panic!("{other:?}"),
    }
}

/// Issue 19: the consent page says who is signed in, with a way to switch account (the upstream
/// is asked to authenticate again, and the new user's answer replaces the first), and shows the
/// app's logo and links (its origin, and no other, allowed to serve the page's images).
#[tokio::test]
async fn the_consent_page_names_the_user_offers_another_account_and_shows_the_apps_links() {
    let app = spawn_app().await;
    app.admin_ok(
        reqwest::Method::PUT,
        "/admin/api/clients/app",
        Some(json!({
            "client_name": "Test <App>", "redirect_uris": [APP_CB],
            "scopes": ["openid", "profile", "email"],
            "logo_uri": "https://cdn.example.com/app/logo.png",
            "policy_uri": "https://app.example.com/privacy",
            "tos_uri": "https://app.example.com/terms"
        })),
        200,
    )
    .await;
    let p = AuthParams::new("app", "openid profile");
    let res = app.browser.get(app.authorize_url(&p)).send().await.unwrap();
    let Outcome::Consent(html) = app.after(&app.browser, res).await else {
        panic!("expected the consent page");
    };
    assert!(
        html.contains("Signed in as <strong>Alice</strong>"),
        "{html}"
    );
    assert!(
        html.contains("src=\"https://cdn.example.com/app/logo.png\""),
        "{html}"
    );
    assert!(
        html.contains("href=\"https://app.example.com/privacy\""),
        "{html}"
    );
    assert!(
        html.contains("href=\"https://app.example.com/terms\""),
        "{html}"
    );
    let request = form_field(&html, "request");
    let consent = app
        .browser
        .get(format!("{}/consent?request={request}", app.base))
        .send()
        .await
        .unwrap();
    let csp = consent.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("img-src 'self' data: https://cdn.example.com"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // Other pages keep images to Herald's own.
    let home = app
        .browser
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap();
    let home_csp = home.headers()["content-security-policy"].to_str().unwrap();
    assert!(!home_csp.contains("cdn.example.com"), "{home_csp}");

    // "Not you?": Bob signs in at the upstream, which was asked to authenticate again.
    app.upstream.set(|b| {
        b.subject = "auth0|bob".into();
        b.id_claims.insert("name".into(), json!("Bob"));
        b.id_claims.insert("email".into(), json!("bob@example.com"));
    });
    let switch = format!("{}/login/{request}?switch=1", app.base);
    assert!(
        html.contains(&format!("href=\"/login/{request}?switch=1\"")),
        "{html}"
    );
    let Outcome::Consent(html) = app.follow(&app.browser, switch).await else {
        panic!("expected the consent page again");
    };
    assert!(html.contains("Signed in as <strong>Bob</strong>"), "{html}");
    let last = app
        .upstream
        .state
        .authorize_requests
        .lock()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(
        last.get("prompt").map(String::as_str),
        Some("login"),
        "{last:?}"
    );
    let q = match app.decide(&app.browser, &html, "allow").await {
        Outcome::Client(q) => q,
        other => panic!("{other:?}"),
    };
    let tokens: serde_json::Value = app.redeem(&p, &q["code"]).await.json().await.unwrap();
    let claims = payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["name"], "Bob", "{claims}");
}

#[tokio::test]
async fn a_client_link_that_is_not_https_is_refused_with_its_key() {
    let app = spawn_app().await;
    for key in ["logo_uri", "client_uri", "policy_uri", "tos_uri"] {
        let mut body = json!({"redirect_uris": [APP_CB], "scopes": ["openid"]});
        body[key] = json!("http://app.example.com/x");
        let err = app
            .admin_ok(
                reqwest::Method::PUT,
                "/admin/api/clients/app",
                Some(body),
                400,
            )
            .await;
        assert_eq!(err["error"], "invalid_configuration");
        let said = err["error_description"].as_str().unwrap();
        assert!(said.contains(&format!(".{key}: `http://")), "{said}");
        assert!(said.contains("not an https URL"), "{said}");
    }
    // A host a content security policy would read as more than one host.
    let body = json!({"redirect_uris": [APP_CB], "scopes": ["openid"],
                      "logo_uri": "https://*/logo.png"});
    app.admin_ok(
        reqwest::Method::PUT,
        "/admin/api/clients/app",
        Some(body),
        400,
    )
    .await;
}

/// Issue 19: English and German at least. A German speaker (ui_locales, else Accept-Language)
/// gets the consent page's own words and the built-in scopes in German, and the receipt records
/// the locale shown. Herald's German for its built-in scopes does not change their consent
/// version: nobody who consented before is asked again.
#[tokio::test]
async fn a_german_speaker_gets_the_consent_page_in_german_and_the_receipt_says_so() {
    let app = spawn_app().await;
    let version_before = app.state.settings().scopes.scope_version("profile");
    let p = AuthParams::new("app", "openid profile").with("ui_locales", "de-DE en");
    let Outcome::Consent(html) = app.start(&app.browser, &p).await else {
        panic!("expected the consent page");
    };
    assert!(html.contains("<html lang=\"de\">"), "{html}");
    assert!(html.contains("möchte auf Ihr Konto zugreifen"), "{html}");
    assert!(html.contains("Ihr Name und Ihr Basisprofil"), "{html}");
    assert!(html.contains(">Erlauben</button>"), "{html}");
    assert!(html.contains("Angemeldet als"), "{html}");
    let q = match app.decide(&app.browser, &html, "allow").await {
        Outcome::Client(q) => q,
        other => panic!("{other:?}"),
    };
    let tokens: serde_json::Value = app.redeem(&p, &q["code"]).await.json().await.unwrap();
    let sub = payload(tokens["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string();
    let records = app.state.store.consent_records(&sub).await.unwrap();
    assert_eq!(records.last().unwrap().locale, "de");
    assert_eq!(
        app.state.settings().scopes.scope_version("profile"),
        version_before
    );

    // Accept-Language alone does it too (for someone not yet asked); an English one keeps
    // English.
    for (n, (language, word)) in [("de-CH,de;q=0.9", "Erlauben"), ("en-GB", "Allow")]
        .into_iter()
        .enumerate()
    {
        app.upstream
            .set(move |b| b.subject = format!("auth0|reader{n}"));
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("accept-language", language.parse().unwrap());
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap();
        let url = app.authorize_url(&AuthParams::new("app", "openid profile"));
        let Outcome::Consent(html) = app.follow(&browser, url).await else {
            panic!("{language}: expected the consent page");
        };
        assert!(
            html.contains(&format!(">{word}</button>")),
            "{language}: {html}"
        );
    }
}
