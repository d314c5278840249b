//! Herald's own front page and its health checks.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::demo::DEMO_CLIENT_ID;
use crate::state::AppState;
use crate::web::{pages, render};

/// The front page: what this Herald is, and where to try a login or administer it.
pub async fn home(State(state): State<AppState>) -> Response {
    let settings = state.settings();
    render(
        StatusCode::OK,
        &pages::HomePage {
            issuer: settings.issuer.clone(),
            has_demo: settings.client(DEMO_CLIENT_ID).is_some(),
            admin_url: match settings.admin_origin() {
                Some(origin) => format!("{origin}/admin"),
                None => "/admin".into(),
            },
        },
    )
}

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: not shutting down, and the database answers.
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}
