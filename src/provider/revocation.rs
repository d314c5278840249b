//! Token revocation (RFC 7009).
//!
//! The client authenticates like at the token endpoint (public clients by client_id, §2.1) and
//! may revoke only its own tokens. An unknown, malformed or other client's token is answered
//! 200 and left untouched (§2.2), so the endpoint reveals nothing. Revoking a refresh token
//! revokes its whole family and the access tokens issued with it (§2.1 "SHOULD also
//! invalidate"); revoking an access token marks its row, or records one for a
//! client_credentials token, which has none until then.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_auth::authenticate;
use super::introspection::{Known, recognise};
use super::token::{form, token_response};
use crate::oauth::error::OAuthError;
use crate::state::AppState;
use crate::store::AccessTokenRecord;
use crate::telemetry::events;

pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(()) => token_response(json!({})),
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
    let p = form(headers, body)?;
    let settings = state.settings();
    let client = authenticate(state, &settings, headers, &p.values).await?;
    let token = p
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let now = state.now();
    let Some(known) = recognise(state, token, now).await? else {
        return Ok(());
    };
    if known.client_id() != client.client_id {
        tracing::info!(client = %client.client_id, "revocation of another client's token ignored");
        return Ok(());
    }
    match known {
        Known::Refresh(r) => {
            let n = state.store.revoke_refresh_family(&r.family_id, now).await?;
            events::token_revoked(&client.client_id, n);
        }
        Known::Access(c, row) => {
            let record = row.unwrap_or(AccessTokenRecord {
                jti: c.jti,
                client_id: c.client_id,
                sub: c.sub,
                scope: c.scope,
                auth_context_id: String::new(),
                code_hash: None,
                issued_at: c.iat,
                expires_at: c.exp,
                revoked_at: None,
                family_id: None,
            });
            state.store.revoke_access_token(&record, now).await?;
            events::token_revoked(&client.client_id, 1);
        }
    }
    Ok(())
}
