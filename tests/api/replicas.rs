//! Several Herald replicas on one PostgreSQL database, and a database outage.
//!
//! Two `App`s share a schema of their own on the PostgreSQL at 127.0.0.1:5432 and one issuer,
//! as behind a load balancer; the test plays the load balancer by sending each browser hop to
//! the other replica. With `CI=true` an unreachable PostgreSQL fails these tests; elsewhere they
//! say loudly that they were skipped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use herald::app::{App, BuildOptions};
use herald::clock::OffsetClock;
use herald::tokens::keys::{self, Alg, KeyEncryption};
use herald::tokens::random_token;
use sqlx::Connection;

use crate::support::upstream::TestUpstream;
use crate::support::*;

const PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh schema, or `None` (skip) when PostgreSQL is unreachable outside CI.
pub(crate) async fn schema() -> Option<String> {
    match sqlx::PgConnection::connect(PG).await {
        Ok(mut c) => {
            let name = format!(
                "herald_r_{}",
                random_token().to_lowercase().replace(['-', '_'], "")
            )[..30]
                .to_string();
            sqlx::query(&format!("CREATE SCHEMA {name}"))
                .execute(&mut c)
                .await
                .unwrap();
            Some(name)
        }
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL at {PG} is unreachable and CI=true: {e}")
        }
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** replica tests SKIPPED: PostgreSQL at {PG} is unreachable: {e} ***\n"
            );
            None
        }
    }
}

pub(crate) struct Replicas {
    pub(crate) a: TestApp,
    pub(crate) b_base: String,
    pub(crate) b_state: herald::state::AppState,
}

pub(crate) fn pg_url(schema: &str, port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/test?options=-c%20search_path%3D{schema}")
}

/// Two replicas sharing one database (reached through `db_port`) and one issuer (replica A's).
async fn two_replicas(schema: &str, db_port: u16) -> Replicas {
    two_replicas_with(schema, db_port, "", false).await
}

/// Two replicas as [`two_replicas`], with `upstream_extra` appended to the upstream's table
/// (attributes, mappings) and, when `live`, live configuration and the admin bootstrap token.
pub(crate) async fn two_replicas_with(
    schema: &str,
    db_port: u16,
    upstream_extra: &str,
    live: bool,
) -> Replicas {
    let upstream = TestUpstream::start().await;
    let la = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", la.local_addr().unwrap());
    let b_base = format!("http://{}", lb.local_addr().unwrap());
    let toml = format!(
        r#"
issuer = "{base}"
listen = "127.0.0.1:0"
database_url = "{db}"
# Each replica's own loops, shortened so the tests see them work (defaults 10 s and 2 s).
[server]
key_reload_interval = "300ms"
config_poll_interval = "200ms"
[[upstreams]]
id = "test"
kind = "oidc"
issuer = "{iss}"
client_id = "herald-at-upstream"
client_secret = "upstream-secret"
{upstream_extra}
[[clients]]
client_id = "app"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid", "profile"]
"#,
        db = pg_url(schema, db_port),
        iss = upstream.issuer()
    );
    let kek = KeyEncryption::generate_base64();
    let clock = Arc::new(OffsetClock::default());
    let mut states = Vec::new();
    for listener in [la, lb] {
        let (settings, _) = herald::config::from_toml(&toml).unwrap();
        let app = App::build(
            settings,
            BuildOptions {
                clock: clock.clone(),
                kek: Some(KeyEncryption::from_base64(&kek).unwrap()),
                listener: Some(listener),
                config_text: live.then(|| toml.clone()),
                admin_token: live.then(|| ADMIN_TOKEN.into()),
                ..Default::default()
            },
        )
        .await
        .expect("replica starts");
        states.push(app.state.clone());
        tokio::spawn(app.run(std::future::pending()));
    }
    let b_state = states.pop().unwrap();
    let a_state = states.pop().unwrap();
    Replicas {
        a: TestApp {
            base,
            upstream,
            clock,
            state: a_state,
            kek,
            config: toml,
            browser: browser(),
            api: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        },
        b_base,
        b_state,
    }
}

