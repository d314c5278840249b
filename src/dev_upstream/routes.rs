//! The development provider's endpoints: discovery, JWKS, the sign-in page, token and
//! userinfo, under `{issuer}/dev-upstream`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use std::sync::Arc;

use axum::Extension;

use super::{DevCode, DevProvider};
use crate::config::UpstreamKind;
use crate::oauth::{Params, with_params};
use crate::state::AppState;
use crate::tokens::hashing::{constant_time_eq, random_token};
use crate::tokens::jwt;
use crate::web::pages::DevLoginPage;
use crate::web::{PageError, render};

/// The development provider's routes; `dev` holds its key and what it has issued.
pub fn router(dev: Arc<DevProvider>) -> Router<AppState> {
    Router::new()
        .route(
            "/dev-upstream/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/dev-upstream/jwks", get(jwks))
        .route(
            "/dev-upstream/authorize",
            get(authorize_page).post(authorize_submit),
        )
        .route("/dev-upstream/token", axum::routing::post(token))
        .route("/dev-upstream/userinfo", get(userinfo))
        .layer(Extension(dev))
}

/// The dev provider's issuer. It is served only when a `kind = "dev"` upstream is configured;
/// else its pages are not found.
fn issuer(state: &AppState) -> Result<String, PageError> {
    let s = state.settings();
    s.upstreams
        .iter()
        .any(|u| u.kind == UpstreamKind::Dev)
        .then(|| format!("{}/dev-upstream", s.issuer))
        .ok_or_else(|| {
            PageError::new(
                StatusCode::NOT_FOUND,
                "Page not found",
                "The development provider is not enabled.",
            )
        })
}

async fn discovery(State(state): State<AppState>) -> Result<Response, PageError> {
    let iss = issuer(&state)?;
    Ok(axum::Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "userinfo_endpoint": format!("{iss}/userinfo"),
        "jwks_uri": format!("{iss}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email"],
    }))
    .into_response())
}

async fn jwks(
    State(state): State<AppState>,
    Extension(dev): Extension<Arc<DevProvider>>,
) -> Result<Response, PageError> {
    issuer(&state)?;
    Ok(axum::Json(json!({ "keys": [dev.key.public_jwk()] })).into_response())
}

/// Only Herald's own callbacks may receive codes, so the page is no open redirector.
fn callback_allowed(state: &AppState, redirect_uri: &str) -> bool {
    redirect_uri.starts_with(&format!("{}/callback/", state.settings().issuer))
}

async fn authorize_page(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, PageError> {
    issuer(&state)?;
    let p = Params::parse(q.unwrap_or_default().as_bytes());
    let redirect_uri = p.get("redirect_uri").unwrap_or_default();
    if !callback_allowed(&state, redirect_uri)
        || p.get("code_challenge_method") != Some("S256")
        || p.get("code_challenge").is_none()
    {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The development provider accepts only Herald's own callback with PKCE S256.",
        ));
    }
    Ok(render(
        StatusCode::OK,
        &DevLoginPage {
            client_id: p.get("client_id").unwrap_or_default().into(),
            redirect_uri: redirect_uri.into(),
            state: p.get("state").unwrap_or_default().into(),
            nonce: p.get("nonce").unwrap_or_default().into(),
            code_challenge: p.get("code_challenge").unwrap_or_default().into(),
            scope: p.get("scope").unwrap_or_default().into(),
        },
    ))
}

