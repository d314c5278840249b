//! The machine's PostgreSQL stopped and restarted under load (issue 14, database faults).
//!
//! Herald runs on its own schema of the PostgreSQL at 127.0.0.1:5432 while six refresh chains
//! (refresh, then userinfo with the new access token) and a stream of code redemptions run.
//! The test stops the cluster with `pg_ctlcluster`, keeps it down until every chain has been
//! refused, starts it again and waits for Herald to recover by itself. It stops the database
//! every other test uses, so it is ignored by a plain `cargo test` and run alone by
//! `scripts/pg-fault-test.sh` (part of the test command).

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::replicas::{schema, two_replicas_with};
use crate::support::*;

const CHAINS: usize = 6;
const CODES: usize = 12;

/// A client with refresh tokens, added beside the replicas' `app`, and no rate limit.
const RP: &str = r#"
[[clients]]
client_id = "rp"
client_secret = "app-secret-for-tests"
redirect_uris = ["http://127.0.0.1:9000/cb"]
scopes = ["openid", "offline_access"]
grant_types = ["authorization_code", "refresh_token"]

# One address sends all the load.
[limits]
per_ip_per_second = 0
"#;

/// The cluster of the machine's PostgreSQL (`/etc/postgresql/<version>/main`).
fn cluster_version() -> String {
    std::fs::read_dir("/etc/postgresql")
        .expect("no /etc/postgresql: this test needs the machine's PostgreSQL cluster")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .next()
        .expect("no cluster under /etc/postgresql")
}

fn pg_ctl(action: &str) {
    let status = Command::new("pg_ctlcluster")
        .args([
            "--skip-systemctl-redirect",
            &cluster_version(),
            "main",
            action,
        ])
        .args(if action == "stop" {
            &["-m", "fast"][..]
        } else {
            &[][..]
        })
        .status()
        .expect("pg_ctlcluster runs");
    assert!(status.success(), "pg_ctlcluster {action}: {status}");
}

/// Starts the cluster again however the test ends, so a failure never leaves the machine
/// without its database.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        let ready = || {
            Command::new("pg_isready")
                .args(["-h", "127.0.0.1", "-p", "5432", "-q"])
                .status()
                .is_ok_and(|s| s.success())
        };
        if !ready() {
            let _ = Command::new("pg_ctlcluster")
                .args([
                    "--skip-systemctl-redirect",
                    &cluster_version(),
                    "main",
                    "start",
                ])
                .status();
        }
    }
}

