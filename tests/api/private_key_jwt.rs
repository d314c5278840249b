//! private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core §9), at every endpoint that
//! authenticates clients. The keys and their JWKs come from OpenSSL and the assertions are signed
//! with the `jsonwebtoken` crate (`support::test_keys`), never with Herald's own code, so a bug
//! shared by Herald's signer and verifier cannot hide.

use serde_json::{Value, json};

use crate::support::test_keys::{CLIENT, STRANGER, TestKey};
use crate::support::*;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn app_with_client_key() -> (TestApp, &'static TestKey) {
    let key = &CLIENT;
    let jwk = key.jwk();
    let extra = format!(
        r#"
[[clients]]
client_id = "pkj"
redirect_uris = ["http://127.0.0.1:9000/cb"]
scopes = ["openid", "api", "offline_access"]
grant_types = ["client_credentials", "authorization_code", "refresh_token"]
jwks = {{ keys = [ {{ kty = "EC", crv = "P-256", x = "{x}", y = "{y}", kid = "{kid}", use = "sig", alg = "ES256" }} ] }}
"#,
        x = jwk["x"].as_str().unwrap(),
        y = jwk["y"].as_str().unwrap(),
        kid = jwk["kid"].as_str().unwrap(),
    );
    (spawn_app_with(&extra).await, key)
}

fn assertion(app: &TestApp, key: &TestKey, aud: &str, jti: &str, exp_in: i64) -> String {
    assertion_with_kid(app, key, &key.kid(), aud, jti, exp_in)
}

/// An assertion signed by `key` whose header names `kid`, which may be another key's.
fn assertion_with_kid(
    app: &TestApp,
    key: &TestKey,
    kid: &str,
    aud: &str,
    jti: &str,
    exp_in: i64,
) -> String {
    let now = app.state.now();
    let claims = json!({"iss": "pkj", "sub": "pkj", "aud": aud, "jti": jti, "iat": now, "exp": now + exp_in});
    key.sign_with_kid(&claims, Some(kid))
}

/// `form` plus a fresh assertion for the token endpoint, POSTed to `path`.
async fn with_assertion(
    app: &TestApp,
    key: &TestKey,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let a = assertion(
        app,
        key,
        &format!("{}/token", app.base),
        &herald::tokens::random_token(),
        60,
    );
    let mut form = form.to_vec();
    form.push(("client_assertion_type", ASSERTION_TYPE));
    form.push(("client_assertion", a.as_str()));
    app.api
        .post(format!("{}{path}", app.base))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn cc(app: &TestApp, assertion: &str) -> reqwest::Response {
    app.api
        .post(format!("{}/token", app.base))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_signed_assertion_authenticates_once_and_its_replay_is_refused() {
    let (app, key) = app_with_client_key().await;
    let a = assertion(&app, key, &format!("{}/token", app.base), "j1", 60);
    let res = cc(&app, &a).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let replay = cc(&app, &a).await;
    assert_eq!(replay.status(), 401);
    let body: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn assertions_for_another_audience_too_long_lived_or_signed_by_another_key_are_refused() {
    let (app, key) = app_with_client_key().await;
    let token_url = format!("{}/token", app.base);
    assert_eq!(
        cc(
            &app,
            &assertion(&app, key, "https://elsewhere.example/token", "j2", 60)
        )
        .await
        .status(),
        401
    );
    assert_eq!(
        cc(&app, &assertion(&app, key, &token_url, "j3", 3600))
            .await
            .status(),
        401
    );
    assert_eq!(
        cc(&app, &assertion(&app, key, &token_url, "j4", -300))
            .await
            .status(),
        401
    );
    assert_eq!(
        cc(&app, &assertion(&app, &STRANGER, &token_url, "j5", 60))
            .await
            .status(),
        401
    );
    // A key nobody registered, claiming the client's kid: the signature decides.
    let forged = assertion_with_kid(&app, &STRANGER, &key.kid(), &token_url, "j5b", 60);
    assert_eq!(cc(&app, &forged).await.status(), 401);
    // The issuer as audience is accepted too (OIDC Core §9).
    assert_eq!(
        cc(&app, &assertion(&app, key, &app.base, "j6", 60))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_secret_for_a_private_key_jwt_client_is_refused() {
    let (app, _) = app_with_client_key().await;
    let res = app
        .api
        .post(format!("{}/token", app.base))
        .basic_auth("pkj", Some("guess"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// The code and refresh grants, `/introspect` and `/revoke` take the assertion too, and each
/// refuses a request without one.
#[tokio::test]
async fn the_code_and_refresh_grants_introspection_and_revocation_take_assertions() {
    let (app, key) = app_with_client_key().await;
    let p = AuthParams::new("pkj", "openid offline_access").with("prompt", "consent");
    let q = app.login(&app.browser, &p).await;
    let verifier = p.verifier.clone().unwrap();
    let code_form = [
        ("grant_type", "authorization_code"),
        ("code", q["code"].as_str()),
        ("redirect_uri", p.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let bare = app
        .api
        .post(format!("{}/token", app.base))
        .form(&code_form)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401, "no assertion, no tokens");
    let res = with_assertion(&app, key, "/token", &code_form).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let access = tokens["access_token"].as_str().unwrap().to_string();

    let res = with_assertion(
        &app,
        key,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(res.status(), 200);
    let refresh = res.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();

    let bare = app
        .api
        .post(format!("{}/introspect", app.base))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);
    let v: Value = with_assertion(&app, key, "/introspect", &[("token", &access)])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["active"], true);
    assert_eq!(v["client_id"], "pkj");

    assert_eq!(
        with_assertion(&app, key, "/revoke", &[("token", &refresh)])
            .await
            .status(),
        200
    );
    let res = with_assertion(
        &app,
        key,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(res.status(), 400, "the revoked refresh token is refused");
}
