//! Items of the security checklist (`../shared/SECURITY-CHECKLIST.md`) that had no test, each
//! named after its number; `docs/security.md` maps every item to its test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::*;

/// A local server that counts every request it gets, whatever the path.
async fn counting_server() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            axum::Json(json!({"keys": []}))
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn header_of(jwt: &str) -> Value {
    let h = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

/// An access token of the `app` client for Alice.
async fn access_token(app: &TestApp) -> String {
    let tokens = app.tokens(&AuthParams::new("app", "openid email")).await;
    tokens["access_token"].as_str().unwrap().to_string()
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    app.api
        .post(format!("{}/introspect", app.base))
        .basic_auth("app", Some(SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A forged token is refused by `/userinfo` (401, `invalid_token`) and inactive at
/// `/introspect`.
async fn assert_refused(app: &TestApp, forged: &str) {
    let res = app.userinfo(forged).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{forged}");
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_eq!(introspect(app, forged).await["active"], false, "{forged}");
}

#[tokio::test]
async fn checklist_38_hs256_keyed_with_the_public_key_is_refused() {
    let app = spawn_app().await;
    let token = access_token(&app).await;
    assert_eq!(
        app.userinfo(&token).await.status(),
        200,
        "the real token works"
    );
    let kid = header_of(&token)["kid"].as_str().unwrap().to_string();
    let jwks: Value = app
        .api
        .get(format!("{}/jwks", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .clone();
    let payload = token.split('.').nth(1).unwrap();
    let header = b64(json!({"alg": "HS256", "typ": "at+jwt", "kid": kid})
        .to_string()
        .as_bytes());
    let signing_input = format!("{header}.{payload}");
    // The public key as an attacker would feed it to HMAC: the JWK as published, its modulus.
    let modulus = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    for secret in [jwk.to_string().into_bytes(), modulus] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret);
        let tag = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
        assert_refused(&app, &format!("{signing_input}.{}", b64(tag.as_ref()))).await;
    }
}

#[tokio::test]
async fn checklist_41_jku_x5u_jwk_and_x5c_headers_are_ignored_and_never_fetched() {
    let (elsewhere, hits) = counting_server().await;
    let app = spawn_app().await;
    let token = access_token(&app).await;
    let payload = token.split('.').nth(1).unwrap();
    let real_kid = header_of(&token)["kid"].clone();
    // A key of the attacker's (made by OpenSSL, signing with jsonwebtoken).
    let attacker = &crate::support::test_keys::UPSTREAM[1];
    for kid in [json!("attacker"), real_kid] {
        let header = json!({
            "alg": "RS256", "typ": "at+jwt", "kid": kid,
            "jku": format!("{elsewhere}/jwks"),
            "x5u": format!("{elsewhere}/cert.pem"),
            "jwk": attacker.jwk(),
            "x5c": ["MIIBAAAA"],
        });
        let signing_input = format!("{}.{payload}", b64(header.to_string().as_bytes()));
        let signature = attacker.signature(signing_input.as_bytes());
        assert_refused(&app, &format!("{signing_input}.{signature}")).await;
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a header URL was fetched");
}

#[tokio::test]
async fn checklist_53_callback_iss_mismatch_is_refused_and_a_missing_one_when_promised() {
    let app = spawn_app().await;
    app.upstream
        .set(|b| b.callback_iss = Some("https://evil.example".into()));
    let (status, body) = app.page_after_login().await;
    assert_eq!(status, 400);
    assert!(body.contains("different issuer"), "{body}");

    // An upstream that says it always sends iss (RFC 9207 §3) must have sent it.
    app.upstream.set(|b| {
        b.advertise_iss = true;
        b.callback_iss = None;
    });
    // Discovery is cached for an hour; drop it so Herald reads the new promise.
    app.state.upstreams.forget_discovery();
    let (status, body) = app.page_after_login().await;
    assert_eq!(status, 400);
    assert!(body.contains("always names itself"), "{body}");

    let issuer = app.upstream.issuer().to_string();
    app.upstream.set(|b| b.callback_iss = Some(issuer));
    let q = app
        .login(&app.browser, &AuthParams::new("app", "openid"))
        .await;
    assert!(q.contains_key("code"), "{q:?}");
}

#[tokio::test]
async fn checklist_54_a_discovery_document_for_another_issuer_is_refused() {
    let app = spawn_app().await;
    app.upstream
        .set(|b| b.discovery_issuer = Some("https://evil.example".into()));
    let (status, body) = app.page_after_login().await;
    assert_eq!(status, 502);
    assert!(body.contains("misconfigured"), "{body}");
    assert!(
        app.upstream
            .state
            .authorize_requests
            .lock()
            .unwrap()
            .is_empty(),
        "the browser was sent to the upstream"
    );
}

#[tokio::test]
async fn checklist_59_redirects_from_upstream_endpoints_are_never_followed() {
    let (elsewhere, hits) = counting_server().await;
    let app = spawn_app().await;
    app.upstream
        .set(|b| b.token_redirect = Some(format!("{elsewhere}/token")));
    let (status, body) = app.page_after_login().await;
    assert_eq!(status, 502);
    assert!(
        body.contains("error=temporarily_unavailable") || body.contains("error=server_error"),
        "{body}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect was followed");
}

fn assert_page_headers(res: &reqwest::Response) {
    let h = res.headers();
    let url = res.url().to_string();
    assert_eq!(h["x-frame-options"], "DENY", "{url}");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{url}: {csp}");
    assert!(
        csp.contains("default-src 'self'") || csp.contains("default-src 'none'"),
        "{url}: {csp}"
    );
    assert_eq!(h["referrer-policy"], "no-referrer", "{url}");
    assert!(
        h["cache-control"].to_str().unwrap().contains("no-store"),
        "{url}"
    );
}

#[tokio::test]
async fn checklist_66_pages_deny_framing_and_referrers() {
    let app = spawn_app().await;
    // An error page (unknown client), the consent page and a callback error page.
    let res = app
        .browser
        .get(format!(
            "{}/authorize?client_id=nope&response_type=code",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_page_headers(&res);
    let mut url = app.authorize_url(&AuthParams::new("app", "openid email"));
    loop {
        let res = app.browser.get(&url).send().await.unwrap();
        if !res.status().is_redirection() {
            assert_eq!(res.status(), 200);
            assert!(res.url().path().ends_with("/consent"), "{}", res.url());
            assert_page_headers(&res);
            break;
        }
        let loc = res.headers()["location"].to_str().unwrap();
        url = res.url().join(loc).unwrap().to_string();
    }
    let res = app
        .browser
        .get(format!("{}/callback/test?code=x&state=forged", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_page_headers(&res);
}

fn session_cookie(jar: &Jar, base: &str) -> Option<String> {
    let all = jar.cookies(&base.parse().unwrap())?;
    all.to_str()
        .unwrap()
        .split("; ")
        .find_map(|c| c.strip_prefix("herald_session="))
        .map(str::to_string)
}

fn browser_with(jar: &Arc<Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Follows `url` in `browser` (redirects only) to the client; returns the `Set-Cookie` values
/// of every answer on the way.
async fn cookies_set_on_the_way(browser: &reqwest::Client, url: String) -> Vec<String> {
    let mut url = url;
    let mut set = Vec::new();
    while !url.starts_with(APP_CB) {
        let res = browser.get(&url).send().await.unwrap();
        assert!(res.status().is_redirection(), "{url}: {}", res.status());
        set.extend(
            res.headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string()),
        );
        let loc = res.headers()["location"].to_str().unwrap();
        url = res.url().join(loc).unwrap().to_string();
    }
    assert!(query_of(&url).contains_key("code"), "{url}");
    set
}

/// Items 68 and 69: the session id changes at login, the old one is worth nothing, and the
/// cookies are HttpOnly and SameSite=Lax (Secure needs an https issuer, which the tests lack).
/// Starting a sign-in stores no session: the browser's binding is a cookie of its own, and the
/// session cookie is first set at the login.
#[tokio::test]
async fn checklist_68_69_the_session_id_changes_at_login_and_the_cookie_is_guarded() {
    let app = spawn_app().await;
    let jar = Arc::new(Jar::default());
    let browser = browser_with(&jar);
    let p = AuthParams::new("trusted", "openid");
    let first = browser.get(app.authorize_url(&p)).send().await.unwrap();
    assert!(first.status().is_redirection());
    let set_cookie: Vec<String> = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        !set_cookie.iter().any(|c| c.starts_with("herald_session=")),
        "starting a sign-in stored a session: {set_cookie:?}"
    );
    let binding = set_cookie
        .iter()
        .find(|c| c.starts_with("herald_binding="))
        .expect("the sign-in binds the browser");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(binding.contains(attribute), "{binding}");
    }

    let loc = first.headers()["location"].to_str().unwrap();
    let loc = first.url().join(loc).unwrap().to_string();
    let set = cookies_set_on_the_way(&browser, loc).await;
    let cookie = set
        .iter()
        .find(|c| c.starts_with("herald_session="))
        .expect("the login sets the session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    let before = session_cookie(&jar, &app.base).unwrap();

    // A second login on the same browser (prompt=login: the upstream is asked again).
    let again = AuthParams::new("trusted", "openid").with("prompt", "login");
    cookies_set_on_the_way(&browser, app.authorize_url(&again)).await;
    let after = session_cookie(&jar, &app.base).unwrap();
    assert_ne!(before, after, "the session id did not change at login");

    // The old id (a fixated one) is signed in to nothing; the new one is. So is an id planted
    // before the first login: it is replaced, not adopted.
    let planted = "planted-session-id-0123456789abcdef".to_string();
    let jar = Arc::new(Jar::default());
    jar.add_cookie_str(
        &format!("herald_session={planted}"),
        &app.base.parse().unwrap(),
    );
    let planted_browser = browser_with(&jar);
    cookies_set_on_the_way(&planted_browser, app.authorize_url(&p)).await;
    let replaced = session_cookie(&jar, &app.base).unwrap();
    assert_ne!(
        replaced, planted,
        "a planted session id was adopted at login"
    );
    let silent = AuthParams::new("trusted", "openid").with("prompt", "none");
    for (id, signed_in) in [
        (before, false),
        (planted, false),
        (after, true),
        (replaced, true),
    ] {
        let jar = Arc::new(Jar::default());
        jar.add_cookie_str(&format!("herald_session={id}"), &app.base.parse().unwrap());
        match app
            .follow(&browser_with(&jar), app.authorize_url(&silent))
            .await
        {
            Outcome::Client(q) if signed_in => assert!(q.contains_key("code"), "{id}: {q:?}"),
            Outcome::Client(q) => assert_eq!(q["error"], "login_required", "{id}"),
            other => panic!("{other:?}"),
        }
    }
}

/// The SQLite file of a test app.
fn database_path(app: &TestApp) -> String {
    app.config
        .lines()
        .find_map(|l| l.trim().strip_prefix("database_url = \"sqlite://"))
        .unwrap()
        .trim_end_matches('"')
        .to_string()
}

async fn database(app: &TestApp) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", database_path(app)))
        .await
        .unwrap()
}

/// Codes, refresh tokens and access tokens are stored as digests (or by `jti`): none of them
/// appears in the database files.
#[tokio::test]
async fn checklist_87_no_code_or_token_is_stored_in_plaintext() {
    let app = spawn_app().await;
    let p = AuthParams::new("rp", "openid offline_access").with("prompt", "consent");
    let q = app.login(&app.browser, &p).await;
    let code = q["code"].clone();
    let res = app.redeem(&p, &code).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let access = tokens["access_token"].as_str().unwrap();
    let path = database_path(&app);
    let mut bytes = Vec::new();
    for file in [path.clone(), format!("{path}-wal")] {
        bytes.extend(std::fs::read(&file).unwrap_or_default());
    }
    assert!(bytes.len() > 4096, "the database was read");
    let text = String::from_utf8_lossy(&bytes);
    for (what, secret) in [
        ("code", code.as_str()),
        ("refresh token", refresh),
        ("access token", access),
    ] {
        assert!(!text.contains(secret), "the {what} is stored in plaintext");
    }
}

/// A fault after the code was consumed, while the tokens are stored, rolls the whole
/// redemption back: the code can be redeemed once the fault is gone. The same for a refresh
/// token's rotation.
#[tokio::test]
async fn checklist_84_a_fault_mid_redemption_rolls_everything_back() {
    let app = spawn_app().await;
    let p = AuthParams::new("rp", "openid offline_access").with("prompt", "consent");
    let q = app.login(&app.browser, &p).await;
    let mut db = database(&app).await;
    for table in ["access_tokens", "refresh_tokens"] {
        sqlx::query(&format!(
            "CREATE TRIGGER fault_{table} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        ))
        .execute(&mut db)
        .await
        .unwrap();
    }
    let res = app.redeem(&p, &q["code"]).await;
    assert_eq!(res.status(), 500);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "server_error");
    sqlx::query("DROP TRIGGER fault_access_tokens")
        .execute(&mut db)
        .await
        .unwrap();
    // The refresh token insert still fails: the access token written before it is undone too.
    let res = app.redeem(&p, &q["code"]).await;
    assert_eq!(res.status(), 500);
    let (stored,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM access_tokens")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(
        stored, 0,
        "an access token outlived its rolled-back redemption"
    );
    sqlx::query("DROP TRIGGER fault_refresh_tokens")
        .execute(&mut db)
        .await
        .unwrap();
    let res = app.redeem(&p, &q["code"]).await;
    assert_eq!(
        res.status(),
        200,
        "the code was not consumed by the failed redemptions"
    );
    let tokens: Value = res.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    sqlx::query(
        "CREATE TRIGGER fault_refresh BEFORE INSERT ON refresh_tokens \
         BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let refresh_once = || {
        app.api
            .post(format!("{}/token", app.base))
            .basic_auth("rp", Some(SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
            ])
            .send()
    };
    assert_eq!(refresh_once().await.unwrap().status(), 500);
    sqlx::query("DROP TRIGGER fault_refresh")
        .execute(&mut db)
        .await
        .unwrap();
    let res = refresh_once().await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "the rotation was rolled back, not half done"
    );
}

/// SQLite busy (another writer holds the database past the busy timeout) is a retryable
/// `invalid_request`, never a 500, and costs the code nothing.
#[tokio::test]
async fn checklist_85_a_busy_database_is_a_retryable_error_not_a_500() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid");
    let q = app.login(&app.browser, &p).await;
    let mut db = database(&app).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut db)
        .await
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(20), app.redeem(&p, &q["code"]))
        .await
        .expect("the token endpoint answered while the database was busy");
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "invalid_request", "{v}");
    sqlx::query("ROLLBACK").execute(&mut db).await.unwrap();
    assert_eq!(app.redeem(&p, &q["code"]).await.status(), 200);
}

/// Another user signing in on the same browser ends the previous user's login, and with it the
/// sign-ins that user left pending: Alice's open consent page cannot be approved once Bob has
/// signed in.
#[tokio::test]
async fn checklist_71_another_user_signing_in_ends_the_previous_users_pending_sign_ins() {
    let app = spawn_app().await;
    let alice_sub = payload(
        app.tokens(&AuthParams::new("app", "openid")).await["id_token"]
            .as_str()
            .unwrap(),
    )["sub"]
        .clone();
    let alice_consent = match app
        .start(&app.browser, &AuthParams::new("app", "openid email"))
        .await
    {
        Outcome::Consent(html) => html,
        other => panic!("{other:?}"),
    };
    app.upstream.set(|b| b.subject = "auth0|bob".into());
    let bob = AuthParams::new("app", "openid").with("prompt", "login");
    let bob_consent = match app.start(&app.browser, &bob).await {
        Outcome::Consent(html) => html,
        other => panic!("{other:?}"),
    };
    match app.decide(&app.browser, &alice_consent, "allow").await {
        Outcome::Page(status, body) => {
            assert_eq!(status, 403, "{body}");
            assert!(body.contains("Someone else has signed in"), "{body}");
            assert!(body.contains("error=login_required"), "a way back: {body}");
        }
        other => panic!("Alice's pending sign-in went on under Bob: {other:?}"),
    }
    match app.decide(&app.browser, &bob_consent, "allow").await {
        Outcome::Client(q) => {
            let res = app.redeem(&bob, &q["code"]).await;
            let tokens: Value = res.json().await.unwrap();
            let id = payload(tokens["id_token"].as_str().unwrap());
            assert_ne!(id["sub"], alice_sub, "Bob's sign-in carries Bob");
        }
        other => panic!("{other:?}"),
    }
}

/// OIDC Core §11: a refresh token needs the user's consent. A trusted app skips the consent
/// page, so its `offline_access` is ignored until the user grants it on the page that
/// `prompt=consent` shows; after that it is honoured without asking again.
#[tokio::test]
async fn checklist_70_offline_access_needs_the_users_consent_even_for_a_trusted_app() {
    let app = spawn_app_with(
        r#"
[[clients]]
client_id = "trusted-rp"
client_secret = "secret-for-tests-0123456789"
redirect_uris = ["http://127.0.0.1:9000/cb"]
scopes = ["openid", "offline_access"]
grant_types = ["authorization_code", "refresh_token"]
trusted = true
"#,
    )
    .await;
    let redeem = |code: String, p: AuthParams| {
        let app = &app;
        async move {
            let secret = Some("secret-for-tests-0123456789");
            let res = redemption(&app.api, &app.base, &p, &code, secret)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    let p = AuthParams::new("trusted-rp", "openid offline_access");
    let q = match app.start(&app.browser, &p).await {
        Outcome::Client(q) => q,
        other => panic!("a trusted app is not asked: {other:?}"),
    };
    let tokens = redeem(q["code"].clone(), p).await;
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    assert_eq!(tokens["scope"], "openid");

    let p = AuthParams::new("trusted-rp", "openid offline_access").with("prompt", "consent");
    let html = match app.start(&app.browser, &p).await {
        Outcome::Consent(html) => html,
        other => panic!("prompt=consent shows the page: {other:?}"),
    };
    let q = match app.decide(&app.browser, &html, "allow").await {
        Outcome::Client(q) => q,
        other => panic!("{other:?}"),
    };
    let tokens = redeem(q["code"].clone(), p).await;
    assert!(tokens["refresh_token"].is_string(), "{tokens}");

    let p = AuthParams::new("trusted-rp", "openid offline_access");
    let q = match app.start(&app.browser, &p).await {
        Outcome::Client(q) => q,
        other => panic!("granted once, not asked again: {other:?}"),
    };
    assert!(redeem(q["code"].clone(), p).await["refresh_token"].is_string());
}

/// OIDC Core §10.1: a `kid` may be left out only when the JWKS has one key. An ID token without
/// a `kid` is accepted against a lone key and refused when the JWKS has several; a JWKS that
/// gives two keys one `kid` is refused too, rather than guessed at.
#[tokio::test]
async fn checklist_56_tokens_without_a_kid_and_duplicate_kids() {
    let app = spawn_app().await;
    app.upstream.set(|b| b.omit_kid = true);
    let q = app
        .login(&app.browser, &AuthParams::new("app", "openid"))
        .await;
    assert!(q.contains_key("code"), "one key, no kid: accepted");

    for (omit_kid, same_kid) in [(true, false), (false, true)] {
        let app = spawn_app().await;
        app.upstream.set(|b| {
            b.omit_kid = omit_kid;
            b.second_key = Some(same_kid);
        });
        let (status, body) = app.page_after_login().await;
        assert_eq!(status, 502, "no kid {omit_kid}, same kid {same_kid}");
        assert!(body.contains("security checks"), "{body}");
    }
}

/// When the pool a request needs is stuck (here: another process holds SQLite's write lock, so
/// Herald's one writing connection waits out the 5 s busy timeout and every other redemption
/// queues for it), a request that cannot get a connection is shed within the 3 s acquire timeout
/// with 503 and `Retry-After`, never a 500 or a hang; the stuck one ends as a retryable
/// `invalid_request`, and all recover once the lock is gone.
#[tokio::test]
async fn checklist_86_an_exhausted_pool_fails_fast_with_503() {
    let app = spawn_app().await;
    let p = AuthParams::new("app", "openid");
    let mut codes = Vec::new();
    for _ in 0..12 {
        codes.push(app.login(&app.browser, &p).await["code"].clone());
    }
    let mut db = database(&app).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut db)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let tasks: Vec<_> = codes
        .iter()
        .map(|code| {
            let (api, base, p, code) = (app.api.clone(), app.base.clone(), p.clone(), code.clone());
            tokio::spawn(async move {
                let res = redemption(&api, &base, &p, &code, Some(SECRET))
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let retry_after = res.headers().contains_key("retry-after");
                let body: Value = res.json().await.unwrap_or(Value::Null);
                (status, retry_after, body, started.elapsed())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    sqlx::query("ROLLBACK").execute(&mut db).await.unwrap();

    let shed: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    assert!(!shed.is_empty(), "{answers:?}");
    for (status, retry_after, body, took) in &shed {
        assert!(*retry_after, "{status} {body}");
        assert_eq!(body["error"], "temporarily_unavailable");
        assert!(*took < Duration::from_millis(4500), "shed after {took:?}");
    }
    for (status, _, body, _) in &answers {
        assert!(
            *status == 503 || (*status == 400 && body["error"] == "invalid_request"),
            "{status} {body}"
        );
    }
    // Nothing was consumed by the failed attempts: every code still redeems.
    for code in &codes {
        assert_eq!(app.redeem(&p, code).await.status(), 200);
    }
}
