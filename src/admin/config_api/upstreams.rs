//! Upstreams through the API: the list, one upstream in full, and its attributes and
//! mappings. Changes go through [`Changes`].

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::admin::auth::{ConfigEditor, ConfigReader};
use crate::admin::changes::{Changes, UpstreamSettings};
use crate::admin::error::{ApiError, Body, ErrorBody, Path};
use crate::claims::{self, Attribute, Mapping};
use crate::config::{Settings, Upstream, UpstreamKind, WhenUnavailable};
use crate::state::AppState;

/// An upstream as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamView {
    pub id: String,
    /// `auth0`, `oidc` or `dev`.
    pub kind: String,
    pub display_name: String,
    /// The issuer its discovery document must state.
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// Whether Herald fetches userinfo after the login.
    pub userinfo: bool,
    pub attributes: usize,
    pub mappings: usize,
}

/// Lists the upstreams.
#[utoipa::path(get, path = "/admin/api/upstreams", tag = "configuration",
    responses((status = 200, body = Vec<UpstreamView>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn list_upstreams(
    _: ConfigReader,
    State(state): State<AppState>,
) -> Json<Vec<UpstreamView>> {
    let settings = state.settings();
    Json(
        settings
            .upstreams
            .iter()
            .map(|u| UpstreamView {
                id: u.id.clone(),
                kind: format!("{:?}", u.kind).to_lowercase(),
                display_name: u.display_name.clone(),
                issuer: u.endpoint.issuer.clone(),
                client_id: u.client_id.clone(),
                scopes: u.scopes.clone(),
                userinfo: u.userinfo,
                attributes: u.mapping.attributes.len(),
                mappings: u.mapping.mappings.len(),
            })
            .collect(),
    )
}

/// One upstream in full, as the API shows it. Its secret is never shown, only where it comes
/// from.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamDetail {
    pub id: String,
    pub kind: UpstreamKind,
    pub display_name: String,
    /// kind = auth0: the tenant's domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The issuer its discovery document must state.
    pub issuer: String,
    /// Hosts besides the issuer's that its discovery document may name for the token, JWKS
    /// and userinfo endpoints.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_endpoint_hosts: Vec<String>,
    /// The URL to register at the upstream as Herald's callback.
    pub callback_url: String,
    pub client_id: String,
    /// Where Herald's client secret at this upstream comes from: `stored` (typed in, kept
    /// encrypted with the key-encryption key), `env` (the variable named by
    /// `client_secret_env`), `file` (written in the configuration file, never stored) or `none`.
    pub client_secret_source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    pub scopes: Vec<String>,
    pub userinfo: bool,
    pub logout: bool,
    pub extra_authorize_params: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// E.g. `10m`; absent: a login is reused as long as the browser session lasts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_context_ttl: Option<String>,
    /// The longest one request to the upstream may take, like `10s`.
    pub timeout: String,
    /// A first login with a verified email joins the user with that verified email.
    pub link_by_verified_email: bool,
    /// `false`: only users that exist already may log in.
    pub allow_signup: bool,
    /// Herald keeps the upstream's refresh token and refreshes stale logins with it.
    pub refresh_upstream: bool,
    /// `fail` or `serve_stale`.
    pub on_upstream_unavailable: String,
    /// With `serve_stale`: how long past the TTL stored claims may be served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_stale: Option<String>,
    /// kind = auth0: the Management API's base URL, when not at the domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_api_url: Option<String>,
    /// Parameters of the app's authorization request passed on to this upstream.
    pub pass_through: Vec<String>,
    /// An app's `prompt=none` is tried at this upstream with `prompt=none`.
    pub silent_login: bool,
    /// The post-authentication application, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub post_login_url: Option<String>,
    /// The client whose keys sign that application's context.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub post_login_client: Option<String>,
    pub attributes: Vec<Attribute>,
    pub mappings: Vec<Mapping>,
}

impl UpstreamDetail {
    fn of(u: &Upstream, settings: &Settings) -> Self {
        Self {
            id: u.id.clone(),
            kind: u.kind,
            display_name: u.display_name.clone(),
            domain: u.auth0_domain(),
            issuer: u.endpoint.issuer.clone(),
            allowed_endpoint_hosts: u.endpoint.allowed_endpoint_hosts.clone(),
            callback_url: settings.callback_url(&u.id),
            client_id: u.client_id.clone(),
            client_secret_source: u.secret_source().as_str().into(),
            client_secret_env: u.client_secret_env.clone(),
            scopes: u.scopes.clone(),
            userinfo: u.userinfo,
            logout: u.logout,
            extra_authorize_params: u.extra_authorize_params.clone(),
            amr: u.mapping.amr.clone(),
            auth_context_ttl: u
                .auth_context_ttl
                .map(|d| humantime::format_duration(d).to_string()),
            timeout: humantime::format_duration(u.timeout).to_string(),
            link_by_verified_email: u.link_by_verified_email,
            allow_signup: u.allow_signup,
            refresh_upstream: u.refresh_upstream,
            management_api_url: u.management_api_url.clone(),
            pass_through: u.pass_through.clone(),
            silent_login: u.silent_login,
            post_login_url: u.post_login.as_ref().map(|p| p.url.clone()),
            post_login_client: u.post_login.as_ref().map(|p| p.client_id.clone()),
            on_upstream_unavailable: match u.when_unavailable {
                WhenUnavailable::Fail => "fail".into(),
                WhenUnavailable::ServeStale(_) => "serve_stale".into(),
            },
            max_stale: match u.when_unavailable {
                WhenUnavailable::Fail => None,
                WhenUnavailable::ServeStale(d) => Some(humantime::format_duration(d).to_string()),
            },
            attributes: u.mapping.attributes.clone(),
            mappings: u.mapping.mappings.clone(),
        }
    }
}

fn upstream_detail(state: &AppState, id: &str) -> Result<UpstreamDetail, ApiError> {
    let settings = state.settings();
    settings
        .upstream(id)
        .map(|u| UpstreamDetail::of(u, &settings))
        .ok_or_else(|| ApiError::not_found(format!("no upstream `{id}`")))
}

/// Adds an upstream; refused with check-config's messages when invalid.
#[utoipa::path(post, path = "/admin/api/upstreams", tag = "configuration",
    request_body = UpstreamSettings,
    responses((status = 201, body = UpstreamDetail), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn create_upstream(
    ConfigEditor(admin): ConfigEditor,
    State(state): State<AppState>,
    Body(new): Body<UpstreamSettings>,
) -> Result<Response, ApiError> {
    Changes::new(&state, &admin).create_upstream(&new).await?;
    let id = new.id.as_deref().unwrap_or_default();
    Ok((StatusCode::CREATED, Json(upstream_detail(&state, id)?)).into_response())
}

/// One upstream.
#[utoipa::path(get, path = "/admin/api/upstreams/{id}", tag = "configuration",
    params(("id" = String, Path, description = "The upstream's id")),
    responses((status = 200, body = UpstreamDetail), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_upstream(
    _: ConfigReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<UpstreamDetail>, ApiError> {
    upstream_detail(&state, &id).map(Json)
}

/// Checks the upstream for real: discovery, JWKS, and Herald's client credentials (a token
/// request for a made-up code, which an upstream that accepts the credentials refuses as
/// `invalid_grant`). Each step with what came of it; nothing is stored.
#[utoipa::path(post, path = "/admin/api/upstreams/{id}/test", tag = "configuration",
    params(("id" = String, Path, description = "The upstream's id")),
    responses((status = 200, body = UpstreamTest), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn test_upstream(
    _: ConfigEditor,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<UpstreamTest>, ApiError> {
    let settings = state.settings();
    let up = settings
        .upstream(&id)
        .ok_or_else(|| ApiError::not_found(format!("no upstream `{id}`")))?;
    let steps = state.upstreams.check(up, &settings.callback_url(&id)).await;
    Ok(Json(UpstreamTest {
        ok: crate::upstream::check_passed(&steps),
        steps,
    }))
}

/// What checking an upstream found.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpstreamTest {
    /// Every step passed.
    pub ok: bool,
    pub steps: Vec<crate::upstream::CheckStep>,
}

/// Replaces an upstream's settings. `client_secret_env`, `attributes` and `mappings` stay as
/// they are when absent. Refused with check-config's messages when invalid.
#[utoipa::path(put, path = "/admin/api/upstreams/{id}", tag = "configuration",
    params(("id" = String, Path, description = "The upstream's id")),
    request_body = UpstreamSettings,
    responses((status = 200, body = UpstreamDetail), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_upstream(
    ConfigEditor(admin): ConfigEditor,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(settings): Body<UpstreamSettings>,
) -> Result<Json<UpstreamDetail>, ApiError> {
    Changes::new(&state, &admin)
        .update_upstream(&id, &settings)
        .await?;
    upstream_detail(&state, &id).map(Json)
}

/// Removes an upstream; refused with check-config's messages when the configuration would be
/// invalid without it (for example when it is the last one). Every login made through it ends
/// with it: browsers must log in again, and its codes, refresh and access tokens are revoked.
#[utoipa::path(delete, path = "/admin/api/upstreams/{id}", tag = "configuration",
    params(("id" = String, Path, description = "The upstream's id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn delete_upstream(
    ConfigEditor(admin): ConfigEditor,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    Changes::new(&state, &admin).delete_upstream(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn upstream_mapping(state: &AppState, id: &str) -> Result<claims::UpstreamMapping, ApiError> {
    state
        .settings()
        .upstream(id)
        .map(|u| u.mapping.clone())
        .ok_or_else(|| ApiError::not_found(format!("no upstream `{id}`")))
}

/// The upstream claims Herald reads from this upstream.
#[utoipa::path(get, path = "/admin/api/upstreams/{id}/attributes", tag = "configuration",
    params(("id" = String, Path, description = "The upstream's id")),
    responses((status = 200, body = Vec<Attribute>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_attributes(
    _: ConfigReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Attribute>>, ApiError> {
    Ok(Json(upstream_mapping(&state, &id)?.attributes))
}

/// Replaces the upstream's attributes; refused with check-config's messages when invalid.
#[utoipa::path(put, path = "/admin/api/upstreams/{id}/attributes", tag = "configuration",
    params(("id" = String, Path, description = "The upstream's id")),
    request_body = Vec<Attribute>,
    responses((status = 200, body = Vec<Attribute>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_attributes(
    ConfigEditor(admin): ConfigEditor,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(list): Body<Vec<Attribute>>,
) -> Result<Json<Vec<Attribute>>, ApiError> {
    Changes::new(&state, &admin)
        .replace_attributes(&id, &list)
        .await?;
    Ok(Json(upstream_mapping(&state, &id)?.attributes))
}

/// Where this upstream's claims land in the authentication context.
#[utoipa::path(get, path = "/admin/api/upstreams/{id}/mappings", tag = "configuration",
    params(("id" = String, Path, description = "The upstream's id")),
    responses((status = 200, body = Vec<Mapping>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_mappings(
    _: ConfigReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Mapping>>, ApiError> {
    Ok(Json(upstream_mapping(&state, &id)?.mappings))
}

/// Replaces the upstream's mappings; refused with check-config's messages when invalid (for
/// example a mapping to a claim Herald sets itself, like `sub`).
#[utoipa::path(put, path = "/admin/api/upstreams/{id}/mappings", tag = "configuration",
    params(("id" = String, Path, description = "The upstream's id")),
    request_body = Vec<Mapping>,
    responses((status = 200, body = Vec<Mapping>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_mappings(
    ConfigEditor(admin): ConfigEditor,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(list): Body<Vec<Mapping>>,
) -> Result<Json<Vec<Mapping>>, ApiError> {
    Changes::new(&state, &admin)
        .replace_mappings(&id, &list)
        .await?;
    Ok(Json(upstream_mapping(&state, &id)?.mappings))
}
