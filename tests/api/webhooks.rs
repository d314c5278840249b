//! Events leaving Herald (issue 16): signed webhooks and the OneTrust collection point, from the
//! durable outbox. The receivers are real local HTTP servers the tests drive: one fails on
//! demand, one stays down across a restart of Herald, two replicas share one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

/// The webhook's signing secret in these tests.
const WEBHOOK_SECRET: &str = "webhook-secret-for-tests-0123456789abcdef";

/// What a receiver got: each request's signature header and body, and what it answered.
#[derive(Default)]
pub(crate) struct Received {
    requests: Mutex<Vec<(Option<String>, String, u16)>>,
    /// Answer 500 to this many requests first.
    fail_first: AtomicUsize,
    /// Answer 503 to everything while set.
    down: AtomicBool,
    /// Take this long to answer (milliseconds).
    delay_ms: AtomicUsize,
}

impl Received {
    /// The bodies answered 2xx.
    pub(crate) fn accepted(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, status)| *status < 300)
            .map(|(_, body, _)| serde_json::from_str(body).unwrap())
            .collect()
    }

    fn all(&self) -> Vec<(Option<String>, String, u16)> {
        self.requests.lock().unwrap().clone()
    }
}

async fn receive(State(r): State<Arc<Received>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let delay = r.delay_ms.load(Ordering::SeqCst) as u64;
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let status = if r.down.load(Ordering::SeqCst) {
        StatusCode::SERVICE_UNAVAILABLE
    } else if r
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    let signature = headers
        .get("herald-signature")
        .map(|v| v.to_str().unwrap().to_string());
    r.requests.lock().unwrap().push((
        signature,
        String::from_utf8(body.to_vec()).unwrap(),
        status.as_u16(),
    ));
    status
}

