//! Pushed authorization requests (RFC 9126).
//!
//! `POST /par`: the client authenticates as at the token endpoint and pushes the parameters of
//! an authorization request, which are checked as `/authorize` checks them (§2.1); the answer is
//! a `request_uri` that works once, within [`PUSHED_TTL_SECS`] (§2.2), at
//! `/authorize?client_id=…&request_uri=…`, where only the pushed parameters count (§4). A
//! client with `require_pushed_authorization_requests` may start a login no other way (§6).
//! The store keeps each request under the digest of the request_uri's random part. A DPoP
//! proof sent with the push binds the code to its key, as `dpop_jkt` would (RFC 9449 §10.1).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::authorize::{AuthorizeError, AuthorizeRequest};
use super::client_auth::authenticate;
use super::dpop::{self, At};
use super::token::{form, token_response};
use crate::oauth::Params;
use crate::oauth::error::OAuthError;
use crate::state::AppState;
use crate::store::PushedRequest;
use crate::tokens::hashing::{digest_hex, random_token};

/// The prefix of every request_uri Herald issues (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request may wait for its `/authorize` (§2.2 suggests a short time).
pub const PUSHED_TTL_SECS: i64 = 60;

pub async fn par(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match push(&state, &headers, &body).await {
        Ok(request_uri) => {
            let mut res = token_response(json!({
                "request_uri": request_uri,
                "expires_in": PUSHED_TTL_SECS,
            }));
            // §2.2: 201 Created.
            *res.status_mut() = StatusCode::CREATED;
            res
        }
        Err(e) => e.into_response(),
    }
}

async fn push(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<String, OAuthError> {
    let p = form(headers, body)?;
    let settings = state.settings();
    // Before client authentication, as at the token endpoint (RFC 9449 §8).
    let proof = dpop::proof(state, headers, At::Token, "POST", "/par", None).await?;
    let client = authenticate(state, &settings, headers, &p.values).await?;
    // §2.1: a pushed request may not itself point at another.
    if p.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request(
            "request_uri cannot be pushed; push the authorization request's parameters",
        ));
    }
    // The client is the one that authenticated; a client_id in the body must name it (§2.1).
    if p.get("client_id").is_some_and(|id| id != client.client_id) {
        return Err(OAuthError::invalid_request(
            "client_id does not name the authenticated client",
        ));
    }
    let mut values: serde_json::Map<String, serde_json::Value> = p
        .values
        .iter()
        .filter(|(k, _)| !is_authentication(k))
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    values.insert("client_id".into(), client.client_id.clone().into());
    if let Some(proof) = proof {
        if p.get("dpop_jkt").is_some_and(|j| j != proof.jkt) {
            return Err(OAuthError::invalid_request(
                "dpop_jkt is not the thumbprint of the DPoP proof's key",
            ));
        }
        values.insert("dpop_jkt".into(), proof.jkt.into());
    }
    let pushed = pushed_params(&values);
    // Checked as /authorize will check it, so a bad request is refused now, to the client.
    AuthorizeRequest::parse(&pushed, &settings).map_err(|e| match e {
        AuthorizeError::Page { message, .. } => OAuthError::invalid_request(message),
        AuthorizeError::Redirect {
            code, description, ..
        } => OAuthError::bad_request(code, description),
    })?;
    let random = random_token();
    state
        .store
        .push_request(&PushedRequest {
            uri_hash: digest_hex(&random),
            client_id: client.client_id.clone(),
            params: serde_json::Value::Object(values).to_string(),
            expires_at: state.now() + PUSHED_TTL_SECS,
        })
        .await?;
    Ok(format!("{REQUEST_URI_PREFIX}{random}"))
}

/// Client authentication parameters, which belong to the push and not to the request.
fn is_authentication(name: &str) -> bool {
    matches!(
        name,
        "client_secret" | "client_assertion" | "client_assertion_type"
    )
}

/// Parameters stored as a JSON object of strings, as [`Params`].
pub fn pushed_params(values: &serde_json::Map<String, serde_json::Value>) -> Params {
    Params {
        values: values
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
        duplicated: Vec::new(),
        too_many: false,
    }
}

/// What `/authorize` does with a `request_uri`: the pushed parameters, taken once, when the
/// request_uri is Herald's, live, and pushed by the `client_id` the request names. `None`: the
/// request has no request_uri of Herald's (a foreign one is refused as unsupported later).
pub async fn take_pushed(state: &AppState, params: &Params) -> Option<Result<Params, String>> {
    let random = params
        .get("request_uri")?
        .strip_prefix(REQUEST_URI_PREFIX)?;
    let Some(client_id) = params.get("client_id") else {
        return Some(Err("the request has a request_uri but no client_id".into()));
    };
    let taken = match state
        .store
        .take_pushed_request(&digest_hex(random), state.now())
        .await
    {
        Ok(taken) => taken,
        Err(e) => {
            tracing::warn!(error = %e, "reading a pushed request failed");
            return Some(Err(
                "the pushed request could not be read; try again in a moment".into(),
            ));
        }
    };
    let Some(pushed) = taken else {
        return Some(Err(
            "the request_uri is unknown, expired or used already; the app must push the \
             request again"
                .into(),
        ));
    };
    if pushed.client_id != client_id {
        return Some(Err(
            "the request_uri was pushed by another client than the client_id given".into(),
        ));
    }
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&pushed.params) {
        Ok(values) => Some(Ok(pushed_params(&values))),
        Err(_) => Some(Err("the pushed request is unreadable".into())),
    }
}
