//! The token lifecycle over HTTP: refresh tokens (RFC 6749 §6, RFC 9700 §4.14.2),
//! client_credentials (RFC 6749 §4.4), revocation (RFC 7009) and introspection (RFC 7662).

use serde_json::Value;

use crate::support::*;

/// `rp` has the refresh_token grant with a 1 h idle and 3 h absolute lifetime.
const OFFLINE: &str = "openid email offline_access";

async fn post(app: &TestApp, path: &str, client: &str, form: &[(&str, &str)]) -> reqwest::Response {
    let req = app.api.post(format!("{}{path}", app.base));
    let req = if client == "spa" {
        let mut f = form.to_vec();
        f.push(("client_id", "spa"));
        return req.form(&f).send().await.unwrap();
    } else {
        req.basic_auth(client, Some(SECRET))
    };
    req.form(form).send().await.unwrap()
}

async fn refresh(
    app: &TestApp,
    client: &str,
    token: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    post(app, "/token", client, &form).await
}

/// Status and body of a response that must not be cached.
async fn json_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store");
    (status, res.json().await.unwrap())
}

async fn error_code(res: reqwest::Response) -> String {
    let (_, v) = json_of(res).await;
    v["error"].as_str().unwrap().to_string()
}

async fn introspect(app: &TestApp, client: &str, token: &str) -> Value {
    let (status, v) = json_of(post(app, "/introspect", client, &[("token", token)]).await).await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn revoke(app: &TestApp, client: &str, token: &str) {
    let (status, _) = json_of(post(app, "/revoke", client, &[("token", token)]).await).await;
    assert_eq!(status, 200);
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}"))
}

#[tokio::test]
async fn refresh_tokens_come_only_with_offline_access_to_clients_with_the_grant() {
    let app = spawn_app().await;
    let without = app.tokens(&AuthParams::new("rp", "openid email")).await;
    assert!(without.get("refresh_token").is_none(), "{without}");
    let with = app.tokens(&AuthParams::new("rp", OFFLINE)).await;
    assert_eq!(str_of(&with, "refresh_token").len(), 43);
    // The app client lacks the grant: the refresh_token grant itself is refused.
    let res = refresh(&app, "app", str_of(&with, "refresh_token"), None).await;
    assert_eq!(error_code(res).await, "unauthorized_client");
}

#[tokio::test]
async fn a_refresh_rotates_the_token_and_keeps_the_id_token_identity() {
    let app = spawn_app().await;
    let p = AuthParams::new("rp", OFFLINE);
    let first = app.tokens(&p).await;
    let first_id = payload(str_of(&first, "id_token"));
    app.clock.advance(120);

    let (status, second) =
        json_of(refresh(&app, "rp", str_of(&first, "refresh_token"), None).await).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["scope"], OFFLINE);
    let id = payload(str_of(&second, "id_token"));
    for claim in ["iss", "sub", "aud", "auth_time"] {
        assert_eq!(id[claim], first_id[claim], "{claim}");
    }
    assert!(id["iat"].as_i64().unwrap() >= first_id["iat"].as_i64().unwrap() + 120);
    assert!(
        id.get("nonce").is_none(),
        "the nonce belongs to the original request"
    );
    // Claims are released again from the stored login.
    let res = app.userinfo(str_of(&second, "access_token")).await;
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["sub"], id["sub"]);
    assert!(info.get("email").is_some(), "{info}");

    // The successor rotates in turn.
    let (status, third) =
        json_of(refresh(&app, "rp", str_of(&second, "refresh_token"), None).await).await;
    assert_eq!(status, 200, "{third}");
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let first = app.tokens(&AuthParams::new("rp", OFFLINE)).await;
    let old = str_of(&first, "refresh_token");
    let (_, second) = json_of(refresh(&app, "rp", old, None).await).await;
    let at = str_of(&second, "access_token");
    assert_eq!(app.userinfo(at).await.status(), 200);

    assert_eq!(
        error_code(refresh(&app, "rp", old, None).await).await,
        "invalid_grant"
    );
    // The successor and every access token of the family stop working.
    let res = refresh(&app, "rp", str_of(&second, "refresh_token"), None).await;
    assert_eq!(error_code(res).await, "invalid_grant");
    assert_eq!(app.userinfo(at).await.status(), 401);
    assert_eq!(
        app.userinfo(str_of(&first, "access_token")).await.status(),
        401
    );
}

/// `rp` with a grace period for rotated refresh tokens.
const GRACE_CLIENT: &str = r#"
[[clients]]
client_id = "tabs"
client_secret = "app-secret-for-tests"
redirect_uris = ["http://127.0.0.1:9000/cb"]
scopes = ["openid", "email", "offline_access"]
grant_types = ["authorization_code", "refresh_token"]
refresh_token_grace_period = "30s"
"#;

