//! private_key_jwt client authentication (RFC 7523 §2.2, OIDC Core §9).

use herald::tokens::jwt;
use herald::tokens::keys::{Alg, SigningKey};
use serde_json::json;

use crate::support::*;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn app_with_client_key() -> (TestApp, SigningKey) {
    let (key, _) = SigningKey::generate(Alg::ES256).unwrap();
    let jwk = key.public_jwk();
    let extra = format!(
        r#"
[[clients]]
client_id = "pkj"
redirect_uris = ["http://127.0.0.1:9000/cb"]
scopes = ["openid", "api"]
grant_types = ["client_credentials"]
jwks = {{ keys = [ {{ kty = "EC", crv = "P-256", x = "{x}", y = "{y}", kid = "{kid}", use = "sig", alg = "ES256" }} ] }}
"#,
        x = jwk["x"].as_str().unwrap(),
        y = jwk["y"].as_str().unwrap(),
        kid = jwk["kid"].as_str().unwrap(),
    );
    (spawn_app_with(&extra).await, key)
}

fn assertion(app: &TestApp, key: &SigningKey, aud: &str, jti: &str, exp_in: i64) -> String {
    let now = app.state.now();
    jwt::sign(key, "JWT", &json!({"iss": "pkj", "sub": "pkj", "aud": aud, "jti": jti, "iat": now, "exp": now + exp_in})).unwrap()
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
    let a = assertion(&app, &key, &format!("{}/token", app.base), "j1", 60);
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
            &assertion(&app, &key, "https://elsewhere.example/token", "j2", 60)
        )
        .await
        .status(),
        401
    );
    assert_eq!(
        cc(&app, &assertion(&app, &key, &token_url, "j3", 3600))
            .await
            .status(),
        401
    );
    assert_eq!(
        cc(&app, &assertion(&app, &key, &token_url, "j4", -300))
            .await
            .status(),
        401
    );
    let (stranger, _) = SigningKey::generate(Alg::ES256).unwrap();
    assert_eq!(
        cc(&app, &assertion(&app, &stranger, &token_url, "j5", 60))
            .await
            .status(),
        401
    );
    // The issuer as audience is accepted too (OIDC Core §9).
    assert_eq!(
        cc(&app, &assertion(&app, &key, &app.base, "j6", 60))
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
