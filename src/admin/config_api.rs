//! The managed configuration through the API: upstreams with their attributes and mappings,
//! clients, custom scopes; and the read-only views of it, preview and lineage.
//!
//! Reads answer from the settings in effect on this replica. Every write goes through
//! [`change`]: it edits the latest stored document, validates the result like
//! `herald check-config`, stores it as the next version with its audit entry in one transaction,
//! and puts it into effect here.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json_};
use toml::Value;
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiError, Body, ErrorBody, Path};
use crate::app::AppState;
use crate::claims::{self, AccessTokenClaims, Attribute, Mapping, UpstreamClaims};
use crate::config::{Client, ClientAuth, ManagedConfig};
use crate::store::{AuditEntry, ConfigVersion};
use crate::tokens::SecretHash;
use crate::tokens::hashing::random_token;

/// Applies `edit` to the latest stored configuration and, when the result is valid, stores it as
/// the next version with an audit entry (`edit` returns the before and after states) and puts
/// it into effect on this replica. Returns the new version.
async fn change(
    state: &AppState,
    admin: &Admin,
    action: &str,
    target: String,
    edit: impl FnOnce(&mut ManagedConfig) -> Result<(Option<Json_>, Option<Json_>), ApiError>,
) -> Result<i64, ApiError> {
    let Some(live) = state.live_config() else {
        return Err(ApiError::conflict(
            "this Herald runs without live configuration; change the configuration file",
        ));
    };
    let latest = state
        .store
        .latest_config()
        .await?
        .ok_or_else(|| ApiError::internal("no stored configuration"))?;
    let mut managed = ManagedConfig::parse(&latest.document)?;
    let (before, after) = edit(&mut managed)?;
    let (settings, _warnings) = live.settings(&managed)?;
    let now = state.now();
    let version = latest.version + 1;
    state
        .store
        .save_config(
            &ConfigVersion {
                version,
                document: managed.to_toml(),
                created_at: now,
                author: admin.actor.clone(),
            },
            &AuditEntry {
                id: 0,
                at: now,
                actor: admin.actor.clone(),
                action: action.into(),
                target,
                before: before.map(|v| v.to_string()),
                after: after.map(|v| v.to_string()),
                config_version: Some(version),
            },
        )
        .await?;
    state.apply_config(version, settings);
    Ok(version)
}

fn to_toml<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    Value::try_from(v).map_err(|e| ApiError::invalid_request(format!("cannot be stored: {e}")))
}

fn to_json(v: &Value) -> Json_ {
    serde_json::to_value(v).unwrap_or(Json_::Null)
}

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
pub async fn list_upstreams(_: Admin, State(state): State<AppState>) -> Json<Vec<UpstreamView>> {
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

fn upstream_mapping(state: &AppState, id: &str) -> Result<claims::UpstreamMapping, ApiError> {
    state
        .settings()
        .upstream(id)
        .map(|u| u.mapping.clone())
        .ok_or_else(|| ApiError::not_found(format!("no upstream `{id}`")))
}

/// Replaces one list (`attributes` or `mappings`) of an upstream.
async fn replace_list<T: Serialize>(
    state: &AppState,
    admin: &Admin,
    id: &str,
    key: &str,
    list: &[T],
) -> Result<(), ApiError> {
    let new = to_toml(&list)?;
    change(
        state,
        admin,
        &format!("upstream.{key}.replace"),
        format!("upstream:{id}"),
        |doc| {
            let u = doc
                .entry_mut("upstreams", "id", id)
                .ok_or_else(|| ApiError::not_found(format!("no upstream `{id}`")))?;
            let before = u.get(key).map(to_json).unwrap_or(Json_::Array(vec![]));
            u.insert(key.into(), new.clone());
            Ok((Some(before), Some(to_json(&new))))
        },
    )
    .await?;
    Ok(())
}

/// The upstream claims Herald reads from this upstream.
#[utoipa::path(get, path = "/admin/api/upstreams/{id}/attributes", tag = "configuration",
    params(("id" = String, Path, description = "The upstream's id")),
    responses((status = 200, body = Vec<Attribute>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_attributes(
    _: Admin,
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
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(list): Body<Vec<Attribute>>,
) -> Result<Json<Vec<Attribute>>, ApiError> {
    replace_list(&state, &admin, &id, "attributes", &list).await?;
    Ok(Json(upstream_mapping(&state, &id)?.attributes))
}

/// Where this upstream's claims land in the authentication context.
#[utoipa::path(get, path = "/admin/api/upstreams/{id}/mappings", tag = "configuration",
    params(("id" = String, Path, description = "The upstream's id")),
    responses((status = 200, body = Vec<Mapping>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_mappings(
    _: Admin,
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
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(list): Body<Vec<Mapping>>,
) -> Result<Json<Vec<Mapping>>, ApiError> {
    replace_list(&state, &admin, &id, "mappings", &list).await?;
    Ok(Json(upstream_mapping(&state, &id)?.mappings))
}

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
    /// RS256, ES256 or EdDSA.
    pub id_token_signed_response_alg: String,
    pub post_logout_redirect_uris: Vec<String>,
    /// Whether the client authenticates with private_key_jwt.
    pub private_key_jwt: bool,
}

impl ClientView {
    fn of(c: &Client) -> Self {
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
            id_token_signed_response_alg: c.signing_alg.as_str().to_string(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            private_key_jwt: matches!(c.auth, ClientAuth::PrivateKeyJwt(_)),
        }
    }
}

/// A client's registration as written; the keys mean what they mean in the file's
/// `[[clients]]`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "client_name": "Reports",
    "redirect_uris": ["https://reports.example.com/callback"],
    "scopes": ["openid", "profile", "email", "offline_access"],
    "grant_types": ["authorization_code", "refresh_token"],
    "refresh_token_idle_ttl": "7d",
    "id_token_signed_response_alg": "ES256",
    "post_logout_redirect_uris": ["https://reports.example.com/"]
})))]
pub struct ClientSettings {
    pub client_name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub trusted: bool,
    /// Default `["authorization_code"]`.
    pub grant_types: Option<Vec<String>>,
    pub refresh_token_idle_ttl: Option<String>,
    pub refresh_token_absolute_ttl: Option<String>,
    /// RS256 (default), ES256 or EdDSA.
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// A JWK Set for private_key_jwt client authentication.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
}

