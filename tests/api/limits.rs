//! Rate limits per client address (`[limits]`): 429 with Retry-After past the burst, JSON on the
//! token endpoint and a page on the login pages, discovery never limited, and behind a load
//! balancer each forwarded client address counted for itself.

use serde_json::Value;

use crate::support::*;

const TIGHT: &str = "[limits]\nper_ip_per_second = 1\nper_ip_burst = 3\n";

async fn token(app: &TestApp, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut req = app
        .api
        .post(format!("{}/token", app.base))
        .basic_auth("m2m", Some(SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", "api")]);
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn an_address_past_its_burst_gets_429_with_retry_after() {
    let app = spawn_app_full(TIGHT, "", "").await;
    // Time moves only when the test says: the first request's argon2 check takes no budget.
    app.clock.freeze();
    for _ in 0..3 {
        assert_eq!(token(&app, None).await.status(), 200);
    }
    let res = token(&app, None).await;
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");

    // A login page answers with a page, not JSON.
    let res = app
        .browser
        .get(app.authorize_url(&AuthParams::new("app", "openid")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.text().await.unwrap().contains("Too many requests"));

    // Discovery, keys and health checks are never limited.
    for path in ["/.well-known/openid-configuration", "/jwks", "/healthz"] {
        let res = app
            .api
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }

    // The bucket refills at the configured rate: one request a second.
    app.clock.advance(1);
    assert_eq!(token(&app, None).await.status(), 200);
    assert_eq!(token(&app, None).await.status(), 429);
}

#[tokio::test]
async fn behind_a_load_balancer_each_forwarded_address_has_its_own_limit() {
    let app = spawn_app_full(
        &format!("{TIGHT}client_ip_header = \"X-Forwarded-For\"\n"),
        "",
        "",
    )
    .await;
    app.clock.freeze();
    for _ in 0..3 {
        assert_eq!(token(&app, Some("203.0.113.1")).await.status(), 200);
    }
    assert_eq!(token(&app, Some("203.0.113.1")).await.status(), 429);
    // Another client behind the same balancer is not affected.
    assert_eq!(token(&app, Some("203.0.113.2")).await.status(), 200);
    // A client cannot escape by writing its own address first: the balancer's is the last.
    assert_eq!(
        token(&app, Some("198.51.100.99, 203.0.113.1"))
            .await
            .status(),
        429
    );
}
