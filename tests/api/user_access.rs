//! Issues 17 and 19: what a login records of a user (email, name, verified, last address,
//! count), finding users the way Auth0's Management API does (users-by-email, `q` over email
//! and name), blocking, and the login events of every login and refusal.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// The login events the API lists for `query`, once the ones written off the request's path
/// (refusals) have landed: polls for up to two seconds until there are `at_least`.
async fn events(app: &TestApp, query: &str, at_least: usize) -> Vec<Value> {
    for _ in 0..40 {
        let page = app
            .admin_ok(
                Method::GET,
                &format!("/admin/api/login-events?{query}"),
                None,
                200,
            )
            .await;
        let events = page["events"].as_array().unwrap().clone();
        if events.len() >= at_least {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("fewer than {at_least} login events for {query}");
}

async fn refresh(app: &TestApp, token: &str) -> Value {
    app.api
        .post(format!("{}/token", app.base))
        .basic_auth("rp", Some(SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_blocked_user_is_refused_and_every_login_and_refusal_is_an_event() {
    let app = spawn_app().await;
    let p = AuthParams::new("rp", "openid offline_access");
    let tokens = app.tokens(&p).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();

    // The login wrote the profile the upstream gave.
    let found = app
        .admin_ok(
            Method::GET,
            "/admin/api/users-by-email?email=ALICE@example.COM",
            None,
            200,
        )
        .await;
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let user = &found[0];
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["name"], "Alice");
    assert_eq!(user["last_ip"], "127.0.0.1");
    assert_eq!(user["logins_count"], 1);
    assert_eq!(user["blocked"], false);
    let sub = user["sub"].as_str().unwrap().to_string();
    let by_name = app
        .admin_ok(Method::GET, "/admin/api/users?q=alic&fields=sub", None, 200)
        .await;
    assert_eq!(by_name, json!([{ "sub": sub }]));
    // Only the whole address finds anyone.
    let none = app
        .admin_ok(
            Method::GET,
            "/admin/api/users-by-email?email=alice",
            None,
            200,
        )
        .await;
    assert_eq!(none, json!([]));
    app.admin_ok(Method::GET, "/admin/api/users-by-email?email=", None, 400)
        .await;

    // Blocked: the tokens stop at once, and the next login is refused.
    let blocked = app
        .admin_ok(
            Method::PATCH,
            &format!("/admin/api/users/{sub}"),
            Some(json!({"blocked": true})),
            200,
        )
        .await;
    assert_eq!(blocked["blocked"], true);
    assert_eq!(blocked["identities"][0]["subject"], "auth0|alice");
    assert_eq!(
        refresh(&app, &refresh_token).await["error"],
        "invalid_grant"
    );
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status(), 401);
    // Its browser session ended too: the same browser is sent to the upstream again and
    // refused there, with a page that says why and a way back to the app.
    let (status, html) = match app.start(&app.browser, &p).await {
        Outcome::Page(status, html) => (status, html),
        other => panic!("{other:?}"),
    };
    assert_eq!(status, 403);
    assert!(html.contains("Your account is blocked"), "{html}");
    assert!(html.contains("error=access_denied"), "{html}");
    let refused = events(&app, "result=blocked", 1).await;
    assert_eq!(refused[0]["sub"], sub.as_str());
    assert_eq!(refused[0]["client_id"], "rp");
    assert_eq!(refused[0]["reason"], "the user is blocked");
    // Nothing of the refused login was stored.
    let user = app
        .admin_ok(Method::GET, &format!("/admin/api/users/{sub}"), None, 200)
        .await;
    assert_eq!(user["logins_count"], 1);

    // Unblocked: they sign in again.
    app.admin_ok(
        Method::PATCH,
        &format!("/admin/api/users/{sub}"),
        Some(json!({"blocked": false})),
        200,
    )
    .await;
    let q = app.login(&browser(), &p).await;
    assert!(q.contains_key("code"), "{q:?}");
    let user = app
        .admin_ok(Method::GET, &format!("/admin/api/users/{sub}"), None, 200)
        .await;
    assert_eq!(
        (user["logins_count"].as_i64(), user["blocked"].as_bool()),
        (Some(2), Some(false))
    );

    // An upstream refusal is an event without a user.
    app.upstream
        .set(|b| b.authorize_error = Some("access_denied".into()));
    let q = match app
        .start(&browser(), &AuthParams::new("app", "openid"))
        .await
    {
        Outcome::Client(q) => q,
        other => panic!("{other:?}"),
    };
    assert_eq!(q["error"], "access_denied");
    let failed = events(&app, "result=failure&client_id=app", 1).await;
    assert_eq!(failed[0]["sub"], Value::Null);
    assert_eq!(failed[0]["upstream"], "test");
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("cancelled at the upstream"),
        "{failed:?}"
    );

    // Newest first, and paged.
    let all = events(&app, "", 4).await;
    let results: Vec<&str> = all.iter().map(|e| e["result"].as_str().unwrap()).collect();
    assert_eq!(results, ["failure", "success", "blocked", "success"]);
    let first = app
        .admin_ok(Method::GET, "/admin/api/login-events?limit=3", None, 200)
        .await;
    let next = first["next"].as_str().unwrap();
    let rest = app
        .admin_ok(
            Method::GET,
            &format!("/admin/api/login-events?limit=3&before={next}"),
            None,
            200,
        )
        .await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 1);
    assert_eq!(rest["events"][0]["id"], all[3]["id"]);
    assert!(rest.get("next").is_none());
    app.admin_ok(
        Method::GET,
        "/admin/api/login-events?result=maybe",
        None,
        400,
    )
    .await;
    app.admin_ok(Method::GET, "/admin/api/login-events?before=x", None, 400)
        .await;

    // Each change is audited; unknown users and non-admins are refused.
    let audit = app
        .admin_ok(
            Method::GET,
            &format!("/admin/api/audit?target=user:{sub}"),
            None,
            200,
        )
        .await;
    let actions = audit_actions(&audit);
    assert_eq!(actions, ["user.unblock", "user.block"]);
    app.admin_ok(
        Method::PATCH,
        "/admin/api/users/nobody",
        Some(json!({"blocked": true})),
        404,
    )
    .await;
    app.admin_ok(
        Method::PATCH,
        &format!("/admin/api/users/{sub}"),
        Some(json!({"blocked": "yes"})),
        400,
    )
    .await;
}
