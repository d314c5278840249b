//! `spawn_app()`: Herald on a random port with a fresh SQLite database and a test upstream,
//! plus a browser-like HTTP client (cookies, no redirects followed) and flow helpers.

pub mod test_keys;
pub mod upstream;

use std::collections::HashMap;
use std::sync::Arc;

use herald::app::{App, BuildOptions};
use herald::clock::OffsetClock;
use herald::tokens::keys::KeyEncryption;
use herald::tokens::random_token;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use upstream::TestUpstream;

pub const SECRET: &str = "app-secret-for-tests";
pub const APP_CB: &str = "http://127.0.0.1:9000/cb";
/// The admin API's bootstrap token in tests (HERALD_ADMIN_TOKEN).
pub const ADMIN_TOKEN: &str = "bootstrap-admin-token-for-tests";
/// The bearer token that reads `/metrics` from anywhere in tests (HERALD_METRICS_TOKEN).
pub const METRICS_TOKEN: &str = "metrics-token-for-tests";

pub struct TestApp {
    pub base: String,
    pub upstream: TestUpstream,
    pub clock: Arc<OffsetClock>,
    pub state: herald::state::AppState,
    /// The key-encryption key this instance runs with (standard base64).
    pub kek: String,
    /// The TOML Herald was started with (tests change it and call `state.replace_settings`).
    pub config: String,
    /// A browser: keeps cookies, never follows redirects.
    pub browser: reqwest::Client,
    /// An app's back channel: no cookies.
    pub api: reqwest::Client,
}

