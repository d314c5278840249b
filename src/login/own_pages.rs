//! Where a sign-in to one of Herald's own pages (the consent center, the admin pages) returns.
//! Such a sign-in is an ordinary authorization request for the built-in client
//! [`ACCOUNT_CLIENT_ID`](crate::config::ACCOUNT_CLIENT_ID), built in-process rather than sent
//! through `/authorize`: it never leaves Herald, so it needs no code, no PKCE and no tokens.
//! When the login is done, the journey hands the request to [`signed_in`], which completes it
//! and returns the browser to the page that asked.

use axum::response::{IntoResponse, Redirect, Response};

use super::pending::store_failure;
use crate::config::Settings;
use crate::state::AppState;
use crate::store::AuthRequest;
use crate::web::PageError;

/// Completes a sign-in to one of Herald's own pages: the request is marked decided (no code is
/// issued) and the browser returns to the page that asked ([`start_sign_in`]), now with a login.
pub async fn signed_in(state: &AppState, req: &AuthRequest) -> Result<Response, PageError> {
    let settings = state.settings();
    let local = req
        .redirect_uri
        .strip_prefix(settings.issuer.as_str())
        .filter(|p| p.starts_with('/') && !p.starts_with("//"));
    // Admin pages on a listener of their own are at another origin (see `return_url`).
    let admin = settings.admin_origin().filter(|o| {
        req.redirect_uri
            .strip_prefix(o.as_str())
            .is_some_and(is_admin_page)
    });
    let back = match (local, admin) {
        (Some(path), _) => path.to_string(),
        (None, Some(_)) => req.redirect_uri.clone(),
        (None, None) => "/account".to_string(),
    };
    state
        .store
        .decide_auth_request(&req.id, state.now())
        .await
        .map_err(store_failure)?;
    Ok(Redirect::to(&back).into_response())
}

/// Whether a path (with its query) is one of the admin pages.
pub fn is_admin_page(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/") || path.starts_with("/admin?")
}

/// The absolute URL of `return_path` on Herald: on the issuer, except for the admin pages when
/// they have a listener of their own ([`Settings::admin_origin`]).
pub fn return_url(settings: &Settings, return_path: &str) -> String {
    match settings.admin_origin() {
        Some(origin) if is_admin_page(return_path) => format!("{origin}{return_path}"),
        _ => format!("{}{return_path}", settings.issuer),
    }
}
