//! Issue 21: DPoP (RFC 9449). A proof at `/token` binds the access token to the proof's key
//! (`token_type` DPoP, `cnf.jkt`), and a public client's refresh tokens too; userinfo then
//! wants the `DPoP` scheme and a proof by that key (`ath`, `htm`, `htu`, fresh `iat`, `jti`
//! once); nonces when required; a client registered with `dpop_bound_access_tokens` cannot get
//! a token without a proof. The proofs are signed with the `jsonwebtoken` crate and the key's
//! thumbprint is worked out in the test, never with Herald's own code.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::test_keys::{CLIENT, STRANGER, TestKey};
use crate::support::*;

/// A public client that may refresh, and a confidential one whose tokens must be DPoP-bound.
fn clients() -> String {
    format!(
        r#"
[[clients]]
client_id = "native"
redirect_uris = ["{APP_CB}"]
scopes = ["openid", "profile", "offline_access"]
grant_types = ["authorization_code", "refresh_token"]

[[clients]]
client_id = "strict"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid"]
trusted = true
dpop_bound_access_tokens = true
"#
    )
}

/// A proof by `key` for `htm` at Herald's `path`, made now; `extra` claims are merged in.
fn proof(app: &TestApp, key: &TestKey, htm: &str, path: &str, extra: Value) -> String {
    let mut claims = json!({
        "jti": herald::tokens::random_token(),
        "htm": htm,
        "htu": format!("{}{path}", app.base),
        "iat": app.state.now(),
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    key.dpop_proof(&claims)
}

/// `ath` for `token`, worked out here.
fn ath(token: &str) -> String {
    use base64::Engine;
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// Logs in through `p.client_id` and redeems the code with `dpop` (a proof) if given.
async fn redeem_with(app: &TestApp, p: &AuthParams, dpop: Option<String>) -> reqwest::Response {
    let q = app.login(&app.browser, p).await;
    let secret = (p.client_id != "native").then_some(SECRET);
    let mut req = redemption(&app.api, &app.base, p, &q["code"], secret);
    if let Some(d) = dpop {
        req = req.header("DPoP", d);
    }
    req.send().await.unwrap()
}

async fn userinfo(
    app: &TestApp,
    scheme: &str,
    token: &str,
    dpop: Option<String>,
) -> reqwest::Response {
    let mut req = app
        .api
        .get(format!("{}/userinfo", app.base))
        .header("Authorization", format!("{scheme} {token}"));
    if let Some(d) = dpop {
        req = req.header("DPoP", d);
    }
    req.send().await.unwrap()
}

async fn refresh(app: &TestApp, refresh_token: &str, dpop: Option<String>) -> reqwest::Response {
    let mut req = app.api.post(format!("{}/token", app.base)).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", "native"),
    ]);
    if let Some(d) = dpop {
        req = req.header("DPoP", d);
    }
    req.send().await.unwrap()
}

fn challenge(res: &reqwest::Response) -> String {
    res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_proof_binds_the_access_token_and_userinfo_then_wants_a_proof_by_that_key() {
    let app = spawn_app_with(&clients()).await;
    let p = AuthParams::new("native", "openid profile");
    let res = redeem_with(
        &app,
        &p,
        Some(proof(&app, &CLIENT, "POST", "/token", json!({}))),
    )
    .await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(payload(at)["cnf"], json!({ "jkt": CLIENT.thumbprint() }));

    // As a bearer token: refused, with a DPoP challenge.
    let res = userinfo(&app, "Bearer", at, None).await;
    assert_eq!(res.status(), 401);
    assert!(
        challenge(&res).starts_with("DPoP error=\"invalid_token\""),
        "{}",
        challenge(&res)
    );
    // The DPoP scheme without a proof.
    let res = userinfo(&app, "DPoP", at, None).await;
    assert_eq!(res.status(), 401);
    assert!(
        challenge(&res).contains("error=\"invalid_dpop_proof\""),
        "{}",
        challenge(&res)
    );
    assert!(
        challenge(&res).contains("algs=\"ES256"),
        "{}",
        challenge(&res)
    );
    // A proof without ath, with the ath of another token, with the token endpoint's htu, with
    // the wrong method, and one made too long ago.
    let cases = [
        ("ath", proof(&app, &CLIENT, "GET", "/userinfo", json!({}))),
        (
            "ath",
            proof(
                &app,
                &CLIENT,
                "GET",
                "/userinfo",
                json!({"ath": ath("other")}),
            ),
        ),
        (
            "htu",
            proof(&app, &CLIENT, "GET", "/token", json!({"ath": ath(at)})),
        ),
        (
            "htm",
            proof(&app, &CLIENT, "POST", "/userinfo", json!({"ath": ath(at)})),
        ),
        (
            "iat",
            proof(
                &app,
                &CLIENT,
                "GET",
                "/userinfo",
                json!({"ath": ath(at), "iat": app.state.now() - 301}),
            ),
        ),
    ];
    for (rule, d) in cases {
        let res = userinfo(&app, "DPoP", at, Some(d)).await;
        let c = challenge(&res);
        let (status, code, why) = oauth_error(res).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "invalid_dpop_proof"),
            "{rule}: {why}"
        );
        assert!(why.contains(rule), "{rule}: {why}");
        assert!(c.starts_with("DPoP error=\"invalid_dpop_proof\""), "{c}");
    }
    // A good proof by another key: the token is not bound to it.
    let res = userinfo(
        &app,
        "DPoP",
        at,
        Some(proof(
            &app,
            &STRANGER,
            "GET",
            "/userinfo",
            json!({"ath": ath(at)}),
        )),
    )
    .await;
    let (status, code, _) = oauth_error(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );

    // The right key: the claims; the same proof again is a replay.
    let good = proof(&app, &CLIENT, "GET", "/userinfo", json!({"ath": ath(at)}));
    let res = userinfo(&app, "DPoP", at, Some(good.clone())).await;
    assert_eq!(res.status(), 200);
    let claims: Value = res.json().await.unwrap();
    assert_eq!(claims["sub"], payload(at)["sub"]);
    let res = userinfo(&app, "DPoP", at, Some(good)).await;
    let (status, code, why) = oauth_error(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_dpop_proof")
    );
    assert!(why.contains("used before"), "{why}");

    // A bearer token is not presented with the DPoP scheme.
    let plain = app.tokens(&AuthParams::new("app", "openid")).await;
    let plain_at = plain["access_token"].as_str().unwrap();
    assert_eq!(plain["token_type"], "Bearer");
    let res = userinfo(
        &app,
        "DPoP",
        plain_at,
        Some(proof(
            &app,
            &CLIENT,
            "GET",
            "/userinfo",
            json!({"ath": ath(plain_at)}),
        )),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_eq!(app.userinfo(plain_at).await.status(), 200);
}

#[tokio::test]
async fn the_token_endpoint_refuses_bad_proofs_and_replays_with_invalid_dpop_proof() {
    let app = spawn_app_with(&clients()).await;
    let cases = [
        ("htm", proof(&app, &CLIENT, "GET", "/token", json!({}))),
        ("htu", proof(&app, &CLIENT, "POST", "/userinfo", json!({}))),
        (
            "typ",
            CLIENT.sign(&json!({"jti": "x", "htm": "POST",
            "htu": format!("{}/token", app.base), "iat": app.state.now()})),
        ),
        ("compact JWS", "not-a-jwt".to_string()),
    ];
    for (rule, d) in cases {
        let res = redeem_with(&app, &AuthParams::new("app", "openid"), Some(d)).await;
        let (status, code, why) = oauth_error(res).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_dpop_proof"),
            "{rule}: {why}"
        );
        assert!(why.contains(rule), "{rule}: {why}");
    }
    // One proof, used twice.
    let once = proof(&app, &CLIENT, "POST", "/token", json!({}));
    let res = redeem_with(&app, &AuthParams::new("app", "openid"), Some(once.clone())).await;
    assert_eq!(res.status(), 200);
    let res = redeem_with(&app, &AuthParams::new("app", "openid"), Some(once)).await;
    let (status, code, why) = oauth_error(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_dpop_proof")
    );
    assert!(why.contains("used before"), "{why}");
    // Two DPoP headers.
    let p = AuthParams::new("app", "openid");
    let q = app.login(&app.browser, &p).await;
    let res = redemption(&app.api, &app.base, &p, &q["code"], Some(SECRET))
        .header("DPoP", proof(&app, &CLIENT, "POST", "/token", json!({})))
        .header("DPoP", proof(&app, &CLIENT, "POST", "/token", json!({})))
        .send()
        .await
        .unwrap();
    let (_, code, why) = oauth_error(res).await;
    assert_eq!(code, "invalid_dpop_proof", "{why}");
}

