//! Issue 17: OpenID Connect Back-Channel Logout 1.0 from the upstream. A logout token the test
//! upstream signs ends the Herald logins of the session (`sid`) or user (`sub`) it names and
//! revokes what was issued from them; a token failing any check of §2.6 ends nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A logout token's claims from the test upstream for Herald, naming `sub` and/or `sid`.
fn logout(app: &TestApp, sub: Option<&str>, sid: Option<&str>) -> Value {
    let mut claims = json!({
        "iss": app.upstream.issuer(),
        "aud": "herald-at-upstream",
        "iat": unix_now(),
        "exp": unix_now() + 120,
        "jti": herald::tokens::random_token(),
        "events": { EVENT: {} },
    });
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    if let Some(sid) = sid {
        claims["sid"] = json!(sid);
    }
    claims
}

async fn post(app: &TestApp, upstream: &str, token: &str) -> reqwest::Response {
    app.api
        .post(format!("{}/backchannel-logout/{upstream}", app.base))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap()
}

/// Logs in as alice in `browser` within upstream session `sid`; the token response.
async fn login_in_session(app: &TestApp, browser: &reqwest::Client, sid: &str) -> Value {
    app.upstream.set(|b| {
        b.id_claims.insert("sid".into(), json!(sid));
    });
    let p = AuthParams::new("rp", "openid offline_access");
    let q = app.login(browser, &p).await;
    let res = app.redeem(&p, &q["code"]).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn refreshes(app: &TestApp, tokens: &Value) -> bool {
    app.refresh_as("rp", tokens).await.0 == StatusCode::OK
}

async fn userinfo_works(app: &TestApp, tokens: &Value) -> bool {
    app.userinfo(tokens["access_token"].as_str().unwrap())
        .await
        .status()
        == StatusCode::OK
}

fn upstream_logins(app: &TestApp) -> usize {
    app.upstream.state.authorize_requests.lock().unwrap().len()
}

#[tokio::test]
async fn a_logout_token_ends_the_session_it_names_and_what_was_issued_from_it() {
    let app = spawn_app().await;
    let laptop = app.browser.clone();
    let phone = browser();
    let first = login_in_session(&app, &laptop, "sess-laptop").await;
    let second = login_in_session(&app, &phone, "sess-phone").await;

    // The upstream ends the laptop's session.
    let token = app.upstream.sign(&logout(&app, None, Some("sess-laptop")));
    let res = post(&app, "test", &token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(
        !refreshes(&app, &first).await,
        "the laptop's refresh token lives"
    );
    assert!(
        !userinfo_works(&app, &first).await,
        "the laptop's access token lives"
    );
    assert!(
        userinfo_works(&app, &second).await,
        "the phone's session ended too"
    );
    // The laptop's browser is no longer signed in at Herald: the next request goes upstream.
    let before = upstream_logins(&app);
    app.login(&laptop, &AuthParams::new("rp", "openid")).await;
    assert_eq!(upstream_logins(&app), before + 1);
    // The phone's is.
    app.login(&phone, &AuthParams::new("rp", "openid")).await;
    assert_eq!(upstream_logins(&app), before + 1);

    // The same token again is a replay.
    let replay = post(&app, "test", &token).await;
    assert_eq!(replay.status(), 400);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("used before")
    );

    // A token naming the user ends all their logins through that upstream.
    let token = app.upstream.sign(&logout(&app, Some("auth0|alice"), None));
    assert_eq!(post(&app, "test", &token).await.status(), 200);
    assert!(!refreshes(&app, &second).await);
    assert!(!userinfo_works(&app, &second).await);
    // One naming an account nobody logged in with ends nothing and is answered 200.
    let token = app.upstream.sign(&logout(&app, Some("auth0|nobody"), None));
    assert_eq!(post(&app, "test", &token).await.status(), 200);
}

/// A code issued before the upstream ended its login is refused at `/token`, and a code of a
/// login that did not end is redeemed as usual. (The logout spends the login's codes; `/token`'s
/// own check of the login a code came from is `token.rs`'s
/// `a_code_whose_login_has_ended_or_is_gone_is_refused_and_says_which`.)
#[tokio::test]
async fn a_code_whose_login_the_upstream_ended_before_its_redemption_is_refused() {
    let app = spawn_app().await;
    app.upstream.set(|b| {
        b.id_claims.insert("sid".into(), json!("sess-1"));
    });
    let p = AuthParams::new("rp", "openid");
    let q = app.login(&app.browser, &p).await;
    let token = app.upstream.sign(&logout(&app, None, Some("sess-1")));
    assert_eq!(post(&app, "test", &token).await.status(), 200);

    let res = app.redeem(&p, &q["code"]).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    app.upstream.set(|b| {
        b.id_claims.insert("sid".into(), json!("sess-2"));
    });
    let other = browser();
    let q = app.login(&other, &p).await;
    assert_eq!(app.redeem(&p, &q["code"]).await.status(), 200);
}

#[tokio::test]
async fn a_logout_token_that_fails_a_check_ends_nothing() {
    let app = spawn_app().await;
    let tokens = login_in_session(&app, &app.browser, "sess-1").await;
    let good = || logout(&app, Some("auth0|alice"), Some("sess-1"));
    let spoilt: Vec<(&str, String)> = vec![
        ("another audience", {
            let mut c = good();
            c["aud"] = json!("someone-else");
            app.upstream.sign(&c)
        }),
        ("another issuer", {
            let mut c = good();
            c["iss"] = json!("https://elsewhere.example");
            app.upstream.sign(&c)
        }),
        ("no event", {
            let mut c = good();
            c["events"] = json!({});
            app.upstream.sign(&c)
        }),
        ("a nonce", {
            let mut c = good();
            c["nonce"] = json!("n-1");
            app.upstream.sign(&c)
        }),
        ("expired", {
            let mut c = good();
            c["exp"] = json!(unix_now() - 600);
            app.upstream.sign(&c)
        }),
        ("no jti", {
            let mut c = good();
            c.as_object_mut().unwrap().remove("jti");
            app.upstream.sign(&c)
        }),
        (
            "an unpublished key",
            app.upstream.sign_with_another_key(&good()),
        ),
        ("not a JWT", "not-a-jwt".into()),
    ];
    for (what, token) in spoilt {
        let res = post(&app, "test", &token).await;
        assert_eq!(res.status(), 400, "{what}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{what}");
    }
    // Unknown upstream, no token, not a form.
    let token = app.upstream.sign(&good());
    assert_eq!(post(&app, "nowhere", &token).await.status(), 400);
    let empty = app
        .api
        .post(format!("{}/backchannel-logout/test", app.base))
        .form(&[("other", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);
    let json_body = app
        .api
        .post(format!("{}/backchannel-logout/test", app.base))
        .json(&json!({ "logout_token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), 400);
    assert!(
        refreshes(&app, &tokens).await,
        "a refused token ended the session"
    );
}

#[tokio::test]
async fn a_logout_naming_one_identity_of_a_user_ends_only_the_logins_made_with_it() {
    let app = spawn_app().await;
    let first = login_in_session(&app, &app.browser, "sess-1").await;
    let sub = payload(first["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string();
    app.admin_ok(
        reqwest::Method::POST,
        &format!("/admin/api/users/{sub}/identities"),
        Some(json!({ "upstream": "test", "subject": "auth0|second" })),
        201,
    )
    .await;
    app.upstream.set(|b| b.subject = "auth0|second".into());
    let second = login_in_session(&app, &browser(), "sess-2").await;
    assert_eq!(
        payload(second["id_token"].as_str().unwrap())["sub"],
        sub.as_str()
    );

    let token = app.upstream.sign(&logout(&app, Some("auth0|second"), None));
    assert_eq!(post(&app, "test", &token).await.status(), 200);
    assert!(!userinfo_works(&app, &second).await);
    assert!(
        userinfo_works(&app, &first).await,
        "the other identity's login ended too"
    );
}
