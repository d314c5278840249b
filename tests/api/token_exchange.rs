//! Issue 21: token exchange (RFC 8693), for the broker case. A confidential client trades an
//! upstream's ID token (signed by the test upstream's key, verified by Herald against its JWKS)
//! for a Herald access token for the same user with the upstream's mappings applied; or one of
//! its own Herald access tokens for a token for a registered API, never widening scopes.
//! Refusals carry RFC 8693's codes with a description.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const ORDERS: &str = "https://api.example/orders";

fn config() -> String {
    format!(
        r#"
[scopes."orders:read"]
description = "See your orders"

[[resources]]
uri = "{ORDERS}"
scopes = ["orders:read"]

[[clients]]
client_id = "backend"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid", "groups", "orders:read"]
grant_types = ["authorization_code", "{GRANT}"]

[[clients]]
client_id = "other-backend"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid", "groups", "orders:read"]
grant_types = ["{GRANT}"]
trusted = true

[[clients]]
client_id = "public-exchanger"
redirect_uris = ["{APP_CB}"]
scopes = ["openid"]
grant_types = ["authorization_code", "{GRANT}"]
"#
    )
}

async fn exchange(app: &TestApp, client: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let mut body = vec![("grant_type", GRANT)];
    body.extend_from_slice(form);
    let req = app.api.post(format!("{}/token", app.base));
    let req = if client == "public-exchanger" {
        body.push(("client_id", client));
        req
    } else {
        req.basic_auth(client, Some(SECRET))
    };
    req.form(&body).send().await.unwrap()
}

/// An ID token the test upstream signs for Herald's client there, about `sub`.
fn upstream_id_token(app: &TestApp, sub: &str, exp_in: i64, aud: &str) -> String {
    let now = unix_now();
    app.upstream.sign(&json!({
        "iss": app.upstream.issuer(), "aud": aud, "sub": sub, "iat": now, "exp": now + exp_in,
        "https://example.com/groups": ["staff", "exchanged"],
    }))
}

