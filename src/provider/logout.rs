//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): `end_session_endpoint`.
//!
//! A client sends the browser here with `id_token_hint`, `client_id`,
//! `post_logout_redirect_uri` and `state`. The redirect URI must be registered for the client
//! (exact match), or there is no redirect at all (§3). With a valid hint naming the browser's
//! user, Herald logs out at once; otherwise it asks the user first, so a forged link cannot
//! log anyone out (§2, "the OP SHOULD ask the End-User"). When the user's upstream is
//! configured with `logout = true`, the browser then visits the upstream's logout too and comes
//! back to `/logout/done`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::login::{Browser, current_login};
use crate::oauth::error::with_params;
use crate::oauth::params::{Params, is_form};
use crate::state::AppState;
use crate::store::EndLogins;
use crate::telemetry::events;
use crate::tokens::hashing::{constant_time_eq, random_token};
use crate::tokens::jwt::verify_id_token_hint;
use crate::web::binding::BrowserBinding;
use crate::web::pages::{LogoutConfirmPage, SignedOutPage};
use crate::web::{PageError, render};

const CSRF_KEY: &str = "logout_csrf";
const RETURN_KEY: &str = "logout_return";

/// Where the browser goes once logged out.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Return {
    uri: String,
    state: Option<String>,
}

pub async fn logout_get(
    State(state): State<AppState>,
    session: Session,
    binding: BrowserBinding,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    let p = Params::parse(q.unwrap_or_default().as_bytes());
    start(&state, (&session, &binding), p).await
}

pub async fn logout_post(
    State(state): State<AppState>,
    session: Session,
    binding: BrowserBinding,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    if !is_form(&headers) {
        return Err(bad("A logout request sent with POST must be form-encoded."));
    }
    let p = Params::parse(&body);
    if p.get("confirm").is_some() {
        return confirmed(&state, (&session, &binding), &p).await;
    }
    start(&state, (&session, &binding), p).await
}

fn bad(msg: &str) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, "Invalid logout request", msg)
}

/// The `aud` of a JWT, read without verification, to learn which client's key check to run.
fn unverified_aud(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let v: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    match &v["aud"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => a.first()?.as_str().map(str::to_string),
        _ => None,
    }
}

async fn start(state: &AppState, browser: Browser<'_>, p: Params) -> Result<Response, PageError> {
    let (session, _) = browser;
    if p.refusal().is_some() {
        return Err(bad(
            "A parameter appears more than once, or there are far too many.",
        ));
    }
    let settings = state.settings();
    let hint = p.get("id_token_hint");
    let client_id = p
        .get("client_id")
        .map(str::to_string)
        .or_else(|| hint.and_then(unverified_aud));
    let hinted_sub = match (hint, client_id.as_deref()) {
        (Some(h), Some(c)) => Some(
            verify_id_token_hint(&state.keys(), &settings.issuer, c, h)
                .map_err(|_| bad("The id_token_hint was not issued by Herald to this client."))?,
        ),
        (Some(_), None) => return Err(bad("The id_token_hint names no client.")),
        _ => None,
    };
    let back = match p.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let client = client_id.as_deref().and_then(|c| settings.client(c));
            match client {
                Some(c) if c.post_logout_redirect_uris.iter().any(|r| r == uri) => Some(Return {
                    uri: uri.to_string(),
                    state: p.get("state").map(str::to_string),
                }),
                Some(_) => {
                    return Err(bad(
                        "The post_logout_redirect_uri is not registered for this app, so Herald \
                         will not send you there. You have not been signed out.",
                    ));
                }
                None => {
                    return Err(bad(
                        "A post_logout_redirect_uri needs the app to be named (client_id or \
                         id_token_hint).",
                    ));
                }
            }
        }
    };
    let login = current_login(session).await;
    match (&login, hinted_sub.as_deref()) {
        // Nobody is signed in here: nothing to end.
        (None, _) => finish(state, session, back, None).await,
        // The app proved which user it means, and that user is signed in here.
        (Some(l), Some(sub)) if l.sub == sub => end(state, browser, back).await,
        // Anything else: ask the user, so a forged link cannot sign them out.
        _ => {
            let csrf = random_token();
            session.insert(CSRF_KEY, &csrf).await?;
            Ok(render(
                StatusCode::OK,
                &LogoutConfirmPage {
                    csrf,
                    client_id: client_id.unwrap_or_default(),
                    post_logout_redirect_uri: back
                        .as_ref()
                        .map(|b| b.uri.clone())
                        .unwrap_or_default(),
                    state: back.and_then(|b| b.state).unwrap_or_default(),
                },
            ))
        }
    }
}

