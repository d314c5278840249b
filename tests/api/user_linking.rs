//! Issue 17: one user behind several upstream identities. Linking at login by verified email
//! (never by an unverified one), `allow_signup = false` admitting only users that exist,
//! users created by an admin before their first login, linking and unlinking through the API,
//! and `fields` on one user.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

/// A login in a fresh browser as `subject` at the test upstream, with `email` (verified or
/// not): Herald's sub for it, or the page it ended on.
async fn login_as(
    app: &TestApp,
    subject: &str,
    email: &str,
    verified: bool,
) -> Result<String, (StatusCode, String)> {
    app.upstream.set(|b| {
        b.subject = subject.into();
        b.id_claims.insert("email".into(), json!(email));
        b.id_claims.insert("email_verified".into(), json!(verified));
    });
    let browser = browser();
    let p = AuthParams::new("rp", "openid");
    let outcome = match app.start(&browser, &p).await {
        Outcome::Consent(html) => app.decide(&browser, &html, "allow").await,
        other => other,
    };
    let q = match outcome {
        Outcome::Client(q) => q,
        Outcome::Page(status, body) => return Err((status, body)),
        Outcome::Consent(_) => panic!("consent shown twice"),
    };
    let res = app.redeem(&p, &q["code"]).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    Ok(payload(tokens["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string())
}

async fn user(app: &TestApp, sub: &str) -> Value {
    app.admin_ok(Method::GET, &format!("/admin/api/users/{sub}"), None, 200)
        .await
}

/// The (upstream, subject) pairs of a user's identities, oldest first.
fn identities(user: &Value) -> Vec<(String, String)> {
    user["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["upstream"].as_str().unwrap().to_string(),
                i["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pair(upstream: &str, subject: &str) -> (String, String) {
    (upstream.into(), subject.into())
}

#[tokio::test]
async fn a_verified_email_links_a_new_identity_to_its_user_and_an_unverified_one_never_does() {
    let app = spawn_app_configured("link_by_verified_email = true", "").await;
    let alice = login_as(&app, "auth0|alice", "alice@example.com", true)
        .await
        .unwrap();

    // Another account at the upstream (a social connection) with the same verified email.
    let social = login_as(&app, "google-oauth2|77", "Alice@Example.com", true)
        .await
        .unwrap();
    assert_eq!(social, alice, "the verified email joins the existing user");
    let u = user(&app, &alice).await;
    assert_eq!(
        identities(&u),
        vec![
            pair("test", "auth0|alice"),
            pair("test", "google-oauth2|77")
        ]
    );
    assert_eq!(u["identity"]["subject"], "auth0|alice");
    assert_eq!(u["logins_count"], 2);
    // The same account again is the same user, without another identity.
    assert_eq!(
        login_as(&app, "google-oauth2|77", "alice@example.com", true).await,
        Ok(alice.clone())
    );
    assert_eq!(identities(&user(&app, &alice).await).len(), 2);

    // The same email, unverified: a user of its own.
    let stranger = login_as(&app, "github|9", "alice@example.com", false)
        .await
        .unwrap();
    assert_ne!(stranger, alice);
    assert_eq!(
        identities(&user(&app, &stranger).await),
        vec![pair("test", "github|9")]
    );
}

#[tokio::test]
async fn without_link_by_verified_email_a_new_identity_is_a_new_user() {
    let app = spawn_app().await;
    let alice = login_as(&app, "auth0|alice", "alice@example.com", true)
        .await
        .unwrap();
    let other = login_as(&app, "google-oauth2|77", "alice@example.com", true)
        .await
        .unwrap();
    assert_ne!(other, alice);
}

#[tokio::test]
async fn with_allow_signup_false_only_users_that_exist_log_in() {
    let app = spawn_app_configured("allow_signup = false", "").await;

    // Nobody exists yet: a clear page, and the app would get access_denied.
    let (status, page) = login_as(&app, "auth0|alice", "alice@example.com", true)
        .await
        .unwrap_err();
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("No account here"), "{page}");
    assert!(page.contains("error=access_denied"), "{page}");
    let all = app
        .admin_ok(
            Method::GET,
            "/admin/api/users?include_totals=true",
            None,
            200,
        )
        .await;
    assert_eq!(all["total"], 0, "a refused login creates no user");

    // An admin creates her by email: her first verified login joins that user.
    let created = app
        .admin_ok(
            Method::POST,
            "/admin/api/users",
            Some(json!({ "email": "alice@example.com", "name": "Alice A." })),
            201,
        )
        .await;
    let alice = created["sub"].as_str().unwrap().to_string();
    assert_eq!(created["identities"], json!([]));
    assert_eq!(created["identity"], Value::Null);
    assert_eq!(created["logins_count"], 0);
    // An unverified email does not claim the invitation.
    assert!(
        login_as(&app, "auth0|alice", "alice@example.com", false)
            .await
            .is_err()
    );
    assert_eq!(
        login_as(&app, "auth0|alice", "alice@example.com", true).await,
        Ok(alice.clone())
    );
    let u = user(&app, &alice).await;
    assert_eq!(identities(&u), vec![pair("test", "auth0|alice")]);
    assert_eq!(u["logins_count"], 1);

    // Bob is created by the identity he will log in with; his email is not verified.
    let bob = app
        .admin_ok(
            Method::POST,
            "/admin/api/users",
            Some(json!({ "identity": { "upstream": "test", "subject": "auth0|bob" } })),
            201,
        )
        .await;
    assert_eq!(bob["identity"]["subject"], "auth0|bob");
    assert_eq!(
        login_as(&app, "auth0|bob", "bob@example.com", false).await,
        Ok(bob["sub"].as_str().unwrap().to_string())
    );
    // That identity cannot be given to a second user.
    let again = app
        .admin(
            Method::POST,
            "/admin/api/users",
            Some(ADMIN_TOKEN),
            Some(&json!({ "identity": { "upstream": "test", "subject": "auth0|bob" } })),
        )
        .await;
    assert_eq!(again.status(), 409);
    // A stranger is still refused.
    assert!(
        login_as(&app, "auth0|carol", "carol@example.com", true)
            .await
            .is_err()
    );
    let audit = app
        .admin_ok(Method::GET, "/admin/api/audit?limit=10", None, 200)
        .await;
    assert_eq!(audit_actions(&audit), vec!["user.create", "user.create"]);
}

#[tokio::test]
async fn creating_a_user_explains_what_is_missing_or_wrong() {
    let app = spawn_app().await;
    for (body, says) in [
        (json!({}), "give `email`, `identity`, or both"),
        (json!({ "email": "not-an-address" }), "email:"),
        (
            json!({ "identity": { "upstream": "nowhere", "subject": "x" } }),
            "no upstream `nowhere`",
        ),
        (
            json!({ "identity": { "upstream": "test", "subject": " " } }),
            "identity.subject",
        ),
        (json!({ "email": "a@example.com", "role": "admin" }), "role"),
    ] {
        let res = app
            .admin(
                Method::POST,
                "/admin/api/users",
                Some(ADMIN_TOKEN),
                Some(&body),
            )
            .await;
        assert_eq!(res.status(), 400, "{body}");
        let error: Value = res.json().await.unwrap();
        assert_eq!(error["error"], "invalid_request");
        let description = error["error_description"].as_str().unwrap();
        assert!(description.contains(says), "{body}: {description}");
    }
}

#[tokio::test]
async fn admins_link_and_unlink_identities() {
    let app = spawn_app().await;
    let alice = login_as(&app, "auth0|alice", "alice@example.com", true)
        .await
        .unwrap();
    let path = format!("/admin/api/users/{alice}/identities");
    let second = json!({ "upstream": "test", "subject": "auth0|second" });
    let linked = app
        .admin_ok(Method::POST, &path, Some(second.clone()), 201)
        .await;
    assert_eq!(linked.as_array().unwrap().len(), 2);
    // Linking it again changes nothing.
    app.admin_ok(Method::POST, &path, Some(second.clone()), 200)
        .await;
    assert_eq!(
        login_as(&app, "auth0|second", "someone@example.com", false).await,
        Ok(alice.clone())
    );

    // Another user cannot take it while Alice holds it.
    let bob = app
        .admin_ok(
            Method::POST,
            "/admin/api/users",
            Some(json!({ "email": "bob@example.com" })),
            201,
        )
        .await;
    let bob = bob["sub"].as_str().unwrap();
    let taken = app
        .admin(
            Method::POST,
            &format!("/admin/api/users/{bob}/identities"),
            Some(ADMIN_TOKEN),
            Some(&second),
        )
        .await;
    assert_eq!(taken.status(), 409);
    let nobody = app
        .admin(
            Method::POST,
            "/admin/api/users/nobody/identities",
            Some(ADMIN_TOKEN),
            Some(&second),
        )
        .await;
    assert_eq!(nobody.status(), 404);

    // Unlinked (the subject has a `|`, URL-encoded), its next login is a new user.
    let kept = app
        .admin_ok(
            Method::DELETE,
            &format!("{path}/test/auth0%7Csecond"),
            None,
            200,
        )
        .await;
    assert_eq!(kept.as_array().unwrap().len(), 1);
    assert_eq!(kept[0]["subject"], "auth0|alice");
    let again = app
        .admin(
            Method::DELETE,
            &format!("{path}/test/auth0%7Csecond"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(again.status(), 404);
    let stranger = login_as(&app, "auth0|second", "someone@example.com", false)
        .await
        .unwrap();
    assert_ne!(stranger, alice);

    // Even the identity Alice was created with can go: she keeps her sub and her data, and
    // that account's next login is someone new.
    app.admin_ok(
        Method::DELETE,
        &format!("{path}/test/auth0%7Calice"),
        None,
        200,
    )
    .await;
    let u = user(&app, &alice).await;
    assert_eq!(u["identity"], Value::Null);
    assert_eq!(u["identities"], json!([]));
    let listed = app
        .admin_ok(
            Method::GET,
            "/admin/api/users?fields=sub,upstream,upstream_subject",
            None,
            200,
        )
        .await;
    let listed = listed.as_array().unwrap();
    assert!(
        listed.contains(&json!({ "sub": alice, "upstream": null, "upstream_subject": null })),
        "{listed:?}"
    );
    let new_alice = login_as(&app, "auth0|alice", "alice@example.com", true)
        .await
        .unwrap();
    assert_ne!(new_alice, alice);

    let audit = app
        .admin_ok(Method::GET, "/admin/api/audit?limit=10", None, 200)
        .await;
    assert_eq!(
        audit_actions(&audit),
        vec!["user.unlink", "user.unlink", "user.create", "user.link"]
    );
}

#[tokio::test]
async fn one_user_takes_fields_and_include_fields() {
    let app = spawn_app().await;
    let sub = login_as(&app, "google-oauth2|5", "ann@example.com", true)
        .await
        .unwrap();
    let chosen = app
        .admin_ok(
            Method::GET,
            &format!("/admin/api/users/{sub}?fields=email,identities"),
            None,
            200,
        )
        .await;
    let mut keys: Vec<&String> = chosen.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["email", "identities"]);
    assert_eq!(chosen["email"], "ann@example.com");
    // The test upstream is a generic OpenID provider: no Auth0 connection is read from the
    // subject.
    assert_eq!(chosen["identities"][0].get("connection"), None);
    let without = app
        .admin_ok(
            Method::GET,
            &format!("/admin/api/users/{sub}?fields=grants,last_ip&include_fields=false"),
            None,
            200,
        )
        .await;
    assert_eq!(without["sub"], sub.as_str());
    assert!(without.get("grants").is_none() && without.get("last_ip").is_none());
    assert!(without.get("logins_count").is_some());
    let bad = app
        .admin(
            Method::GET,
            &format!("/admin/api/users/{sub}?include_fields=maybe"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_user_whose_email_an_upstream_not_trusted_to_link_asserted_is_never_joined() {
    let app = spawn_app_configured("link_by_verified_email = true", "").await;
    let alice = login_as(&app, "auth0|alice", "alice@example.com", true)
        .await
        .unwrap();
    // The user also holds an identity at an upstream Herald does not trust to verify emails
    // (here one no longer configured), which may have written the address on the record.
    app.state
        .store
        .link_identity(&alice, "elsewhere", "someone", 0)
        .await
        .unwrap();
    let newcomer = login_as(&app, "google-oauth2|77", "alice@example.com", true)
        .await
        .unwrap();
    assert_ne!(newcomer, alice);
}

#[tokio::test]
async fn unlinking_an_identity_ends_the_logins_made_through_it_only() {
    let app = spawn_app().await;
    let alice = login_as(&app, "auth0|alice", "alice@example.com", true)
        .await
        .unwrap();
    let path = format!("/admin/api/users/{alice}/identities");
    let second = json!({ "upstream": "test", "subject": "auth0|second" });
    app.admin_ok(Method::POST, &path, Some(second), 201).await;
    // A login through each identity, each with its tokens.
    let through = |subject: &'static str| {
        let app = &app;
        async move {
            app.upstream.set(|b| b.subject = subject.into());
            let p = AuthParams::new("app", "openid");
            let q = app.login(&browser(), &p).await;
            let tokens: Value = app.redeem(&p, &q["code"]).await.json().await.unwrap();
            tokens
        }
    };
    let first = through("auth0|alice").await;
    let linked = through("auth0|second").await;
    let works = |tokens: &Value| {
        let app = &app;
        let access = tokens["access_token"].as_str().unwrap().to_string();
        async move { app.userinfo(&access).await.status() == StatusCode::OK }
    };
    assert!(works(&first).await && works(&linked).await);

    app.admin_ok(
        Method::DELETE,
        &format!("{path}/test/auth0%7Csecond"),
        None,
        200,
    )
    .await;
    assert!(
        !works(&linked).await,
        "a login through the unlinked identity lives on"
    );
    assert!(works(&first).await, "the user's other login ended too");
}
