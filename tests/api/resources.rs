//! Issue 21: resource indicators (RFC 8707) and DPoP-bound codes (RFC 9449 §10). An app names
//! the APIs it wants tokens for with `resource` (repeatable) at `/authorize`; `/token` may
//! narrow to one of them; the access token's `aud` is the API, its scopes only the API's, its
//! lifetime and algorithm the API's. Unknown or ungranted resources are `invalid_target`. An
//! authorization request's `dpop_jkt` (or a DPoP proof at `/par`) binds its code to a key.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::test_keys::{CLIENT, STRANGER};
use crate::support::*;

const ORDERS: &str = "https://api.example/orders";
const BILLING: &str = "https://api.example/billing";

fn config() -> String {
    format!(
        r#"
[scopes."orders:read"]
description = "See your orders"

[scopes.billing]
description = "See your invoices"

[[resources]]
uri = "{ORDERS}"
scopes = ["orders:read"]
access_token_ttl = "5m"
access_token_signed_response_alg = "ES256"

[[resources]]
uri = "{BILLING}"
scopes = ["billing"]

[[clients]]
client_id = "shop"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid", "profile", "orders:read", "billing", "offline_access"]
grant_types = ["authorization_code", "refresh_token", "client_credentials"]
"#
    )
}

fn header(jwt: &str) -> Value {
    use base64::Engine;
    let h = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(h)
            .unwrap(),
    )
    .unwrap()
}

/// Logs in with `p` and redeems its code as `shop`, with `extra` in the token request.
async fn tokens(app: &TestApp, p: &AuthParams, extra: &[(&str, &str)]) -> reqwest::Response {
    let q = app.login(&app.browser, p).await;
    token_request(app, p, &q["code"], extra, None).await
}

async fn token_request(
    app: &TestApp,
    p: &AuthParams,
    code: &str,
    extra: &[(&str, &str)],
    dpop: Option<String>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code.to_string()),
        ("redirect_uri", p.redirect_uri.clone()),
        ("code_verifier", p.verifier.clone().unwrap()),
    ];
    form.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let mut req = app
        .api
        .post(format!("{}/token", app.base))
        .basic_auth(&p.client_id, Some(SECRET))
        .form(&form);
    if let Some(d) = dpop {
        req = req.header("DPoP", d);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_token_for_one_api_has_its_audience_scopes_lifetime_and_algorithm() {
    let app = spawn_app_with(&config()).await;
    let p = AuthParams::new("shop", "openid profile orders:read").with("resource", ORDERS);
    let res = tokens(&app, &p, &[]).await;
    assert_eq!(res.status(), 200);
    let t: Value = res.json().await.unwrap();
    let at = t["access_token"].as_str().unwrap();
    let claims = payload(at);
    assert_eq!(claims["aud"], ORDERS);
    assert_eq!(claims["scope"], "orders:read");
    assert_eq!(t["scope"], "orders:read");
    assert_eq!(t["expires_in"], 300);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert_eq!(header(at)["alg"], "ES256");
    // The ID token is the login's, with its profile claims and the client's algorithm.
    let id = t["id_token"].as_str().unwrap();
    assert_eq!(header(id)["alg"], "RS256");
    assert_eq!(payload(id)["aud"], "shop");
    assert!(payload(id).get("name").is_some(), "{}", payload(id));
    // The API's token is not one for userinfo.
    let res = app.userinfo(at).await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("another audience")
    );
    // Introspection shows its audience.
    let answer: Value = app
        .api
        .post(format!("{}/introspect", app.base))
        .basic_auth("shop", Some(SECRET))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (answer["active"].clone(), answer["aud"].clone()),
        (json!(true), json!(ORDERS))
    );
}