async fn confirmed(
    state: &AppState,
    browser: Browser<'_>,
    p: &Params,
) -> Result<Response, PageError> {
    let (session, _) = browser;
    let expected: Option<String> = session.remove(CSRF_KEY).await.ok().flatten();
    let ok = match (expected, p.get("csrf")) {
        (Some(e), Some(given)) => constant_time_eq(&e, given),
        _ => false,
    };
    if !ok {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This sign-out form is missing its security token or has expired. You are still \
             signed in.",
        ));
    }
    let settings = state.settings();
    let back = match (p.get("post_logout_redirect_uri"), p.get("client_id")) {
        (Some(uri), Some(c))
            if settings
                .client(c)
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri)) =>
        {
            Some(Return {
                uri: uri.to_string(),
                state: p.get("state").map(str::to_string),
            })
        }
        _ => None,
    };
    end(state, browser, back).await
}

/// Ends Herald's session, then the upstream's when configured, then returns. The apps the
/// browser's logins reached are owed logout tokens (Back-Channel Logout 1.0); the logins' refresh
/// tokens, all issued for `offline_access`, live on (§2.7).
async fn end(
    state: &AppState,
    (session, binding): Browser<'_>,
    back: Option<Return>,
) -> Result<Response, PageError> {
    let login = current_login(session).await;
    if let Some(l) = &login {
        let logouts = crate::login::ending::logouts(state);
        for context_id in l.earlier.iter().chain([&l.context_id]) {
            let which = EndLogins {
                context_id: Some(context_id),
                ..EndLogins::default()
            };
            state
                .store
                .owe_logouts(&which, &logouts)
                .await
                .map_err(crate::login::store_failure)?;
        }
    }
    let upstream = login
        .as_ref()
        .and_then(|l| state.settings().upstream(&l.upstream_id).cloned());
    session.flush().await?;
    binding.forget();
    events::logout(login.as_ref().map(|l| l.sub.as_str()));
    let upstream = upstream.filter(|u| u.logout);
    finish(state, session, back, upstream).await
}

async fn finish(
    state: &AppState,
    session: &Session,
    back: Option<Return>,
    upstream: Option<std::sync::Arc<crate::config::Upstream>>,
) -> Result<Response, PageError> {
    if let Some(up) = upstream {
        let done = format!("{}/logout/done", state.settings().issuer);
        match state.upstreams.logout_url(&up, &done).await {
            Ok(url) => {
                if let Some(b) = &back {
                    session.insert(RETURN_KEY, b).await?;
                }
                return Ok(Redirect::to(&url).into_response());
            }
            Err(e) => tracing::warn!(error = %e, "upstream logout skipped"),
        }
    }
    Ok(go_back(back))
}

fn go_back(back: Option<Return>) -> Response {
    match back {
        Some(b) => {
            let mut params = Vec::new();
            if let Some(s) = b.state.as_deref() {
                params.push(("state", s));
            }
            Redirect::to(&with_params(&b.uri, &params)).into_response()
        }
        None => render(StatusCode::OK, &SignedOutPage {}),
    }
}

/// Back from the upstream's logout.
pub async fn logout_done(session: Session) -> Response {
    let back: Option<Return> = session.remove(RETURN_KEY).await.ok().flatten();
    go_back(back)
}
