//! `GET /metrics` (issue 15): the Prometheus text format, who may read it, and every family a
//! login, a consent decision, a token, an upstream call and a rate-limited request are counted in.
//!
//! The `metrics` recorder is global and the tests of this binary run side by side, so every
//! count here is a difference between two scrapes, and only ever checked to have grown by at
//! least what this test did.

use reqwest::StatusCode;

use crate::support::*;

/// The metrics as a loopback client sees them.
pub async fn scrape(app: &TestApp) -> String {
    let res = app
        .api
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    res.text().await.unwrap()
}

/// The sample of `name` whose labels include every pair of `labels`: summed over the series
/// that match (a histogram's `_count` over its other labels), `None` when no series matches.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, sample)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let has = |(k, v): &(&str, &str)| label_text.contains(&format!("{k}=\"{v}\""));
        if labels.iter().all(has) {
            *found.get_or_insert(0.0) += sample.parse::<f64>().unwrap();
        }
    }
    found
}

fn grew(before: &str, after: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let after = value(after, name, labels)
        .unwrap_or_else(|| panic!("no series {name} {labels:?} after the login"));
    after - value(before, name, labels).unwrap_or(0.0)
}

#[tokio::test]
async fn a_scrape_after_a_login_finds_every_family_with_the_login_counted() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    // A login with the consent page (app is not trusted), its code redeemed; the test
    // upstream's token and userinfo endpoints are called on the way.
    let p = AuthParams::new("app", "openid profile");
    let tokens = app.tokens(&p).await;
    assert!(tokens["access_token"].is_string());
    // A request past the rate limit of an app with tight limits (same recorder).
    let tight = spawn_app_full(
        "[limits]\nper_ip_per_second = 1\nper_ip_burst = 1\n",
        "",
        "",
    )
    .await;
    tight.clock.freeze();
    let mut limited = false;
    for _ in 0..5 {
        let res = tight
            .api
            .get(format!("{}/authorize?client_id=app", tight.base))
            .send()
            .await
            .unwrap();
        limited |= res.status() == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(limited, "the tight app refused a request with 429");
    let after = scrape(&app).await;

    let token_route = [("route", "/token"), ("method", "POST"), ("status", "200")];
    assert!(grew(&before, &after, "herald_http_requests_total", &token_route) >= 1.0);
    let duration = "herald_http_request_duration_seconds_count";
    assert!(grew(&before, &after, duration, &[("route", "/token")]) >= 1.0);
    assert!(
        after
            .contains("herald_http_request_duration_seconds_bucket{route=\"/token\",le=\"0.005\"}"),
        "a histogram with Herald's buckets"
    );
    let login = [
        ("upstream", "test"),
        ("client_id", "app"),
        ("result", "success"),
    ];
    assert!(grew(&before, &after, "herald_logins_total", &login) >= 1.0);
    let issued = [("grant_type", "authorization_code"), ("client_id", "app")];
    assert!(grew(&before, &after, "herald_tokens_issued_total", &issued) >= 1.0);
    for endpoint in ["token", "userinfo"] {
        let labels = [("upstream", "test"), ("endpoint", endpoint)];
        let name = "herald_upstream_request_duration_seconds_count";
        assert!(grew(&before, &after, name, &labels) >= 1.0, "{endpoint}");
    }
    let consent = [("client_id", "app"), ("decision", "allow")];
    assert!(grew(&before, &after, "herald_consent_decisions_total", &consent) >= 1.0);
    assert!(
        grew(
            &before,
            &after,
            "herald_rate_limited_total",
            &[("route", "/authorize")]
        ) >= 1.0
    );
    // Families with no failure yet are there at zero, so rates over them are defined.
    let up = [("upstream", "test")];
    assert!(value(&after, "herald_upstream_errors_total", &up).is_some());
    assert!(value(&after, "herald_mapping_warnings_total", &up).is_some());
    assert!(
        value(
            &after,
            "herald_store_errors_total",
            &[("kind", "unavailable")]
        )
        .is_some()
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(&after, "herald_build_info", &[("version", version)]),
        Some(1.0)
    );
    for process in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
    ] {
        assert!(
            value(&after, process, &[]).is_some_and(|v| v > 0.0),
            "{process}"
        );
    }
    for family in [
        "herald_http_requests_total",
        "herald_logins_total",
        "herald_tokens_issued_total",
    ] {
        assert!(
            after.contains(&format!("# HELP {family} ")),
            "{family} is described"
        );
        assert!(
            after.contains(&format!("# TYPE {family} counter")),
            "{family}"
        );
    }
    // The Grafana dashboard in deploy/ queries only series Herald has.
    let dashboard = include_str!("../../deploy/grafana-herald.json");
    let dashboard: serde_json::Value = serde_json::from_str(dashboard).unwrap();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("herald_") || w.starts_with("process_"));
            for name in names {
                assert!(
                    after.lines().any(|l| l.starts_with(name)),
                    "the dashboard's panel {} queries {name}, which Herald does not export",
                    panel["title"]
                );
                queried += 1;
            }
        }
    }
    assert!(queried >= 15, "{queried}");
}

#[tokio::test]
async fn routes_are_templates_never_raw_paths() {
    let app = spawn_app().await;
    for path in ["/login/secret-request-id-123", "/no-such-page-456?code=abc"] {
        let res = app
            .browser
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{path}: {}", res.status());
    }
    let text = scrape(&app).await;
    assert!(
        value(
            &text,
            "herald_http_requests_total",
            &[("route", "/login/{request}")]
        )
        .is_some()
    );
    assert!(
        value(
            &text,
            "herald_http_requests_total",
            &[("route", "unmatched")]
        )
        .is_some()
    );
    for raw in ["secret-request-id-123", "no-such-page-456", "code=abc"] {
        assert!(!text.contains(raw), "{raw} in the metrics");
    }
}

#[tokio::test]
async fn metrics_are_for_loopback_clients_not_behind_a_proxy_or_for_the_token() {
    let app = spawn_app().await;
    let get = |forwarded: bool, token: Option<&str>| {
        let mut req = app.api.get(format!("{}/metrics", app.base));
        if forwarded {
            req = req.header("x-forwarded-for", "203.0.113.9");
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(get(false, None).await.unwrap().status(), 200);
    // Through a proxy on the same host the peer is loopback, but the client is not.
    let res = get(true, None).await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("HERALD_METRICS_TOKEN"));
    let res = get(true, Some("not-the-token")).await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = get(true, Some(METRICS_TOKEN)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("herald_build_info"));
}

#[tokio::test]
async fn the_admin_listener_answers_metrics_too() {
    let (_app, admin) = spawn_app_with_admin_listener("").await;
    let res = reqwest::get(format!("{admin}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("herald_http_requests_total")
    );
}
