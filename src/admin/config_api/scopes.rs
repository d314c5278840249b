//! Scopes, and the read-only views of the claim rules: a preview of sample claims, and the
//! lineage of every token claim.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value as Json_};
use utoipa::ToSchema;

use crate::admin::auth::{ConfigEditor, ConfigReader};
use crate::admin::changes::{Changes, to_json};
use crate::admin::error::{ApiError, Body, ErrorBody};
use crate::claims::{self, AccessTokenClaims, UpstreamClaims};
use crate::config::ManagedConfig;
use crate::state::AppState;

/// The custom scopes (`[scopes.NAME]`), including redefinitions of built-in ones.
#[utoipa::path(get, path = "/admin/api/scopes", tag = "configuration",
    responses((status = 200, body = BTreeMap<String, claims::ScopeDef>, description = "scope name → definition"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_scopes(
    _: ConfigReader,
    State(state): State<AppState>,
) -> Result<Json<Json_>, ApiError> {
    let latest = state.store.latest_config().await?;
    let scopes = match latest {
        Some(v) => ManagedConfig::parse(&v.document)?
            .table()
            .get("scopes")
            .map(to_json)
            .unwrap_or_else(|| Json_::Object(Map::new())),
        None => Json_::Object(Map::new()),
    };
    Ok(Json(scopes))
}

/// Replaces the custom scopes; refused with check-config's messages when invalid (for example
/// when a client still uses a scope that would disappear).
#[utoipa::path(put, path = "/admin/api/scopes", tag = "configuration",
    request_body(content = BTreeMap<String, claims::ScopeDef>, description = "scope name → definition",
        example = json!({"groups": {"description": "Your groups", "claims": ["groups"]},
                         "reports": {"description": "Your reports", "optional": true}})),
    responses((status = 200, body = BTreeMap<String, claims::ScopeDef>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn put_scopes(
    ConfigEditor(admin): ConfigEditor,
    State(state): State<AppState>,
    Body(scopes): Body<BTreeMap<String, Json_>>,
) -> Result<Json<Json_>, ApiError> {
    Changes::new(&state, &admin)
        .replace_scopes(&scopes)
        .await
        .map(Json)
}

/// Sample upstream claims for a preview.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The upstream whose attributes and mappings apply; default: the first.
    pub upstream: Option<String>,
    /// Sample ID-token claims.
    #[schema(value_type = Object)]
    pub id_token: Map<String, Json_>,
    /// Sample userinfo claims.
    #[schema(value_type = Option<Object>)]
    pub userinfo: Option<Map<String, Json_>>,
    /// Sample claims of a JWT access token.
    #[schema(value_type = Option<Object>)]
    pub access_token: Option<Map<String, Json_>>,
    /// Granted scopes; default: every scope.
    pub scopes: Option<Vec<String>>,
}

/// Maps sample upstream claims: the context, each token's claims, and every warning.
#[utoipa::path(post, path = "/admin/api/preview", tag = "configuration",
    request_body = PreviewRequest,
    responses((status = 200, body = claims::Preview),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn preview(
    _: ConfigReader,
    State(state): State<AppState>,
    Body(req): Body<PreviewRequest>,
) -> Result<Json<Json_>, ApiError> {
    let settings = state.settings();
    let up = match req.upstream.as_deref() {
        Some(id) => settings.upstream(id),
        None => settings.upstreams.first(),
    }
    .ok_or_else(|| ApiError::not_found("no such upstream"))?;
    let claims = UpstreamClaims {
        id_token: req.id_token,
        userinfo: req.userinfo,
        access_token: match req.access_token {
            Some(c) => AccessTokenClaims::Jwt(c),
            None => AccessTokenClaims::Absent,
        },
    };
    let scopes = req
        .scopes
        .unwrap_or_else(|| settings.scopes.names().cloned().collect());
    let result = claims::preview(
        &up.id,
        &up.mapping,
        &settings.scopes,
        &claims,
        None,
        &scopes,
    );
    serde_json::to_value(result)
        .map(Json)
        .map_err(ApiError::internal)
}

/// Where every releasable token claim comes from.
#[utoipa::path(get, path = "/admin/api/lineage", tag = "configuration",
    responses((status = 200, body = Vec<claims::LineageRow>, description = "one row per claim and origin"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn lineage(
    _: ConfigReader,
    State(state): State<AppState>,
) -> Result<Json<Json_>, ApiError> {
    let settings = state.settings();
    let rows = settings.lineage();
    serde_json::to_value(rows)
        .map(Json)
        .map_err(ApiError::internal)
}
