//! The soak (hardening issue; `scripts/soak.sh`): users log in, refresh, read userinfo, revoke
//! and log out, over and over, for as long as asked. Every answer is checked: a 5xx, or a
//! refusal of a token Herald had just issued and nobody revoked (a lost grant or token), is
//! counted and reported; anything else unexpected too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::bail;
use serde_json::{Value, json};

use crate::logins::login;
use crate::stats::Samples;
use crate::{ClientArgs, LoadArgs};

/// What went wrong, by kind.
#[derive(Default)]
struct Faults {
    server_errors: u64,
    lost: u64,
    other: u64,
}

#[derive(Default)]
struct Worker {
    logins: Samples,
    refreshes: Samples,
    userinfo: Samples,
    revocations: Samples,
    logouts: Samples,
    faults: Faults,
}

enum Outcome {
    Ok,
    ServerError(String),
    Lost(String),
    Other(String),
}

fn judge(status: reqwest::StatusCode, what: &str, body: &str) -> Outcome {
    if status.is_server_error() {
        Outcome::ServerError(format!("{what}: {status} {body}"))
    } else if status == 400 || status == 401 {
        Outcome::Lost(format!("{what}: {status} {body}"))
    } else if status.is_success() || status.is_redirection() {
        Outcome::Ok
    } else {
        Outcome::Other(format!("{what}: {status} {body}"))
    }
}

impl Worker {
    fn count(&mut self, outcome: Outcome) -> bool {
        let (n, msg) = match outcome {
            Outcome::Ok => return true,
            Outcome::ServerError(m) => (&mut self.faults.server_errors, m),
            Outcome::Lost(m) => (&mut self.faults.lost, m),
            Outcome::Other(m) => (&mut self.faults.other, m),
        };
        if *n < 3 {
            eprintln!("soak: {msg}");
        }
        *n += 1;
        false
    }
}

/// True when a login's error names a 5xx status (`logins::login` puts the status first).
fn mentions_server_error(msg: &str) -> bool {
    msg.split(|c: char| !c.is_ascii_digit())
        .any(|n| n.len() == 3 && n.starts_with('5'))
}

/// One user's cycle: a login with `offline_access`, `refreshes` times a userinfo call and a
/// rotation, then every 4th cycle a revocation (after which the token must be refused)
/// and every 3rd a logout.
async fn cycle(
    http: &reqwest::Client,
    c: &ClientArgs,
    w: &mut Worker,
    user: &str,
    n: u64,
    refreshes: u32,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let tokens = match login(http, c, "openid profile email offline_access", user).await {
        Ok(tokens) => tokens,
        Err(e) => {
            let msg = format!("login: {e:#}");
            let outcome = if mentions_server_error(&msg) {
                Outcome::ServerError(msg)
            } else {
                Outcome::Other(msg)
            };
            w.count(outcome);
            return Ok(());
        }
    };
    w.logins.record(t.elapsed());
    let Some(mut refresh) = tokens["refresh_token"].as_str().map(str::to_string) else {
        bail!("the login gave no refresh token: {tokens}");
    };
    let id_token = tokens["id_token"].as_str().unwrap_or_default().to_string();
    let mut access = tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for _ in 0..refreshes {
        let t = Instant::now();
        let res = http
            .get(format!("{}/userinfo", c.base))
            .bearer_auth(&access)
            .send()
            .await?;
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        if !w.count(judge(status, "userinfo", &body)) {
            return Ok(());
        }
        w.userinfo.record(t.elapsed());

        let t = Instant::now();
        let res = http
            .post(format!("{}/token", c.base))
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !w.count(judge(status, "refresh", &body.to_string())) {
            return Ok(());
        }
        w.refreshes.record(t.elapsed());
        refresh = body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        access = body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    if n.is_multiple_of(4) {
        let t = Instant::now();
        let res = http
            .post(format!("{}/revoke", c.base))
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .form(&[("token", refresh.as_str())])
            .send()
            .await?;
        let status = res.status();
        if !w.count(judge(status, "revoke", "")) {
            return Ok(());
        }
        w.revocations.record(t.elapsed());
        let res = http
            .post(format!("{}/token", c.base))
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
            .send()
            .await?;
        if res.status() != 400 {
            w.count(Outcome::Other(format!(
                "a revoked refresh token answered {}",
                res.status()
            )));
        }
    }
    if n.is_multiple_of(3) {
        let t = Instant::now();
        let res = http
            .get(format!("{}/logout", c.base))
            .query(&[
                ("id_token_hint", id_token.as_str()),
                ("client_id", &c.client_id),
            ])
            .send()
            .await?;
        let status = res.status();
        if w.count(judge(status, "logout", "")) {
            w.logouts.record(t.elapsed());
        }
    }
    Ok(())
}

pub async fn run(c: &ClientArgs, load: &LoadArgs, refreshes: u32) -> anyhow::Result<Value> {
    let http = crate::http_client();
    let run_id = &herald::tokens::hashing::random_token()[..8];
    let deadline = load.deadline();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..load.concurrency {
        let (http, c, next) = (http.clone(), c.clone(), next.clone());
        let run_id = run_id.to_string();
        tasks.push(tokio::spawn(async move {
            let mut w = Worker::default();
            while tokio::time::Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let user = format!("soak-{run_id}-{n}");
                if let Err(e) = cycle(&http, &c, &mut w, &user, n, refreshes).await {
                    w.count(Outcome::Other(format!("{e:#}")));
                }
            }
            w
        }));
    }
    let mut all = Worker::default();
    for t in tasks {
        let w = t.await?;
        all.logins.merge(w.logins);
        all.refreshes.merge(w.refreshes);
        all.userinfo.merge(w.userinfo);
        all.revocations.merge(w.revocations);
        all.logouts.merge(w.logouts);
        all.faults.server_errors += w.faults.server_errors;
        all.faults.lost += w.faults.lost;
        all.faults.other += w.faults.other;
    }
    let elapsed = started.elapsed();
    Ok(json!({
        "soak": {
            "seconds": elapsed.as_secs_f64().round(),
            "server_errors": all.faults.server_errors,
            "lost_grants_or_tokens": all.faults.lost,
            "other_faults": all.faults.other,
            "logins": all.logins.summary(elapsed),
            "refreshes": all.refreshes.summary(elapsed),
            "userinfo": all.userinfo.summary(elapsed),
            "revocations": all.revocations.summary(elapsed),
            "logouts": all.logouts.summary(elapsed),
        }
    }))
}
