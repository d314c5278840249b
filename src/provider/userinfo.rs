//! The userinfo endpoint (OIDC Core §5.3) with bearer tokens per RFC 6750: the Authorization
//! header (GET or POST) or a form-body `access_token` (POST), never both. A DPoP-bound token
//! (RFC 9449 §7) comes only in the header with the `DPoP` scheme and a proof by its key.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dpop::{self, At};
use crate::claims::{self, AuthContext, TokenKind};
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::state::AppState;
use crate::tokens::jwt::audience_includes;
use crate::tokens::verify_access_token;

#[derive(Deserialize)]
struct AccessClaims {
    sub: String,
    jti: String,
    aud: Value,
    cnf: Option<Confirmation>,
}

/// RFC 9449 §6.1.
#[derive(Deserialize)]
struct Confirmation {
    jkt: String,
}

/// An access token as presented: with the `DPoP` scheme or as a bearer token.
struct Presented {
    token: String,
    dpop: bool,
}

/// GET, and HEAD (which axum routes here too): a DPoP proof's `htm` is the request's method.
pub async fn userinfo_get(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let token = presented(&headers, None);
    respond(&state, &headers, method, token).await
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
    respond(
        &state,
        &headers,
        Method::POST,
        presented(&headers, form_token),
    )
    .await
}

/// The token from the header (`Bearer` or `DPoP` scheme) or the body; `Err` when both or a
/// malformed header.
fn presented(headers: &HeaderMap, form: Option<String>) -> Result<Option<Presented>, OAuthError> {
    let header = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
            let (scheme, token) = v.split_once(' ').ok_or_else(|| {
                OAuthError::invalid_request("Authorization must use the Bearer or DPoP scheme")
            })?;
            let dpop = if scheme.eq_ignore_ascii_case("DPoP") {
                true
            } else if scheme.eq_ignore_ascii_case("Bearer") {
                false
            } else {
                return Err(OAuthError::invalid_request(
                    "Authorization must use the Bearer or DPoP scheme",
                ));
            };
            Some(Presented {
                token: token.trim().to_string(),
                dpop,
            })
        }
    };
    match (header, form) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "send the access token in one place only (RFC 6750 §2)",
        )),
        (Some(h), None) => Ok(Some(h)),
        (None, f) => Ok(f.map(|token| Presented { token, dpop: false })),
    }
}

async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    method: Method,
    token: Result<Option<Presented>, OAuthError>,
) -> Response {
    let mut res = match userinfo(state, headers, &method, token).await {
        Ok(v) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    };
    if headers.contains_key("dpop") {
        dpop::offer_nonce(state, &mut res);
    }
    res
}

async fn userinfo(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    token: Result<Option<Presented>, OAuthError>,
) -> Result<Value, OAuthError> {
    let Some(Presented { token, dpop }) = token? else {
        // RFC 6750 §3.1: no credentials, so no error code, just the challenges (RFC 9449 §7.1:
        // one per scheme Herald accepts).
        let mut e = OAuthError::invalid_token("an access token is required");
        e.challenge = Some(format!(
            "Bearer realm=\"herald\", {}",
            dpop::challenge(None)
        ));
        return Err(e);
    };
    let settings = state.settings();
    let now = state.now();
    let claims: AccessClaims = verify_access_token(&state.keys(), &settings.issuer, &token, now)
        .map_err(|e| OAuthError::invalid_token(e.to_string()))?;
    // A token for an API (RFC 8707) is not one for userinfo.
    if !audience_includes(&claims.aud, &settings.issuer) {
        return Err(OAuthError::invalid_token(
            "the access token is for another audience (an API), not for userinfo",
        ));
    }
    // RFC 9449 §7.1: a bound token needs the DPoP scheme and a proof by its key; a bearer
    // token is not presented as one.
    match (&claims.cnf, dpop) {
        (Some(cnf), true) => {
            let proof = dpop::proof(
                state,
                headers,
                At::Resource,
                method.as_str(),
                "/userinfo",
                Some(&token),
            )
            .await?
            .ok_or_else(|| {
                dpop::refusal(
                    state,
                    At::Resource,
                    crate::tokens::dpop::DpopError::Invalid(
                        "a DPoP-bound access token needs a DPoP proof".into(),
                    ),
                )
            })?;
            if proof.jkt != cnf.jkt {
                return Err(dpop::invalid_token(
                    "the DPoP proof is not made with the key the access token is bound to",
                ));
            }
        }
        (Some(_), false) => {
            return Err(dpop::invalid_token(
                "the access token is DPoP-bound: send it with the DPoP scheme and a proof",
            ));
        }
        (None, true) => {
            return Err(OAuthError::invalid_token(
                "the access token is not DPoP-bound: send it with the Bearer scheme",
            ));
        }
        (None, false) => {}
    }
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
