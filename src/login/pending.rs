//! A pending authorization request as the browser steps meet it: loading it for this browser,
//! and the ways a step ends it with an error (redirected to the app with `state` and `iss`, or
//! a page with a link back to the app).

use axum::http::StatusCode;
use axum::response::Response;
use tower_sessions::Session;

use super::session::binding_of;
use crate::oauth::{error_url, redirect_error};
use crate::state::AppState;
use crate::store::{AuthRequest, Grant, LoginEvent, LoginResult, StoreError};
use crate::telemetry::{events, metrics};
use crate::web::binding::BrowserBinding;
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

/// The page for a step of a sign-in that is over (expired, or answered in another browser), with
/// a link to the app's start when it is known.
fn expired(back: Option<ReturnLink>) -> PageError {
    let page = PageError::new(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired",
        "The sign-in you were in the middle of has expired or was already completed. Go back \
         to the app and start again.",
    );
    match back {
        Some(back) => page.with_back(back),
        None => page,
    }
}

/// The page for a step of a sign-in this browser already answered (a double-submitted Allow,
/// Back after answering): the first answer went to the app, so this says so and links to it.
pub fn already_answered(state: &AppState, req: &AuthRequest) -> PageError {
    let app = state.settings().app_name(&req.client_id);
    let page = PageError::new(
        StatusCode::OK,
        "You have already answered",
        format!(
            "Your answer to {app} was already sent, and this sign-in is complete. If {app} did \
             not open, return to it; there is nothing more to do here."
        ),
    );
    match app_start(state, req) {
        Some(back) => page.with_back(back),
        None => page,
    }
}

/// The app's start page as far as Herald knows it: the origin of the request's redirect URI,
/// for an app on the web (a native app's custom scheme has no page to link to).
fn app_start(state: &AppState, req: &AuthRequest) -> Option<ReturnLink> {
    let url = url::Url::parse(&req.redirect_uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    Some(ReturnLink {
        url: format!("{}/", url.origin().ascii_serialization()),
        app_name: state.settings().app_name(&req.client_id),
    })
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
    loaded(state.store.auth_request(id).await)
}

/// [`load_request`] with the grant the request's user holds for its app, in one read: the
/// request, or `None` when it is gone, and the grant.
pub async fn load_request_with_grant(
    state: &AppState,
    id: &str,
) -> Result<(Option<AuthRequest>, Option<Grant>), PageError> {
    let found = loaded(state.store.auth_request_with_grant(id).await)?;
    Ok(found.map_or((None, None), |(req, grant)| (Some(req), grant)))
}

fn loaded<T>(read: Result<Option<T>, StoreError>) -> Result<Option<T>, PageError> {
    match read {
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
    binding: &BrowserBinding,
    id: &str,
) -> Result<AuthRequest, PageError> {
    let loaded = load_request(state, id).await?;
    check_pending(state, session, binding, loaded).await
}

/// [`pending_request`] for a request the caller has loaded already.
pub async fn check_pending(
    state: &AppState,
    session: &Session,
    binding: &BrowserBinding,
    loaded: Option<AuthRequest>,
) -> Result<AuthRequest, PageError> {
    let Some(req) = loaded else {
        return Err(expired(None));
    };
    let bound = binding_of(binding, session, &req).await.is_some();
    if req.decided_at.is_some() && bound {
        // A second Allow, or Back to a page already answered: the first answer went through.
        return Err(already_answered(state, &req));
    }
    if req.expires_at < state.now() || req.decided_at.is_some() {
        return Err(expired(app_start(state, &req)));
    }
    if !bound {
        return Err(started_elsewhere());
    }
    Ok(req)
}

/// A step of a sign-in this browser did not start: 403, and start again from the app.
pub fn started_elsewhere() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "Sign-in started elsewhere",
        "This sign-in was started in another browser or session, so Herald will not continue \
         it here. Go back to the app and start again.",
    )
}

/// A login that came back from `upstream` and failed, with the OAuth error `code` the app is
/// sent: counted in `herald_logins_total`, logged as a `login.failed` event and recorded as a
/// login event for the admin pages.
pub fn login_failed(state: &AppState, upstream: &str, client_id: &str, code: &str, reason: &str) {
    let event = LoginEvent {
        id: 0,
        at: state.now(),
        result: LoginResult::Failure,
        sub: None,
        upstream_id: Some(upstream.into()),
        client_id: client_id.into(),
        reason: Some(format!("{code}: {reason}")),
    };
    refused(state, code, reason, event);
}

/// A refused login, with the OAuth error `code` the app is sent: counted in
/// `herald_logins_total`, logged as a `login.failed` event and recorded as `event`.
pub(super) fn refused(state: &AppState, code: &str, reason: &str, event: LoginEvent) {
    let upstream = event.upstream_id.as_deref().unwrap_or_default();
    metrics::login(upstream, &event.client_id, code);
    events::login_failed(&event.client_id, upstream, code, reason);
    state.record_login_event(event);
}
