//! Browser sessions in Redis (`session_store = "redis://..."`), for deployments that prefer it
//! to the main database. Needs the Redis at 127.0.0.1:6379: with `CI=true` its absence fails the
//! test; elsewhere the test says loudly that it was skipped.

use crate::support::*;

const REDIS: &str = "redis://127.0.0.1:6379";

async fn redis_keys() -> Option<Vec<String>> {
    let client = redis::Client::open(REDIS).ok()?;
    let mut conn = match client.get_multiplexed_async_connection().await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Redis at {REDIS} is unreachable and CI=true: {e}")
        }
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** Redis session test SKIPPED: {REDIS} is unreachable: {e} ***\n"
            );
            return None;
        }
    };
    // Once connected, a failing command is a failure, never a skip.
    let keys = redis::cmd("KEYS")
        .arg("herald:session:*")
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("KEYS failed on the Redis at {REDIS}: {e}"));
    Some(keys)
}

#[tokio::test]
async fn sessions_in_redis_carry_the_login_and_expire_with_the_session() {
    let Some(before) = redis_keys().await else {
        return;
    };
    let app = spawn_app_full(&format!("session_store = \"{REDIS}\""), "", "").await;
    app.login(&app.browser, &AuthParams::new("trusted", "openid"))
        .await;
    let after = redis_keys().await.unwrap();
    let new_keys: Vec<&String> = after.iter().filter(|k| !before.contains(k)).collect();
    assert!(!new_keys.is_empty(), "the session was written to Redis");

    // The browser's login lives in Redis: the next authorization needs no upstream login.
    let upstream_logins = app.upstream.state.authorize_requests.lock().unwrap().len();
    match app
        .start(
            &app.browser,
            &AuthParams::new("trusted", "openid").with("prompt", "none"),
        )
        .await
    {
        Outcome::Client(q) => assert!(q.contains_key("code"), "{q:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        app.upstream.state.authorize_requests.lock().unwrap().len(),
        upstream_logins
    );

    let client = redis::Client::open(REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(new_keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= 24 * 3600,
        "the key expires with the session (ttl {ttl})"
    );
}

#[tokio::test]
async fn a_session_store_that_is_not_redis_is_refused_with_advice() {
    let base = "issuer = \"http://127.0.0.1:1\"\nlisten = \"127.0.0.1:1\"\ndatabase_url = \"sqlite::memory:\"\nsession_store = \"memcached://x\"\n[[upstreams]]\nid = \"dev\"\nkind = \"dev\"\n";
    let err = herald::config::from_toml(base).unwrap_err().to_string();
    assert!(
        err.contains("session_store") && err.contains("redis://"),
        "{err}"
    );
}

/// The Redis session keys whose record names `sub`.
async fn sessions_of(sub: &str) -> Vec<String> {
    let keys = redis_keys().await.expect("Redis was reachable moments ago");
    let client = redis::Client::open(REDIS).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut out = Vec::new();
    for k in keys {
        let data: Option<String> = redis::cmd("GET")
            .arg(&k)
            .query_async(&mut conn)
            .await
            .unwrap();
        if data.is_some_and(|d| d.contains(&format!("\"sub\":\"{sub}\""))) {
            out.push(k);
        }
    }
    out
}

#[tokio::test]
async fn erasing_a_user_deletes_their_sessions_in_redis_and_no_one_elses() {
    if redis_keys().await.is_none() {
        return;
    }
    let app = spawn_app_full(&format!("session_store = \"{REDIS}\""), "", "").await;
    let sub_of = |tokens: &serde_json::Value| {
        payload(tokens["id_token"].as_str().unwrap())["sub"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let erased = sub_of(&app.tokens(&AuthParams::new("trusted", "openid")).await);
    // Another person, in another browser.
    app.upstream
        .set(|b| b.subject = "auth0|someone-else".into());
    let other_browser = browser();
    let p = AuthParams::new("trusted", "openid");
    let q = app.login(&other_browser, &p).await;
    let res = app.redeem(&p, &q["code"]).await;
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["id_token"].is_string(), "{body}");
    let kept = sub_of(&body);
    assert_ne!(erased, kept);
    assert_eq!(sessions_of(&erased).await.len(), 1);
    assert_eq!(sessions_of(&kept).await.len(), 1);

    let res = app
        .admin(
            reqwest::Method::DELETE,
            &format!("/admin/api/users/{erased}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["redis_sessions_deleted"], 1);
    assert!(sessions_of(&erased).await.is_empty());
    assert_eq!(sessions_of(&kept).await.len(), 1);
}