/// The `action` of each entry of an audit log answer, in its order (newest first).
pub fn audit_actions(audit: &Value) -> Vec<&str> {
    audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Starts Herald; `extra` is appended to the generated TOML configuration.
pub async fn spawn_app_with(extra: &str) -> TestApp {
    spawn_app_configured("", extra).await
}

/// Starts Herald; `upstream_keys` go into the test upstream's table, `extra` at the end.
pub async fn spawn_app_configured(upstream_keys: &str, extra: &str) -> TestApp {
    spawn_app_full("", upstream_keys, extra).await
}

/// Starts Herald with `top` among the top-level keys as well.
pub async fn spawn_app_full(top: &str, upstream_keys: &str, extra: &str) -> TestApp {
    spawn(top, upstream_keys, extra, None, std::future::pending())
        .await
        .0
}

/// Starts Herald with `top` among the top-level keys; sending on the returned channel is its
/// SIGTERM, and the handle finishes when `App::run` returns.
pub async fn spawn_app_stoppable(
    top: &str,
) -> (
    TestApp,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (app, running) = spawn(top, "", "", None, async move {
        let _ = stopped.await;
    })
    .await;
    (app, stop, running)
}

/// Starts Herald with the admin surface on a listener of its own (`[admin] listen`, plus
/// `admin_keys`); returns the app and the admin listener's base URL.
pub async fn spawn_app_with_admin_listener(admin_keys: &str) -> (TestApp, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let top = format!("[admin]\nlisten = \"{addr}\"\n{admin_keys}\n");
    let (app, _) = spawn(&top, "", "", Some(listener), std::future::pending()).await;
    (app, format!("http://{addr}"))
}

async fn spawn(
    top: &str,
    upstream_keys: &str,
    extra: &str,
    admin_listener: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (TestApp, tokio::task::JoinHandle<()>) {
    let upstream = TestUpstream::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let db = std::env::temp_dir().join(format!("herald-test-{}.db", random_token()));
    let toml = format!(
        r#"
issuer = "{base}"
listen = "127.0.0.1:0"
database_url = "sqlite://{db}"
{limits}
{top}

[[upstreams]]
id = "test"
kind = "oidc"
issuer = "{iss}"
client_id = "herald-at-upstream"
client_secret = "upstream-secret"
userinfo = true
{upstream_keys}

[[upstreams.attributes]]
claim = "https://example\\.com/groups"
source = "id_token"
type = "string_array"

[[upstreams.mappings]]
from = "https://example\\.com/groups"
to = "groups"

# A claim only userinfo carries, released nested by the org scope.
[[upstreams.attributes]]
claim = "https://example\\.com/tenant"
source = "userinfo"
type = "string"

[[upstreams.mappings]]
from = "https://example\\.com/tenant"
to = "org.tenant"

[[clients]]
client_id = "app"
client_name = "Test <App>"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}", "http://127.0.0.1:9000/other"]
scopes = ["openid", "profile", "email", "groups", "org"]

[[clients]]
client_id = "spa"
redirect_uris = ["{APP_CB}"]
scopes = ["openid", "profile"]

[[clients]]
client_id = "trusted"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid", "email"]
trusted = true

[[clients]]
client_id = "rp"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid", "profile", "email", "offline_access"]
grant_types = ["authorization_code", "refresh_token"]
refresh_token_idle_ttl = "1h"
refresh_token_absolute_ttl = "3h"

[[clients]]
client_id = "rp2"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid", "offline_access"]
grant_types = ["authorization_code", "refresh_token"]

[[clients]]
client_id = "m2m"
client_secret = "{SECRET}"
redirect_uris = []
scopes = ["api", "reports"]
grant_types = ["client_credentials"]

[scopes.groups]
description = "Your groups"
claims = ["groups"]

[scopes.org]
description = "Your organisation"
claims = ["org.tenant"]

[scopes.api]
description = "The API"

[scopes.reports]
description = "Reports"

{extra}
"#,
        db = db.display(),
        iss = upstream.issuer(),
        // Tests fire many requests from one address; tests/api/limits.rs turns limits on.
        limits = if top.contains("[limits]") {
            ""
        } else {
            "limits = { per_ip_per_second = 0 }"
        },
    );
    let (settings, _) = herald::config::from_toml(&toml).expect("test configuration is valid");
    let clock = Arc::new(OffsetClock::default());
    let kek = KeyEncryption::generate_base64();
    let app = App::build(
        settings,
        BuildOptions {
            clock: clock.clone(),
            kek: Some(KeyEncryption::from_base64(&kek).unwrap()),
            listener: Some(listener),
            admin_listener,
            config_text: Some(toml.clone()),
            admin_token: Some(ADMIN_TOKEN.into()),
            metrics_token: Some(METRICS_TOKEN.into()),
            ..Default::default()
        },
    )
    .await
    .expect("Herald starts");
    let state = app.state.clone();
    let running = tokio::spawn(app.run(shutdown));
    let app = TestApp {
        base,
        upstream,
        clock,
        state,
        kek,
        config: toml,
        browser: browser(),
        api: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    (app, running)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with("").await
}

/// An authorization request as a client app would make it.
#[derive(Clone, Debug)]
pub struct AuthParams {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: String,
    pub nonce: String,
    pub verifier: Option<String>,
    pub extra: Vec<(String, String)>,
}

impl AuthParams {
    pub fn new(client_id: &str, scope: &str) -> Self {
        Self {
            client_id: client_id.into(),
            redirect_uri: APP_CB.into(),
            scope: scope.into(),
            state: random_token(),
            nonce: random_token(),
            verifier: Some(random_token()),
            extra: vec![],
        }
    }

    pub fn with(mut self, k: &str, v: &str) -> Self {
        self.extra.push((k.into(), v.into()));
        self
    }

    pub fn query(&self) -> Vec<(String, String)> {
        let mut q = vec![
            ("response_type".to_string(), "code".to_string()),
            ("client_id".into(), self.client_id.clone()),
            ("redirect_uri".into(), self.redirect_uri.clone()),
            ("scope".into(), self.scope.clone()),
            ("state".into(), self.state.clone()),
            ("nonce".into(), self.nonce.clone()),
        ];
        if let Some(v) = &self.verifier {
            q.push(("code_challenge".into(), test_keys::s256(v)));
            q.push(("code_challenge_method".into(), "S256".into()));
        }
        q.extend(self.extra.iter().cloned());
        q
    }
}

/// Where a browser ended up.
#[derive(Debug)]
pub enum Outcome {
    /// Redirected to the client: the query parameters.
    Client(HashMap<String, String>),
    /// Herald showed the consent page (its HTML).
    Consent(String),
    /// Any other final response.
    Page(StatusCode, String),
}

/// A login of `sub` at `upstream_id` made `now`, as the store keeps one: live, with nothing
/// from the upstream beyond its id.
pub fn stored_login(
    id: &str,
    sub: &str,
    upstream_id: &str,
    now: i64,
) -> herald::store::StoredContext {
    herald::store::StoredContext {
        id: id.into(),
        sub: sub.into(),
        upstream_id: upstream_id.into(),
        context: "{}".into(),
        auth_time: now,
        created_at: now,
        expires_at: None,
        revoked_at: None,
        upstream_sid: None,
        upstream_refresh: None,
        upstream_subject: None,
    }
}

/// An unused code for client `rp` and [`APP_CB`], without PKCE, issued `now` from login `ctx`
/// and good for a minute, stored under `code_hash`.
pub fn stored_code(
    code_hash: &str,
    sub: &str,
    scope: &str,
    ctx: &str,
    now: i64,
) -> herald::store::CodeRecord {
    herald::store::CodeRecord {
        code_hash: code_hash.into(),
        client_id: "rp".into(),
        redirect_uri: APP_CB.into(),
        sub: sub.into(),
        scope: scope.into(),
        nonce: None,
        code_challenge: None,
        auth_context_id: ctx.into(),
        auth_time: now,
        auth_time_required: false,
        created_at: now,
        expires_at: now + 60,
        consumed_at: None,
        resources: None,
        dpop_jkt: None,
    }
}

/// The token request that redeems `code` for `p.client_id` at `base`: authenticated with
/// `secret` by Basic, or as a public client (`client_id` in the form) without one.
pub fn redemption(
    api: &reqwest::Client,
    base: &str,
    p: &AuthParams,
    code: &str,
    secret: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code.to_string()),
        ("redirect_uri", p.redirect_uri.clone()),
    ];
    if let Some(v) = &p.verifier {
        form.push(("code_verifier", v.clone()));
    }
    let req = api.post(format!("{base}/token"));
    match secret {
        Some(secret) => req.basic_auth(&p.client_id, Some(secret)),
        None => {
            form.push(("client_id", p.client_id.clone()));
            req
        }
    }
    .form(&form)
}