impl ClientSettings {
    /// The `[[clients]]` table for these settings (secret keys are added by the caller).
    fn table(&self, client_id: &str) -> Result<toml::Table, ApiError> {
        let mut t = toml::Table::new();
        t.insert("client_id".into(), Value::String(client_id.into()));
        if let Some(n) = &self.client_name {
            t.insert("client_name".into(), Value::String(n.clone()));
        }
        t.insert("redirect_uris".into(), to_toml(&self.redirect_uris)?);
        t.insert("scopes".into(), to_toml(&self.scopes)?);
        if self.trusted {
            t.insert("trusted".into(), Value::Boolean(true));
        }
        if let Some(g) = &self.grant_types {
            t.insert("grant_types".into(), to_toml(g)?);
        }
        for (k, v) in [
            ("refresh_token_idle_ttl", &self.refresh_token_idle_ttl),
            (
                "refresh_token_absolute_ttl",
                &self.refresh_token_absolute_ttl,
            ),
        ] {
            if let Some(v) = v {
                t.insert(k.into(), Value::String(v.clone()));
            }
        }
        if let Some(alg) = &self.id_token_signed_response_alg {
            t.insert(
                "id_token_signed_response_alg".into(),
                Value::String(alg.clone()),
            );
        }
        if !self.post_logout_redirect_uris.is_empty() {
            t.insert(
                "post_logout_redirect_uris".into(),
                to_toml(&self.post_logout_redirect_uris)?,
            );
        }
        if let Some(jwks) = &self.jwks {
            t.insert("jwks".into(), to_toml(jwks)?);
        }
        Ok(t)
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
    /// RS256 (default), ES256 or EdDSA.
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// A JWK Set for private_key_jwt client authentication.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
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
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            jwks: self.jwks,
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

/// A client table for the audit log: everything but the secret hash.
fn client_audit(t: &toml::Table) -> Json_ {
    let mut t = t.clone();
    if t.remove("client_secret_hash").is_some() {
        t.insert(
            "client_secret_hash".into(),
            Value::String("[hashed]".into()),
        );
    }
    to_json(&Value::Table(t))
}

fn client_view(state: &AppState, client_id: &str) -> Result<ClientView, ApiError> {
    state
        .settings()
        .client(client_id)
        .map(|c| ClientView::of(c))
        .ok_or_else(|| ApiError::not_found(format!("no client `{client_id}`")))
}

/// Lists the clients, by client_id.
#[utoipa::path(get, path = "/admin/api/clients", tag = "configuration",
    responses((status = 200, body = Vec<ClientView>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn list_clients(_: Admin, State(state): State<AppState>) -> Json<Vec<ClientView>> {
    let settings = state.settings();
    let mut list: Vec<ClientView> = settings
        .clients
        .values()
        .map(|c| ClientView::of(c))
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
    admin: Admin,
    State(state): State<AppState>,
    Body(new): Body<NewClient>,
) -> Result<Response, ApiError> {
    let id = new.client_id.clone();
    // A client with a JWKS authenticates with private_key_jwt: no secret to generate.
    let secret = (!new.public && new.jwks.is_none()).then(random_token);
    let mut table = new.settings().table(&id)?;
    if let Some(s) = &secret {
        table.insert(
            "client_secret_hash".into(),
            Value::String(SecretHash::sha256(s).to_stored()),
        );
    }
    change(
        &state,
        &admin,
        "client.create",
        format!("client:{id}"),
        |doc| {
            if doc.entry("clients", "client_id", &id).is_some() {
                return Err(ApiError::conflict(format!(
                    "client `{id}` exists; PUT changes it"
                )));
            }
            let after = client_audit(&table);
            doc.array_mut("clients").push(Value::Table(table));
            Ok((None, Some(after)))
        },
    )
    .await?;
    let created = CreatedClient {
        client: client_view(&state, &id)?,
        client_secret: secret,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// One client.
#[utoipa::path(get, path = "/admin/api/clients/{client_id}", tag = "configuration",
    params(("client_id" = String, Path, description = "The client's id")),
    responses((status = 200, body = ClientView), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_client(
    _: Admin,
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
    admin: Admin,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    Body(settings): Body<ClientSettings>,
) -> Result<Json<ClientView>, ApiError> {
    let mut table = settings.table(&client_id)?;
    change(
        &state,
        &admin,
        "client.update",
        format!("client:{client_id}"),
        |doc| {
            let old = doc
                .entry_mut("clients", "client_id", &client_id)
                .ok_or_else(|| ApiError::not_found(format!("no client `{client_id}`")))?;
            let before = client_audit(old);
            for k in ["client_secret_hash", "client_secret_env", "client_secret"] {
                if let Some(v) = old.get(k) {
                    table.insert(k.into(), v.clone());
                }
            }
            let after = client_audit(&table);
            *old = table;
            Ok((Some(before), Some(after)))
        },
    )
    .await?;
    client_view(&state, &client_id).map(Json)
}

/// Removes a client.
#[utoipa::path(delete, path = "/admin/api/clients/{client_id}", tag = "configuration",
    params(("client_id" = String, Path, description = "The client's id")),
    responses((status = 204), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn delete_client(
    admin: Admin,
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    change(
        &state,
        &admin,
        "client.delete",
        format!("client:{client_id}"),
        |doc| {
            let clients = doc.array_mut("clients");
            let at = clients
                .iter()
                .position(|c| c.get("client_id").and_then(Value::as_str) == Some(&client_id))
                .ok_or_else(|| ApiError::not_found(format!("no client `{client_id}`")))?;
            let removed = clients.remove(at);
            let before = removed.as_table().map(client_audit);
            Ok((before, None))
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The custom scopes (`[scopes.NAME]`), including redefinitions of built-in ones.
#[utoipa::path(get, path = "/admin/api/scopes", tag = "configuration",
    responses((status = 200, body = BTreeMap<String, claims::ScopeDef>, description = "scope name → definition"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_scopes(_: Admin, State(state): State<AppState>) -> Result<Json<Json_>, ApiError> {
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
    admin: Admin,
    State(state): State<AppState>,
    Body(scopes): Body<BTreeMap<String, Json_>>,
) -> Result<Json<Json_>, ApiError> {
    let new = to_toml(&scopes)?;
    change(&state, &admin, "scopes.replace", "scopes".into(), |doc| {
        let before = doc.table().get("scopes").map(to_json);
        doc.table_mut().insert("scopes".into(), new.clone());
        Ok((before, Some(to_json(&new))))
    })
    .await?;
    Ok(Json(to_json(&new)))
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
    _: Admin,
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
pub async fn lineage(_: Admin, State(state): State<AppState>) -> Result<Json<Json_>, ApiError> {
    let settings = state.settings();
    let upstreams: Vec<(&str, &claims::UpstreamMapping)> = settings
        .upstreams
        .iter()
        .map(|u| (u.id.as_str(), &u.mapping))
        .collect();
    let rows = claims::lineage(&upstreams, &settings.scopes);
    serde_json::to_value(rows)
        .map(Json)
        .map_err(ApiError::internal)
}