#[tokio::test]
async fn an_upstream_id_token_becomes_a_herald_token_for_the_same_user_with_mappings_applied() {
    let app = spawn_app_with(&config()).await;
    // Alice signed in through the app once, allowing openid and groups.
    let login = app
        .tokens(&AuthParams::new("backend", "openid groups"))
        .await;
    let sub = payload(login["id_token"].as_str().unwrap())["sub"].clone();

    let id_token = upstream_id_token(&app, "auth0|alice", 300, "herald-at-upstream");
    let res = exchange(
        &app,
        "backend",
        &[
            ("subject_token", &id_token),
            ("subject_token_type", ID_TOKEN),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let t: Value = res.json().await.unwrap();
    assert_eq!(t["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(
        t["scope"], "openid groups",
        "what the user allowed this app"
    );
    let at = t["access_token"].as_str().unwrap();
    let claims = payload(at);
    assert_eq!(claims["sub"], sub);
    assert_eq!(claims["client_id"], "backend");
    // The upstream's mapping applied to the exchanged token's claims.
    let info: Value = app.userinfo(at).await.json().await.unwrap();
    assert_eq!(info["groups"], json!(["staff", "exchanged"]));

    let cases = [
        (
            upstream_id_token(&app, "auth0|alice", -600, "herald-at-upstream"),
            "invalid_request",
            "expired",
        ),
        (
            upstream_id_token(&app, "auth0|alice", 300, "someone-else"),
            "invalid_request",
            "not acceptable",
        ),
        (
            upstream_id_token(&app, "auth0|nobody", 300, "herald-at-upstream"),
            "invalid_grant",
            "not signed in",
        ),
    ];
    for (token, code, says) in cases {
        let (status, got, why) = oauth_error(
            exchange(
                &app,
                "backend",
                &[("subject_token", &token), ("subject_token_type", ID_TOKEN)],
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, got.as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{why}"
        );
        assert!(why.contains(says), "{says}: {why}");
    }
    // An ID token without aud, and access tokens issued to another app (by azp, or by aud with
    // no azp), or opaque: none is taken as proof of a login.
    let now = unix_now();
    let upstream_token = |extra: Value| {
        let mut c = json!({"iss": app.upstream.issuer(), "sub": "auth0|alice", "iat": now,
            "exp": now + 300});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        app.upstream.sign(&c)
    };
    let refused = [
        (upstream_token(json!({})), ID_TOKEN),
        (
            upstream_token(json!({"aud": "herald-at-upstream", "azp": "another-app"})),
            ACCESS_TOKEN,
        ),
        (
            upstream_token(json!({"aud": "https://unrelated-api"})),
            ACCESS_TOKEN,
        ),
        ("an-opaque-token".to_string(), ACCESS_TOKEN),
    ];
    for (token, kind) in refused {
        let (_, code, why) = oauth_error(
            exchange(
                &app,
                "backend",
                &[("subject_token", &token), ("subject_token_type", kind)],
            )
            .await,
        )
        .await;
        assert_eq!(code, "invalid_request", "{why}");
    }
    // An access token issued to Herald's client there is taken.
    let ours = upstream_token(json!({"aud": "herald-at-upstream", "azp": "herald-at-upstream"}));
    let res = exchange(
        &app,
        "backend",
        &[
            ("subject_token", &ours),
            ("subject_token_type", ACCESS_TOKEN),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);

    // A token from an issuer Herald does not know.
    let now = unix_now();
    let foreign = app
        .upstream
        .sign(&json!({"iss": "https://evil.example", "aud": "x",
        "sub": "auth0|alice", "iat": now, "exp": now + 60}));
    let (_, code, why) = oauth_error(
        exchange(
            &app,
            "backend",
            &[
                ("subject_token", &foreign),
                ("subject_token_type", ID_TOKEN),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(code, "invalid_request");
    assert!(why.contains("not a configured upstream"), "{why}");
    // An app the user never allowed gets nothing (it is not trusted, so consent is needed).
    let app2 = spawn_app_with(&config()).await;
    let token = upstream_id_token(&app2, "auth0|alice", 300, "herald-at-upstream");
    app2.tokens(&AuthParams::new("app", "openid")).await;
    let (_, code, why) = oauth_error(
        exchange(
            &app2,
            "backend",
            &[("subject_token", &token), ("subject_token_type", ID_TOKEN)],
        )
        .await,
    )
    .await;
    assert_eq!(code, "invalid_grant");
    assert!(why.contains("not allowed this app"), "{why}");
}

#[tokio::test]
async fn a_herald_token_is_exchanged_for_an_api_by_its_own_client_never_wider() {
    let app = spawn_app_with(&config()).await;
    let login = app
        .tokens(&AuthParams::new("backend", "openid orders:read"))
        .await;
    let at = login["access_token"].as_str().unwrap();
    let res = exchange(
        &app,
        "backend",
        &[
            ("subject_token", at),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", ORDERS),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    let t: Value = res.json().await.unwrap();
    let claims = payload(t["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], ORDERS);
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(claims["sub"], payload(at)["sub"]);
    // It does not outlive its subject: exchanging again later cannot renew a token forever.
    app.clock.advance(1800);
    let res = exchange(
        &app,
        "backend",
        &[("subject_token", at), ("subject_token_type", ACCESS_TOKEN)],
    )
    .await;
    let later: Value = res.json().await.unwrap();
    assert_eq!(
        payload(later["access_token"].as_str().unwrap())["exp"],
        payload(at)["exp"]
    );

    let refused = [
        (
            "backend",
            vec![("scope", "openid groups")],
            "invalid_scope",
            "groups",
        ),
        (
            "backend",
            vec![("resource", "https://elsewhere")],
            "invalid_target",
            "elsewhere",
        ),
        ("other-backend", vec![], "invalid_request", "another client"),
        (
            "backend",
            vec![("actor_token", "x"), ("actor_token_type", ACCESS_TOKEN)],
            "invalid_request",
            "actor_token",
        ),
        (
            "backend",
            vec![(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )],
            "invalid_request",
            "requested_token_type",
        ),
    ];
    for (client, extra, code, says) in refused {
        let mut form = vec![("subject_token", at), ("subject_token_type", ACCESS_TOKEN)];
        form.extend(extra);
        let (status, got, why) = oauth_error(exchange(&app, client, &form).await).await;
        assert_eq!(
            (status, got.as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{says}: {why}"
        );
        assert!(why.contains(says), "{says}: {why}");
    }
    // A revoked token is no subject.
    let revoked = app
        .api
        .post(format!("{}/revoke", app.base))
        .basic_auth("backend", Some(SECRET))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let (_, code, why) = oauth_error(
        exchange(
            &app,
            "backend",
            &[("subject_token", at), ("subject_token_type", ACCESS_TOKEN)],
        )
        .await,
    )
    .await;
    assert_eq!(code, "invalid_request");
    assert!(why.contains("revoked"), "{why}");
}

#[tokio::test]
async fn only_confidential_clients_registered_for_it_may_exchange_and_discovery_says_so() {
    let app = spawn_app_with(&config()).await;
    let token = upstream_id_token(&app, "auth0|alice", 300, "herald-at-upstream");
    let form = [
        ("subject_token", token.as_str()),
        ("subject_token_type", ID_TOKEN),
    ];
    let (_, code, _) = oauth_error(exchange(&app, "public-exchanger", &form).await).await;
    assert_eq!(code, "unauthorized_client");
    let res = app
        .api
        .post(format!("{}/token", app.base))
        .basic_auth("app", Some(SECRET))
        .form(&[
            ("grant_type", GRANT),
            ("subject_token", &token),
            ("subject_token_type", ID_TOKEN),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(res).await.1, "unauthorized_client");
    let discovery: Value = discovery(&app).await;
    assert!(
        discovery["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(GRANT))
    );
}

#[tokio::test]
async fn a_dpop_bound_token_is_exchanged_only_with_a_proof_by_its_key() {
    use crate::support::test_keys::{CLIENT, STRANGER, TestKey};
    let app = spawn_app_with(&config()).await;
    let proof = |key: &TestKey| {
        key.dpop_proof(&json!({
            "jti": herald::tokens::random_token(),
            "htm": "POST",
            "htu": format!("{}/token", app.base),
            "iat": app.state.now(),
        }))
    };
    let p = AuthParams::new("backend", "openid orders:read");
    let q = app.login(&app.browser, &p).await;
    let bound: Value = redemption(&app.api, &app.base, &p, &q["code"], Some(SECRET))
        .header("DPoP", proof(&CLIENT))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = bound["access_token"].as_str().unwrap();
    let form = [
        ("grant_type", GRANT),
        ("subject_token", at),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    let send = |dpop: Option<String>| {
        let mut req = app
            .api
            .post(format!("{}/token", app.base))
            .basic_auth("backend", Some(SECRET))
            .form(&form);
        if let Some(d) = dpop {
            req = req.header("DPoP", d);
        }
        req.send()
    };
    for dpop in [None, Some(proof(&STRANGER))] {
        let (_, code, why) = oauth_error(send(dpop).await.unwrap()).await;
        assert_eq!(code, "invalid_request");
        assert!(why.contains("DPoP-bound"), "{why}");
    }
    let res = send(Some(proof(&CLIENT))).await.unwrap();
    assert_eq!(res.status(), 200);
    let t: Value = res.json().await.unwrap();
    assert_eq!(t["token_type"], "DPoP");
}
