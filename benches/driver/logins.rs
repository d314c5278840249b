//! Whole brokered logins, as a browser and a client app would do them: `/authorize`, the
//! development upstream's login form, Herald's callback (which redeems the upstream code over
//! HTTP), the consent page and its POST, the redirect with the code, and `/token`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use herald::tokens::hashing::random_token;
use herald::tokens::mint::pkce_s256;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::stats::Samples;
use crate::{ClientArgs, LoadArgs};

pub async fn run(
    client: &ClientArgs,
    load: &LoadArgs,
    prefix: &str,
    scope: &str,
) -> anyhow::Result<Value> {
    let http = crate::http_client();
    // A unique prefix per run, so every login is a new user who is asked for consent.
    let run_id = &random_token()[..8];
    for n in 0..load.warmup {
        login(
            &http,
            client,
            scope,
            &format!("{prefix}{run_id}-warmup-{n}"),
        )
        .await?;
    }
    let deadline = load.deadline();
    let max = load.max.unwrap_or(u64::MAX);
    let started_count = Arc::new(AtomicU64::new(0));
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
        let (http, client, count) = (http.clone(), client.clone(), started_count.clone());
        let prefix = format!("{prefix}{run_id}-");
        let scope = scope.to_string();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::default();
            loop {
                let n = count.fetch_add(1, Ordering::Relaxed);
                if n >= max || tokio::time::Instant::now() >= deadline {
                    break;
                }
                let start = Instant::now();
                match login(&http, &client, &scope, &format!("{prefix}{n}")).await {
                    Ok(_) => samples.record(start.elapsed()),
                    Err(e) => {
                        if samples.errors == 0 {
                            eprintln!("login: {e:#}");
                        }
                        samples.errors += 1;
                    }
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
    let mut out = json!({ "logins": all.summary(elapsed) });
    if let Some(p) = probe {
        out["probe"] = p.await?.summary(elapsed);
    }
    Ok(out)
}

/// One browser's cookies for Herald's origin (the upstream is served by Herald too).
#[derive(Default)]
struct Jar(HashMap<String, String>);

impl Jar {
    fn take(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all(SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let pair = v.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.0.insert(name.trim().into(), value.trim().into());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn query(url: &reqwest::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// The value of `<input name="{name}" value="...">` in a page Herald rendered.
fn field(html: &str, name: &str) -> anyhow::Result<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .with_context(|| format!("no {name} field"))?
        + marker.len();
    Ok(html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string())
}

/// The `name`/`value` pairs of a page's `<input type="hidden">` elements.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| {
        let marker = format!("{name}=\"");
        tag.find(&marker).map(|i| {
            tag[i + marker.len()..]
                .split('"')
                .next()
                .unwrap_or_default()
                .to_string()
        })
    };
    html.split("<input")
        .skip(1)
        .map(|rest| rest.split('>').next().unwrap_or_default())
        .filter(|tag| attr(tag, "type").as_deref() == Some("hidden"))
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default())))
        .collect()
}

/// One whole login as `user`; the token response.
pub async fn login(
    http: &reqwest::Client,
    c: &ClientArgs,
    scope: &str,
    user: &str,
) -> anyhow::Result<Value> {
    let mut jar = Jar::default();
    let verifier = random_token();
    let state = random_token();
    let mut url = reqwest::Url::parse_with_params(
        &format!("{}{}", c.base, c.authorize_path),
        &[
            ("response_type", "code"),
            ("client_id", &c.client_id),
            ("redirect_uri", &c.redirect_uri),
            ("scope", scope),
            ("state", &state),
            ("nonce", &random_token()),
            ("code_challenge", &pkce_s256(&verifier)),
            ("code_challenge_method", "S256"),
        ],
    )?;
    // Some(form) means POST it to `url`; None means GET `url`.
    let mut form: Option<Vec<(String, String)>> = None;
    let code = loop {
        if url.as_str().starts_with(&c.redirect_uri) {
            let q = query(&url);
            if q.get("state") != Some(&state) {
                bail!("state mismatch at the client: {url}");
            }
            break q
                .get("code")
                .cloned()
                .with_context(|| format!("no code: {url}"))?;
        }
        let req = match form.take() {
            Some(f) => http.post(url.clone()).form(&f),
            None => http.get(url.clone()),
        };
        let res = req.header(COOKIE, jar.header()).send().await?;
        jar.take(&res);
        let status = res.status();
        if status.is_redirection() {
            let loc = res
                .headers()
                .get(LOCATION)
                .context("redirect without Location")?;
            url = url.join(loc.to_str()?)?;
            continue;
        }
        let page_url = url.clone();
        let html = res.text().await?;
        if !status.is_success() {
            bail!("{status} at {page_url}: {}", &html[..html.len().min(300)]);
        }
        match page_url.path() {
            "/dev-upstream/authorize" => {
                // The form's hidden fields repeat the upstream request's query; sign in as `user`.
                let q = query(&page_url);
                let mut f: Vec<(String, String)> = [
                    "client_id",
                    "redirect_uri",
                    "state",
                    "nonce",
                    "code_challenge",
                    "scope",
                ]
                .iter()
                .map(|n| (n.to_string(), q.get(*n).cloned().unwrap_or_default()))
                .collect();
                if !html.contains("name=\"username\"") {
                    bail!("the development login form is missing");
                }
                f.push(("username".into(), user.into()));
                f.push(("groups".into(), "staff, herald-admins".into()));
                form = Some(f);
            }
            "/consent" => {
                form = Some(vec![
                    ("request".into(), field(&html, "request")?),
                    ("csrf".into(), field(&html, "csrf")?),
                    ("decision".into(), "allow".into()),
                ]);
            }
            // oidc-provider's development login and consent pages, for the comparison run.
            p if p.starts_with("/interaction/") => {
                let marker = "action=\"";
                let start = html
                    .find(marker)
                    .context("no form on the interaction page")?;
                let action = html[start + marker.len()..]
                    .split('"')
                    .next()
                    .unwrap_or_default();
                url = page_url.join(action)?;
                let mut f = hidden_inputs(&html);
                f.push(("login".into(), user.into()));
                f.push(("password".into(), "bench".into()));
                form = Some(f);
                continue;
            }
            other => bail!("unexpected page {other}"),
        }
        // Herald's forms post back to the page's own path.
        url = page_url.join(page_url.path())?;
    };
    let res = http
        .post(format!("{}/token", c.base))
        .basic_auth(&c.client_id, Some(&c.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await?;
    let status = res.status();
    let body: Value = res.json().await?;
    if !status.is_success() || !body["id_token"].is_string() {
        bail!("token: {status} {body}");
    }
    Ok(body)
}
