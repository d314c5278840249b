//! Erasure (issue 16): `DELETE /admin/api/users/{sub}` ends everything the user had and keeps
//! their consent records as evidence under a pseudonym, or purges them; `user.deleted` reaches
//! the webhook.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::support::*;
use crate::webhooks::{receiver, webhook};

async fn erase(app: &TestApp, sub: &str, query: &str) -> reqwest::Response {
    let path = format!("/admin/api/users/{sub}{query}");
    app.admin(Method::DELETE, &path, Some(ADMIN_TOKEN), None)
        .await
}

#[tokio::test]
async fn an_erased_user_loses_tokens_grants_and_profile_and_the_evidence_stays_pseudonymised() {
    let (url, received) = receiver().await;
    let app = spawn_app_with(&webhook(&url)).await;
    let p = AuthParams::new("rp", "openid email offline_access");
    let tokens = app.tokens(&p).await;
    let sub = payload(tokens["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string();
    let records = app.state.store.consent_records(&sub).await.unwrap();
    assert_eq!(records.len(), 1);

    let res = erase(&app, &sub, "").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["consent_records"], "pseudonymised");
    let pseudonym = body["pseudonym"].as_str().unwrap().to_string();
    assert!(pseudonym.starts_with("erased-"), "{body}");

    // Nothing of the user works or remains under their sub.
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo(access).await.status(), 401);
    let refresh = app
        .api
        .post(format!("{}/token", app.base))
        .basic_auth("rp", Some(SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 400);
    let store = &app.state.store;
    assert!(store.user(&sub).await.unwrap().is_none());
    assert!(store.grants(&sub).await.unwrap().is_empty());
    assert!(store.consent_records(&sub).await.unwrap().is_empty());
    // The evidence is kept, word for word, under the pseudonym.
    let kept = store.consent_records(&pseudonym).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id, records[0].id);
    assert_eq!(kept[0].allowed, records[0].allowed);
    // The admin API no longer knows the user; a second erasure finds nothing.
    app.admin_ok(Method::GET, &format!("/admin/api/users/{sub}"), None, 404)
        .await;
    assert_eq!(erase(&app, &sub, "").await.status(), 404);
    // The audit log names who erased whom; the webhook hears user.deleted.
    let audit = store
        .audit_entries(&herald::store::AuditFilter {
            limit: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit[0].action, "user.erase");
    assert_eq!(audit[0].target, format!("user:{sub}"));
    assert_eq!(audit[0].actor, "bootstrap-token");
    wait_until("user.deleted delivered", Duration::from_secs(10), || {
        received
            .accepted()
            .iter()
            .any(|e| e["type"] == "user.deleted" && e["data"]["sub"] == sub.as_str())
    })
    .await;

    // The same upstream identity signing in again is a new user.
    let again = app.tokens(&p).await;
    let new_sub = payload(again["id_token"].as_str().unwrap())["sub"].clone();
    assert_ne!(new_sub, sub.as_str());
}

#[tokio::test]
async fn purge_records_deletes_the_consent_records_too() {
    let app = spawn_app().await;
    let tokens = app.tokens(&AuthParams::new("app", "openid")).await;
    let sub = payload(tokens["id_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_string();
    let res = erase(&app, &sub, "?purge_records=true").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["consent_records"], "purged");
    assert!(body["pseudonym"].is_null());
    assert!(
        app.state
            .store
            .consent_records(&sub)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(erase(&app, "no-such-user", "").await.status(), 404);
}