pub fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Follows redirects like a browser until Herald sends it to the client, shows consent, or
/// answers with a page.
pub async fn follow(browser: &reqwest::Client, mut url: String) -> Outcome {
    for _ in 0..12 {
        if url.starts_with(APP_CB) || url.starts_with("http://127.0.0.1:9000/") {
            return Outcome::Client(query_of(&url));
        }
        let res = browser.get(&url).send().await.unwrap();
        let status = res.status();
        if status.is_redirection() {
            let loc = res.headers()["location"].to_str().unwrap();
            // Relative to the page that redirected, as a browser resolves it.
            url = url::Url::parse(&url)
                .unwrap()
                .join(loc)
                .unwrap()
                .to_string();
            continue;
        }
        let body = res.text().await.unwrap();
        if url.contains("/consent?") && status == StatusCode::OK {
            return Outcome::Consent(body);
        }
        return Outcome::Page(status, body);
    }
    panic!("too many redirects");
}

/// Herald at `base`, seen by a browser: the flow helpers of [`TestApp`] work on any Herald,
/// one in another process included.
pub struct Site<'a> {
    pub base: &'a str,
}

impl Site<'_> {
    pub fn authorize_url(&self, p: &AuthParams) -> String {
        let mut u = url::Url::parse(&format!("{}/authorize", self.base)).unwrap();
        u.query_pairs_mut().extend_pairs(p.query());
        u.to_string()
    }

    /// Submits the consent form with `decision`.
    pub async fn decide(
        &self,
        browser: &reqwest::Client,
        consent_html: &str,
        decision: &str,
    ) -> Outcome {
        let (request, csrf) = consent_fields(consent_html);
        // Every hidden field, as a browser posts the form: the locale shown is one.
        let locale = form_field(consent_html, "locale");
        let res = browser
            .post(format!("{}/consent", self.base))
            .form(&[
                ("request", request.as_str()),
                ("csrf", csrf.as_str()),
                ("locale", locale.as_str()),
                ("decision", decision),
            ])
            .send()
            .await
            .unwrap();
        self.after(browser, res).await
    }

    pub async fn after(&self, browser: &reqwest::Client, res: reqwest::Response) -> Outcome {
        if res.status().is_redirection() {
            let loc = res.headers()["location"].to_str().unwrap().to_string();
            let loc = if loc.starts_with('/') {
                format!("{}{loc}", self.base)
            } else {
                loc
            };
            return follow(browser, loc).await;
        }
        let status = res.status();
        Outcome::Page(status, res.text().await.unwrap())
    }

    /// A whole login that allows consent when asked; returns the client's callback parameters.
    pub async fn login(
        &self,
        browser: &reqwest::Client,
        p: &AuthParams,
    ) -> HashMap<String, String> {
        match follow(browser, self.authorize_url(p)).await {
            Outcome::Client(q) => q,
            Outcome::Consent(html) => match self.decide(browser, &html, "allow").await {
                Outcome::Client(q) => q,
                other => panic!("after consent: {other:?}"),
            },
            other => panic!("login did not finish: {other:?}"),
        }
    }
}

