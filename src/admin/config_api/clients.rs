//! Clients through the API: the list, one client, registration (with a secret shown once),
//! changes and removal. Changes go through [`Changes`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::admin::auth::{ConfigEditor, ConfigReader};
use crate::admin::changes::{Changes, ClientSettings, secret_grace};
use crate::admin::error::{ApiError, Body, ErrorBody, Path};
use crate::config::{Client, ClientAuth};
use crate::state::AppState;

/// A client as the API shows it. Secrets are never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub client_name: String,
    /// Whether the client authenticates with a secret (otherwise: public, PKCE required).
    pub confidential: bool,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub trusted: bool,
    pub grant_types: Vec<String>,
    /// E.g. `14days`.
    pub refresh_token_idle_ttl: String,
    pub refresh_token_absolute_ttl: String,
    /// How long a rotated refresh token may be used once more, e.g. `0s` (strict).
    pub refresh_token_grace_period: String,
    /// RS256, ES256 or EdDSA.
    pub id_token_signed_response_alg: String,
    pub post_logout_redirect_uris: Vec<String>,
    /// Where logout tokens are POSTed (OpenID Connect Back-Channel Logout 1.0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Whether the client authenticates with private_key_jwt.
    pub private_key_jwt: bool,
    /// Unix time until which the secret replaced by the last rotation still works; absent when
    /// there is none (or it has stopped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// Who may get this app's tokens: a CEL condition over `context` and `upstream`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_policy: Option<String>,
    /// Authorization requests only through `/par` (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// Token requests must carry a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
}

impl ClientView {
    fn of(c: &Client, now: i64) -> Self {
        let ttl = |d| humantime::format_duration(d).to_string();
        Self {
            client_id: c.client_id.clone(),
            client_name: c.client_name.clone(),
            confidential: !matches!(c.auth, ClientAuth::None),
            redirect_uris: c.redirect_uris.clone(),
            scopes: c.scopes.clone(),
            trusted: c.trusted,
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str().to_string())
                .collect(),
            refresh_token_idle_ttl: ttl(c.refresh_token_idle_ttl),
            refresh_token_absolute_ttl: ttl(c.refresh_token_absolute_ttl),
            refresh_token_grace_period: ttl(c.refresh_token_grace_period),
            id_token_signed_response_alg: c.signing_alg.as_str().to_string(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            private_key_jwt: matches!(c.auth, ClientAuth::PrivateKeyJwt(_)),
            previous_secret_expires_at: c
                .previous_secret
                .as_ref()
                .filter(|p| p.is_live(now))
                .map(|p| p.expires_at),
            logo_uri: c.links.logo_uri.clone(),
            client_uri: c.links.client_uri.clone(),
            policy_uri: c.links.policy_uri.clone(),
            tos_uri: c.links.tos_uri.clone(),
            access_policy: c.access_policy.as_ref().map(|p| p.source().to_string()),
            require_pushed_authorization_requests: c.require_pushed_authorization_requests,
            dpop_bound_access_tokens: c.dpop_bound_access_tokens,
        }
    }
}

/// A new client: its id, whether it is public, and the same keys as [`ClientSettings`].
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "client_id": "reports",
    "client_name": "Reports",
    "redirect_uris": ["https://reports.example.com/callback"],
    "scopes": ["openid", "profile", "email"]
})))]
pub struct NewClient {
    pub client_id: String,
    /// `true`: no secret, PKCE required. `false` (default): Herald generates a secret and shows
    /// it once, in this answer only.
    #[serde(default)]
    pub public: bool,
    pub client_name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub trusted: bool,
    pub grant_types: Option<Vec<String>>,
    pub refresh_token_idle_ttl: Option<String>,
    pub refresh_token_absolute_ttl: Option<String>,
    /// How long a rotated refresh token may be used once more (default `0s`, at most `5m`).
    pub refresh_token_grace_period: Option<String>,
    /// RS256 (default), ES256 or EdDSA.
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where logout tokens are POSTed (OpenID Connect Back-Channel Logout 1.0).
    pub backchannel_logout_uri: Option<String>,
    /// A JWK Set for private_key_jwt client authentication.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// The app's logo on the consent page (https).
    pub logo_uri: Option<String>,
    /// The app's home page (https).
    pub client_uri: Option<String>,
    /// The app's privacy policy, linked from the consent page (https).
    pub policy_uri: Option<String>,
    /// The app's terms of service, linked from the consent page (https).
    pub tos_uri: Option<String>,
    /// Who may get this app's tokens: a CEL condition over `context` and `upstream`, like
    /// `'herald-admins' in context.groups`.
    pub access_policy: Option<String>,
    /// Authorization requests only through `/par` (RFC 9126 §6).
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// Token requests must carry a DPoP proof (RFC 9449 §5.2).
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
}

impl NewClient {
    fn settings(self) -> ClientSettings {
        ClientSettings {
            client_name: self.client_name,
            redirect_uris: self.redirect_uris,
            scopes: self.scopes,
            trusted: self.trusted,
            grant_types: self.grant_types,
            refresh_token_idle_ttl: self.refresh_token_idle_ttl,
            refresh_token_absolute_ttl: self.refresh_token_absolute_ttl,
            refresh_token_grace_period: self.refresh_token_grace_period,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            backchannel_logout_uri: self.backchannel_logout_uri,
            jwks: self.jwks,
            logo_uri: self.logo_uri,
            client_uri: self.client_uri,
            policy_uri: self.policy_uri,
            tos_uri: self.tos_uri,
            access_policy: self.access_policy,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
        }
    }
}

