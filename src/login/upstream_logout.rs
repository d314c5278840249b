//! OpenID Connect Back-Channel Logout 1.0 from an upstream: `POST /backchannel-logout/{upstream}`
//! with a `logout_token` (§2.5). Register this URL as the back-channel logout URI of Herald's
//! application at the upstream.
//!
//! The token is verified (§2.6, see [`crate::upstream::UpstreamClients::verify_logout_token`]),
//! its `jti` is accepted once across replicas (the store's record of used assertions, until the
//! token's `exp`), and then the logins it names end: the upstream session `sid`, or every login
//! of the user `sub` through that upstream. Their contexts are revoked, so no browser reuses
//! them, and every code, refresh token and access token issued from them is revoked with them.
//! The answer is 200 (§2.8), 400 with an OAuth error for a token that fails a check, and 503
//! when the upstream's keys or the database cannot be reached, so the upstream retries.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::state::AppState;
use crate::store::EndLogins;
use crate::telemetry::events;
use crate::upstream::UpstreamError;

pub fn router() -> Router<AppState> {
    Router::new().route("/backchannel-logout/{upstream}", post(receive))
}

async fn receive(
    State(state): State<AppState>,
    Path(upstream_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut res = match end_logins(&state, &upstream_id, &headers, &body).await {
        Ok(ended) => {
            events::upstream_logout(&upstream_id, ended);
            StatusCode::OK.into_response()
        }
        Err(e) => {
            tracing::info!(upstream = %upstream_id, error = %e.description, "back-channel logout refused");
            e.into_response()
        }
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Verifies the logout token and ends the logins it names; how many it ended.
async fn end_logins(
    state: &AppState,
    upstream_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<u64, OAuthError> {
    if !crate::oauth::is_form(headers) {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let p = Params::parse(body);
    if let Some(why) = p.refusal() {
        return Err(OAuthError::invalid_request(why));
    }
    let token = p
        .get("logout_token")
        .ok_or_else(|| OAuthError::invalid_request("logout_token is required"))?;
    let settings = state.settings();
    let upstream = settings.upstream(upstream_id).ok_or_else(|| {
        OAuthError::invalid_request(format!("no upstream `{upstream_id}` is configured"))
    })?;
    let now = state.now();
    let claims = state
        .upstreams
        .verify_logout_token(upstream, token, now)
        .await
        .map_err(|e| match e {
            UpstreamError::Invalid(why) => OAuthError::invalid_request(why),
            other => OAuthError::temporarily_unavailable(other.to_string()),
        })?;
    // Once per jti (§2.6 step 8), kept as long as the token could be accepted (its `exp` and the
    // minute of clock leeway), so a replay is never taken for a new logout.
    let first = state
        .store
        .use_client_assertion(
            &format!("backchannel-logout:{upstream_id}"),
            // A digest: the upstream chose the jti (PostgreSQL's TEXT refuses NUL).
            &crate::tokens::hashing::digest_hex(&claims.jti),
            (claims.exp + 60).max(now + 60),
            now,
        )
        .await?;
    if !first {
        return Err(OAuthError::invalid_request(
            "this logout token (its jti) was used before",
        ));
    }
    let which = EndLogins {
        upstream_id: Some(upstream_id),
        subject: claims.sub.as_deref(),
        sid: claims.sid.as_deref(),
        ..EndLogins::default()
    };
    Ok(super::ending::end_logins(state, &which).await?)
}
