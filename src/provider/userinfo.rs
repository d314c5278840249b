//! The userinfo endpoint (OIDC Core §5.3) with bearer tokens per RFC 6750: the Authorization
//! header (GET or POST) or a form-body `access_token` (POST), never both.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::claims::{self, AuthContext, TokenKind};
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::state::AppState;
use crate::tokens::verify_access_token;

#[derive(Deserialize)]
struct AccessClaims {
    sub: String,
    jti: String,
}

pub async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(&state, bearer(&headers, None)).await
}

pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = crate::oauth::is_form(&headers);
    let form_token = if is_form {
        Params::parse(&body).get("access_token").map(str::to_string)
    } else {
        None
    };
    respond(&state, bearer(&headers, form_token)).await
}

/// The token from the header or the body; `Err` when both or a malformed header.
fn bearer(headers: &HeaderMap, form: Option<String>) -> Result<Option<String>, OAuthError> {
    let header = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
            let token = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .ok_or_else(|| {
                    OAuthError::invalid_request("Authorization must use the Bearer scheme")
                })?;
            Some(token.trim().to_string())
        }
    };
    match (header, form) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "send the access token in one place only (RFC 6750 §2)",
        )),
        (h, f) => Ok(h.or(f)),
    }
}

async fn respond(state: &AppState, token: Result<Option<String>, OAuthError>) -> Response {
    match userinfo(state, token).await {
        Ok(v) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn userinfo(
    state: &AppState,
    token: Result<Option<String>, OAuthError>,
) -> Result<Value, OAuthError> {
    let Some(token) = token? else {
        // RFC 6750 §3.1: no credentials, so no error code, just the challenge.
        let mut e = OAuthError::invalid_token("an access token is required");
        e.challenge = Some("Bearer realm=\"herald\"".into());
        return Err(e);
    };
    let settings = state.settings();
    let now = state.now();
    let claims: AccessClaims = verify_access_token(&state.keys(), &settings.issuer, &token, now)
        .map_err(|e| OAuthError::invalid_token(e.to_string()))?;
    let record = state
        .store
        .access_token(&claims.jti)
        .await?
        .ok_or_else(|| OAuthError::invalid_token("the access token is not known"))?;
    if record.revoked_at.is_some() || record.sub != claims.sub {
        return Err(OAuthError::invalid_token("the access token was revoked"));
    }
    // A removed client's tokens are revoked in the store; this also refuses one that a replica
    // still running the previous configuration issued after that.
    if settings.client(&record.client_id).is_none() {
        return Err(OAuthError::invalid_token(
            "the access token's client is no longer registered",
        ));
    }
    let scopes: Vec<String> = record.scope.split(' ').map(str::to_string).collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err(OAuthError::insufficient_scope(
            "userinfo needs the openid scope",
        ));
    }
    let stored = state
        .store
        .context(&record.auth_context_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_token("the login behind this token is gone"))?;
    if crate::login::login_has_ended(state, &stored) {
        return Err(OAuthError::invalid_token(
            "the login behind this token has ended",
        ));
    }
    let stored = match crate::login::current_context(state, stored).await {
        Ok(stored) => stored,
        Err(crate::login::Stale::Refused(why)) => {
            return Err(OAuthError::invalid_token(format!(
                "the identity provider no longer accepts the login behind this token ({why})"
            )));
        }
        Err(crate::login::Stale::Unavailable(why)) => {
            return Err(OAuthError::temporarily_unavailable(format!(
                "this login's claims are older than its identity provider allows, and the \
                 provider could not refresh them now ({why}); try again later"
            )));
        }
    };
    let context: AuthContext = serde_json::from_str(&stored.context)
        .map_err(|_| OAuthError::server_error("stored login data is unreadable"))?;
    let mut out = claims::release(&context, &settings.scopes, &scopes, TokenKind::Userinfo);
    if scopes.iter().any(|s| s == claims::CONSENTS_SCOPE) {
        let purposes =
            crate::consent::current_purposes(&*state.store, &settings.scopes, &record.sub).await?;
        out.insert("purposes".into(), Value::Object(purposes));
    }
    out.insert("sub".into(), json!(record.sub));
    Ok(Value::Object(out))
}