#[tokio::test]
async fn within_the_grace_period_a_rotated_refresh_token_works_once_more_then_reuse_revokes() {
    let app = spawn_app_with(GRACE_CLIENT).await;
    let first = app.tokens(&AuthParams::new("tabs", OFFLINE)).await;
    let old = str_of(&first, "refresh_token");
    let (status, second) = json_of(refresh(&app, "tabs", old, None).await).await;
    assert_eq!(status, 200);
    // The answer was lost: the client retries with the old token within the grace period.
    app.clock.advance(10);
    let (status, retried) = json_of(refresh(&app, "tabs", old, None).await).await;
    assert_eq!(status, 200, "{retried}");
    assert_ne!(
        str_of(&retried, "refresh_token"),
        str_of(&second, "refresh_token")
    );
    // Both successors live: nothing was revoked.
    let (status, _) =
        json_of(refresh(&app, "tabs", str_of(&second, "refresh_token"), None).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.userinfo(str_of(&retried, "access_token"))
            .await
            .status(),
        200
    );
    // A third use of the old token is a reuse: the family is revoked.
    assert_eq!(
        error_code(refresh(&app, "tabs", old, None).await).await,
        "invalid_grant"
    );
    let res = refresh(&app, "tabs", str_of(&retried, "refresh_token"), None).await;
    assert_eq!(error_code(res).await, "invalid_grant");
    assert_eq!(
        app.userinfo(str_of(&retried, "access_token"))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn after_the_grace_period_a_rotated_refresh_token_is_a_reuse() {
    let app = spawn_app_with(GRACE_CLIENT).await;
    let first = app.tokens(&AuthParams::new("tabs", OFFLINE)).await;
    let old = str_of(&first, "refresh_token");
    let (_, second) = json_of(refresh(&app, "tabs", old, None).await).await;
    app.clock.advance(31);
    assert_eq!(
        error_code(refresh(&app, "tabs", old, None).await).await,
        "invalid_grant"
    );
    let res = refresh(&app, "tabs", str_of(&second, "refresh_token"), None).await;
    assert_eq!(
        error_code(res).await,
        "invalid_grant",
        "the family is revoked"
    );
}

#[tokio::test]
async fn replaying_the_code_revokes_the_refresh_token_of_its_first_use() {
    let app = spawn_app().await;
    let p = AuthParams::new("rp", OFFLINE);
    let code = app.login(&app.browser, &p).await["code"].clone();
    let (_, first) = json_of(app.redeem(&p, &code).await).await;
    assert_eq!(
        error_code(app.redeem(&p, &code).await).await,
        "invalid_grant"
    );
    let res = refresh(&app, "rp", str_of(&first, "refresh_token"), None).await;
    assert_eq!(error_code(res).await, "invalid_grant");
}

#[tokio::test]
async fn a_narrower_scope_is_honoured_and_a_wider_one_is_invalid_scope() {
    let app = spawn_app().await;
    let t = app.tokens(&AuthParams::new("rp", OFFLINE)).await;
    let rt = str_of(&t, "refresh_token");
    let res = refresh(&app, "rp", rt, Some("openid profile")).await;
    assert_eq!(
        error_code(res).await,
        "invalid_scope",
        "profile was never granted"
    );

    // Without openid: no ID token, and the access token carries only what was asked.
    let (status, narrow) = json_of(refresh(&app, "rp", rt, Some("email")).await).await;
    assert_eq!(status, 200, "{narrow}");
    assert_eq!(narrow["scope"], "email");
    assert!(narrow.get("id_token").is_none());
    assert_eq!(payload(str_of(&narrow, "access_token"))["scope"], "email");

    // The successor still holds the original grant: the full scope can come back.
    let (status, full) =
        json_of(refresh(&app, "rp", str_of(&narrow, "refresh_token"), None).await).await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["scope"], OFFLINE);
}

#[tokio::test]
async fn another_clients_refresh_token_and_missing_parameters_are_refused() {
    let app = spawn_app().await;
    let t = app.tokens(&AuthParams::new("rp", OFFLINE)).await;
    let rt = str_of(&t, "refresh_token");
    assert_eq!(
        error_code(refresh(&app, "rp2", rt, None).await).await,
        "invalid_grant"
    );
    // Untouched by the other client's attempt.
    let (status, _) = json_of(refresh(&app, "rp", rt, None).await).await;
    assert_eq!(status, 200);
    let res = post(&app, "/token", "rp", &[("grant_type", "refresh_token")]).await;
    assert_eq!(error_code(res).await, "invalid_request");
    let res = refresh(&app, "rp", "not-a-refresh-token", None).await;
    assert_eq!(error_code(res).await, "invalid_grant");
}

#[tokio::test]
async fn a_refresh_token_unused_for_its_idle_lifetime_expires() {
    let app = spawn_app().await;
    let t = app.tokens(&AuthParams::new("rp", OFFLINE)).await;
    app.clock.advance(3600);
    let res = refresh(&app, "rp", str_of(&t, "refresh_token"), None).await;
    assert_eq!(error_code(res).await, "invalid_grant");
    // The access token (1 h, 60 s leeway) has expired on the same injected clock.
    app.clock.advance(61);
    assert_eq!(app.userinfo(str_of(&t, "access_token")).await.status(), 401);
}

#[tokio::test]
async fn rotation_extends_the_idle_lifetime_but_never_the_absolute_one() {
    let app = spawn_app().await;
    let t = app.tokens(&AuthParams::new("rp", OFFLINE)).await;
    let mut rt = str_of(&t, "refresh_token").to_string();
    // Every 50 minutes, within the 1 h idle lifetime, until the 3 h absolute one ends.
    for _ in 0..3 {
        app.clock.advance(50 * 60);
        let (status, next) = json_of(refresh(&app, "rp", &rt, None).await).await;
        assert_eq!(status, 200, "{next}");
        rt = str_of(&next, "refresh_token").to_string();
    }
    app.clock.advance(50 * 60);
    assert_eq!(
        error_code(refresh(&app, "rp", &rt, None).await).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn client_credentials_gives_a_confidential_client_a_token_for_itself() {
    let app = spawn_app().await;
    let cc = |scope: Option<&'static str>| {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        form
    };
    let (status, all) = json_of(post(&app, "/token", "m2m", &cc(None)).await).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["scope"], "api reports");
    assert!(all.get("id_token").is_none() && all.get("refresh_token").is_none());
    let claims = payload(str_of(&all, "access_token"));
    assert_eq!(
        (&claims["sub"], &claims["client_id"]),
        (&"m2m".into(), &"m2m".into())
    );

    let (status, one) = json_of(post(&app, "/token", "m2m", &cc(Some("reports"))).await).await;
    assert_eq!((status, &one["scope"]), (200, &"reports".into()));
    for refused in ["openid", "api profile", "offline_access"] {
        let res = post(&app, "/token", "m2m", &cc(Some(refused))).await;
        assert_eq!(error_code(res).await, "invalid_scope", "{refused}");
    }
    // A public client and a client without the grant are refused.
    let res = post(&app, "/token", "spa", &cc(None)).await;
    assert_eq!(error_code(res).await, "unauthorized_client");
    let res = post(&app, "/token", "rp", &cc(None)).await;
    assert_eq!(error_code(res).await, "unauthorized_client");
    // A machine client cannot start a login either.
    let res = post(
        &app,
        "/token",
        "m2m",
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", APP_CB),
        ],
    )
    .await;
    assert_eq!(error_code(res).await, "unauthorized_client");
}

