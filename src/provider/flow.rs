//! An authorization request's way from `/authorize` to the code: reuse the browser's login or
//! log in upstream, ask for consent when needed, then issue the code and redirect.
//!
//! The request lives in the store (so any replica can continue it); the browser session holds a
//! random *binding* whose digest the request records, so only the browser that started a request
//! can continue it, and the login itself.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::error::{redirect_error, with_params};
use crate::app::AppState;
use crate::consent;
use crate::store::{AuthRequest, CodeRecord, StoreError, StoredContext};
use crate::tokens::hashing::{constant_time_eq, digest_hex, random_token};
use crate::web::{ReturnLink, error_page, store_failure_page, unavailable_page};

const BINDING_KEY: &str = "binding";
const LOGIN_KEY: &str = "login";

/// The browser's login at Herald, kept in its session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginSession {
    pub sub: String,
    pub upstream_id: String,
    pub auth_time: i64,
    pub context_id: String,
    /// From `auth_context_ttl`: after this, a fresh upstream login is needed.
    pub context_expires_at: Option<i64>,
}

/// The browser session's binding value, created on first use.
pub async fn browser_binding(session: &Session) -> Result<String, Response> {
    match session.get::<String>(BINDING_KEY).await {
        Ok(Some(b)) => Ok(b),
        Ok(None) => {
            let b = random_token();
            session
                .insert(BINDING_KEY, &b)
                .await
                .map_err(|e| session_failure(&e))?;
            Ok(b)
        }
        Err(e) => Err(session_failure(&e)),
    }
}

/// True when this browser session started the request.
pub async fn is_bound_to(session: &Session, req: &AuthRequest) -> bool {
    match session.get::<String>(BINDING_KEY).await {
        Ok(Some(b)) => constant_time_eq(&digest_hex(&b), &req.browser_binding),
        _ => false,
    }
}

pub async fn current_login(session: &Session) -> Option<LoginSession> {
    session.get::<LoginSession>(LOGIN_KEY).await.ok().flatten()
}

/// True when nothing may be served from a stored login any more: it was revoked (its upstream
/// was removed, on any replica) or its upstream is not configured here. The second catches a
/// login that a replica still running the previous configuration finished after the revocation.
pub fn login_has_ended(state: &AppState, ctx: &StoredContext) -> bool {
    ctx.revoked_at.is_some() || state.settings().upstream(&ctx.upstream_id).is_none()
}

/// The browser's login if it may be reused: not past its `auth_context_ttl`, and its stored
/// context not ended ([`login_has_ended`]). The context is read from the store, not the
/// session, so a revocation counts here at once.
pub async fn live_login(
    state: &AppState,
    session: &Session,
) -> Result<Option<LoginSession>, StoreError> {
    Ok(live_login_context(state, session)
        .await?
        .map(|(login, _)| login))
}

/// [`live_login`] with the stored context it was checked against, for callers that read the
/// context too (the admin pages read the role from it).
pub async fn live_login_context(
    state: &AppState,
    session: &Session,
) -> Result<Option<(LoginSession, StoredContext)>, StoreError> {
    let now = state.now();
    let Some(login) = current_login(session)
        .await
        .filter(|l| l.context_expires_at.is_none_or(|t| t > now))
    else {
        return Ok(None);
    };
    Ok(state
        .store
        .context(&login.context_id)
        .await?
        .filter(|ctx| !login_has_ended(state, ctx))
        .map(|ctx| (login, ctx)))
}

/// Records a fresh login, with a new session id (no fixation: the id changes on login).
pub async fn set_login(session: &Session, login: &LoginSession) -> Result<(), Response> {
    if let Some(previous) = current_login(session).await
        && previous.sub != login.sub
    {
        tracing::info!("a different user logged in on this browser; the previous login ends");
    }
    session.cycle_id().await.map_err(|e| session_failure(&e))?;
    session
        .insert(LOGIN_KEY, login)
        .await
        .map_err(|e| session_failure(&e))
}

fn session_failure(e: &tower_sessions::session::Error) -> Response {
    tracing::warn!(error = %e, "session store failed");
    unavailable_page()
}

/// The page for a store failure during a browser flow: 503 when the database is down, a
/// generic error page otherwise. The request's client is told nothing it could act on.
pub fn store_failure(e: StoreError) -> Response {
    store_failure_page(
        e,
        "during login",
        "Herald could not complete this step. Nothing was lost; please start again from the app.",
        None,
    )
}

fn has_prompt(req: &AuthRequest, value: &str) -> bool {
    req.prompt
        .as_deref()
        .is_some_and(|p| p.split(' ').any(|v| v == value))
}

/// An authorization error redirected to the request's client with `state` and `iss`.
pub fn fail(state: &AppState, req: &AuthRequest, code: &str, desc: &str) -> Response {
    redirect_error(
        &req.redirect_uri,
        &state.settings().issuer,
        req.state.as_deref(),
        code,
        desc,
    )
}

/// A link that returns the user to the app with an OAuth error, for error pages.
pub fn return_link(state: &AppState, req: &AuthRequest, code: &str, desc: &str) -> ReturnLink {
    let settings = state.settings();
    let mut params = vec![("error", code), ("error_description", desc)];
    if let Some(s) = req.state.as_deref() {
        params.push(("state", s));
    }
    params.push(("iss", settings.issuer.as_str()));
    ReturnLink {
        url: with_params(&req.redirect_uri, &params),
        app_name: consent::center::app_name(&settings, &req.client_id),
    }
}

