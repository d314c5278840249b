//! Sending the browser to an upstream: the authorization URL there, with the login state its
//! answer must match, and the page for an upstream that failed. Used from `/authorize` (straight
//! to the upstream), from `/login/{request}` (the chooser's pick, "Not you?", a fresh login) and
//! by the callback's refusals.

use super::pending::{has_prompt, login_failed, return_link};
use crate::config::Upstream;
use crate::state::AppState;
use crate::store::{AuthRequest, UpstreamLogin};
use crate::tokens::hashing::digest_hex;
use crate::upstream::{Asked, UpstreamError};
use crate::web::PageError;
use axum::http::StatusCode;

/// Where the browser goes to log in at `upstream` for `req`, and the login state to store for
/// the answer. `fresh` asks the upstream who is there instead of reusing its session;
/// `reauth` marks the state as the second, forced attempt after an answer older than `max_age`.
pub(super) async fn upstream_start(
    state: &AppState,
    req: &AuthRequest,
    upstream: &Upstream,
    fresh: bool,
    reauth: bool,
) -> Result<(String, UpstreamLogin), PageError> {
    let settings = state.settings();
    // The app's parameters this upstream takes through.
    let passed: Vec<(String, String)> = req
        .pass_through
        .as_deref()
        .and_then(|p| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(p).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| upstream.pass_through.contains(name))
        .filter_map(|(name, value)| Some((name, value.as_str()?.to_string())))
        .collect();
    let start = state
        .upstreams
        .start(
            upstream,
            &settings.callback_url(&upstream.id),
            fresh,
            Asked {
                prompt_login: has_prompt(req, "login"),
                prompt_none: has_prompt(req, "none"),
                max_age: req.max_age,
                login_hint: req.login_hint.as_deref(),
                ui_locales: req.ui_locales.as_deref(),
                acr_values: req.acr_values.as_deref(),
                passed: &passed,
            },
        )
        .await
        .map_err(|e| upstream_failure(state, req, &upstream.id, &e))?;
    let now = state.now();
    let record = UpstreamLogin {
        state_hash: digest_hex(&start.state),
        auth_request_id: req.id.clone(),
        upstream_id: upstream.id.clone(),
        nonce: start.nonce,
        pkce_verifier: start.pkce_verifier,
        created_at: now,
        expires_at: req.expires_at,
        forced: reauth,
    };
    Ok((start.url, record))
}

/// The page for an upstream that failed: unavailable, an answer that failed verification, or
/// Herald's own configuration of it; with a link back to the app carrying the OAuth error.
pub(super) fn upstream_failure(
    state: &AppState,
    req: &AuthRequest,
    upstream: &str,
    e: &UpstreamError,
) -> PageError {
    tracing::warn!(error = %e, client = %req.client_id, "upstream login failed");
    let (title, message, code) = match e {
        UpstreamError::Unavailable(_) | UpstreamError::KeysUnavailable(_) => (
            "The identity provider is unavailable",
            "Herald could not reach the identity provider you sign in with, or it did not \
             answer properly. Please try again in a few minutes.",
            "temporarily_unavailable",
        ),
        UpstreamError::Invalid(_) => (
            "Sign-in could not be verified",
            "The identity provider's answer failed Herald's security checks, so you were not \
             signed in. If this keeps happening, tell the app's administrator.",
            "server_error",
        ),
        UpstreamError::Misconfigured(_) => (
            "Sign-in is misconfigured",
            "Herald's connection to the identity provider is misconfigured. The administrator \
             has been told in Herald's log.",
            "server_error",
        ),
    };
    login_failed(state, upstream, &req.client_id, code, &e.to_string());
    PageError::new(StatusCode::BAD_GATEWAY, title, message).with_back(return_link(
        state,
        req,
        code,
        "the identity provider login failed",
    ))
}
