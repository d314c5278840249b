//! The discovery document (OpenID Connect Discovery 1.0 §3) and the JWKS (RFC 7517 §5).
//! It lists exactly what Herald supports, nothing more.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::GrantType;
use crate::state::AppState;

/// Relying parties may cache the JWKS this long; key activation waits longer than that.
const JWKS_CACHE_CONTROL: &str = "public, max-age=120";
const _: () = assert!(crate::tokens::keys::JWKS_MAX_AGE_SECS == 120);

pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    let s = state.settings();
    let iss = &s.issuer;
    let scopes: Vec<&String> = s.scopes.names().collect();
    let mut claims = vec![
        "sub".to_string(),
        "iss".into(),
        "aud".into(),
        "exp".into(),
        "iat".into(),
        "auth_time".into(),
        "nonce".into(),
        "amr".into(),
        "acr".into(),
    ];
    claims.extend(s.scopes.claims_supported());
    let mut doc = json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "jwks_uri": format!("{iss}/jwks"),
        "end_session_endpoint": format!("{iss}/logout"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GrantType::ALL.map(GrantType::as_str),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "pushed_authorization_request_endpoint": format!("{iss}/par"),
        "revocation_endpoint": format!("{iss}/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "introspection_endpoint": format!("{iss}/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": crate::tokens::dpop::ALGORITHMS,
        "claims_supported": claims,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "ui_locales_supported": s.scopes.locales(),
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    // RFC 9126 §5: listed when every client must push (a client's own requirement is its own).
    if s.require_pushed_authorization_requests {
        doc["require_pushed_authorization_requests"] = json!(true);
    }
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(doc),
    )
        .into_response()
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, JWKS_CACHE_CONTROL),
        ],
        state.keys().jwks_json().to_string(),
    )
        .into_response()
}
