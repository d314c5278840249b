//! The browser's legs of an upstream login: `/login/{request}` (chooser or straight to the
//! upstream) and `/callback/{upstream}` (back from it).

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::Value;
use tower_sessions::Session;

use super::journey::consent_stage;
use super::pending::{fail, pending_request, return_link, store_failure};
use super::session::{LoginSession, set_login};
use crate::claims::{self, AuthContext, Source};
use crate::oauth::Params;
use crate::state::AppState;
use crate::store::{StoredContext, UpstreamLogin};
use crate::tokens::hashing::{digest_hex, random_token};
use crate::upstream::UpstreamError;
use crate::web::pages::{ChooserOption, ChooserPage};
use crate::web::{error_page, render, unavailable_page};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login/{request}", get(login))
        .route("/callback/{upstream}", get(callback))
}

async fn login(
    State(state): State<AppState>,
    session: Session,
    Path(request_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let req = match pending_request(&state, &session, &request_id).await {
        Ok(r) => r,
        Err(page) => return page.into_response(),
    };
    let settings = state.settings();
    let p = Params::parse(query.unwrap_or_default().as_bytes());
    let chosen = p
        .get("upstream")
        .or(req.upstream_hint.as_deref())
        .map(str::to_string)
        .or_else(|| (settings.upstreams.len() == 1).then(|| settings.upstreams[0].id.clone()));
    let Some(upstream_id) = chosen else {
        let app_name = settings.app_name(&req.client_id);
        let options = settings
            .upstreams
            .iter()
            .map(|u| ChooserOption {
                url: format!("/login/{}?upstream={}", req.id, u.id),
                name: u.display_name.clone(),
            })
            .collect();
        return render(StatusCode::OK, &ChooserPage { app_name, options });
    };
    let Some(upstream) = settings.upstream(&upstream_id).cloned() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Unknown sign-in option",
            "That identity provider is not configured. Go back and choose another.",
            None,
        );
    };
    let redirect_uri = format!("{}/callback/{}", settings.issuer, upstream.id);
    let start = match state.upstreams.start(&upstream, &redirect_uri).await {
        Ok(s) => s,
        Err(e) => return upstream_failure(&state, &req, &e),
    };
    let now = state.now();
    let record = UpstreamLogin {
        state_hash: digest_hex(&start.state),
        auth_request_id: req.id.clone(),
        upstream_id: upstream.id.clone(),
        nonce: start.nonce,
        pkce_verifier: start.pkce_verifier,
        created_at: now,
        expires_at: req.expires_at,
    };
    if let Err(e) = state.store.insert_upstream_login(&record).await {
        return store_failure(e).into_response();
    }
    Redirect::to(&start.url).into_response()
}

fn upstream_failure(
    state: &AppState,
    req: &crate::store::AuthRequest,
    e: &UpstreamError,
) -> Response {
    tracing::warn!(error = %e, client = %req.client_id, "upstream login failed");
    let (status, title, message, code) = match e {
        UpstreamError::Unavailable(_) => (
            StatusCode::BAD_GATEWAY,
            "The identity provider is unavailable",
            "Herald could not reach the identity provider you sign in with, or it did not \
             answer properly. Please try again in a few minutes.",
            "temporarily_unavailable",
        ),
        UpstreamError::Invalid(_) => (
            StatusCode::BAD_GATEWAY,
            "Sign-in could not be verified",
            "The identity provider's answer failed Herald's security checks, so you were not \
             signed in. If this keeps happening, tell the app's administrator.",
            "server_error",
        ),
        UpstreamError::Misconfigured(_) => (
            StatusCode::BAD_GATEWAY,
            "Sign-in is misconfigured",
            "Herald's connection to the identity provider is misconfigured. The administrator \
             has been told in Herald's log.",
            "server_error",
        ),
    };
    error_page(
        status,
        title,
        message,
        Some(return_link(
            state,
            req,
            code,
            "the identity provider login failed",
        )),
    )
}