#[tokio::test]
async fn introspection_describes_live_tokens_of_the_caller_only() {
    let app = spawn_app().await;
    let t = app.tokens(&AuthParams::new("rp", OFFLINE)).await;
    let at = str_of(&t, "access_token");
    let rt = str_of(&t, "refresh_token");

    let a = introspect(&app, "rp", at).await;
    assert_eq!(a["active"], true);
    assert_eq!(a["token_type"], "Bearer");
    assert_eq!(a["scope"], OFFLINE);
    assert_eq!(a["client_id"], "rp");
    assert_eq!(a["aud"], app.base.as_str());
    assert_eq!(a["iss"], app.base.as_str());
    for k in ["sub", "exp", "iat", "jti"] {
        assert!(a.get(k).is_some(), "{k} in {a}");
    }
    let r = introspect(&app, "rp", rt).await;
    assert_eq!(
        (&r["active"], &r["client_id"]),
        (&true.into(), &"rp".into())
    );
    assert_eq!(r["sub"], a["sub"]);

    // Another client learns nothing; neither does anyone from garbage.
    assert_eq!(
        introspect(&app, "rp2", at).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(introspect(&app, "rp2", rt).await["active"], false);
    assert_eq!(introspect(&app, "rp", "garbage").await["active"], false);
    assert_eq!(introspect(&app, "rp", "a.b.c").await["active"], false);

    // A public client may not introspect; a missing token is invalid_request.
    let res = post(&app, "/introspect", "spa", &[("token", at)]).await;
    assert_eq!(res.status(), 401);
    let res = post(&app, "/introspect", "rp", &[]).await;
    assert_eq!(error_code(res).await, "invalid_request");

    // Rotated and expired tokens are inactive.
    let (_, next) = json_of(refresh(&app, "rp", rt, None).await).await;
    assert_eq!(introspect(&app, "rp", rt).await["active"], false);
    app.clock.advance(3601);
    assert_eq!(introspect(&app, "rp", at).await["active"], false);
    assert_eq!(
        introspect(&app, "rp", str_of(&next, "refresh_token")).await["active"],
        false
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family_and_access_tokens() {
    let app = spawn_app().await;
    let t = app.tokens(&AuthParams::new("rp", OFFLINE)).await;
    let rt = str_of(&t, "refresh_token");
    let at = str_of(&t, "access_token");
    revoke(&app, "rp", rt).await;
    assert_eq!(
        error_code(refresh(&app, "rp", rt, None).await).await,
        "invalid_grant"
    );
    assert_eq!(app.userinfo(at).await.status(), 401);
    assert_eq!(introspect(&app, "rp", at).await["active"], false);
    assert_eq!(introspect(&app, "rp", rt).await["active"], false);
}

#[tokio::test]
async fn revoking_an_access_token_leaves_the_refresh_token_working() {
    let app = spawn_app().await;
    let t = app.tokens(&AuthParams::new("rp", OFFLINE)).await;
    let at = str_of(&t, "access_token");
    revoke(&app, "rp", at).await;
    assert_eq!(app.userinfo(at).await.status(), 401);
    assert_eq!(introspect(&app, "rp", at).await["active"], false);
    let (status, _) = json_of(refresh(&app, "rp", str_of(&t, "refresh_token"), None).await).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn revoking_unknown_or_another_clients_tokens_answers_200_and_changes_nothing() {
    let app = spawn_app().await;
    let t = app.tokens(&AuthParams::new("rp", OFFLINE)).await;
    let (at, rt) = (str_of(&t, "access_token"), str_of(&t, "refresh_token"));
    revoke(&app, "rp2", at).await;
    revoke(&app, "rp2", rt).await;
    revoke(&app, "rp", "never-issued").await;
    revoke(&app, "rp", "x.y.z").await;
    assert_eq!(app.userinfo(at).await.status(), 200);
    assert_eq!(introspect(&app, "rp", rt).await["active"], true);
    // Public clients revoke their own tokens with client_id alone; a wrong secret is 401.
    revoke(&app, "spa", rt).await;
    assert_eq!(introspect(&app, "rp", rt).await["active"], true);
    let res = app
        .api
        .post(format!("{}/revoke", app.base))
        .basic_auth("rp", Some("wrong"))
        .form(&[("token", rt)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn a_revoked_client_credentials_token_introspects_inactive() {
    let app = spawn_app().await;
    let res = post(
        &app,
        "/token",
        "m2m",
        &[("grant_type", "client_credentials")],
    )
    .await;
    let (_, t) = json_of(res).await;
    let at = str_of(&t, "access_token");
    let live = introspect(&app, "m2m", at).await;
    assert_eq!(
        (&live["active"], &live["sub"]),
        (&true.into(), &"m2m".into())
    );
    revoke(&app, "m2m", at).await;
    assert_eq!(introspect(&app, "m2m", at).await["active"], false);
}

#[tokio::test]
async fn revoke_grant_tokens_ends_every_refresh_and_access_token_of_the_grant() {
    let app = spawn_app().await;
    let t = app.tokens(&AuthParams::new("rp", OFFLINE)).await;
    let at = str_of(&t, "access_token");
    let sub = payload(at)["sub"].as_str().unwrap().to_string();
    let now = app.state.now();
    let revoked = app
        .state
        .store
        .revoke_grant_tokens(&sub, "rp", now)
        .await
        .unwrap();
    assert_eq!(revoked, 2);
    assert_eq!(app.userinfo(at).await.status(), 401);
    let res = refresh(&app, "rp", str_of(&t, "refresh_token"), None).await;
    assert_eq!(error_code(res).await, "invalid_grant");
}

#[tokio::test]
async fn discovery_lists_the_grants_and_lifecycle_endpoints() {
    let app = spawn_app().await;
    let doc: Value = app
        .api
        .get(format!("{}/.well-known/openid-configuration", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(doc["revocation_endpoint"], format!("{}/revoke", app.base));
    assert_eq!(
        doc["introspection_endpoint"],
        format!("{}/introspect", app.base)
    );
    assert_eq!(
        doc["introspection_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
}