/// A receiver on a random loopback port: its URL and what it got.
pub(crate) async fn receiver() -> (String, Arc<Received>) {
    let received = Arc::new(Received::default());
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

/// The configuration of a webhook at `url` for every event, and a quick outbox.
pub(crate) fn webhook(url: &str) -> String {
    format!(
        "[[webhooks]]\nurl = \"{url}\"\nsecret = \"{WEBHOOK_SECRET}\"\n\n\
         [outbox]\npoll_interval = \"100ms\"\nfirst_retry = \"1s\"\n"
    )
}

/// Checks a `Herald-Signature` against the body, as a receiver would: HMAC-SHA256 over
/// `"<t>.<body>"` with the shared secret (computed here with aws-lc-rs, not Herald's code).
fn signature_ok(header: &str, body: &str) -> bool {
    let Some((t, v1)) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, WEBHOOK_SECRET.as_bytes());
    let Ok(tag) = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(v1.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    aws_lc_rs::hmac::verify(&key, format!("{t}.{body}").as_bytes(), &tag).is_ok()
}

/// The event types among `events`, sorted.
fn types(events: &[Value]) -> Vec<String> {
    let mut t: Vec<String> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

#[tokio::test]
async fn a_login_reaches_the_webhook_signed_and_retried_with_the_same_id_until_it_answers() {
    let (url, received) = receiver().await;
    received.fail_first.store(2, Ordering::SeqCst);
    let app = spawn_app_with(&webhook(&url)).await;
    let p = AuthParams::new("app", "openid profile");
    let tokens = app.tokens(&p).await;
    let sub = payload(tokens["id_token"].as_str().unwrap())["sub"].clone();

    let expected = ["consent.granted", "login.succeeded", "user.created"];
    wait_until("three events accepted", Duration::from_secs(15), || {
        received.accepted().len() >= 3
    })
    .await;
    let accepted = received.accepted();
    assert_eq!(types(&accepted), expected);
    for e in &accepted {
        assert_eq!(e["data"]["sub"], sub, "{e}");
        assert_eq!(e["id"].as_str().unwrap().len(), 43, "{e}");
        assert!(e["created_at"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    let by_type = |t: &str| accepted.iter().find(|e| e["type"] == t).unwrap().clone();
    let granted = by_type("consent.granted");
    assert_eq!(granted["data"]["client_id"], "app");
    assert_eq!(granted["data"]["scopes"], json!(["openid", "profile"]));
    assert_eq!(granted["data"]["method"], "page");
    assert!(granted["data"]["record_id"].is_string());
    assert_eq!(by_type("login.succeeded")["data"]["upstream"], "test");
    // Every request was signed, the failed ones included; and the two refused were sent again
    // with the same event id.
    let all = received.all();
    assert_eq!(all.iter().filter(|(_, _, s)| *s == 500).count(), 2);
    for (signature, body, _) in &all {
        assert!(signature_ok(signature.as_deref().unwrap(), body), "{body}");
    }
    let ids = |status: u16| -> Vec<String> {
        all.iter()
            .filter(|(_, _, s)| *s == status)
            .map(|(_, b, _)| serde_json::from_str::<Value>(b).unwrap()["id"].to_string())
            .collect()
    };
    let accepted_ids = ids(200);
    for refused in ids(500) {
        assert!(
            accepted_ids.contains(&refused),
            "{refused} was never delivered"
        );
    }
    // The attempts are counted: three delivered, two to retry (other tests add to the totals).
    let metrics = crate::metrics::scrape(&app).await;
    let count = |result| {
        crate::metrics::value(
            &metrics,
            "herald_outbox_attempts_total",
            &[("result", result)],
        )
        .unwrap()
    };
    assert!(
        count("delivered") >= 3.0 && count("retry") >= 2.0,
        "{metrics}"
    );
    // A signature made with another secret, or over another body, does not verify.
    let (sig, body, _) = &all[0];
    assert!(!signature_ok(sig.as_deref().unwrap(), &format!("{body} ")));

    // The admin API shows them delivered, with the attempts they took.
    let delivered = "/admin/api/webhooks/deliveries?state=delivered";
    let rows = app.admin_ok(Method::GET, delivered, None, 200).await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let attempts: i64 = rows.iter().map(|r| r["attempts"].as_i64().unwrap()).sum();
    assert_eq!(
        attempts, 5,
        "three deliveries, two of them after a refusal: {rows:?}"
    );
    assert!(
        rows.iter()
            .all(|r| r["destination"] == format!("webhook {url}"))
    );
}

#[tokio::test]
async fn events_pending_when_herald_stops_are_delivered_after_a_restart() {
    let (url, received) = receiver().await;
    received.down.store(true, Ordering::SeqCst);
    let (app, stop, running) = spawn_app_stoppable(&webhook(&url)).await;
    let p = AuthParams::new("app", "openid");
    app.tokens(&p).await;
    wait_until("a refused attempt", Duration::from_secs(10), || {
        !received.all().is_empty()
    })
    .await;
    stop.send(()).unwrap();
    running.await.unwrap();
    let attempts_before = received.all().len();
    assert!(received.accepted().is_empty());

    // Another Herald on the same database, and the receiver back.
    received.down.store(false, Ordering::SeqCst);
    let (settings, _) = herald::config::from_toml(&app.config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let again = herald::app::App::build(
        settings,
        herald::app::BuildOptions {
            kek: Some(herald::tokens::keys::KeyEncryption::from_base64(&app.kek).unwrap()),
            listener: Some(listener),
            config_text: Some(app.config.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tokio::spawn(again.run(std::future::pending()));
    wait_until(
        "every event after the restart",
        Duration::from_secs(15),
        || received.accepted().len() >= 3,
    )
    .await;
    assert_eq!(
        types(&received.accepted()),
        ["consent.granted", "login.succeeded", "user.created"]
    );
    assert!(received.all().len() > attempts_before);
}

#[tokio::test]
async fn a_failed_delivery_is_listed_and_an_admin_can_retry_it() {
    let (url, received) = receiver().await;
    received.down.store(true, Ordering::SeqCst);
    // Give up at once: the first refusal is final.
    let config = format!("{}give_up_after = \"1s\"\n", webhook(&url));
    let app = spawn_app_with(&config).await;
    app.tokens(&AuthParams::new("app", "openid")).await;
    let failed = || async {
        let path = "/admin/api/webhooks/deliveries?state=failed";
        let rows = app.admin_ok(Method::GET, path, None, 200).await;
        rows.as_array().unwrap().clone()
    };
    let start = Instant::now();
    let rows = loop {
        let rows = failed().await;
        if rows.len() == 3 {
            break rows;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        rows.iter()
            .all(|r| r["last_error"] == "answered 503 Service Unavailable"),
        "{rows:?}"
    );
    let lost = "/admin/api/webhooks/deliveries?state=lost";
    app.admin_ok(Method::GET, lost, None, 400).await;

    received.down.store(false, Ordering::SeqCst);
    let app = &app;
    let retry = |id: String| async move {
        let path = format!("/admin/api/webhooks/deliveries/{id}/retry");
        app.admin(Method::POST, &path, Some(ADMIN_TOKEN), None)
            .await
    };
    let id = rows[0]["id"].as_str().unwrap().to_string();
    assert_eq!(retry(id.clone()).await.status(), 204);
    assert_eq!(retry("no-such-delivery".into()).await.status(), 404);
    wait_until("the retried one delivered", Duration::from_secs(10), || {
        received.accepted().len() == 1
    })
    .await;
    assert_eq!(received.accepted()[0]["id"], rows[0]["event_id"]);
    // Once delivered it is no longer failed, so a second retry finds nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(retry(id).await.status(), 404);
}

#[tokio::test]
async fn two_replicas_deliver_each_event_once() {
    let Some(schema) = crate::replicas::schema().await else {
        return;
    };
    let (url, received) = receiver().await;
    // A slow receiver: while one replica waits on it, the other polls three times; without the
    // lease both would send what is still pending.
    received.delay_ms.store(300, Ordering::SeqCst);
    // After the upstream's keys: a webhook and a quick outbox (both replicas run the loop).
    let extra = format!("\n{}", webhook(&url));
    let r = crate::replicas::two_replicas_with(&schema, 5432, &extra, false).await;
    for _ in 0..4 {
        let browser = browser();
        let p = AuthParams::new("app", "openid");
        let q = r.a.login(&browser, &p).await;
        assert_eq!(r.a.redeem(&p, &q["code"]).await.status(), 200);
    }
    // One user.created, four logins, one consent.granted (later logins skip the consent page).
    wait_until("six events", Duration::from_secs(20), || {
        received.accepted().len() >= 6
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let all = received.all();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (_, body, _) in &all {
        let e: Value = serde_json::from_str(body).unwrap();
        *seen
            .entry(e["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(all.len(), 6, "{all:?}");
    assert!(
        seen.values().all(|n| *n == 1),
        "an event was sent twice: {seen:?}"
    );
}

/// A OneTrust collection point stand-in: the payload OneTrust's API expects, with the email.
#[tokio::test]
async fn each_login_with_an_email_reaches_the_onetrust_collection_point() {
    let (url, received) = receiver().await;
    let config = format!(
        "[[hooks]]\nkind = \"onetrust\"\nurl = \"{url}\"\napi_token = \"ot-token-for-tests\"\n\
         purpose_id = \"4f0c-purpose\"\n\n[outbox]\npoll_interval = \"100ms\"\n"
    );
    let app = spawn_app_with(&config).await;
    app.tokens(&AuthParams::new("app", "openid")).await;
    wait_until(
        "the collection point called",
        Duration::from_secs(10),
        || !received.accepted().is_empty(),
    )
    .await;
    assert_eq!(
        received.accepted()[0],
        json!({
            "identifier": "alice@example.com",
            "requestInformation": "ot-token-for-tests",
            "purposes": [{ "Id": "4f0c-purpose" }]
        })
    );
    // The token is sent, never stored: the outbox row holds the event only.
    let rows = app
        .admin_ok(Method::GET, "/admin/api/webhooks/deliveries", None, 200)
        .await;
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(!rows[0].to_string().contains("ot-token-for-tests"));
    assert_eq!(rows[0]["event"]["data"]["email"], "alice@example.com");

    // Without an email: skipped by default...
    app.upstream.set(|b| {
        b.id_claims.remove("email");
    });
    let browser = browser();
    app.login(&browser, &AuthParams::new("trusted", "openid"))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(received.all().len(), 1, "no call without an email");
}

#[tokio::test]
async fn a_login_without_an_email_is_refused_when_the_collection_point_needs_one() {
    let (url, received) = receiver().await;
    let config = format!(
        "[[hooks]]\nkind = \"onetrust\"\nurl = \"{url}\"\napi_token = \"ot-token-for-tests\"\n\
         purpose_id = \"p\"\nskip_if_no_email = false\n"
    );
    let app = spawn_app_with(&config).await;
    app.upstream.set(|b| {
        b.id_claims.remove("email");
    });
    let (status, body) = app.page_after_login().await;
    assert_eq!(status, 403);
    assert!(body.contains("did not share your email address"), "{body}");
    assert!(body.contains("error=access_denied"), "{body}");
    assert!(received.all().is_empty());
}
