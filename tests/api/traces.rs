//! OpenTelemetry traces (issue 15): `herald serve` with `[telemetry] otlp_endpoint` sends its
//! spans to a local OTLP/HTTP (JSON) receiver; a request with a W3C `traceparent` joins the
//! caller's trace, and the upstream calls of a login are spans of that login's requests.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::Value;

use crate::logs::{Child, config};
use crate::support::upstream::TestUpstream;
use crate::support::*;

type Received = Arc<Mutex<Vec<Value>>>;

async fn collect(State(r): State<Received>, body: Bytes) -> &'static str {
    r.lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap());
    "{}"
}

/// Every span received: (its trace id, span id, parent span id, name, attributes as JSON).
fn spans(received: &Received) -> Vec<(String, String, String, String, Value)> {
    let mut out = Vec::new();
    for export in received.lock().unwrap().iter() {
        for rs in export["resourceSpans"].as_array().unwrap() {
            let service = rs["resource"]["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["key"] == "service.name")
                .map(|a| a["value"]["stringValue"].clone());
            assert_eq!(service, Some(Value::from("herald")));
            for ss in rs["scopeSpans"].as_array().unwrap() {
                for s in ss["spans"].as_array().unwrap() {
                    let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
                    out.push((
                        text("traceId"),
                        text("spanId"),
                        text("parentSpanId"),
                        text("name"),
                        s["attributes"].clone(),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn a_login_is_traced_over_otlp_and_joins_the_callers_trace() {
    let received: Received = Arc::default();
    let collector = Router::new()
        .route("/v1/traces", post(collect))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await.unwrap() });

    let upstream = TestUpstream::start().await;
    let dir =
        std::env::temp_dir().join(format!("herald-traces-{}", herald::tokens::random_token()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("herald.toml");
    let text = format!(
        "{}\n[telemetry]\notlp_endpoint = \"{otlp}\"\n",
        config(upstream.issuer())
    );
    std::fs::write(&file, text).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--config", file.to_str().unwrap()])
        .env("HERALD_ISSUER", &base)
        .env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "HERALD_DATABASE_URL",
            format!("sqlite://{}", dir.join("h.db").display()),
        )
        .env(
            "HERALD_KEY_ENCRYPTION_KEY",
            herald::tokens::keys::KeyEncryption::generate_base64(),
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Child(child);
    let browser = browser();
    assert!(comes_up(&base).await);

    // The app's own trace: its authorize request carries traceparent.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let p = AuthParams::new("rp", "openid");
    let url = Site { base: &base }.authorize_url(&p);
    let res = browser
        .get(&url)
        .header("traceparent", format!("00-{trace_id}-{parent}-01"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection());
    let next = res.headers()["location"].to_str().unwrap().to_string();
    let next = if next.starts_with('/') {
        format!("{base}{next}")
    } else {
        next
    };
    match follow(&browser, next).await {
        Outcome::Consent(_) | Outcome::Client(_) => {}
        other => panic!("{other:?}"),
    }

    // SIGTERM: Herald exports what it still holds before it exits.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || child.0.wait()).await;
    let all = spans(&received);
    assert!(!all.is_empty(), "no spans received");
    let authorize = all
        .iter()
        .find(|(t, _, _, name, _)| name == "request" && t == trace_id)
        .unwrap_or_else(|| panic!("no request span in the caller's trace: {all:?}"));
    assert_eq!(authorize.2, parent, "the caller's span is its parent");
    // The callback's request span has the upstream's token and userinfo calls as children.
    let token = all
        .iter()
        .find(|(_, _, _, name, attrs)| {
            name == "upstream.request" && attrs.to_string().contains("\"token\"")
        })
        .unwrap_or_else(|| panic!("no span for the upstream's token endpoint: {all:?}"));
    let in_trace: Vec<&String> = all
        .iter()
        .filter(|(t, _, _, _, _)| *t == token.0)
        .map(|(_, _, _, name, _)| name)
        .collect();
    assert!(in_trace.iter().any(|n| *n == "request"), "{in_trace:?}");
    assert!(
        all.iter().any(|(t, _, _, name, attrs)| *t == token.0
            && name == "upstream.request"
            && attrs.to_string().contains("\"userinfo\"")),
        "{all:?}"
    );
    assert!(!token.2.is_empty(), "the upstream call has a parent span");
}