#[derive(Default)]
struct Seen {
    /// (what, status) → how many.
    statuses: Mutex<HashMap<(&'static str, u16), u32>>,
}

impl Seen {
    fn count(&self, what: &'static str, status: u16) {
        *self
            .statuses
            .lock()
            .unwrap()
            .entry((what, status))
            .or_default() += 1;
    }
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.api
        .post(format!("{}/token", app.base))
        .basic_auth("rp", Some(SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap()
}

async fn ready(app: &TestApp) -> u16 {
    app.api
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops the machine's PostgreSQL; scripts/pg-fault-test.sh runs it alone"]
async fn postgresql_stopped_and_restarted_under_load_loses_no_token_and_answers_only_503() {
    let _restart = Restart;
    let schema = schema().await.expect("PostgreSQL is needed (CI=true)");
    let r = two_replicas_with(&schema, 5432, RP, false).await;
    let app = Arc::new(r.a);
    let p = AuthParams::new("rp", "openid offline_access");
    let mut chains = Vec::new();
    for _ in 0..CHAINS {
        let t = app.tokens(&p).await;
        chains.push((
            t["refresh_token"].as_str().unwrap().to_string(),
            t["access_token"].as_str().unwrap().to_string(),
        ));
    }
    let mut codes = Vec::new();
    for _ in 0..CODES {
        codes.push(app.login(&app.browser, &p).await["code"].clone());
    }

    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let stopped_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    // Per chain: refused after the stop; answered 200 after the restart.
    let refused: Arc<Vec<AtomicBool>> = Arc::new((0..CHAINS).map(|_| false.into()).collect());
    let recovered: Arc<Vec<AtomicBool>> = Arc::new((0..CHAINS).map(|_| false.into()).collect());
    let restarted = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (i, (rt, at)) in chains.into_iter().enumerate() {
        let (app, seen, stop, refused, recovered, restarted) = (
            app.clone(),
            seen.clone(),
            stop.clone(),
            refused.clone(),
            recovered.clone(),
            restarted.clone(),
        );
        let stopped_at = stopped_at.clone();
        tasks.push(tokio::spawn(async move {
            let (mut rt, mut at) = (rt, at);
            while !stop.load(Ordering::SeqCst) {
                let res = refresh(&app, &rt).await;
                let status = res.status().as_u16();
                seen.count("refresh", status);
                if status == 200 {
                    let body: Value = res.json().await.unwrap();
                    rt = body["refresh_token"].as_str().unwrap().to_string();
                    at = body["access_token"].as_str().unwrap().to_string();
                    if restarted.load(Ordering::SeqCst) {
                        recovered[i].store(true, Ordering::SeqCst);
                    }
                } else if status == 503 {
                    assert!(res.headers().contains_key("retry-after"));
                    if stopped_at.lock().unwrap().is_some() {
                        refused[i].store(true, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                } else {
                    panic!("refresh answered {status}: {}", res.text().await.unwrap());
                }
                let status = app.userinfo(&at).await.status().as_u16();
                seen.count("userinfo", status);
                assert!(status == 200 || status == 503, "userinfo answered {status}");
            }
            (rt, at)
        }));
    }
    let redeemer = {
        let (app, seen, stop, p) = (app.clone(), seen.clone(), stop.clone(), p.clone());
        tokio::spawn(async move {
            let mut left: Vec<String> = codes;
            while !left.is_empty() && !stop.load(Ordering::SeqCst) {
                let res = app.redeem(&p, &left[0]).await;
                let status = res.status().as_u16();
                seen.count("redeem", status);
                match status {
                    200 => {
                        left.remove(0);
                    }
                    503 => assert!(res.headers().contains_key("retry-after")),
                    _ => panic!("redeem answered {status}: {}", res.text().await.unwrap()),
                }
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
            left.len()
        })
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    let t0 = Instant::now();
    tokio::task::spawn_blocking(|| pg_ctl("stop"))
        .await
        .unwrap();
    *stopped_at.lock().unwrap() = Some(Instant::now());
    println!("stopped in {:?}", t0.elapsed());
    wait_until("every chain refused", Duration::from_secs(30), || {
        refused.iter().all(|r| r.load(Ordering::SeqCst))
    })
    .await;
    println!("every chain refused {:?} after the stop", t0.elapsed());
    assert_eq!(
        ready(&app).await,
        503,
        "not ready while the database is down"
    );

    let t1 = Instant::now();
    tokio::task::spawn_blocking(|| pg_ctl("start"))
        .await
        .unwrap();
    restarted.store(true, Ordering::SeqCst);
    println!("started in {:?}", t1.elapsed());
    wait_until(
        "every chain refreshed again",
        Duration::from_secs(30),
        || recovered.iter().all(|r| r.load(Ordering::SeqCst)),
    )
    .await;
    let ready_after = t0.elapsed();
    assert_eq!(ready(&app).await, 200, "ready again by itself");
    // Let the redeemer finish the codes that were refused during the outage.
    let start = Instant::now();
    while !redeemer.is_finished() && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let left = redeemer.await.unwrap();
    let mut finals = Vec::new();
    for t in tasks {
        finals.push(t.await.unwrap());
    }
    let mut statuses: Vec<_> = seen.statuses.lock().unwrap().clone().into_iter().collect();
    statuses.sort();
    println!("statuses seen: {statuses:?}; ready again {ready_after:?} after the stop",);
    assert_eq!(
        left, 0,
        "every code refused in the outage is redeemable afterwards"
    );
    assert!(
        statuses
            .iter()
            .any(|((w, s), _)| *w == "redeem" && *s == 503),
        "a redemption met the outage"
    );
    // The outage is in the metrics: database errors of kind unavailable.
    let unavailable = crate::metrics::value(
        &crate::metrics::scrape(&app).await,
        "herald_store_errors_total",
        &[("kind", "unavailable")],
    );
    assert!(unavailable.is_some_and(|n| n >= 1.0), "{unavailable:?}");
    // No token was lost: every chain's last refresh token and access token still work.
    for (rt, at) in finals {
        assert_eq!(app.userinfo(&at).await.status(), 200);
        let res = refresh(&app, &rt).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
}
