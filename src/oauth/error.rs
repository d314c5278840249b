//! OAuth errors as data (RFC 6749 §4.1.2.1, §5.2; RFC 6750 §3.1) and the redirects that carry
//! authorization responses back to clients with `iss` (RFC 9207).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use url::Url;

use crate::store::StoreError;

/// An error answered as JSON by the token, revocation, introspection and userinfo endpoints.
/// The header a DPoP nonce travels in (RFC 9449 §8).
pub const NONCE_HEADER: &str = "dpop-nonce";

#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: &'static str,
    pub description: String,
    pub status: StatusCode,
    /// Sent as `WWW-Authenticate` (client authentication failures, bearer token errors).
    pub challenge: Option<String>,
    /// Seconds sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// A fresh DPoP nonce for the `DPoP-Nonce` header (RFC 9449 §8).
    pub dpop_nonce: Option<String>,
}

impl OAuthError {
    fn new(code: &'static str, status: StatusCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            status,
            challenge: None,
            retry_after: None,
            dpop_nonce: None,
        }
    }

    /// A 400 with the error code an authorization request's check chose (RFC 9126 §2.3: a
    /// pushed request is refused with the codes of the authorization endpoint).
    pub fn bad_request(code: &'static str, d: impl Into<String>) -> Self {
        Self::new(code, StatusCode::BAD_REQUEST, d)
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", StatusCode::BAD_REQUEST, d)
    }

    /// 401 with a `Basic` challenge (RFC 6749 §5.2).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        let mut e = Self::new("invalid_client", StatusCode::UNAUTHORIZED, d);
        e.challenge = Some("Basic realm=\"herald\"".into());
        e
    }

    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", StatusCode::BAD_REQUEST, d)
    }

    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", StatusCode::BAD_REQUEST, d)
    }

    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", StatusCode::BAD_REQUEST, d)
    }

    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", StatusCode::BAD_REQUEST, d)
    }

    /// 401 with a `Bearer` challenge naming the error (RFC 6750 §3.1).
    pub fn invalid_token(d: impl Into<String>) -> Self {
        let d = sanitize(&d.into());
        let mut e = Self::new("invalid_token", StatusCode::UNAUTHORIZED, d.clone());
        e.challenge = Some(format!(
            "Bearer realm=\"herald\", error=\"invalid_token\", error_description=\"{}\"",
            d.replace('"', "'")
        ));
        e
    }

    pub fn insufficient_scope(d: impl Into<String>) -> Self {
        let mut e = Self::new("insufficient_scope", StatusCode::FORBIDDEN, d);
        e.challenge = Some("Bearer realm=\"herald\", error=\"insufficient_scope\"".into());
        e
    }

    pub fn server_error(d: impl Into<String>) -> Self {
        Self::new("server_error", StatusCode::INTERNAL_SERVER_ERROR, d)
    }

    pub fn temporarily_unavailable(d: impl Into<String>) -> Self {
        let mut e = Self::new(
            "temporarily_unavailable",
            StatusCode::SERVICE_UNAVAILABLE,
            d,
        );
        e.retry_after = Some(5);
        e
    }

    /// 429 `temporarily_unavailable`: this caller must wait `seconds` before trying again.
    pub fn slow_down(d: impl Into<String>, seconds: u64) -> Self {
        let mut e = Self::new("temporarily_unavailable", StatusCode::TOO_MANY_REQUESTS, d);
        e.retry_after = Some(seconds.max(1));
        e
    }

    /// 503 `temporarily_unavailable` with `Retry-After: 1`: too much work in flight right now.
    pub fn busy(d: impl Into<String>) -> Self {
        let mut e = Self::temporarily_unavailable(d);
        e.retry_after = Some(1);
        e
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                OAuthError::temporarily_unavailable("the database is unavailable; retry shortly")
            }
            StoreError::Conflict(_) => {
                OAuthError::invalid_request("a concurrent request conflicted; retry")
            }
            other => {
                tracing::error!(error = %other, "store error");
                OAuthError::server_error("internal error")
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = Json(json!({
            "error": self.code,
            "error_description": sanitize(&self.description),
        }));
        let mut res = (self.status, body).into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(c) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(header::WWW_AUTHENTICATE, c);
        }
        if let Some(seconds) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(n) = self.dpop_nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            h.insert(NONCE_HEADER, n);
        }
        res
    }
}

/// RFC 6749 §5.2: error_description is limited to printable ASCII without `"` and `\`.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e' => c,
            _ => ' ',
        })
        .collect()
}

/// Appends parameters to a registered redirect URI, keeping its own query (RFC 6749 §3.1.2).
pub fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            url.to_string()
        }
        // Registered URIs are validated at configuration time; this is unreachable in practice.
        Err(_) => redirect_uri.to_string(),
    }
}

/// The client's redirect URI carrying an authorization error, `state` and `iss` (RFC 6749
/// §4.1.2.1, RFC 9207 §2); the description is sanitized.
pub fn error_url(
    redirect_uri: &str,
    issuer: &str,
    state: Option<&str>,
    code: &str,
    description: &str,
) -> String {
    let description = sanitize(description);
    let mut params = vec![("error", code), ("error_description", description.as_str())];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    with_params(redirect_uri, &params)
}

/// A 303 to the client with an authorization error, `state` and `iss` ([`error_url`]).
pub fn redirect_error(
    redirect_uri: &str,
    issuer: &str,
    state: Option<&str>,
    code: &str,
    description: &str,
) -> Response {
    Redirect::to(&error_url(redirect_uri, issuer, state, code, description)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_descriptions_lose_control_characters_and_quotes() {
        assert_eq!(sanitize("bad\r\n\t\"x\\y"), "bad    x y");
    }

    #[test]
    fn redirect_parameters_keep_the_registered_query() {
        assert_eq!(
            with_params(
                "https://a.example/cb?x=1",
                &[("code", "c d"), ("iss", "https://i")]
            ),
            "https://a.example/cb?x=1&code=c+d&iss=https%3A%2F%2Fi"
        );
    }
}