async fn callback(
    State(state): State<AppState>,
    session: Session,
    Path(upstream_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let p = Params::parse(query.unwrap_or_default().as_bytes());
    let bad = |msg: &str| error_page(StatusCode::BAD_REQUEST, "Sign-in failed", msg, None);
    if !p.duplicated.is_empty() {
        return bad("The identity provider's answer repeats a parameter; it was refused.");
    }
    let Some(upstream_state) = p.get("state") else {
        return bad(
            "The identity provider's answer has no state, so it cannot be matched to a sign-in. Start again from the app.",
        );
    };
    // Each state works once: taking it removes it.
    let login = match state
        .store
        .take_upstream_login(&digest_hex(upstream_state))
        .await
    {
        Ok(Some(l)) => l,
        Ok(None) => {
            return bad(
                "This sign-in link has expired or was already used. Start again from the app.",
            );
        }
        Err(crate::store::StoreError::Unavailable(_)) => return unavailable_page(),
        Err(e) => {
            tracing::error!(error = %e, "loading upstream login state failed");
            return bad("This sign-in could not be continued. Start again from the app.");
        }
    };
    // The answer must come back on the callback of the upstream it was sent to (mix-up).
    if login.upstream_id != upstream_id {
        return bad(
            "The answer came back from a different identity provider than the one you were sent to; it was refused.",
        );
    }
    let req = match pending_request(&state, &session, &login.auth_request_id).await {
        Ok(r) => r,
        Err(page) => return page.into_response(),
    };
    let settings = state.settings();
    let Some(upstream) = settings.upstream(&upstream_id).cloned() else {
        return bad("That identity provider is no longer configured.");
    };
    // RFC 9207 §2.4: when the upstream names itself, it must be the one we expect.
    if let Some(iss) = p.get("iss")
        && iss != upstream.endpoint.issuer
    {
        return bad(
            "The answer names a different issuer than the identity provider you were sent to; it was refused (RFC 9207).",
        );
    }
    if let Some(err) = p.get("error") {
        tracing::info!(upstream = %upstream.id, error = %err, "upstream returned an error");
        if err == "access_denied" {
            return fail(
                &state,
                &req,
                "access_denied",
                "the user cancelled at the identity provider",
            );
        }
        let code = if err == "temporarily_unavailable" {
            "temporarily_unavailable"
        } else {
            "server_error"
        };
        return error_page(
            StatusCode::BAD_GATEWAY,
            "The identity provider reported an error",
            &format!(
                "The identity provider did not sign you in. It said: {}",
                p.get("error_description").unwrap_or(err)
            ),
            Some(return_link(
                &state,
                &req,
                code,
                "the identity provider reported an error",
            )),
        );
    }
    let Some(code) = p.get("code") else {
        return bad("The identity provider's answer has neither a code nor an error.");
    };

    let redirect_uri = format!("{}/callback/{}", settings.issuer, upstream.id);
    let wants_at = upstream
        .mapping
        .attributes
        .iter()
        .any(|a| a.source == Source::AccessToken);
    let claims = match state
        .upstreams
        .finish(
            &upstream,
            &redirect_uri,
            code,
            &login.nonce,
            &login.pkce_verifier,
            wants_at,
        )
        .await
    {
        Ok(c) => c,
        Err(e) => return upstream_failure(&state, &req, &e),
    };
    let subject = claims
        .id_token
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let now = state.now();
    let user = match state
        .store
        .link_user(&upstream.id, &subject, &random_token(), now)
        .await
    {
        Ok(u) => u,
        Err(e) => return store_failure(e).into_response(),
    };
    let previous: Option<AuthContext> = user
        .last_context
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok());
    let built = match claims::build_context(
        &upstream.id,
        &upstream.mapping,
        &claims,
        previous.as_ref(),
    ) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(upstream = %upstream.id, error = %e, "claim mapping refused the login");
            return error_page(
                StatusCode::FORBIDDEN,
                "Sign-in refused",
                &e.to_string(),
                Some(return_link(
                    &state,
                    &req,
                    "access_denied",
                    "a required claim is missing or invalid",
                )),
            );
        }
    };
    let context_json = match serde_json::to_string(&built.context) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(error = %e, "serialising the authentication context failed");
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Herald could not record this sign-in. Please try again.",
                None,
            );
        }
    };
    let ctx = StoredContext {
        id: random_token(),
        sub: user.sub.clone(),
        upstream_id: upstream.id.clone(),
        context: context_json.clone(),
        auth_time: now,
        created_at: now,
        expires_at: upstream.auth_context_ttl.map(|t| now + t.as_secs() as i64),
        revoked_at: None,
    };
    let stored = async {
        state.store.insert_context(&ctx).await?;
        state
            .store
            .set_last_context(&user.sub, &context_json)
            .await?;
        state
            .store
            .set_auth_request_login(&req.id, &user.sub, &ctx.id, now)
            .await
    };
    if let Err(e) = stored.await {
        return store_failure(e).into_response();
    }
    let login_session = LoginSession {
        sub: user.sub.clone(),
        upstream_id: upstream.id.clone(),
        auth_time: now,
        context_id: ctx.id.clone(),
        context_expires_at: ctx.expires_at,
    };
    if let Err(page) = set_login(&session, &login_session).await {
        return page.into_response();
    }
    let req = crate::store::AuthRequest {
        sub: Some(user.sub),
        auth_context_id: Some(ctx.id),
        auth_time: Some(now),
        ..req
    };
    consent_stage(&state, req).await.into_response()
}
