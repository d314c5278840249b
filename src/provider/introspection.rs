//! Token introspection (RFC 7662), and recognising a presented token for it and for
//! revocation (RFC 7009).
//!
//! Callers authenticate like at the token endpoint; only confidential clients may introspect
//! (RFC 7662 §2.1 requires authorization, and a public client proves nothing). A client learns
//! about its own tokens only: another client's token answers `{"active": false}`, exactly like
//! an unknown, expired, rotated or revoked one (§2.2 lets the server decide; this keeps one
//! client from probing another's tokens). The `token_type_hint` is not needed: access tokens
//! are JWTs, refresh tokens opaque, so the token's shape says which it is (§2.1 "MAY ignore").

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::client_auth::authenticate;
use super::token::{form, token_response};
use crate::config::Client;
use crate::oauth::error::OAuthError;
use crate::state::AppState;
use crate::store::{AccessTokenRecord, RefreshTokenRecord};
use crate::tokens::hashing::digest_hex;
use crate::tokens::verify_access_token;

/// The claims of Herald's JWT access tokens that introspection and revocation read.
#[derive(Debug, Deserialize)]
pub(super) struct AccessClaims {
    pub sub: String,
    pub jti: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    pub iss: String,
    pub aud: Value,
    pub iat: i64,
    pub exp: i64,
    /// The DPoP key confirmation (RFC 9449 §6.1), for a bound token.
    pub cnf: Option<Value>,
}

/// A token presented to revocation or introspection, as Herald knows it.
pub(super) enum Known {
    /// A JWT access token with a valid signature and its row (`None` for client_credentials
    /// tokens, which are stored only once revoked).
    Access(Box<AccessClaims>, Option<AccessTokenRecord>),
    Refresh(RefreshTokenRecord),
}

impl Known {
    /// The stored login a user's token came from; `None` for a client's own token.
    fn context_id(&self) -> Option<&str> {
        match self {
            Known::Access(_, Some(row)) => Some(&row.auth_context_id),
            Known::Access(_, None) => None,
            Known::Refresh(r) => Some(&r.auth_context_id),
        }
    }

    pub fn client_id(&self) -> &str {
        match self {
            Known::Access(c, _) => &c.client_id,
            Known::Refresh(r) => &r.client_id,
        }
    }
}

/// Looks a presented token up; `None` when it is not Herald's, malformed or expired.
pub(super) async fn recognise(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<Option<Known>, OAuthError> {
    if token.contains('.') {
        let settings = state.settings();
        let Ok(claims) =
            verify_access_token::<AccessClaims>(&state.keys(), &settings.issuer, token, now)
        else {
            return Ok(None);
        };
        let row = state.store.access_token(&claims.jti).await?;
        return Ok(Some(Known::Access(Box::new(claims), row)));
    }
    Ok(state
        .store
        .refresh_token(&digest_hex(token))
        .await?
        .map(Known::Refresh))
}

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(v) => token_response(v),
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    let p = form(headers, body)?;
    let settings = state.settings();
    let client = authenticate(state, &settings, headers, &p.values).await?;
    if client.is_public() {
        // A public client authenticated by client_id alone, never with Basic: no Basic
        // challenge (RFC 6749 §5.2 ties WWW-Authenticate to the scheme the client used).
        let mut e = OAuthError::invalid_client("token introspection needs a confidential client");
        e.challenge = None;
        return Err(e);
    }
    let token = p
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let now = state.now();
    let Some(known) = recognise(state, token, now).await? else {
        return Ok(inactive());
    };
    // A user's token is no better than the login behind it: one from a removed upstream (on any
    // replica, or finished by a replica still on the old configuration) is inactive.
    if let Some(context_id) = known.context_id() {
        let ended = match state.store.context(context_id).await? {
            Some(ctx) => crate::login::login_has_ended(state, &ctx),
            None => true,
        };
        if ended {
            return Ok(inactive());
        }
    }
    Ok(describe(&client, known, now))
}

fn inactive() -> Value {
    json!({ "active": false })
}

/// The introspection answer for a token the caller presented (RFC 7662 §2.2).
fn describe(client: &Client, known: Known, now: i64) -> Value {
    if known.client_id() != client.client_id {
        return inactive();
    }
    match known {
        Known::Access(c, row) => {
            let live = match &row {
                Some(r) => r.revoked_at.is_none() && r.sub == c.sub,
                // Only client_credentials tokens live without a row; their sub is the client,
                // and not an earlier client of the same id (deleted, then registered again).
                None => c.sub == c.client_id && !client.predates_registration(c.iat),
            };
            if !live || c.exp <= now {
                return inactive();
            }
            let mut out = json!({
                "active": true,
                "token_type": "Bearer",
                "scope": c.scope,
                "client_id": c.client_id,
                "sub": c.sub,
                "aud": c.aud,
                "iss": c.iss,
                "iat": c.iat,
                "exp": c.exp,
                "jti": c.jti,
            });
            // RFC 9449 §6.2: a bound token's type and key.
            if let Some(cnf) = c.cnf {
                out["token_type"] = json!("DPoP");
                out["cnf"] = cnf;
            }
            out
        }
        Known::Refresh(r) => {
            let live = r.revoked_at.is_none()
                && r.rotated_at.is_none()
                && r.expires_at > now
                && r.family_expires_at > now;
            if !live {
                return inactive();
            }
            let mut out = json!({
                "active": true,
                "scope": r.scope,
                "client_id": r.client_id,
                "sub": r.sub,
                "iat": r.issued_at,
                "exp": r.expires_at,
            });
            if let Some(jkt) = r.dpop_jkt {
                out["cnf"] = json!({ "jkt": jkt });
            }
            out
        }
    }
}