/// Continues a new request: reuse the browser's login when allowed, else log in upstream.
/// `hinted_sub` is the subject of a verified `id_token_hint`: a login of anyone else does not
/// count (so `prompt=none` answers `login_required`).
pub async fn proceed(
    state: &AppState,
    session: &Session,
    req: AuthRequest,
    hinted_sub: Option<&str>,
) -> Response {
    let now = state.now();
    let login = match live_login(state, session).await {
        Ok(l) => l,
        Err(e) => return store_failure(e),
    };
    let login = login.filter(|l| {
        hinted_sub.is_none_or(|h| h == l.sub)
            && req.max_age.is_none_or(|max| now - l.auth_time <= max)
            && req
                .upstream_hint
                .as_deref()
                .is_none_or(|h| h == l.upstream_id)
            && !has_prompt(&req, "login")
            && !has_prompt(&req, "select_account")
    });
    match login {
        Some(login) => {
            if let Err(e) = state
                .store
                .set_auth_request_login(&req.id, &login.sub, &login.context_id, login.auth_time)
                .await
            {
                return store_failure(e);
            }
            let req = AuthRequest {
                sub: Some(login.sub),
                auth_context_id: Some(login.context_id),
                auth_time: Some(login.auth_time),
                ..req
            };
            consent_stage(state, req).await
        }
        None if has_prompt(&req, "none") => fail(
            state,
            &req,
            "login_required",
            "the user is not logged in and prompt=none forbids asking",
        ),
        None => Redirect::to(&format!("/login/{}", req.id)).into_response(),
    }
}

/// After login: skip consent for trusted apps and already-granted scopes, ask otherwise.
pub async fn consent_stage(state: &AppState, req: AuthRequest) -> Response {
    if req.client_id == consent::center::ACCOUNT_CLIENT_ID {
        // Herald's own consent center: the login is all it needs; no grant, no code.
        return consent::center::signed_in(state, &req).await;
    }
    let settings = state.settings();
    let Some(client) = settings.client(&req.client_id).cloned() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Unknown app",
            "The app that started this login is no longer registered with Herald.",
            None,
        );
    };
    let Some(sub) = req.sub.clone() else {
        return Redirect::to(&format!("/login/{}", req.id)).into_response();
    };
    let requested: Vec<String> = req.scope.split(' ').map(str::to_string).collect();
    let now = state.now();
    if client.trusted {
        match consent::record_trusted(
            &*state.store,
            &settings.scopes,
            &sub,
            &client.client_id,
            &requested,
            now,
        )
        .await
        {
            Ok(()) => return issue_code(state, &req, &requested).await,
            Err(e) => return store_failure(e),
        }
    }
    let grant = match state.store.grant(&sub, &client.client_id).await {
        Ok(g) => g,
        Err(e) => return store_failure(e),
    };
    let plan = consent::plan(
        &requested,
        grant.as_ref(),
        &settings.scopes,
        has_prompt(&req, "consent"),
    );
    if plan.needed.is_empty() {
        return issue_code(state, &req, &plan.granted).await;
    }
    if has_prompt(&req, "none") {
        return fail(
            state,
            &req,
            "consent_required",
            "the user has not granted the requested scopes and prompt=none forbids asking",
        );
    }
    Redirect::to(&format!("/consent?request={}", req.id)).into_response()
}

/// Issues the code for `scopes` and redirects to the client with `code`, `state` and `iss`.
/// The request is marked decided first, so each request yields at most one code.
pub async fn issue_code(state: &AppState, req: &AuthRequest, scopes: &[String]) -> Response {
    let settings = state.settings();
    let now = state.now();
    match state.store.decide_auth_request(&req.id, now).await {
        Ok(true) => {}
        Ok(false) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Already completed",
                "This sign-in was already completed. Start again from the app.",
                None,
            );
        }
        Err(e) => return store_failure(e),
    }
    let (Some(sub), Some(context_id), Some(auth_time)) =
        (req.sub.clone(), req.auth_context_id.clone(), req.auth_time)
    else {
        return Redirect::to(&format!("/login/{}", req.id)).into_response();
    };
    let code = random_token();
    let record = CodeRecord {
        code_hash: digest_hex(&code),
        client_id: req.client_id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        sub,
        scope: scopes.join(" "),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_context_id: context_id,
        auth_time,
        auth_time_required: req.max_age.is_some(),
        created_at: now,
        expires_at: now + settings.tokens.authorization_code_ttl.as_secs() as i64,
        consumed_at: None,
    };
    if let Err(e) = state.store.insert_code(&record).await {
        return store_failure(e);
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = req.state.as_deref() {
        params.push(("state", s));
    }
    params.push(("iss", settings.issuer.as_str()));
    Redirect::to(&with_params(&req.redirect_uri, &params)).into_response()
}

/// Loads a pending request for a browser step, checking that it exists, has not expired, is
/// not decided, and belongs to this browser session.
pub async fn pending_request(
    state: &AppState,
    session: &Session,
    id: &str,
) -> Result<AuthRequest, Response> {
    let expired = || {
        error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "The sign-in you were in the middle of has expired or was already completed. Go back \
             to the app and start again.",
            None,
        )
    };
    let req = match state.store.auth_request(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(expired()),
        Err(StoreError::Unavailable(_)) => return Err(unavailable_page()),
        Err(e) => {
            tracing::error!(error = %e, "loading an authorization request failed");
            return Err(expired());
        }
    };
    if req.expires_at < state.now() || req.decided_at.is_some() {
        return Err(expired());
    }
    if !is_bound_to(session, &req).await {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "Sign-in started elsewhere",
            "This sign-in was started in another browser or session, so Herald will not \
             continue it here. Go back to the app and start again.",
            None,
        ));
    }
    Ok(req)
}
