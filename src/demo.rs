//! A demo client app served by Herald itself (client_id `demo`, public, PKCE), so the first run
//! shows a whole login: authorize, upstream, consent, code, token, userinfo, decoded tokens.
//! It talks to Herald over HTTP like any other client. Enabled when a client `demo` with the
//! redirect URI `{issuer}/demo/callback` is configured.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use tower_sessions::Session;

use crate::config::Settings;
use crate::oauth::{Params, with_params};
use crate::state::AppState;
use crate::tokens::hashing::{constant_time_eq, random_token};
use crate::tokens::mint::pkce_s256;
use crate::web::pages::DemoPage;
use crate::web::{PageError, render};

pub const DEMO_CLIENT_ID: &str = "demo";
const DEMO_KEY: &str = "demo_pending";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/demo", get(|| async { Redirect::to("/demo/login") }))
        .route("/demo/login", get(login))
        .route("/demo/callback", get(callback))
}

fn callback_uri(settings: &Settings) -> String {
    format!("{}/demo/callback", settings.issuer)
}

/// Whether the demo works: a client `demo` that may be sent back to this issuer's
/// `/demo/callback`.
pub fn available(settings: &Settings) -> bool {
    settings
        .client(DEMO_CLIENT_ID)
        .is_some_and(|c| c.has_redirect_uri(&callback_uri(settings)))
}

/// The demo's pages exist only while it works; else they say what to change.
fn enabled(state: &AppState) -> Result<(), PageError> {
    let s = state.settings();
    if available(&s) {
        return Ok(());
    }
    let callback = callback_uri(&s);
    let why = match s.client(DEMO_CLIENT_ID) {
        None => format!(
            "The demo app is not configured: Herald has no client “{DEMO_CLIENT_ID}”. Register \
             a public client “{DEMO_CLIENT_ID}” with the redirect URI {callback} (config/herald.toml \
             has one) to try a login here."
        ),
        Some(_) => format!(
            "The demo app cannot run here: Herald's issuer is {}, and the client \
             “{DEMO_CLIENT_ID}” may not be sent back to {callback}. When the issuer or its port \
             changes, add that address to the client's redirect URIs (on the admin page \
             /admin/clients/{DEMO_CLIENT_ID}, since the configuration file seeds clients only on \
             the first start).",
            s.issuer
        ),
    };
    Err(PageError::new(
        StatusCode::NOT_FOUND,
        "The demo app is not available",
        &why,
    ))
}

async fn login(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    enabled(&state)?;
    let pending = (random_token(), random_token(), random_token());
    session.insert(DEMO_KEY, &pending).await?;
    let (st, nonce, verifier) = &pending;
    let scopes = state
        .settings()
        .client(DEMO_CLIENT_ID)
        .map(|c| c.scopes.join(" "))
        .unwrap_or_default();
    let url = with_params(
        &format!("{}/authorize", state.settings().issuer),
        &[
            ("response_type", "code"),
            ("client_id", DEMO_CLIENT_ID),
            ("redirect_uri", &callback_uri(&state.settings())),
            ("scope", &scopes),
            ("state", st),
            ("nonce", nonce),
            ("code_challenge", &pkce_s256(verifier)),
            ("code_challenge_method", "S256"),
        ],
    );
    Ok(Redirect::to(&url).into_response())
}

fn decode_payload(jwt: &str) -> String {
    jwt.split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| "(none)".into())
}

fn failed(msg: String) -> Response {
    render(
        StatusCode::OK,
        &DemoPage {
            error: Some(msg),
            id_token: "(none)".into(),
            access_token: "(none)".into(),
            userinfo: "(none)".into(),
        },
    )
}

async fn callback(
    State(state): State<AppState>,
    session: Session,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    enabled(&state)?;
    Ok(finish_login(&state, &session, q).await)
}

/// Redeems the code as a client would and shows the tokens, or what went wrong on the demo page.
async fn finish_login(state: &AppState, session: &Session, q: Option<String>) -> Response {
    let p = Params::parse(q.unwrap_or_default().as_bytes());
    let pending: Option<(String, String, String)> = session.remove(DEMO_KEY).await.ok().flatten();
    let Some((st, _nonce, verifier)) = pending else {
        return failed("No login was started from this browser. Use “Log in again”.".into());
    };
    if !p.get("state").is_some_and(|s| constant_time_eq(s, &st)) {
        return failed("The state does not match the login this browser started.".into());
    }
    if let Some(err) = p.get("error") {
        return failed(format!(
            "Herald answered with error={err}: {}",
            p.get("error_description").unwrap_or_default()
        ));
    }
    let Some(code) = p.get("code") else {
        return failed("Herald's answer had no code.".into());
    };
    let issuer = state.settings().issuer.clone();
    // Herald's own token endpoint, called as any app would: with timeouts, no redirects.
    let http = crate::egress::client(crate::egress::Timeouts {
        connect: std::time::Duration::from_secs(3),
        total: std::time::Duration::from_secs(10),
    });
    let token: Value = match http
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &callback_uri(&state.settings())),
            ("client_id", DEMO_CLIENT_ID),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
    {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(e) => return failed(format!("The token request failed: {e}")),
    };
    let Some(access_token) = token["access_token"].as_str() else {
        return failed(format!("The token endpoint answered: {token}"));
    };
    let userinfo = match http
        .get(format!("{issuer}/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
    {
        Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
        Err(e) => Value::String(format!("userinfo failed: {e}")),
    };
    render(
        StatusCode::OK,
        &DemoPage {
            error: None,
            id_token: decode_payload(token["id_token"].as_str().unwrap_or_default()),
            access_token: decode_payload(access_token),
            userinfo: serde_json::to_string_pretty(&userinfo).unwrap_or_default(),
        },
    )
}
