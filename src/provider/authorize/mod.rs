//! The authorization endpoint (RFC 6749 §4.1.1; OIDC Core §3.1.2.1–§3.1.2.2; RFC 7636 §4.3).
//!
//! Order matters: the client and its redirect URI are checked first, and while either is in
//! doubt the answer is an error page, never a redirect (RFC 6749 §4.1.2.1). After that, every
//! error goes back to the client with `error`, `state` and `iss`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tower_sessions::Session;

use crate::config::GrantType;
use crate::login;
use crate::oauth::error::redirect_error;
use crate::oauth::params::Params;
use crate::state::AppState;
use crate::store::AuthRequest;
use crate::tokens::hashing::{digest_hex, random_token};
use crate::web::error_page;

pub async fn authorize_get(
    State(state): State<AppState>,
    session: Session,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    authorize(state, session, params).await
}

/// OIDC Core §3.1.2.1: the endpoint also accepts POST with a form body.
pub async fn authorize_post(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let is_form = crate::oauth::is_form(&headers);
    if !is_form {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "An authorization request sent with POST must be form-encoded \
             (application/x-www-form-urlencoded).",
            None,
        );
    }
    authorize(state, session, Params::parse(&body)).await
}

const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;

async fn authorize(state: AppState, session: Session, p: Params) -> Response {
    let settings = state.settings();
    let bad = |msg: &str| error_page(StatusCode::BAD_REQUEST, "Invalid request", msg, None);

    // 1. Who is asking, and where would the answer go? Never redirect while in doubt.
    if p.duplicated
        .iter()
        .any(|k| k == "client_id" || k == "redirect_uri")
    {
        return bad("client_id or redirect_uri appears more than once in the request.");
    }
    let Some(client_id) = p.get("client_id") else {
        return bad("The request has no client_id. The app that sent you here must include it.");
    };
    let Some(client) = settings.client(client_id).cloned() else {
        return bad(
            "The app that sent you here is not registered with Herald (unknown client_id).",
        );
    };
    let Some(redirect_uri) = p.get("redirect_uri") else {
        return bad(
            "The request has no redirect_uri. OpenID Connect requires it, and Herald never \
             guesses where to send you.",
        );
    };
    if !client.has_redirect_uri(redirect_uri) {
        return bad(
            "The redirect_uri in this request is not registered for this app, so Herald will \
             not send you there. The app's administrator must register it exactly.",
        );
    }

    // 2. From here on, errors are redirected to the client.
    let issuer = settings.issuer.clone();
    let client_state = if p.duplicated.iter().any(|k| k == "state") {
        None
    } else {
        p.get("state")
    };
    let fail =
        |code: &str, desc: &str| redirect_error(redirect_uri, &issuer, client_state, code, desc);
    if let Some(dup) = p.duplicated.first() {
        return fail(
            "invalid_request",
            &format!("parameter {dup} is included more than once"),
        );
    }
    if p.get("request").is_some() {
        return fail("request_not_supported", "request objects are not supported");
    }
    if p.get("request_uri").is_some() {
        return fail("request_uri_not_supported", "request_uri is not supported");
    }
    match p.get("response_type") {
        None => return fail("invalid_request", "response_type is required"),
        Some("code") => {}
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            );
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return fail(
            "unauthorized_client",
            "this client is not registered for the authorization_code grant",
        );
    }
    if let Some(mode) = p.get("response_mode")
        && mode != "query"
    {
        return fail("invalid_request", "only response_mode=query is supported");
    }
    if client_state.is_some_and(|s| s.len() > MAX_STATE) {
        return fail("invalid_request", "state is too long");
    }

    let Some(scope) = p.get("scope") else {
        return fail("invalid_scope", "scope is required; include openid");
    };
    let mut scopes: Vec<&str> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if settings.scopes.get(s).is_none() {
            return fail("invalid_scope", &format!("unknown scope {s}"));
        }
        if !client.scopes.iter().any(|c| c == s) {
            return fail(
                "invalid_scope",
                &format!("scope {s} is not allowed for this client"),
            );
        }
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    if !scopes.contains(&"openid") {
        return fail("invalid_scope", "scope must include openid");
    }

    let prompt = p.get("prompt");
    if let Some(prompt) = prompt {
        let values: Vec<&str> = prompt.split(' ').filter(|s| !s.is_empty()).collect();
        if let Some(v) = values
            .iter()
            .find(|v| !matches!(**v, "none" | "login" | "consent" | "select_account"))
        {
            return fail("invalid_request", &format!("unsupported prompt value {v}"));
        }
        if values.contains(&"none") && values.len() > 1 {
            return fail(
                "invalid_request",
                "prompt=none cannot be combined with other values",
            );
        }
    }
    let max_age = match p.get("max_age").map(str::parse::<i64>) {
        None => None,
        Some(Ok(v)) if v >= 0 => Some(v),
        Some(_) => return fail("invalid_request", "max_age must be a non-negative integer"),
    };
    let nonce = p.get("nonce");
    if nonce.is_some_and(|n| n.len() > MAX_NONCE) {
        return fail("invalid_request", "nonce is too long");
    }

    // PKCE (RFC 7636 §4.3, §4.4.1): S256 only; mandatory for public clients.
    let challenge = p.get("code_challenge");
    match (challenge, p.get("code_challenge_method")) {
        (None, None) if client.is_public() => {
            return fail(
                "invalid_request",
                "code_challenge is required for public clients (PKCE with S256)",
            );
        }
        (None, None) => {}
        (None, Some(_)) => {
            return fail(
                "invalid_request",
                "code_challenge_method without code_challenge",
            );
        }
        (Some(_), method) if method != Some("S256") => {
            return fail(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not supported)",
            );
        }
        (Some(c), _) if !is_valid_challenge(c) => {
            return fail(
                "invalid_request",
                "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
            );
        }
        _ => {}
    }

    let upstream_hint = p.get("idp_hint");
    if let Some(h) = upstream_hint
        && settings.upstream(h).is_none()
    {
        return fail(
            "invalid_request",
            &format!("idp_hint {h} names no upstream"),
        );
    }

    // OIDC Core §3.1.2.1: a hint names the user the client expects; Herald must have issued it.
    let hinted_sub = match p.get("id_token_hint") {
        None => None,
        Some(hint) => match crate::tokens::jwt::verify_id_token_hint(
            &state.keys(),
            &issuer,
            &client.client_id,
            hint,
        ) {
            Ok(sub) => Some(sub),
            Err(e) => {
                return fail(
                    "invalid_request",
                    &format!("id_token_hint is not valid: {e}"),
                );
            }
        },
    };

    let binding = match login::browser_binding(&session).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let now = state.now();
    let req = AuthRequest {
        id: random_token(),
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_string(),
        scope: scopes.join(" "),
        state: client_state.map(str::to_string),
        nonce: nonce.map(str::to_string),
        code_challenge: challenge.map(str::to_string),
        prompt: prompt.map(str::to_string),
        max_age,
        login_hint: p.get("login_hint").map(str::to_string),
        upstream_hint: upstream_hint.map(str::to_string),
        browser_binding: digest_hex(&binding),
        created_at: now,
        expires_at: now + settings.tokens.login_ttl.as_secs() as i64,
        sub: None,
        auth_context_id: None,
        auth_time: None,
        consent_csrf: None,
        decided_at: None,
    };
    if let Err(e) = state.store.insert_auth_request(&req).await {
        return login::store_failure(e);
    }
    login::proceed(&state, &session, req, hinted_sub.as_deref()).await
}

/// RFC 7636 §4.2: 43–128 characters from the unreserved set.
fn is_valid_challenge(c: &str) -> bool {
    (43..=128).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_challenge_must_be_43_to_128_unreserved_characters() {
        assert!(is_valid_challenge(&"a".repeat(43)));
        assert!(is_valid_challenge(&"A-._~".repeat(20)));
        assert!(!is_valid_challenge(&"a".repeat(42)));
        assert!(!is_valid_challenge(&"a".repeat(129)));
        assert!(!is_valid_challenge(&format!("{}+", "a".repeat(43))));
    }
}
