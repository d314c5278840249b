//! Issue 21: back-channel logout to apps (OpenID Connect Back-Channel Logout 1.0). When a login
//! ends (RP-initiated logout, an admin's block), every app it reached that registered a
//! `backchannel_logout_uri` gets a logout token, from the durable outbox with retries. The apps
//! are real local HTTP servers; each token is checked as an app would check it: against Herald's
//! JWKS with the `jsonwebtoken` crate, never with Herald's own code.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// What an app's back-channel logout endpoint got: each form body and what it answered.
#[derive(Default)]
struct App {
    requests: Mutex<Vec<(String, u16)>>,
    /// Answer 500 to this many requests first.
    fail_first: AtomicUsize,
}

impl App {
    /// The logout tokens answered 2xx.
    fn accepted(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, status)| *status < 300)
            .map(|(body, _)| {
                url::form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
                    .expect("a logout_token in the form")
            })
            .collect()
    }
}

async fn receive(State(app): State<Arc<App>>, body: Bytes) -> StatusCode {
    let status = if app
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    app.requests
        .lock()
        .unwrap()
        .push((String::from_utf8(body.to_vec()).unwrap(), status.as_u16()));
    status
}

async fn listening_app() -> (String, Arc<App>) {
    let app = Arc::new(App::default());
    let router = Router::new()
        .route("/bcl", post(receive))
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/bcl", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, app)
}

fn config(rp: &str, rp2: &str) -> String {
    format!(
        r#"
[[clients]]
client_id = "bcl-one"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
post_logout_redirect_uris = ["http://127.0.0.1:9000/bye"]
scopes = ["openid", "offline_access"]
grant_types = ["authorization_code", "refresh_token"]
backchannel_logout_uri = "{rp}"

[[clients]]
client_id = "bcl-two"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid"]
trusted = true
id_token_signed_response_alg = "ES256"
backchannel_logout_uri = "{rp2}"

[outbox]
poll_interval = "100ms"
first_retry = "1s"
"#
    )
}

/// Checks a logout token as the app `client_id` would (§2.6): signature against Herald's JWKS,
/// `typ`, `iss`, `aud`, `iat`/`exp`, the event, `sub` and `sid`, and no `nonce`.
async fn verified(app: &TestApp, token: &str, client_id: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks = app.jwks().await;
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[&app.base]);
    v.set_audience(&[client_id]);
    v.set_required_spec_claims(&["iss", "aud", "iat", "exp", "jti"]);
    v.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(
        claims["events"],
        json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    assert!(claims.get("nonce").is_none());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    claims
}