impl Replicas {
    /// Follows a login like a browser whose every request the load balancer sends to the other
    /// replica than the last one.
    async fn login_alternating(&self, p: &AuthParams) -> std::collections::HashMap<String, String> {
        let mut url = self.a.authorize_url(p);
        let mut on_b = false;
        for _ in 0..15 {
            if url.starts_with(APP_CB) {
                return query_of(&url);
            }
            let target = if on_b {
                url.replacen(&self.a.base, &self.b_base, 1)
            } else {
                url.clone()
            };
            if target.starts_with(&self.a.base) || target.starts_with(&self.b_base) {
                on_b = !on_b;
            }
            let res = self.a.browser.get(&target).send().await.unwrap();
            if res.status().is_redirection() {
                let loc = res.headers()["location"].to_str().unwrap().to_string();
                url = if loc.starts_with('/') {
                    format!("{}{loc}", self.a.base)
                } else {
                    loc
                };
                continue;
            }
            let status = res.status();
            let body = res.text().await.unwrap();
            assert_eq!(status, 200, "{body}");
            // The consent page: decide on the other replica.
            let (request, csrf) = consent_fields(&body);
            let base = if on_b { &self.b_base } else { &self.a.base };
            on_b = !on_b;
            let res = self
                .a
                .browser
                .post(format!("{base}/consent"))
                .form(&[
                    ("request", request.as_str()),
                    ("csrf", csrf.as_str()),
                    ("decision", "allow"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303);
            url = res.headers()["location"].to_str().unwrap().to_string();
        }
        panic!("too many redirects")
    }
}

#[tokio::test]
async fn a_login_started_on_one_replica_finishes_on_the_other_and_tokens_verify_everywhere() {
    let Some(schema) = schema().await else { return };
    let r = two_replicas(&schema, 5432).await;
    let p = AuthParams::new("app", "openid profile");
    let q = r.login_alternating(&p).await;
    assert_eq!(q["state"], p.state);
    // Redeem at B, use at A.
    let res =
        r.a.api
            .post(format!("{}/token", r.b_base))
            .basic_auth("app", Some(SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", q["code"].as_str()),
                ("redirect_uri", APP_CB),
                ("code_verifier", p.verifier.as_deref().unwrap()),
            ])
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 200);
    let t: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        r.a.userinfo(t["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let jwks_a: serde_json::Value =
        r.a.api
            .get(format!("{}/jwks", r.a.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let jwks_b: serde_json::Value =
        r.a.api
            .get(format!("{}/jwks", r.b_base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(jwks_a, jwks_b, "both replicas publish the same keys");
}

#[tokio::test]
async fn two_replicas_redeeming_one_code_at_once_yield_exactly_one_success() {
    let Some(schema) = schema().await else { return };
    let r = two_replicas(&schema, 5432).await;
    let p = AuthParams::new("app", "openid");
    let q = r.login_alternating(&p).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let base = if i % 2 == 0 {
            r.a.base.clone()
        } else {
            r.b_base.clone()
        };
        let (api, code, verifier) = (
            r.a.api.clone(),
            q["code"].clone(),
            p.verifier.clone().unwrap(),
        );
        tasks.push(tokio::spawn(async move {
            api.post(format!("{base}/token"))
                .basic_auth("app", Some(SECRET))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", code.as_str()),
                    ("redirect_uri", APP_CB),
                    ("code_verifier", verifier.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_key_rotated_through_one_replica_is_served_by_the_other_within_seconds() {
    let Some(schema) = schema().await else { return };
    let r = two_replicas(&schema, 5432).await;
    let kek = KeyEncryption::from_base64(&r.a.kek).unwrap();
    let rotation = keys::rotate(
        &*r.a.state.store,
        &kek,
        Alg::RS256,
        r.a.state.now(),
        300,
        3900,
    )
    .await
    .unwrap();
    // No explicit reload: replica B's own reload loop (every 300 ms here) must pick it up,
    // well before the 10 s default would.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let jwks: serde_json::Value =
            r.a.api
                .get(format!("{}/jwks", r.b_base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        if jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == rotation.new_kid.as_str())
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replica B did not publish the rotated key within 5 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = &r.b_state;
}

/// A TCP proxy to PostgreSQL that the test can cut and restore: a database outage on demand.
struct CuttableProxy {
    port: u16,
    cut: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl CuttableProxy {
    async fn start() -> CuttableProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (c, cs) = (cut.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if c.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect("127.0.0.1:5432").await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                cs.lock().unwrap().push(task.abort_handle());
            }
        });
        CuttableProxy { port, cut, conns }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_database_outage_answers_503_with_retry_after_and_herald_recovers_by_itself() {
    let Some(schema) = schema().await else { return };
    let proxy = CuttableProxy::start().await;
    // With live configuration and the admin token, so the admin API is in the outage too.
    let r = two_replicas_with(&schema, proxy.port, "", true).await;
    let app = &r.a;
    let p = AuthParams::new("app", "openid");
    let q = r.login_alternating(&p).await;

    proxy.cut();
    let res = app.redeem(&p, &q["code"]).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let page = app
        .browser
        .get(app.authorize_url(&AuthParams::new("app", "openid")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 503, "the browser gets a page, not a panic");
    assert!(page.headers().contains_key("retry-after"));
    let admin = app
        .api
        .get(format!("{}/admin/api/users", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 503);
    assert!(admin.headers().contains_key("retry-after"));
    let body: serde_json::Value = admin.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert_eq!(
        app.api
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(
        app.api
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    proxy.restore();
    // The code was not consumed by the failed attempt: it still works once the database is back.
    let res = app.redeem(&p, &q["code"]).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(
        app.api
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_configuration_change_through_one_replica_reaches_the_other_by_its_own_poll() {
    let Some(schema) = schema().await else { return };
    let r = two_replicas_with(&schema, 5432, "", true).await;
    let before = r.b_state.config_version();
    let res =
        r.a.api
            .post(format!("{}/admin/api/clients", r.a.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({
                "client_id": "late", "scopes": ["openid"], "redirect_uris": [APP_CB]
            }))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    // No explicit reload: B polls every 200 ms here; the 2 s default would miss this deadline.
    let start = std::time::Instant::now();
    while r.b_state.settings().client("late").is_none() {
        assert!(
            start.elapsed() < std::time::Duration::from_millis(1800),
            "replica B did not take the new client within 1.8 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(r.b_state.config_version() > before);
}
