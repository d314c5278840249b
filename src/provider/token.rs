//! The token endpoint (RFC 6749 §3.2, §5): client authentication, then one of the grants in
//! [`grants`](super::grants). A grant Herald knows but the client did not register answers
//! `unauthorized_client`, one it does not know `unsupported_grant_type` (RFC 6749 §5.2).
//! Responses carry `Cache-Control: no-store`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::client_auth::authenticate;
use super::dpop::{self, At};
use super::grants;
use crate::config::{Client, GrantType};
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::state::AppState;
use crate::telemetry::{events, metrics};
use crate::tokens::dpop::Proof;

pub async fn wrong_method() -> Response {
    let mut res =
        OAuthError::invalid_request("the token endpoint accepts only POST").into_response();
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    res
}

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&state, &headers, &body).await {
        Ok(body) => {
            let mut res = token_response(body);
            dpop::offer_nonce(&state, &mut res);
            res
        }
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, OAuthError> {
    let p =
        form(headers, body).inspect_err(|e| events::token_refused(None, e.code, &e.description))?;
    let settings = state.settings();
    // The proof first (RFC 9449 §8): a client told to retry with a nonce has spent nothing,
    // not even a private_key_jwt assertion.
    let proof = dpop::proof(state, headers, At::Token, "POST", "/token", None).await?;
    let client = authenticate(state, &settings, headers, &p.values).await?;
    let answer = match bound_to(&client, proof.as_ref()) {
        Ok(jkt) => grant(state, &client, &p, jkt).await,
        Err(e) => Err(e),
    };
    match &answer {
        Ok(_) => {}
        Err(e) => events::token_refused(Some(&client.client_id), e.code, &e.description),
    }
    answer
}

/// The key the access token will be bound to (RFC 9449 §5): the proof's, which a client that
/// registered `dpop_bound_access_tokens` must send.
fn bound_to<'p>(client: &Client, proof: Option<&'p Proof>) -> Result<Option<&'p str>, OAuthError> {
    if proof.is_none() && client.dpop_bound_access_tokens {
        return Err(OAuthError::invalid_request(
            "this client's access tokens are DPoP-bound: send a DPoP proof (RFC 9449)",
        ));
    }
    Ok(proof.map(|p| p.jkt.as_str()))
}

/// The grant the authenticated `client` asked for, issued (bound to the DPoP key `jkt`).
async fn grant(
    state: &AppState,
    client: &Client,
    p: &Params,
    jkt: Option<&str>,
) -> Result<serde_json::Value, OAuthError> {
    let raw = p
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    let grant = GrantType::parse(raw).ok_or_else(|| {
        OAuthError::unsupported_grant_type(format!(
            "supported grant types: {}",
            GrantType::ALL.map(GrantType::as_str).join(", ")
        ))
    })?;
    if !client.allows(grant) {
        return Err(OAuthError::unauthorized_client(format!(
            "this client is not registered for the {} grant",
            grant.as_str()
        )));
    }
    let issued = match grant {
        GrantType::AuthorizationCode => {
            grants::authorization_code::exchange(state, client, p, jkt).await
        }
        GrantType::RefreshToken => grants::refresh_token::refresh(state, client, p, jkt).await,
        GrantType::ClientCredentials => {
            grants::client_credentials::issue(state, client, p, jkt).await
        }
        GrantType::TokenExchange => grants::token_exchange::exchange(state, client, p, jkt).await,
    }?;
    metrics::token_issued(grant.as_str(), &client.client_id);
    events::token_issued(&client.client_id, grant.as_str());
    Ok(issued)
}

/// Parses a form body, refusing other media types and repeated parameters (RFC 6749 §3.2).
pub fn form(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    if !crate::oauth::is_form(headers) {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let p = Params::parse(body);
    if let Some(why) = p.refusal() {
        return Err(OAuthError::invalid_request(why));
    }
    Ok(p)
}

/// A successful token response (RFC 6749 §5.1): JSON, never cached.
pub fn token_response(body: serde_json::Value) -> Response {
    let mut res = axum::Json(body).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}