impl TestApp {
    /// An admin API call with `token` (none: anonymous) and a JSON `body`.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut req = self.api.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.unwrap()
    }

    /// A call with the bootstrap token that must answer `status`; returns the JSON body.
    pub async fn admin_ok(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let res = self
            .admin(method.clone(), path, Some(ADMIN_TOKEN), body.as_ref())
            .await;
        let got = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(got.as_u16(), status, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    fn site(&self) -> Site<'_> {
        Site { base: &self.base }
    }

    pub async fn follow(&self, browser: &reqwest::Client, url: String) -> Outcome {
        follow(browser, url).await
    }

    pub fn authorize_url(&self, p: &AuthParams) -> String {
        self.site().authorize_url(p)
    }

    /// Follows `url` in `browser` to a page (not the client, not the consent page) answered with
    /// `status` that says `says`; returns its HTML.
    pub async fn expect_page(
        &self,
        browser: &reqwest::Client,
        url: String,
        status: u16,
        says: &str,
    ) -> String {
        match follow(browser, url).await {
            Outcome::Page(got, page) => {
                assert_eq!(got.as_u16(), status, "{page}");
                assert!(page.contains(says), "expected “{says}” in {page}");
                page
            }
            other => panic!("expected a page saying “{says}”, got {other:?}"),
        }
    }

    pub async fn start(&self, browser: &reqwest::Client, p: &AuthParams) -> Outcome {
        follow(browser, self.authorize_url(p)).await
    }

    pub async fn decide(
        &self,
        browser: &reqwest::Client,
        consent_html: &str,
        decision: &str,
    ) -> Outcome {
        self.site().decide(browser, consent_html, decision).await
    }

    pub async fn after(&self, browser: &reqwest::Client, res: reqwest::Response) -> Outcome {
        self.site().after(browser, res).await
    }

    pub async fn login(
        &self,
        browser: &reqwest::Client,
        p: &AuthParams,
    ) -> HashMap<String, String> {
        self.site().login(browser, p).await
    }

    /// A client_credentials access token for `client` (secret via Basic) with `scope`.
    /// Herald's published keys, as an app fetches them.
    pub async fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        self.api
            .get(format!("{}/jwks", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn client_credentials(&self, client: &str, secret: &str, scope: &str) -> String {
        let res = self
            .api
            .post(format!("{}/token", self.base))
            .basic_auth(client, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Redeems a code as client `app` (secret via Basic) or a public client.
    pub async fn redeem(&self, p: &AuthParams, code: &str) -> reqwest::Response {
        let secret = (p.client_id != "spa").then_some(SECRET);
        redemption(&self.api, &self.base, p, code, secret)
            .send()
            .await
            .unwrap()
    }

    /// Opens the authorization request for `app` in the browser and expects Herald to end on a
    /// page (an error page): its status and body.
    pub async fn page_after_login(&self) -> (StatusCode, String) {
        match self
            .start(&self.browser, &AuthParams::new("app", "openid"))
            .await
        {
            Outcome::Page(status, body) => (status, body),
            other => panic!("expected an error page, got {other:?}"),
        }
    }

    pub async fn tokens(&self, p: &AuthParams) -> Value {
        let q = self.login(&self.browser, p).await;
        let res = self.redeem(p, &q["code"]).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// A refresh by `client_id` (the test secret, by Basic) with `tokens`' refresh token: the
    /// status and the answer.
    pub async fn refresh_as(&self, client_id: &str, tokens: &Value) -> (StatusCode, Value) {
        let res = self
            .api
            .post(format!("{}/token", self.base))
            .basic_auth(client_id, Some(SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }

    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        self.api
            .get(format!("{}/userinfo", self.base))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
    }
}

/// An OAuth error answer: its status, `error` and `error_description`.
pub async fn oauth_error(res: reqwest::Response) -> (StatusCode, String, String) {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    (status, text("error"), text("error_description"))
}

/// Herald's discovery document, as an app reads it.
pub async fn discovery(app: &TestApp) -> Value {
    app.api
        .get(format!("{}/.well-known/openid-configuration", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub fn consent_fields(html: &str) -> (String, String) {
    (form_field(html, "request"), form_field(html, "csrf"))
}

/// The `kid` in a JWT's header.
pub fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

/// The value of the first `name="NAME" value="…"` in a page.
pub fn form_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// The payload of a JWT, unverified (tests verify signatures separately).
pub fn payload(jwt: &str) -> Value {
    use base64::Engine;
    let p = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .unwrap(),
    )
    .unwrap()
}

/// Waits until `done` holds, checking every 50 ms; fails the test after `limit`.
pub async fn wait_until(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A port free a moment ago on the loopback interface.
/// Now, in Unix seconds, by the real clock (as the test upstream stamps its tokens).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The smallest configuration `check-config` takes, with one OpenID upstream `up` carrying
/// `upstream_keys`: for tests of what it says about those keys.
pub fn config_with_upstream(upstream_keys: &str) -> String {
    format!(
        r#"
issuer = "https://herald.example"
listen = "127.0.0.1:0"
database_url = "sqlite://unused.db"
[[upstreams]]
id = "up"
kind = "oidc"
issuer = "https://idp.example"
client_id = "herald"
{upstream_keys}
"#
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether a Herald started in another process answers `/healthz` at `base` within 10 s.
pub async fn comes_up(base: &str) -> bool {
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}