async fn authorize_submit(
    State(state): State<AppState>,
    Extension(dev): Extension<Arc<DevProvider>>,
    body: Bytes,
) -> Result<Response, PageError> {
    let iss = issuer(&state)?;
    let p = Params::parse(&body);
    let redirect_uri = p.get("redirect_uri").unwrap_or_default().to_string();
    let username = p.get("username").unwrap_or_default().trim().to_string();
    if !callback_allowed(&state, &redirect_uri) || username.is_empty() || username.len() > 64 {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "Enter a user name of at most 64 characters.",
        ));
    }
    let groups: Vec<String> = p
        .get("groups")
        .unwrap_or_default()
        .split(',')
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty())
        .collect();
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(format!("dev|{username}")));
    claims.insert("name".into(), json!(username));
    claims.insert("preferred_username".into(), json!(username));
    claims.insert("email".into(), json!(format!("{username}@example.com")));
    claims.insert("email_verified".into(), json!(false));
    claims.insert("https://example.com/groups".into(), json!(groups));
    // At most 64 characters, like the user name.
    let department: String = p
        .get("department")
        .unwrap_or_default()
        .trim()
        .chars()
        .take(64)
        .collect();
    if !department.is_empty() {
        claims.insert("https://example.com/department".into(), json!(department));
    }
    let code = random_token();
    let now = state.now();
    if let Ok(mut codes) = dev.codes.lock() {
        codes.retain(|_, c| now - c.created_at < 600);
        codes.insert(
            code.clone(),
            DevCode {
                client_id: p.get("client_id").unwrap_or_default().into(),
                redirect_uri: redirect_uri.clone(),
                code_challenge: p.get("code_challenge").unwrap_or_default().into(),
                claims,
                nonce: p.get("nonce").map(str::to_string),
                created_at: now,
            },
        );
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = p.get("state") {
        params.push(("state", s));
    }
    params.push(("iss", iss.as_str()));
    Ok(Redirect::to(&with_params(&redirect_uri, &params)).into_response())
}

fn token_error(code: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": code })),
    )
        .into_response()
}

async fn token(
    State(state): State<AppState>,
    Extension(dev): Extension<Arc<DevProvider>>,
    body: Bytes,
) -> Result<Response, PageError> {
    let iss = issuer(&state)?;
    let p = Params::parse(&body);
    if p.get("grant_type") != Some("authorization_code") {
        return Ok(token_error("unsupported_grant_type"));
    }
    let Some(entry) = p.get("code").and_then(|c| dev.codes.lock().ok()?.remove(c)) else {
        return Ok(token_error("invalid_grant"));
    };
    let verifier = p.get("code_verifier").unwrap_or_default();
    let challenge = crate::tokens::mint::pkce_s256(verifier);
    if !constant_time_eq(&challenge, &entry.code_challenge)
        || p.get("redirect_uri") != Some(entry.redirect_uri.as_str())
        || state.now() - entry.created_at > 600
    {
        return Ok(token_error("invalid_grant"));
    }
    let now = state.now();
    let mut id = entry.claims.clone();
    id.insert("iss".into(), json!(iss));
    id.insert("aud".into(), json!(entry.client_id));
    id.insert("iat".into(), json!(now));
    id.insert("exp".into(), json!(now + 300));
    id.insert("auth_time".into(), json!(now));
    if let Some(n) = entry.nonce {
        id.insert("nonce".into(), json!(n));
    }
    let Ok(id_token) = jwt::sign(&dev.key, "JWT", &id) else {
        return Ok((StatusCode::INTERNAL_SERVER_ERROR, "signing failed").into_response());
    };
    let access_token = random_token();
    let mut info = entry.claims;
    // A claim only userinfo carries, as many providers have.
    info.insert("https://example.com/tenant".into(), json!("dev"));
    if let Ok(mut tokens) = dev.tokens.lock() {
        // Its access tokens live 300 s; drop expired ones so memory does not grow per login.
        tokens.retain(|_, (_, expires_at)| *expires_at > now);
        tokens.insert(access_token.clone(), (info, now + 300));
    }
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        })),
    )
        .into_response())
}

async fn userinfo(
    State(state): State<AppState>,
    Extension(dev): Extension<Arc<DevProvider>>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    issuer(&state)?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let now = state.now();
    let info = token.and_then(|t| {
        let tokens = dev.tokens.lock().ok()?;
        let (info, expires_at) = tokens.get(t)?;
        (*expires_at > now).then(|| info.clone())
    });
    Ok(match info {
        Some(info) => axum::Json(Value::Object(info)).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
        )
            .into_response(),
    })
}
