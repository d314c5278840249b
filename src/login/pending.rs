//! A pending authorization request as the browser steps meet it: loading it for this browser,
//! and the ways a step ends it with an error (redirected to the app with `state` and `iss`, or
//! a page with a link back to the app).

use axum::http::StatusCode;
use axum::response::Response;
use tower_sessions::Session;

use super::session::is_bound_to;
use crate::oauth::{error_url, redirect_error};
use crate::state::AppState;
use crate::store::{AuthRequest, StoreError};
use crate::web::{PageError, ReturnLink};

/// The page for a store failure during a browser flow (`.map_err(store_failure)?`): 503 when
/// the database is down, a generic error page otherwise. The request's client is told nothing
/// it could act on.
pub fn store_failure(e: StoreError) -> PageError {
    PageError::store(
        e,
        "during login",
        "Herald could not complete this step. Nothing was lost; please start again from the app.",
        None,
    )
}

/// True when the request's `prompt` holds `value` (OIDC Core §3.1.2.1: a space-separated list).
pub fn has_prompt(req: &AuthRequest, value: &str) -> bool {
    req.prompt
        .as_deref()
        .is_some_and(|p| p.split(' ').any(|v| v == value))
}

/// The requested scopes of `req`, in the order requested.
pub fn requested_scopes(req: &AuthRequest) -> Vec<String> {
    req.scope.split(' ').map(str::to_string).collect()
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
    ReturnLink {
        url: error_url(
            &req.redirect_uri,
            &settings.issuer,
            req.state.as_deref(),
            code,
            desc,
        ),
        app_name: settings.app_name(&req.client_id),
    }
}

/// Reads a request; unreadable is as good as gone (the browser can only start again), an
/// unavailable store is the page to show.
pub async fn load_request(state: &AppState, id: &str) -> Result<Option<AuthRequest>, PageError> {
    match state.store.auth_request(id).await {
        Ok(r) => Ok(r),
        Err(e @ StoreError::Unavailable(_)) => Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "loading an authorization request failed");
            Ok(None)
        }
    }
}

/// Loads a pending request for a browser step, checking that it exists, has not expired, is
/// not decided, and belongs to this browser session.
pub async fn pending_request(
    state: &AppState,
    session: &Session,
    id: &str,
) -> Result<AuthRequest, PageError> {
    let loaded = load_request(state, id).await?;
    check_pending(state, session, loaded).await
}

/// [`pending_request`] for a request the caller has loaded already.
pub async fn check_pending(
    state: &AppState,
    session: &Session,
    loaded: Option<AuthRequest>,
) -> Result<AuthRequest, PageError> {
    let expired = || {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            "The sign-in you were in the middle of has expired or was already completed. Go back \
             to the app and start again.",
        )
    };
    let now = state.now();
    let req = loaded
        .filter(|r| r.expires_at >= now && r.decided_at.is_none())
        .ok_or_else(expired)?;
    if !is_bound_to(session, &req).await {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Sign-in started elsewhere",
            "This sign-in was started in another browser or session, so Herald will not \
             continue it here. Go back to the app and start again.",
        ));
    }
    Ok(req)
}
