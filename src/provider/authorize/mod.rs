//! The authorization endpoint (RFC 6749 §4.1.1; OIDC Core §3.1.2.1–§3.1.2.2; RFC 7636 §4.3).
//!
//! The handler reads the parameters, lets [`request`] check them (with no HTTP, and in the
//! order RFC 6749 §4.1.2.1 asks for), binds the request to the browser and hands it to the
//! login journey in [`crate::login`], which stores it with the step it starts with.

pub mod request;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use crate::login;
use crate::oauth::{Params, redirect_error};
use crate::state::AppState;
use crate::telemetry::events;
use crate::tokens::hashing::random_token;
use crate::web::binding::BrowserBinding;
use crate::web::error_page;
pub use request::{AuthorizeError, AuthorizeRequest};

pub async fn authorize_get(
    State(state): State<AppState>,
    session: Session,
    binding: BrowserBinding,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    authorize(state, session, binding, params).await
}

/// OIDC Core §3.1.2.1: the endpoint also accepts POST with a form body.
pub async fn authorize_post(
    State(state): State<AppState>,
    session: Session,
    binding: BrowserBinding,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !crate::oauth::is_form(&headers) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "An authorization request sent with POST must be form-encoded \
             (application/x-www-form-urlencoded).",
            None,
        );
    }
    authorize(state, session, binding, Params::parse(&body)).await
}

async fn authorize(
    state: AppState,
    session: Session,
    binding: BrowserBinding,
    params: Params,
) -> Response {
    let settings = state.settings();
    // A pushed request (RFC 9126 §4): only its parameters count.
    let (params, pushed) = match super::par::take_pushed(&state, &params).await {
        Some(Ok(pushed)) => (pushed, true),
        Some(Err(why)) => {
            events::authorize_refused(params.get("client_id"), None, &why);
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                &format!("This sign-in link cannot be used: {why}. Start again from the app."),
                None,
            );
        }
        None => (params, false),
    };
    let request = match AuthorizeRequest::parse(&params, &settings) {
        Ok(request) => request,
        Err(refused) => {
            if let AuthorizeError::Page { reason, .. } = &refused {
                // The page tells the user what to tell the app's developer; the log has the
                // client and the URI the app sent.
                events::authorize_refused(
                    params.get("client_id"),
                    params.get("redirect_uri"),
                    reason,
                );
            }
            return refused.into_response();
        }
    };
    let must_push = settings.require_pushed_authorization_requests
        || request.client.require_pushed_authorization_requests;
    if must_push && !pushed {
        return AuthorizeError::Redirect {
            redirect_uri: request.redirect_uri.clone(),
            issuer: settings.issuer.clone(),
            state: request.state.clone(),
            code: "invalid_request",
            description: "this client must push its authorization requests to /par (RFC 9126)"
                .into(),
        }
        .into_response();
    }
    let hinted_sub = match request.hinted_subject(&state.keys()) {
        Ok(sub) => sub,
        Err(refused) => return refused.into_response(),
    };
    let req = request.into_auth_request(
        random_token(),
        login::binding_digest(&binding),
        state.now(),
        settings.tokens.login_ttl,
    );
    login::proceed(&state, &session, req, hinted_sub.as_deref())
        .await
        .into_response()
}

/// A page while the client or its redirect URI is in doubt; a 303 to the client after that.
impl IntoResponse for AuthorizeError {
    fn into_response(self) -> Response {
        match self {
            AuthorizeError::Page { message, .. } => {
                error_page(StatusCode::BAD_REQUEST, "Invalid request", &message, None)
            }
            AuthorizeError::Redirect {
                redirect_uri,
                issuer,
                state,
                code,
                description,
            } => redirect_error(&redirect_uri, &issuer, state.as_deref(), code, &description),
        }
    }
}