/// The created client, with its secret shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: ClientView,
    /// 256 random bits; stored only as a SHA-256 digest, so it cannot be shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

fn client_view(state: &AppState, client_id: &str) -> Result<ClientView, ApiError> {
    state
        .settings()
        .client(client_id)
        .map(|c| ClientView::of(c, state.now()))
        .ok_or_else(|| ApiError::not_found(format!("no client `{client_id}`")))
}

/// Lists the clients, by client_id.
#[utoipa::path(get, path = "/admin/api/clients", tag = "configuration",
    responses((status = 200, body = Vec<ClientView>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn list_clients(_: ConfigReader, State(state): State<AppState>) -> Json<Vec<ClientView>> {
    let settings = state.settings();
    let mut list: Vec<ClientView> = settings
        .clients
        .values()
        .map(|c| ClientView::of(c, state.now()))
        .collect();
    list.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    Json(list)
}

/// Registers a client; a confidential one gets a generated secret, shown in this answer only.
#[utoipa::path(post, path = "/admin/api/clients", tag = "configuration",
    request_body = NewClient,
    responses((status = 201, body = CreatedClient), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn create_client(
    ConfigEditor(admin): ConfigEditor,
    State(state): State<AppState>,
    Body(new): Body<NewClient>,
) -> Result<Response, ApiError> {
    let (client_id, public) = (new.client_id.clone(), new.public);
    let registered = Changes::new(&state, &admin)
        .register_client(&client_id, public, new.settings())
        .await?;
    let created = CreatedClient {
        client: client_view(&state, &client_id)?,
        client_secret: registered.client_secret,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// One client.
#[utoipa::path(get, path = "/admin/api/clients/{client_id}", tag = "configuration",
    params(("client_id" = String, Path, description = "The client's id")),
    responses((status = 200, body = ClientView), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_client(
    _: ConfigReader,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> Result<Json<ClientView>, ApiError> {
    client_view(&state, &client_id).map(Json)
}

/// Replaces a client's settings; its secret (or public status) stays as it is.
#[utoipa::path(put, path = "/admin/api/clients/{client_id}", tag = "configuration",
    params(("client_id" = String, Path, description = "The client's id")),
    request_body = ClientSettings,
    responses((status = 200, body = ClientView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_client(
    ConfigEditor(admin): ConfigEditor,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Body(settings): Body<ClientSettings>,
) -> Result<Json<ClientView>, ApiError> {
    Changes::new(&state, &admin)
        .update_client(&client_id, settings)
        .await?;
    client_view(&state, &client_id).map(Json)
}

/// A secret rotation's one setting.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"grace": "24h"})))]
pub struct RotateSecret {
    /// How long the replaced secret keeps working: from `0s` (it stops at once) to `7d`;
    /// default `24h`.
    pub grace: Option<String>,
}

/// A client's new secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub client_id: String,
    /// 256 random bits; stored only as a SHA-256 digest, so it cannot be shown again.
    pub client_secret: String,
    /// Unix time from which the replaced secret is refused; absent when it stopped at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<i64>,
}

/// Gives a confidential client a new secret (shown in this answer only). The secret it replaces
/// keeps working for `grace`, so the app can be redeployed without refused requests; a secret
/// replaced earlier stops now. Grants and tokens are untouched. The body may be empty.
#[utoipa::path(post, path = "/admin/api/clients/{client_id}/secret", tag = "configuration",
    params(("client_id" = String, Path, description = "The client's id")),
    request_body(content = Option<RotateSecret>, description = "Optional; no body means `grace` 24h"),
    responses((status = 200, body = RotatedSecret), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rotate_secret(
    ConfigEditor(admin): ConfigEditor,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<RotatedSecret>, ApiError> {
    let asked: RotateSecret = if body.is_empty() {
        RotateSecret::default()
    } else {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::invalid_request(
                "send the body as Content-Type: application/json, or no body at all",
            ));
        }
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid_request(format!("the body is not a secret rotation: {e}"))
        })?
    };
    let grace = secret_grace(asked.grace.as_deref())?;
    let rotated = Changes::new(&state, &admin)
        .rotate_client_secret(&client_id, grace)
        .await?;
    Ok(Json(RotatedSecret {
        client_id,
        client_secret: rotated.client_secret,
        previous_secret_expires_at: rotated.previous_secret_expires_at,
    }))
}

/// Removes a client. What it was given ends with it: its codes are burned, its refresh and
/// access tokens revoked, and its grants deleted, each with a consent record (method `admin`).
#[utoipa::path(delete, path = "/admin/api/clients/{client_id}", tag = "configuration",
    params(("client_id" = String, Path, description = "The client's id")),
    responses((status = 204), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn delete_client(
    ConfigEditor(admin): ConfigEditor,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    Changes::new(&state, &admin)
        .delete_client(&client_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
