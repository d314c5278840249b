//! `/token` with `grant_type=authorization_code`, one pre-minted code per request.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use crate::stats::Samples;
use crate::{ClientArgs, LoadArgs};

pub async fn run(client: &ClientArgs, load: &LoadArgs, codes: &Path) -> anyhow::Result<Value> {
    let codes: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(codes)?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    );
    let limit = load
        .max
        .map_or(codes.len(), |m| (m as usize).min(codes.len()));
    let http = crate::http_client();
    let warmup = (load.warmup as usize).min(limit);
    for code in &codes[..warmup] {
        redeem(&http, client, code).await?;
    }
    let next = Arc::new(AtomicUsize::new(warmup));
    let deadline = load.deadline();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = load.probe.as_ref().map(|p| {
        tokio::spawn(crate::probe(
            http.clone(),
            format!("{}{p}", client.base),
            deadline,
            stop.clone(),
        ))
    });
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..load.concurrency {
        let (codes, next, http, client) =
            (codes.clone(), next.clone(), http.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            let url = format!("{}/token", client.base);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= limit || tokio::time::Instant::now() >= deadline {
                    break;
                }
                let start = Instant::now();
                let res = request(&http, &client, &url, &codes[i]).await;
                let ok = match res {
                    Ok(r) if r.status().is_success() => r
                        .json::<Value>()
                        .await
                        .is_ok_and(|t| t["access_token"].is_string()),
                    Ok(r) => {
                        if samples.errors == 0 {
                            eprintln!(
                                "exchange: {} {}",
                                r.status(),
                                r.text().await.unwrap_or_default()
                            );
                        }
                        false
                    }
                    Err(e) => {
                        if samples.errors == 0 {
                            eprintln!("exchange: {e}");
                        }
                        false
                    }
                };
                if ok {
                    samples.record(start.elapsed());
                } else {
                    samples.errors += 1;
                }
            }
            samples
        }));
    }
    let mut all = Samples::default();
    for t in tasks {
        all.merge(t.await?);
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut out = json!({ "token": all.summary(elapsed), "codes_available": codes.len() });
    if let Some(p) = probe {
        out["probe"] = p.await?.summary(elapsed);
    }
    Ok(out)
}

async fn request(
    http: &reqwest::Client,
    client: &ClientArgs,
    url: &str,
    code: &str,
) -> reqwest::Result<reqwest::Response> {
    http.post(url)
        .basic_auth(&client.client_id, Some(&client.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", client.redirect_uri.as_str()),
        ])
        .send()
        .await
}

/// One redemption that must succeed (the warm-up).
async fn redeem(http: &reqwest::Client, client: &ClientArgs, code: &str) -> anyhow::Result<()> {
    let res = request(http, client, &format!("{}/token", client.base), code).await?;
    anyhow::ensure!(res.status().is_success(), "warm-up: {}", res.text().await?);
    Ok(())
}
