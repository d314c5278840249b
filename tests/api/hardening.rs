//! The holes found when Herald was attacked by hand (the hardening issue), each reproduced here
//! as the attack was made: oversized and repeated-key forms, slowloris connections, a client
//! that keeps Herald from shutting down, and work in flight bounded per route instead of once.
//!
//! Raw TCP stands in for the attacker where an HTTP client would finish what it started.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Opens a connection and sends `bytes` of a request that is never finished.
async fn half_sent(app: &TestApp, bytes: &str) -> TcpStream {
    let addr = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes.as_bytes()).await.unwrap();
    stream
}

/// A request whose headers promise a body of 100 bytes of which 10 arrive.
fn slow_body(path: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n\
         grant_type"
    )
}

/// Reads until the server closes the connection or `within` passes; what it sent, or `None`
/// when the connection was still open.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut got)).await {
        Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
        Err(_) => None,
    }
}

/// Hole 1: a 1 MB form of 43,000 distinct names each sent twice stalled the workers for
/// seconds (quadratic duplicate detection). Now the body is refused unread (413), and a small
/// form with more parameters than any request has is `invalid_request` at once.
#[tokio::test]
async fn hole_1_a_megabyte_of_repeated_keys_is_refused_unread() {
    let app = spawn_app().await;
    let body: String = (0..43_000)
        .map(|i| format!("name{i}=1&name{i}=1&"))
        .collect();
    assert!(body.len() > 1_000_000);
    let res = app
        .api
        .post(format!("{}/token", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    let many: String = (0..200).map(|i| format!("k{i}=1&k{i}=1&")).collect();
    let res = app
        .api
        .post(format!("{}/token", app.base))
        .basic_auth("m2m", Some(SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&{many}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
    assert_eq!(
        v["error_description"],
        "the request has more than 128 parameters"
    );

    // At /authorize the same request is a page: Herald cannot trust where it would redirect.
    let url = format!(
        "{}&{}",
        app.authorize_url(&AuthParams::new("app", "openid")),
        (0..200)
            .map(|i| format!("x{i}=1"))
            .collect::<Vec<_>>()
            .join("&")
    );
    let res = app.browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert!(res.text().await.unwrap().contains("far more parameters"));
}

/// Hole 9: the bound on requests in flight was applied per route, so every route had its own
/// 2,048. Now one bound covers every route: two requests held on `/token` and `/revoke` fill
/// `max_in_flight = 2`, and a third request elsewhere is shed with 503 and `Retry-After`.
#[tokio::test]
async fn hole_9_one_bound_on_requests_in_flight_covers_every_route() {
    let app = spawn_app_full("[server]\nmax_in_flight = 2\n", "", "").await;
    let token = half_sent(&app, &slow_body("/token")).await;
    let revoke = half_sent(&app, &slow_body("/revoke")).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let shed = loop {
        let res = app
            .api
            .get(format!("{}/jwks", app.base))
            .send()
            .await
            .unwrap();
        if res.status() == 503 || Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(shed.status(), 503, "the third request was not shed");
    assert_eq!(shed.headers()["retry-after"], "1");

    drop((token, revoke));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = app
            .api
            .get(format!("{}/jwks", app.base))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the bound was not released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Hole 3: a connection that never finished its headers stayed open for ever. Now it is closed
/// after `header_read_timeout`, a body that never finishes is answered 408 after
/// `request_timeout`, and one address holds at most `max_connections_per_ip` connections.
#[tokio::test]
async fn hole_3_slowloris_connections_are_closed_and_capped_per_address() {
    let app = spawn_app_full(
        "[server]\nheader_read_timeout = \"1s\"\nrequest_timeout = \"1s\"\n\
         max_connections_per_ip = 3\n",
        "",
        "",
    )
    .await;

    let mut headers = half_sent(&app, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").await;
    let started = Instant::now();
    assert!(
        read_until_closed(&mut headers, Duration::from_secs(5))
            .await
            .is_some(),
        "a connection without complete headers is still open after 5 s"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));

    let mut body = half_sent(&app, &slow_body("/token")).await;
    let answer = read_until_closed(&mut body, Duration::from_secs(5))
        .await
        .expect("a request whose body never finishes is still open after 5 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Three idle connections fill this address's places; the fourth is closed at once.
    let _a = half_sent(&app, "").await;
    let _b = half_sent(&app, "").await;
    let c = half_sent(&app, "").await;
    let mut fourth = half_sent(&app, "").await;
    let closed = read_until_closed(&mut fourth, Duration::from_millis(500)).await;
    assert_eq!(
        closed.as_deref(),
        Some(""),
        "the fourth connection was served"
    );
    // A freed place is given to the next connection.
    drop(c);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut next = half_sent(
        &app,
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    let answer = read_until_closed(&mut next, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Hole 4: after SIGTERM, one client that had sent half a request kept Herald alive. Now
/// `/readyz` answers 503 at once (while `drain_delay` keeps the listener open), and Herald has
/// stopped within `shutdown_timeout` after that, whatever its clients do.
#[tokio::test]
async fn hole_4_shutdown_is_not_ready_at_once_and_ends_within_its_timeout() {
    let (app, stop, running) = spawn_app_stoppable(
        "[server]\ndrain_delay = \"1s\"\nshutdown_timeout = \"1s\"\nrequest_timeout = \"60s\"\n",
    )
    .await;
    let ready = |app: &TestApp| app.api.get(format!("{}/readyz", app.base)).send();
    assert_eq!(ready(&app).await.unwrap().status(), 200);
    let _headers = half_sent(&app, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").await;
    let _body = half_sent(&app, &slow_body("/token")).await;

    let signalled = Instant::now();
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let res = ready(&app).await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.text().await.unwrap(), "shutting down");

    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("Herald is still running 10 s after SIGTERM")
        .unwrap();
    let took = signalled.elapsed();
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // The listener is closed.
    assert!(ready(&app).await.is_err());
}

/// Hole 8: the admin API took a client JWKS holding an EC private key (`d`) and an `oct` key,
/// and the private part landed in the audit log and the stored configuration versions. Now such
/// a key is refused, by name of the member, without its value, and nothing is stored.
#[tokio::test]
async fn hole_8_private_key_material_in_a_client_jwks_is_refused_and_not_stored() {
    let app = spawn_app().await;
    let private_d = "c2VjcmV0LXByaXZhdGUtc2NhbGFyLW5vdC10by1iZS1zdG9yZWQ";
    let keys = [
        serde_json::json!({"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "d": private_d}),
        serde_json::json!({"kty": "oct", "k": private_d}),
        serde_json::json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}),
    ];
    for key in keys {
        let res = app
            .api
            .post(format!("{}/admin/api/clients", app.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({
                "client_id": "signer", "scopes": ["openid"], "redirect_uris": [APP_CB],
                "jwks": {"keys": [key]},
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let text = res.text().await.unwrap();
        assert!(text.contains("jwks"), "{text}");
        assert!(!text.contains(private_d), "{text}");
    }
    let audit = app
        .api
        .get(format!("{}/admin/api/audit", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !audit.contains(private_d) && !audit.contains("signer"),
        "{audit}"
    );
    let stored = app.state.store.latest_config().await.unwrap().unwrap();
    assert_eq!(stored.version, 1, "a configuration version was stored");
    assert!(!stored.document.contains(private_d));
}

/// Hole 2: every wrong client secret bought an argon2 hash (19 MiB, ~25 ms) with nothing
/// bounding them, so a flood of wrong secrets starved every client. Now slow checks are
/// bounded on the whole server (503 `Retry-After` when full), a client whose secret failed
/// more than five times in a row is told to wait (429 `Retry-After`) without a hash, and a
/// client whose secret was already verified is answered during the flood as before.
#[tokio::test]
async fn hole_2_wrong_secrets_are_bounded_and_a_verified_client_stays_served() {
    let app = spawn_app().await;
    let token = |client: &'static str, secret: &'static str| {
        app.api
            .post(format!("{}/token", app.base))
            .basic_auth(client, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "api")])
            .send()
    };
    // m2m's secret is verified once (and cached).
    assert_eq!(token("m2m", SECRET).await.unwrap().status(), 200);

    let flood: Vec<_> = (0..48)
        .map(|_| tokio::spawn(token("app", "wrong").into_future()))
        .collect();
    for _ in 0..5 {
        assert_eq!(token("m2m", SECRET).await.unwrap().status(), 200);
    }
    let mut seen = std::collections::BTreeMap::new();
    for f in flood {
        let res = f.await.unwrap().unwrap();
        let status = res.status().as_u16();
        if status != 401 {
            assert!(res.headers().contains_key("retry-after"), "{status}");
        }
        *seen.entry(status).or_insert(0) += 1;
    }
    assert!(seen.keys().all(|s| [401, 429, 503].contains(s)), "{seen:?}");

    // The flood was mostly shed (503) before any hash; the few checked each counted. Past
    // five failures in a row the client must wait, and is told how long.
    assert!(seen.contains_key(&503), "{seen:?}");
    let mut res = token("app", "wrong").await.unwrap();
    for _ in 0..5 {
        if res.status() == 429 {
            break;
        }
        assert_eq!(res.status(), 401);
        res = token("app", "wrong").await.unwrap();
    }
    assert_eq!(res.status(), 429, "{seen:?}");
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"], "temporarily_unavailable");
    // Another client is not held back.
    assert_eq!(token("m2m", SECRET).await.unwrap().status(), 200);
}

/// A server on loopback reached as `localhost` (another host than the test upstream's
/// `127.0.0.1`) that serves `jwks` and counts the requests it gets.
async fn jwks_elsewhere(jwks: Arc<Mutex<Value>>, hits: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || async move {
            hits.fetch_add(1, Ordering::SeqCst);
            axum::Json(jwks.lock().unwrap().clone())
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://localhost:{port}/jwks")
}

/// Hole 5: an upstream's discovery document named a JWKS on any host, and an anonymous
/// `/authorize` made Herald fetch it. Now an endpoint off the issuer's host is refused before
/// any request reaches it, and the login ends on a clear page; an admin who lists the host in
/// `allowed_endpoint_hosts` gets a working login through it.
#[tokio::test]
async fn hole_5_discovery_cannot_send_herald_to_another_host() {
    let jwks = Arc::new(Mutex::new(Value::Null));
    let hits = Arc::new(AtomicUsize::new(0));
    let elsewhere = jwks_elsewhere(jwks.clone(), hits.clone()).await;

    let app = spawn_app().await;
    *jwks.lock().unwrap() = app.upstream.jwks();
    app.upstream.set(|b| b.jwks_uri = Some(elsewhere.clone()));
    let p = AuthParams::new("app", "openid");
    match app.start(&app.browser, &p).await {
        Outcome::Page(status, body) => {
            assert_eq!(status, 502);
            assert!(body.contains("misconfigured"), "{body}");
            assert!(body.contains("error=server_error"), "{body}");
        }
        other => panic!("expected an error page, got {other:?}"),
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "Herald fetched the JWKS");

    let allowed = spawn_app_configured("allowed_endpoint_hosts = [\"localhost\"]", "").await;
    *jwks.lock().unwrap() = allowed.upstream.jwks();
    allowed
        .upstream
        .set(|b| b.jwks_uri = Some(elsewhere.clone()));
    let tokens = allowed.tokens(&AuthParams::new("app", "openid")).await;
    assert!(tokens["id_token"].is_string());
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the listed host serves the JWKS"
    );
}

/// Hole 5 through the admin API: an http:// upstream beside an https:// Herald, and hosts that
/// are metadata addresses, are refused with check-config's words.
#[tokio::test]
async fn hole_5_the_admin_api_refuses_metadata_hosts() {
    let app = spawn_app().await;
    for (body, words) in [
        (
            serde_json::json!({"id": "evil", "kind": "oidc", "issuer": "http://169.254.169.254/", "client_id": "x"}),
            "link-local or cloud-metadata",
        ),
        (
            serde_json::json!({"id": "evil", "kind": "oidc", "issuer": "https://idp.example.com", "client_id": "x",
                "allowed_endpoint_hosts": ["metadata.google.internal"]}),
            "link-local or cloud-metadata",
        ),
        (
            serde_json::json!({"id": "evil", "kind": "oidc", "issuer": "https://idp.example.com", "client_id": "x",
                "allowed_endpoint_hosts": ["https://keys.example.com/"]}),
            "without protocol",
        ),
    ] {
        let res = app
            .api
            .post(format!("{}/admin/api/upstreams", app.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body}");
        let v: Value = res.json().await.unwrap();
        let said = v["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(said.contains(words), "{said}");
    }
}
