//! Logs as an operator reads them (issue 15): `herald serve` run as a process with JSON logs and
//! its bootstrap keys from the environment, driven through a login, a refresh, a revocation and
//! the refusals an app meets; every line of its output is a JSON object, each of those events
//! is there with the request it happened in, and no secret, code, token or cookie it handled is.

use std::process::Stdio;
use std::sync::Arc;

use serde_json::Value;

use crate::support::upstream::TestUpstream;
use crate::support::*;

/// The configuration file: its bootstrap keys are wrong on purpose, the environment overrides
/// them (a Herald started from the file's values would not answer where the test looks).
pub(crate) fn config(upstream: &str) -> String {
    format!(
        r#"
issuer = "https://wrong.example.com"
listen = "127.0.0.1:1"
database_url = "postgres://nobody@127.0.0.1:1/none"

[[upstreams]]
id = "test"
kind = "oidc"
issuer = "{upstream}"
client_id = "herald-at-upstream"
client_secret = "upstream-secret"
userinfo = true

[[clients]]
client_id = "rp"
client_secret = "{SECRET}"
redirect_uris = ["{APP_CB}"]
scopes = ["openid", "email", "offline_access"]
grant_types = ["authorization_code", "refresh_token"]
"#
    )
}

/// Stops the child however the test ends.
pub(crate) struct Child(pub(crate) std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn json_logs_carry_each_event_of_a_login_and_never_a_secret() {
    let upstream = TestUpstream::start().await;
    let dir = std::env::temp_dir().join(format!("herald-logs-{}", herald::tokens::random_token()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("herald.toml");
    std::fs::write(&file, config(upstream.issuer())).unwrap();
    let log = dir.join("stderr.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let kek = herald::tokens::keys::KeyEncryption::generate_base64();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--config", file.to_str().unwrap()])
        .env("HERALD_LOG_FORMAT", "json")
        .env("HERALD_ISSUER", &base)
        .env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "HERALD_DATABASE_URL",
            format!("sqlite://{}", dir.join("h.db").display()),
        )
        .env("HERALD_KEY_ENCRYPTION_KEY", &kek)
        .env("HERALD_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut child = Child(child);
    let api = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert!(
        comes_up(&base).await,
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );

    // A login with consent, its code redeemed; a refresh; a revocation.
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let site = Site { base: &base };
    let p = AuthParams::new("rp", "openid email offline_access");
    let q = site.login(&browser, &p).await;
    let code = q["code"].clone();
    let redeem = || redemption(&api, &base, &p, &code, Some(SECRET)).send();
    let res = redeem().await.unwrap();
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let token = |form: Vec<(&str, &str)>, secret: &str| {
        api.post(format!("{base}/token"))
            .basic_auth("rp", Some(secret))
            .form(&form)
            .send()
    };
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let res = token(
        vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ],
        SECRET,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let refreshed: Value = res.json().await.unwrap();
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(
        api.get(format!("{base}/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let new_refresh = refreshed["refresh_token"].as_str().unwrap();
    let res = api
        .post(format!("{base}/revoke"))
        .basic_auth("rp", Some(SECRET))
        .form(&[("token", new_refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Refusals: a replayed code, a wrong secret, an unknown client at /authorize.
    assert_eq!(redeem().await.unwrap().status(), 400, "a replayed code");
    let wrong_secret = "wrong-secret-that-must-not-be-logged";
    let res = token(
        vec![("grant_type", "refresh_token"), ("refresh_token", "x")],
        wrong_secret,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 401);
    let res = browser
        .get(format!(
            "{base}/authorize?client_id=nobody&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=code&scope=openid"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let cookies = reqwest::cookie::CookieStore::cookies(&*jar, &base.parse().unwrap())
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let hint = tokens["id_token"].as_str().unwrap();
    let res = browser
        .get(format!("{base}/logout?id_token_hint={hint}"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success() || res.status().is_redirection());

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || child.0.wait()).await;
    let text = std::fs::read_to_string(&log).unwrap();

    let mut events = Vec::new();
    for line in text.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        for key in ["timestamp", "level", "target"] {
            assert!(v[key].is_string(), "no {key}: {line}");
        }
        assert!(v["message"].is_string(), "no message: {line}");
        if let Some(event) = v["event"].as_str() {
            // Every event of a request names it: its id and the client's address.
            let spans = v["spans"].as_array().unwrap_or_else(|| panic!("{line}"));
            let span = spans
                .iter()
                .find(|s| s["name"] == "request")
                .unwrap_or_else(|| panic!("no request span: {line}"));
            assert!(
                span["request_id"].as_str().is_some_and(|id| id.len() == 22),
                "{line}"
            );
            assert_eq!(span["client_ip"], "127.0.0.1", "{line}");
            assert!(span["route"].is_string(), "{line}");
            events.push((event.to_string(), v.clone()));
        }
    }
    let find = |name: &str| {
        events
            .iter()
            .find(|(e, _)| e == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} event in:\n{text}"))
    };
    let login = find("login.succeeded");
    assert_eq!(login["client_id"], "rp");
    assert_eq!(login["upstream"], "test");
    assert!(login["sub"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(find("consent.granted")["client_id"], "rp");
    assert_eq!(find("token.issued")["grant_type"], "authorization_code");
    assert!(
        events
            .iter()
            .any(|(e, v)| e == "token.issued" && v["grant_type"] == "refresh_token")
    );
    assert_eq!(find("token.code_replayed")["client_id"], "rp");
    assert_eq!(find("token.refused")["error"], "invalid_grant");
    assert_eq!(find("token.revoked")["client_id"], "rp");
    assert_eq!(find("client_auth.failed")["client_id"], "\"rp\"");
    let refused = find("authorize.refused");
    assert_eq!(refused["client_id"], "\"nobody\"");
    assert_eq!(refused["redirect_uri"], "\"https://evil.example/cb\"");
    assert_eq!(find("logout")["sub"], login["sub"]);
    // Discovery says whether the upstream sends back-channel logout tokens (this one does not).
    assert!(
        text.lines().any(|l| l.contains("\"upstream\":\"test\"")
            && l.contains("does not say it supports back-channel logout")),
        "no back-channel logout support line in:\n{text}"
    );

    // Nothing secret: the client and upstream secrets, the wrong secret, the key-encryption key,
    // the admin token, the code, every token and the session cookie.
    let mut secrets = vec![
        SECRET.to_string(),
        "upstream-secret".into(),
        wrong_secret.into(),
        kek,
        ADMIN_TOKEN.into(),
        code,
    ];
    for t in [&tokens, &refreshed] {
        for key in ["access_token", "refresh_token", "id_token"] {
            secrets.extend(t[key].as_str().map(str::to_string));
        }
    }
    for cookie in cookies.split("; ").filter(|c| !c.is_empty()) {
        secrets.push(cookie.split_once('=').unwrap().1.to_string());
    }
    assert!(secrets.len() >= 12, "{secrets:?}");
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret is in the log: {secret}"
        );
    }
}