#[tokio::test]
async fn several_resources_are_narrowed_at_the_token_endpoint_never_widened() {
    let app = spawn_app_with(&config()).await;
    let p = AuthParams::new("shop", "openid orders:read billing offline_access")
        .with("resource", ORDERS)
        .with("resource", BILLING);
    let q = app.login(&app.browser, &p).await;
    let code = &q["code"];

    // An API nobody registered, then one not asked for at /authorize: nothing is spent.
    let (status, code_name, why) = oauth_error(
        token_request(&app, &p, code, &[("resource", "https://elsewhere")], None).await,
    )
    .await;
    assert_eq!(
        (status, code_name.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_target")
    );
    assert!(why.contains("https://elsewhere"), "{why}");

    let res = token_request(&app, &p, code, &[("resource", BILLING)], None).await;
    assert_eq!(res.status(), 200);
    let t: Value = res.json().await.unwrap();
    let claims = payload(t["access_token"].as_str().unwrap());
    assert_eq!(
        (claims["aud"].clone(), claims["scope"].clone()),
        (json!(BILLING), json!("billing"))
    );

    // The refresh token may narrow to the other API of the grant, not to a third.
    let refresh = |resource: &'static str| {
        app.api
            .post(format!("{}/token", app.base))
            .basic_auth("shop", Some(SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("resource", resource),
            ])
            .send()
    };
    let (status, code_name, why) = oauth_error(refresh("https://elsewhere").await.unwrap()).await;
    assert_eq!(
        (status, code_name.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_target"),
        "{why}"
    );
    let res = refresh(ORDERS).await.unwrap();
    assert_eq!(res.status(), 200);
    let r: Value = res.json().await.unwrap();
    let claims = payload(r["access_token"].as_str().unwrap());
    assert_eq!(
        (claims["aud"].clone(), claims["scope"].clone()),
        (json!(ORDERS), json!("orders:read"))
    );
}

#[tokio::test]
async fn without_narrowing_the_token_is_for_every_api_asked_for() {
    let app = spawn_app_with(&config()).await;
    let p = AuthParams::new("shop", "openid orders:read billing")
        .with("resource", ORDERS)
        .with("resource", BILLING);
    let t: Value = tokens(&app, &p, &[]).await.json().await.unwrap();
    let claims = payload(t["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], json!([ORDERS, BILLING]));
    assert_eq!(claims["scope"], "orders:read billing");
    // The shorter lifetime of the two.
    assert_eq!(t["expires_in"], 300);
}

#[tokio::test]
async fn the_authorization_endpoint_refuses_unknown_resources_and_ones_without_a_scope() {
    let app = spawn_app_with(&config()).await;
    let cases = [
        (
            AuthParams::new("shop", "openid orders:read").with("resource", "https://elsewhere"),
            "invalid_target",
            "https://elsewhere",
        ),
        (
            AuthParams::new("shop", "openid orders:read").with("resource", BILLING),
            "invalid_scope",
            "billing",
        ),
    ];
    for (p, code, says) in cases {
        let Outcome::Client(q) = app.start(&browser(), &p).await else {
            panic!("expected the app");
        };
        assert_eq!(q.get("error").map(String::as_str), Some(code), "{q:?}");
        assert!(q["error_description"].contains(says), "{q:?}");
        assert_eq!(q["iss"], app.base);
        assert_eq!(q["state"], p.state);
    }
}

#[tokio::test]
async fn client_credentials_may_ask_for_any_registered_api() {
    let app = spawn_app_with(&config()).await;
    let cc = |resource: &'static str| {
        app.api
            .post(format!("{}/token", app.base))
            .basic_auth("shop", Some(SECRET))
            .form(&[("grant_type", "client_credentials"), ("resource", resource)])
            .send()
    };
    let res = cc(ORDERS).await.unwrap();
    assert_eq!(res.status(), 200);
    let t: Value = res.json().await.unwrap();
    let claims = payload(t["access_token"].as_str().unwrap());
    assert_eq!(
        (claims["aud"].clone(), claims["scope"].clone()),
        (json!(ORDERS), json!("orders:read"))
    );
    let (status, code, _) = oauth_error(cc("https://elsewhere").await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_target")
    );
}

#[test]
fn a_resource_must_be_an_absolute_uri_with_defined_scopes() {
    let base = config_with_upstream("");
    for (resource, says) in [
        (
            "uri = \"https://api.example/x#frag\"\nscopes = [\"openid\"]",
            "without a fragment",
        ),
        ("uri = \"/relative\"\nscopes = [\"openid\"]", "absolute URI"),
        (
            "uri = \"https://api.example/x\"\nscopes = [\"nope\"]",
            "`nope` is not a defined scope",
        ),
        ("uri = \"https://api.example/x\"", "name the scopes"),
        (
            "uri = \"https://herald.example\"\nscopes = [\"openid\"]",
            "this server's issuer",
        ),
    ] {
        let toml = format!("{base}\n[[resources]]\n{resource}\n");
        let err = herald::config::from_toml(&toml).unwrap_err().to_string();
        assert!(err.contains(says), "{resource}: {err}");
    }
}

#[tokio::test]
async fn a_code_bound_with_dpop_jkt_is_redeemed_only_with_a_proof_by_that_key() {
    let app = spawn_app_with(&config()).await;
    let p = AuthParams::new("shop", "openid").with("dpop_jkt", &CLIENT.thumbprint());
    let q = app.login(&app.browser, &p).await;
    let proof = |key: &crate::support::test_keys::TestKey| {
        key.dpop_proof(&json!({
            "jti": herald::tokens::random_token(),
            "htm": "POST",
            "htu": format!("{}/token", app.base),
            "iat": app.state.now(),
        }))
    };
    for dpop in [None, Some(proof(&STRANGER))] {
        let (status, code, why) =
            oauth_error(token_request(&app, &p, &q["code"], &[], dpop).await).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_grant")
        );
        assert!(why.contains("dpop_jkt"), "{why}");
    }
    let res = token_request(&app, &p, &q["code"], &[], Some(proof(&CLIENT))).await;
    assert_eq!(res.status(), 200);
    let t: Value = res.json().await.unwrap();
    assert_eq!(t["token_type"], "DPoP");

    // A malformed dpop_jkt is refused at the app's redirect URI.
    let bad = AuthParams::new("shop", "openid").with("dpop_jkt", "short");
    let Outcome::Client(q) = app.start(&browser(), &bad).await else {
        panic!("expected the app");
    };
    assert_eq!(q["error"], "invalid_request");
}

#[tokio::test]
async fn a_dpop_proof_at_par_binds_the_code_to_its_key() {
    let app = spawn_app_with(&config()).await;
    let p = AuthParams::new("shop", "openid");
    let proof = |key: &crate::support::test_keys::TestKey, path: &str| {
        key.dpop_proof(&json!({
            "jti": herald::tokens::random_token(),
            "htm": "POST",
            "htu": format!("{}{path}", app.base),
            "iat": app.state.now(),
        }))
    };
    let res = app
        .api
        .post(format!("{}/par", app.base))
        .basic_auth("shop", Some(SECRET))
        .header("DPoP", proof(&CLIENT, "/par"))
        .form(&p.query())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_string();
    let mut u = url::Url::parse(&format!("{}/authorize", app.base)).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", "shop")
        .append_pair("request_uri", &uri);
    let q = match app.follow(&app.browser, u.to_string()).await {
        Outcome::Client(q) => q,
        Outcome::Consent(html) => match app.decide(&app.browser, &html, "allow").await {
            Outcome::Client(q) => q,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let (_, code, _) = oauth_error(
        token_request(&app, &p, &q["code"], &[], Some(proof(&STRANGER, "/token"))).await,
    )
    .await;
    assert_eq!(code, "invalid_grant");
    let res = token_request(&app, &p, &q["code"], &[], Some(proof(&CLIENT, "/token"))).await;
    assert_eq!(res.status(), 200);
}