#[tokio::test]
async fn rp_initiated_logout_sends_every_app_of_the_login_a_logout_token_retried_until_taken() {
    let (rp_url, rp) = listening_app().await;
    let (rp2_url, rp2) = listening_app().await;
    rp.fail_first.store(1, Ordering::SeqCst);
    let app = spawn_app_with(&config(&rp_url, &rp2_url)).await;
    // One login reaches two apps (the second by the remembered login).
    let first = app
        .tokens(&AuthParams::new("bcl-one", "openid offline_access"))
        .await;
    let p2 = AuthParams::new("bcl-two", "openid");
    let q = app.login(&app.browser, &p2).await;
    let second: Value = app.redeem(&p2, &q["code"]).await.json().await.unwrap();
    assert_eq!(
        payload(second["id_token"].as_str().unwrap())["sid"],
        payload(first["id_token"].as_str().unwrap())["sid"],
        "one login, one sid"
    );
    let id = payload(first["id_token"].as_str().unwrap());
    let sid = id["sid"]
        .as_str()
        .expect("the ID token carries sid")
        .to_string();
    let discovery: Value = discovery(&app).await;
    assert_eq!(discovery["backchannel_logout_supported"], true);
    assert_eq!(discovery["backchannel_logout_session_supported"], true);

    let mut u = url::Url::parse(&format!("{}/logout", app.base)).unwrap();
    u.query_pairs_mut()
        .append_pair("id_token_hint", first["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", "http://127.0.0.1:9000/bye");
    let res = app.browser.get(u.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 303);

    wait_until(
        "both apps took a logout token",
        Duration::from_secs(15),
        || rp.accepted().len() == 1 && rp2.accepted().len() == 1,
    )
    .await;
    // The first app answered 500 once: the outbox tried again.
    assert_eq!(rp.requests.lock().unwrap().len(), 2);
    for (client, got) in [("bcl-one", &rp), ("bcl-two", &rp2)] {
        let claims = verified(&app, &got.accepted()[0], client).await;
        assert_eq!(claims["sub"], id["sub"], "{client}");
        assert_eq!(
            claims["sid"], sid,
            "{client}: the same sid as the ID token's"
        );
    }
    // Its refresh token, issued for offline_access, lives on (Back-Channel Logout 1.0 §2.7).
    let (status, _) = app.refresh_as("bcl-one", &first).await;
    assert_eq!(status.as_u16(), 200);
}

#[tokio::test]
async fn a_logout_tells_the_apps_of_the_browsers_earlier_logins_too() {
    let (rp_url, rp) = listening_app().await;
    let (rp2_url, rp2) = listening_app().await;
    let app = spawn_app_with(&config(&rp_url, &rp2_url)).await;
    let first = app.tokens(&AuthParams::new("bcl-two", "openid")).await;
    // A fresh login in the same browser: a new login, with a new sid.
    let p = AuthParams::new("bcl-one", "openid").with("prompt", "login");
    let second = app.tokens(&p).await;
    let sid = |t: &Value| payload(t["id_token"].as_str().unwrap())["sid"].clone();
    assert_ne!(sid(&first), sid(&second));
    let mut u = url::Url::parse(&format!("{}/logout", app.base)).unwrap();
    u.query_pairs_mut()
        .append_pair("id_token_hint", second["id_token"].as_str().unwrap());
    assert_eq!(
        app.browser.get(u.as_str()).send().await.unwrap().status(),
        200
    );
    wait_until(
        "both logins' apps were told",
        Duration::from_secs(15),
        || rp.accepted().len() == 1 && rp2.accepted().len() == 1,
    )
    .await;
    assert_eq!(
        verified(&app, &rp2.accepted()[0], "bcl-two").await["sid"],
        sid(&first)
    );
    assert_eq!(
        verified(&app, &rp.accepted()[0], "bcl-one").await["sid"],
        sid(&second)
    );
}

#[tokio::test]
async fn removing_the_upstream_tells_the_apps_of_its_logins() {
    let (rp_url, rp) = listening_app().await;
    let (rp2_url, _rp2) = listening_app().await;
    // Another upstream stays: a configuration needs one.
    let spare = "\n[[upstreams]]\nid = \"spare\"\nkind = \"dev\"\n";
    let app = spawn_app_with(&(config(&rp_url, &rp2_url) + spare)).await;
    let t = app
        .tokens(&AuthParams::new("bcl-one", "openid").with("idp_hint", "test"))
        .await;
    app.admin_ok(Method::DELETE, "/admin/api/upstreams/test", None, 204)
        .await;
    wait_until(
        "the app took a logout token",
        Duration::from_secs(15),
        || rp.accepted().len() == 1,
    )
    .await;
    let claims = verified(&app, &rp.accepted()[0], "bcl-one").await;
    assert_eq!(
        claims["sid"],
        payload(t["id_token"].as_str().unwrap())["sid"]
    );
}

#[tokio::test]
async fn blocking_a_user_sends_their_apps_logout_tokens() {
    let (rp_url, rp) = listening_app().await;
    let (rp2_url, rp2) = listening_app().await;
    let app = spawn_app_with(&config(&rp_url, &rp2_url)).await;
    let t = app.tokens(&AuthParams::new("bcl-one", "openid")).await;
    let sub = payload(t["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string();
    app.admin_ok(
        Method::PATCH,
        &format!("/admin/api/users/{sub}"),
        Some(json!({"blocked": true})),
        200,
    )
    .await;
    wait_until(
        "the app took a logout token",
        Duration::from_secs(15),
        || rp.accepted().len() == 1,
    )
    .await;
    let claims = verified(&app, &rp.accepted()[0], "bcl-one").await;
    assert_eq!(claims["sub"], sub);
    // The other app never got anything from this login, so it is owed nothing.
    assert!(rp2.requests.lock().unwrap().is_empty());
}

#[test]
fn a_backchannel_logout_uri_must_be_https_or_loopback_without_a_fragment() {
    let base = config_with_upstream("");
    for (uri, says) in [
        ("http://app.example/bcl", "loopback"),
        ("https://app.example/bcl#x", "fragment"),
        ("not a url", "not a URL"),
        ("https://169.254.169.254/latest", "169.254"),
    ] {
        let toml = format!(
            "{base}\n[[clients]]\nclient_id = \"c\"\nredirect_uris = [\"https://app.example/cb\"]\n\
             scopes = [\"openid\"]\nbackchannel_logout_uri = \"{uri}\"\n"
        );
        let err = herald::config::from_toml(&toml).unwrap_err().to_string();
        assert!(err.contains(says), "{uri}: {err}");
    }
}
