//! The token endpoint (RFC 6749 §3.2, §4.1.3, §5; RFC 7636 §4.5–§4.6; OIDC Core §3.1.3).
//!
//! The code is checked (client, redirect URI, expiry, PKCE) before anything is signed; the
//! tokens are then signed off the async workers, and the code is consumed and the access token
//! recorded in one transaction. A replayed code revokes what its first use issued (RFC 6749
//! §4.1.2). Responses carry `Cache-Control: no-store`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_auth::authenticate;
use super::error::OAuthError;
use super::params::Params;
use crate::app::AppState;
use crate::claims::{self, AuthContext, TokenKind};
use crate::store::{AccessTokenRecord, Redemption};
use crate::tokens::hashing::{constant_time_eq, digest_hex, random_token};
use crate::tokens::jwt::{self, ACCESS_TOKEN_TYP};
use crate::tokens::keys::Alg;
use crate::tokens::mint::{AccessToken, IdToken, pkce_s256};

pub async fn wrong_method() -> Response {
    let mut res =
        OAuthError::invalid_request("the token endpoint accepts only POST").into_response();
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    res
}

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let is_form = super::params::is_form(headers);
    if !is_form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let p = Params::parse(body);
    if let Some(dup) = p.duplicated.first() {
        return Err(OAuthError::invalid_request(format!(
            "parameter {dup} is included more than once"
        )));
    }
    let settings = state.settings();
    let client = authenticate(&settings, &state.secret_cache, headers, &p.values).await?;
    match p.get("grant_type") {
        None => Err(OAuthError::invalid_request("grant_type is required")),
        Some("authorization_code") => authorization_code(state, &client, &p).await,
        Some("refresh_token" | "client_credentials") => Err(OAuthError::unauthorized_client(
            "this client may not use that grant type",
        )),
        Some(_) => Err(OAuthError::unsupported_grant_type(
            "supported grant types: authorization_code",
        )),
    }
}

async fn authorization_code(
    state: &AppState,
    client: &crate::config::Client,
    p: &Params,
) -> Result<Response, OAuthError> {
    let settings = state.settings();
    let code = p
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = p
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    let code_hash = digest_hex(code);
    let now = state.now();
    let record = state
        .store
        .code(&code_hash)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the code is invalid"))?;
    // Same answer for another client's code as for an unknown one.
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code is invalid"));
    }
    if record.consumed_at.is_some() {
        let revoked = state.store.revoke_tokens_of_code(&code_hash, now).await?;
        tracing::warn!(client = %client.client_id, revoked, "authorization code replayed; its tokens are revoked");
        return Err(OAuthError::invalid_grant("the code was already used"));
    }
    if record.expires_at <= now {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    if record.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    match (&record.code_challenge, p.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            if !(43..=128).contains(&verifier.len())
                || !constant_time_eq(&pkce_s256(verifier), challenge)
            {
                state.store.burn_code(&code_hash, now).await?;
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => {
            state.store.burn_code(&code_hash, now).await?;
            return Err(OAuthError::invalid_grant("code_verifier is required"));
        }
        // A verifier for a code issued without a challenge: a downgrade attempt (RFC 9700 §4.8.2).
        (None, Some(_)) => {
            state.store.burn_code(&code_hash, now).await?;
            return Err(OAuthError::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ));
        }
        (None, None) => {}
    }

    let stored = state
        .store
        .context(&record.auth_context_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the login behind this code is gone"))?;
    let context: AuthContext = serde_json::from_str(&stored.context)
        .map_err(|_| OAuthError::server_error("stored login data is unreadable"))?;
    let scopes: Vec<String> = record.scope.split(' ').map(str::to_string).collect();

    let jti = random_token();
    let access_ttl = settings.tokens.access_token_ttl.as_secs() as i64;
    let id_ttl = settings.tokens.id_token_ttl.as_secs() as i64;
    let access_claims = AccessToken {
        issuer: &settings.issuer,
        audience: &settings.issuer,
        sub: &record.sub,
        client_id: &client.client_id,
        scope: &record.scope,
        jti: &jti,
        auth_time: Some(record.auth_time),
        now,
        ttl_secs: access_ttl,
        released: claims::release(&context, &settings.scopes, &scopes, TokenKind::AccessToken),
    }
    .claims();
    let wants_id_token = scopes.iter().any(|s| s == "openid");
    let id_released = claims::release(&context, &settings.scopes, &scopes, TokenKind::IdToken);
    let keys = state.keys();
    let issuer = settings.issuer.clone();
    let client_id = client.client_id.clone();
    let sub = record.sub.clone();
    let nonce = record.nonce.clone();
    let auth_time = record.auth_time;
    // RSA signing takes about half a millisecond: keep it off the async workers.
    let signed = tokio::task::spawn_blocking(move || {
        let key = keys
            .signing_key(Alg::RS256)
            .ok_or_else(|| OAuthError::server_error("no signing key is active"))?;
        let access = jwt::sign(key, ACCESS_TOKEN_TYP, &access_claims)
            .map_err(|_| OAuthError::server_error("signing failed"))?;
        let id = if wants_id_token {
            let claims = IdToken {
                issuer: &issuer,
                client_id: &client_id,
                sub: &sub,
                nonce: nonce.as_deref(),
                auth_time: Some(auth_time),
                amr: context.amr.as_deref(),
                acr: context.acr.as_deref(),
                access_token: Some(&access),
                alg: key.alg,
                now,
                ttl_secs: id_ttl,
                released: id_released,
            }
            .claims();
            Some(
                jwt::sign(key, "JWT", &claims)
                    .map_err(|_| OAuthError::server_error("signing failed"))?,
            )
        } else {
            None
        };
        Ok::<_, OAuthError>((access, id))
    })
    .await
    .map_err(|_| OAuthError::server_error("signing failed"))??;

    let token_record = AccessTokenRecord {
        jti,
        client_id: client.client_id.clone(),
        sub: record.sub.clone(),
        scope: record.scope.clone(),
        auth_context_id: record.auth_context_id.clone(),
        code_hash: Some(code_hash.clone()),
        issued_at: now,
        expires_at: now + access_ttl,
        revoked_at: None,
    };
    match state
        .store
        .redeem_code(&code_hash, now, &token_record)
        .await?
    {
        Redemption::Redeemed => {}
        Redemption::AlreadyUsed => {
            // Lost a race with a parallel redemption: the same as a replay.
            state.store.revoke_tokens_of_code(&code_hash, now).await?;
            return Err(OAuthError::invalid_grant("the code was already used"));
        }
    }
    let (access_token, id_token) = signed;
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": access_ttl,
        "scope": record.scope,
    });
    if let Some(id) = id_token {
        body["id_token"] = json!(id);
    }
    Ok(token_response(body))
}

/// A successful token response (RFC 6749 §5.1): JSON, never cached.
pub fn token_response(body: serde_json::Value) -> Response {
    let mut res = axum::Json(body).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}