#[tokio::test]
async fn a_confidential_clients_bound_token_shows_its_key_in_introspection() {
    let app = spawn_app_with(&clients()).await;
    let res = redeem_with(
        &app,
        &AuthParams::new("app", "openid"),
        Some(proof(&app, &CLIENT, "POST", "/token", json!({}))),
    )
    .await;
    let tokens: Value = res.json().await.unwrap();
    let answer: Value = app
        .api
        .post(format!("{}/introspect", app.base))
        .basic_auth("app", Some(SECRET))
        .form(&[("token", tokens["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "DPoP");
    assert_eq!(answer["cnf"]["jkt"], CLIENT.thumbprint());
}

#[tokio::test]
async fn a_public_clients_refresh_token_is_bound_to_the_key_of_its_first_proof() {
    let app = spawn_app_with(&clients()).await;
    let p = AuthParams::new("native", "openid offline_access");
    let res = redeem_with(
        &app,
        &p,
        Some(proof(&app, &CLIENT, "POST", "/token", json!({}))),
    )
    .await;
    let tokens: Value = res.json().await.unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();

    for (what, d) in [
        ("no proof", None),
        (
            "another key",
            Some(proof(&app, &STRANGER, "POST", "/token", json!({}))),
        ),
    ] {
        let (status, code, why) = oauth_error(refresh(&app, rt, d).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_grant"),
            "{what}"
        );
        assert!(why.contains("DPoP key"), "{what}: {why}");
    }
    let res = refresh(
        &app,
        rt,
        Some(proof(&app, &CLIENT, "POST", "/token", json!({}))),
    )
    .await;
    assert_eq!(res.status(), 200);
    let next: Value = res.json().await.unwrap();
    assert_eq!(next["token_type"], "DPoP");
    assert_eq!(
        payload(next["access_token"].as_str().unwrap())["cnf"]["jkt"],
        CLIENT.thumbprint()
    );
    // The successor is bound too.
    let next_rt = next["refresh_token"].as_str().unwrap();
    let (_, code, _) = oauth_error(refresh(&app, next_rt, None).await).await;
    assert_eq!(code, "invalid_grant");
    let res = refresh(
        &app,
        next_rt,
        Some(proof(&app, &CLIENT, "POST", "/token", json!({}))),
    )
    .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_client_registered_for_bound_tokens_gets_none_without_a_proof() {
    let app = spawn_app_with(&clients()).await;
    let p = AuthParams::new("strict", "openid");
    let (status, code, why) = oauth_error(redeem_with(&app, &p, None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    assert!(why.contains("DPoP"), "{why}");
    let res = redeem_with(
        &app,
        &p,
        Some(proof(&app, &CLIENT, "POST", "/token", json!({}))),
    )
    .await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
}

#[tokio::test]
async fn with_nonces_required_a_proof_without_one_is_answered_with_a_nonce_to_retry_with() {
    let app = spawn_app_full("require_dpop_nonce = true", "", &clients()).await;
    let p = AuthParams::new("native", "openid");
    let q = app.login(&app.browser, &p).await;
    let redeem = |d: String| {
        redemption(&app.api, &app.base, &p, &q["code"], None)
            .header("DPoP", d)
            .send()
    };
    let res = redeem(proof(&app, &CLIENT, "POST", "/token", json!({})))
        .await
        .unwrap();
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_string();
    let (status, code, _) = oauth_error(res).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "use_dpop_nonce")
    );
    let res = redeem(proof(
        &app,
        &CLIENT,
        "POST",
        "/token",
        json!({"nonce": "1.forged"}),
    ))
    .await
    .unwrap();
    assert_eq!(oauth_error(res).await.1, "use_dpop_nonce");
    let res = redeem(proof(
        &app,
        &CLIENT,
        "POST",
        "/token",
        json!({"nonce": nonce}),
    ))
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("dpop-nonce"));
    let tokens: Value = res.json().await.unwrap();
    let at = tokens["access_token"].as_str().unwrap();

    // Userinfo: a 401 with a use_dpop_nonce challenge and a nonce, then the claims.
    let res = userinfo(
        &app,
        "DPoP",
        at,
        Some(proof(
            &app,
            &CLIENT,
            "GET",
            "/userinfo",
            json!({"ath": ath(at)}),
        )),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert!(
        challenge(&res).contains("error=\"use_dpop_nonce\""),
        "{}",
        challenge(&res)
    );
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_string();
    let with_nonce = || {
        let d = proof(
            &app,
            &CLIENT,
            "GET",
            "/userinfo",
            json!({"ath": ath(at), "nonce": nonce}),
        );
        userinfo(&app, "DPoP", at, Some(d))
    };
    assert_eq!(with_nonce().await.status(), 200);

    // A nonce is good for a few minutes, not forever.
    app.clock.advance(6 * 60);
    let res = with_nonce().await;
    assert_eq!(res.status(), 401);
    assert!(
        challenge(&res).contains("error=\"use_dpop_nonce\""),
        "{}",
        challenge(&res)
    );
}

#[tokio::test]
async fn the_admin_api_refuses_a_bound_token_and_one_for_an_api() {
    let app = spawn_app_with(
        r#"
[scopes.orders]
description = "Orders"

[[resources]]
uri = "https://api.example/orders"
scopes = ["orders"]

[[clients]]
client_id = "ops"
client_secret = "ops-secret-for-tests"
redirect_uris = []
scopes = ["herald:admin", "orders"]
grant_types = ["client_credentials"]
"#,
    )
    .await;
    let cc = |dpop: Option<String>, resource: Option<&str>| {
        let scope = if resource.is_some() {
            "orders"
        } else {
            "herald:admin"
        };
        let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
        if let Some(r) = resource {
            form.push(("resource", r));
        }
        let mut req = app
            .api
            .post(format!("{}/token", app.base))
            .basic_auth("ops", Some("ops-secret-for-tests"))
            .form(&form);
        if let Some(d) = dpop {
            req = req.header("DPoP", d);
        }
        req.send()
    };
    let admin = |token: String| {
        app.api
            .get(format!("{}/admin/api/clients", app.base))
            .bearer_auth(token)
            .send()
    };
    let token = |res: reqwest::Response| async move {
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // A bearer token administers; the same client's DPoP-bound token, as a bearer, does not.
    let plain = token(cc(None, None).await.unwrap()).await;
    assert_eq!(admin(plain).await.unwrap().status(), 200);
    let bound = token(
        cc(
            Some(proof(&app, &CLIENT, "POST", "/token", json!({}))),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    let res = admin(bound).await.unwrap();
    assert_eq!(res.status(), 401);
    let body = res.text().await.unwrap();
    assert!(body.contains("DPoP-bound"), "{body}");
    // A token for an API is not for the admin API: refused for its audience (401), before its
    // scopes would be (403).
    let for_api = token(cc(None, Some("https://api.example/orders")).await.unwrap()).await;
    assert_eq!(payload(&for_api)["aud"], "https://api.example/orders");
    let res = admin(for_api).await.unwrap();
    assert_eq!(res.status(), 401);
    let body = res.text().await.unwrap();
    assert!(body.contains("another audience"), "{body}");
}

#[tokio::test]
async fn head_at_userinfo_wants_a_proof_for_head() {
    let app = spawn_app_with(&clients()).await;
    let p = AuthParams::new("native", "openid");
    let res = redeem_with(
        &app,
        &p,
        Some(proof(&app, &CLIENT, "POST", "/token", json!({}))),
    )
    .await;
    let t: Value = res.json().await.unwrap();
    let at = t["access_token"].as_str().unwrap();
    let head = |htm: &str| {
        app.api
            .head(format!("{}/userinfo", app.base))
            .header("Authorization", format!("DPoP {at}"))
            .header(
                "DPoP",
                proof(&app, &CLIENT, htm, "/userinfo", json!({"ath": ath(at)})),
            )
            .send()
    };
    assert_eq!(head("GET").await.unwrap().status(), 401);
    assert_eq!(head("HEAD").await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_public_clients_family_is_bound_from_its_first_proof_on() {
    let app = spawn_app_with(&clients()).await;
    let p = AuthParams::new("native", "openid offline_access");
    let t: Value = redeem_with(&app, &p, None).await.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    let res = refresh(
        &app,
        t["refresh_token"].as_str().unwrap(),
        Some(proof(&app, &CLIENT, "POST", "/token", json!({}))),
    )
    .await;
    assert_eq!(res.status(), 200);
    let next: Value = res.json().await.unwrap();
    let (status, code, _) =
        oauth_error(refresh(&app, next["refresh_token"].as_str().unwrap(), None).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

#[tokio::test]
async fn discovery_lists_the_proof_algorithms() {
    let app = spawn_app().await;
    let discovery: Value = discovery(&app).await;
    assert_eq!(
        discovery["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "EdDSA", "RS256", "PS256"])
    );
}
