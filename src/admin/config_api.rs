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
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json_};
use toml::Value;
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiError, Body, ErrorBody, Path};
use crate::claims::{self, AccessTokenClaims, Attribute, Mapping, UpstreamClaims};
use crate::config::{Client, ClientAuth, ManagedConfig, Upstream, UpstreamKind};
use crate::consent;
use crate::state::AppState;
use crate::store::{AuditEntry, ConfigVersion, Removal};
use crate::tokens::SecretHash;
use crate::tokens::hashing::random_token;

/// Applies `edit` to the latest stored configuration and, when the result is valid, stores it as
/// the next version with an audit entry (`edit` returns the before and after states), ends what
/// `removals` were given in the same transaction, and puts it into effect on this replica.
/// Returns the new version.
pub(crate) async fn change(
    state: &AppState,
    admin: &Admin,
    action: &str,
    target: String,
    removals: &[Removal],
    edit: impl FnOnce(&mut ManagedConfig) -> Result<(Option<Json_>, Option<Json_>), ApiError>,
) -> Result<i64, ApiError> {
    let (latest, mut managed) = latest(state).await?;
    let (before, after) = edit(&mut managed)?;
    let settings = validated(state, &managed)?;
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
            removals,
        )
        .await?;
    state.apply_config(version, settings);
    Ok(version)
}

/// What [`change`] would put into effect, without storing it: the latest stored configuration
/// with `edit` applied, validated like `herald check-config`. The admin pages preview drafts.
pub(crate) async fn draft(
    state: &AppState,
    edit: impl FnOnce(&mut ManagedConfig) -> Result<(), ApiError>,
) -> Result<crate::config::Settings, ApiError> {
    let (_, mut managed) = latest(state).await?;
    edit(&mut managed)?;
    validated(state, &managed)
}

/// The latest stored configuration version, and its managed document parsed.
async fn latest(state: &AppState) -> Result<(ConfigVersion, ManagedConfig), ApiError> {
    live(state)?;
    let latest = state
        .store
        .latest_config()
        .await?
        .ok_or_else(|| ApiError::internal("no stored configuration"))?;
    let managed = ManagedConfig::parse(&latest.document)?;
    Ok((latest, managed))
}

/// The settings a managed document gives, validated like `herald check-config`.
fn validated(
    state: &AppState,
    managed: &ManagedConfig,
) -> Result<crate::config::Settings, ApiError> {
    Ok(live(state)?.settings(managed)?.0)
}

fn live(state: &AppState) -> Result<&crate::config::LiveConfig, ApiError> {
    state.live_config().ok_or_else(|| {
        ApiError::conflict(
            "this Herald runs without live configuration; change the configuration file",
        )
    })
}

pub(crate) fn to_toml<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    Value::try_from(v).map_err(|e| ApiError::invalid_request(format!("cannot be stored: {e}")))
}

pub(crate) fn to_json(v: &Value) -> Json_ {
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

/// Herald's own secrets, which no upstream may be told to send (`client_secret_env` would
/// otherwise let an admin post them to a provider of their choosing).
const HERALD_SECRET_VARIABLES: [&str; 2] = ["HERALD_KEY_ENCRYPTION_KEY", "HERALD_ADMIN_TOKEN"];

/// The names of environment variables the admin API may point an upstream's secret at.
pub const UPSTREAM_SECRET_PREFIX: &str = "HERALD_UPSTREAM_";

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
    /// The URL to register at the upstream as Herald's callback.
    pub callback_url: String,
    pub client_id: String,
    /// Where Herald's client secret at this upstream comes from: `env` (the variable named by
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
    pub attributes: Vec<Attribute>,
    pub mappings: Vec<Mapping>,
}

impl UpstreamDetail {
    fn of(u: &Upstream, herald_issuer: &str) -> Self {
        let domain = (u.kind == UpstreamKind::Auth0).then(|| {
            let issuer = u.endpoint.issuer.as_str();
            let host = issuer.strip_prefix("https://").unwrap_or(issuer);
            host.trim_end_matches('/').to_string()
        });
        let client_secret_source = match (&u.client_secret, &u.client_secret_env) {
            (None, _) => "none",
            (Some(_), Some(_)) => "env",
            (Some(_), None) => "file",
        };
        Self {
            id: u.id.clone(),
            kind: u.kind,
            display_name: u.display_name.clone(),
            domain,
            issuer: u.endpoint.issuer.clone(),
            callback_url: format!("{herald_issuer}/callback/{}", u.id),
            client_id: u.client_id.clone(),
            client_secret_source: client_secret_source.into(),
            client_secret_env: u.client_secret_env.clone(),
            scopes: u.scopes.clone(),
            userinfo: u.userinfo,
            logout: u.logout,
            extra_authorize_params: u.extra_authorize_params.clone(),
            amr: u.mapping.amr.clone(),
            auth_context_ttl: u
                .auth_context_ttl
                .map(|d| humantime::format_duration(d).to_string()),
            attributes: u.mapping.attributes.clone(),
            mappings: u.mapping.mappings.clone(),
        }
    }
}

/// An upstream's settings as written; the keys mean what they mean in the file's
/// `[[upstreams]]`. Herald stores no secret: its client secret at the upstream stays in an
/// environment variable of every replica, named by `client_secret_env`, and an inline
/// `client_secret` is refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    /// Required to create an upstream (letters, digits, `-`, `_`; it appears in the callback
    /// URL). When replacing one it may be repeated, and must then match the path.
    pub id: Option<String>,
    pub kind: UpstreamKind,
    /// Shown on the chooser page when there are several upstreams.
    pub display_name: Option<String>,
    /// kind = auth0: the tenant's domain without protocol, like `example.eu.auth0.com`.
    pub domain: Option<String>,
    /// kind = oidc: the issuer exactly as the provider's discovery document states it.
    pub issuer: Option<String>,
    /// The client ID Herald has at the upstream (kind = dev: default `herald`).
    pub client_id: Option<String>,
    /// The environment variable holding Herald's client secret at the upstream; every replica
    /// must have it set. When replacing an upstream, absent keeps the current one.
    pub client_secret_env: Option<String>,
    /// Refused with a 400 that says what to do instead; present only to be recognised.
    #[schema(ignore)]
    pub client_secret: Option<IgnoredAny>,
    /// Default `["openid", "profile", "email"]`; must contain `openid`.
    pub scopes: Option<Vec<String>>,
    /// Fetch userinfo after the login.
    #[serde(default)]
    pub userinfo: bool,
    /// End the upstream session too on logout.
    #[serde(default)]
    pub logout: bool,
    #[serde(default)]
    pub extra_authorize_params: BTreeMap<String, String>,
    /// `amr` written into Herald's tokens for logins through this upstream.
    pub amr: Option<Vec<String>>,
    /// How long a login's authentication context is reused, like `10m`.
    pub auth_context_ttl: Option<String>,
    /// Replace the attributes. Absent: none for a new upstream; kept when replacing one (they
    /// also have their own endpoint).
    pub attributes: Option<Vec<Attribute>>,
    /// Replace the mappings; absent: as for `attributes`.
    pub mappings: Option<Vec<Mapping>>,
}

impl UpstreamSettings {
    /// Refuses what the stored configuration must never hold: a plaintext secret, or a
    /// reference to one of Herald's own secrets.
    fn check_secrets(&self) -> Result<(), ApiError> {
        if self.client_secret.is_some() {
            return Err(ApiError::invalid_request(
                "client_secret: Herald never stores secrets, and an upstream's secret cannot \
                 be kept as a hash because Herald must send it to the upstream. Set it in an \
                 environment variable on every Herald replica and name that variable in \
                 client_secret_env instead, for example \"client_secret_env\": \
                 \"AUTH0_CLIENT_SECRET\".",
            ));
        }
        if let Some(name) = self.client_secret_env.as_deref()
            && HERALD_SECRET_VARIABLES.contains(&name)
        {
            return Err(ApiError::invalid_request(format!(
                "client_secret_env: `{name}` holds one of Herald's own secrets, which must never \
                 be sent to an upstream; name the variable that holds Herald's client secret at \
                 this upstream"
            )));
        }
        Ok(())
    }

    /// A variable named through the API must be one set aside for upstream secrets, so the API
    /// cannot have Herald send any other variable of its process (a database password, say) to
    /// a server of the caller's choosing. `current` (the name the upstream has now) may stay.
    fn check_secret_variable(&self, current: Option<&str>) -> Result<(), ApiError> {
        match self.client_secret_env.as_deref() {
            Some(name) if Some(name) != current && !name.starts_with(UPSTREAM_SECRET_PREFIX) => {
                Err(ApiError::invalid_request(format!(
                    "client_secret_env: `{name}` does not start with {UPSTREAM_SECRET_PREFIX}; \
                     through the admin API Herald reads upstream secrets only from variables \
                     named so (for example {UPSTREAM_SECRET_PREFIX}AUTH0), so that no other \
                     variable of its process can be sent to an upstream. Variables named in the \
                     configuration file are not limited."
                )))
            }
            _ => Ok(()),
        }
    }

    /// The `[[upstreams]]` table for these settings.
    fn table(&self, id: &str) -> Result<toml::Table, ApiError> {
        let mut t = toml::Table::new();
        t.insert("id".into(), Value::String(id.into()));
        t.insert("kind".into(), to_toml(&self.kind)?);
        for (k, v) in [
            ("display_name", &self.display_name),
            ("domain", &self.domain),
            ("issuer", &self.issuer),
            ("client_id", &self.client_id),
            ("client_secret_env", &self.client_secret_env),
            ("auth_context_ttl", &self.auth_context_ttl),
        ] {
            if let Some(v) = v {
                t.insert(k.into(), Value::String(v.clone()));
            }
        }
        if let Some(scopes) = &self.scopes {
            t.insert("scopes".into(), to_toml(scopes)?);
        }
        for (k, on) in [("userinfo", self.userinfo), ("logout", self.logout)] {
            if on {
                t.insert(k.into(), Value::Boolean(true));
            }
        }
        if !self.extra_authorize_params.is_empty() {
            t.insert(
                "extra_authorize_params".into(),
                to_toml(&self.extra_authorize_params)?,
            );
        }
        if let Some(amr) = &self.amr {
            t.insert("amr".into(), to_toml(amr)?);
        }
        if let Some(a) = &self.attributes {
            t.insert("attributes".into(), to_toml(a)?);
        }
        if let Some(m) = &self.mappings {
            t.insert("mappings".into(), to_toml(m)?);
        }
        Ok(t)
    }
}

fn upstream_detail(state: &AppState, id: &str) -> Result<UpstreamDetail, ApiError> {
    let settings = state.settings();
    settings
        .upstream(id)
        .map(|u| UpstreamDetail::of(u, &settings.issuer))
        .ok_or_else(|| ApiError::not_found(format!("no upstream `{id}`")))
}

/// Adds an upstream; refused with check-config's messages when invalid.
#[utoipa::path(post, path = "/admin/api/upstreams", tag = "configuration",
    request_body = UpstreamSettings,
    responses((status = 201, body = UpstreamDetail), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn create_upstream(
    admin: Admin,
    State(state): State<AppState>,
    Body(new): Body<UpstreamSettings>,
) -> Result<Response, ApiError> {
    new.check_secrets()?;
    new.check_secret_variable(None)?;
    let Some(id) = new.id.clone() else {
        return Err(ApiError::invalid_request(
            "id: required; the upstream's id appears in its callback URL, like \"auth0\"",
        ));
    };
    let table = new.table(&id)?;
    change(
        &state,
        &admin,
        "upstream.create",
        format!("upstream:{id}"),
        &[],
        |doc| {
            if doc.entry("upstreams", "id", &id).is_some() {
                return Err(ApiError::conflict(format!(
                    "upstream `{id}` exists; PUT changes it"
                )));
            }
            let after = to_json(&Value::Table(table.clone()));
            doc.array_mut("upstreams").push(Value::Table(table));
            Ok((None, Some(after)))
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(upstream_detail(&state, &id)?)).into_response())
}

/// One upstream.
#[utoipa::path(get, path = "/admin/api/upstreams/{id}", tag = "configuration",
    params(("id" = String, Path, description = "The upstream's id")),
    responses((status = 200, body = UpstreamDetail), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_upstream(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<UpstreamDetail>, ApiError> {
    upstream_detail(&state, &id).map(Json)
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
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(settings): Body<UpstreamSettings>,
) -> Result<Json<UpstreamDetail>, ApiError> {
    settings.check_secrets()?;
    if let Some(other) = settings.id.as_deref().filter(|i| *i != id) {
        return Err(ApiError::invalid_request(format!(
            "id: `{other}` differs from the path's `{id}`; an upstream's id cannot be changed \
             (create the new one, then delete the old one)"
        )));
    }
    let mut table = settings.table(&id)?;
    change(
        &state,
        &admin,
        "upstream.update",
        format!("upstream:{id}"),
        &[],
        |doc| {
            let old = doc
                .entry_mut("upstreams", "id", &id)
                .ok_or_else(|| ApiError::not_found(format!("no upstream `{id}`")))?;
            let before = to_json(&Value::Table(old.clone()));
            settings.check_secret_variable(old.get("client_secret_env").and_then(Value::as_str))?;
            // The secret variable stays only while the upstream stays the same provider: it
            // must never follow the upstream to another issuer.
            let same_provider = ["kind", "issuer", "domain"]
                .iter()
                .all(|k| old.get(*k) == table.get(*k));
            let kept: &[&str] = if same_provider {
                &["client_secret_env", "attributes", "mappings"]
            } else {
                &["attributes", "mappings"]
            };
            for k in kept {
                if !table.contains_key(*k)
                    && let Some(v) = old.get(*k)
                {
                    table.insert((*k).into(), v.clone());
                }
            }
            let after = to_json(&Value::Table(table.clone()));
            *old = table;
            Ok((Some(before), Some(after)))
        },
    )
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
    admin: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    change(
        &state,
        &admin,
        "upstream.delete",
        format!("upstream:{id}"),
        &[Removal::Upstream {
            upstream_id: id.clone(),
        }],
        |doc| {
            let upstreams = doc.array_mut("upstreams");
            let at = upstreams
                .iter()
                .position(|u| u.get("id").and_then(Value::as_str) == Some(&id))
                .ok_or_else(|| ApiError::not_found(format!("no upstream `{id}`")))?;
            let removed = upstreams.remove(at);
            Ok((Some(to_json(&removed)), None))
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
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
        &[],
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
    /// How long a rotated refresh token may be used once more, e.g. `0s` (strict).
    pub refresh_token_grace_period: String,
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
            refresh_token_grace_period: ttl(c.refresh_token_grace_period),
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
    /// How long a rotated refresh token may be used once more (default `0s`, at most `5m`).
    pub refresh_token_grace_period: Option<String>,
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
            (
                "refresh_token_grace_period",
                &self.refresh_token_grace_period,
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
    /// How long a rotated refresh token may be used once more (default `0s`, at most `5m`).
    pub refresh_token_grace_period: Option<String>,
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
            refresh_token_grace_period: self.refresh_token_grace_period,
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
    let (client_id, public) = (new.client_id.clone(), new.public);
    let created = register_client(&state, &admin, &client_id, public, new.settings()).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Registers a client (API and admin pages): a confidential one gets a generated secret, which
/// the answer carries this once.
pub(crate) async fn register_client(
    state: &AppState,
    admin: &Admin,
    id: &str,
    public: bool,
    settings: ClientSettings,
) -> Result<CreatedClient, ApiError> {
    // A client with a JWKS authenticates with private_key_jwt: no secret to generate.
    let secret = (!public && settings.jwks.is_none()).then(random_token);
    let mut table = settings.table(id)?;
    table.insert("registered_at".into(), Value::Integer(state.now()));
    if let Some(s) = &secret {
        table.insert(
            "client_secret_hash".into(),
            Value::String(SecretHash::sha256(s).to_stored()),
        );
    }
    change(
        state,
        admin,
        "client.create",
        format!("client:{id}"),
        &[],
        |doc| {
            if doc.entry("clients", "client_id", id).is_some() {
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
    Ok(CreatedClient {
        client: client_view(state, id)?,
        client_secret: secret,
    })
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
    update_client(&state, &admin, &client_id, settings).await?;
    client_view(&state, &client_id).map(Json)
}

/// Replaces a client's settings (API and admin pages); its secret (or public status) stays.
pub(crate) async fn update_client(
    state: &AppState,
    admin: &Admin,
    client_id: &str,
    settings: ClientSettings,
) -> Result<i64, ApiError> {
    let mut table = settings.table(client_id)?;
    change(
        state,
        admin,
        "client.update",
        format!("client:{client_id}"),
        &[],
        |doc| {
            let old = doc
                .entry_mut("clients", "client_id", client_id)
                .ok_or_else(|| ApiError::not_found(format!("no client `{client_id}`")))?;
            let before = client_audit(old);
            for k in [
                "client_secret_hash",
                "client_secret_env",
                "client_secret",
                "registered_at",
            ] {
                if let Some(v) = old.get(k) {
                    table.insert(k.into(), v.clone());
                }
            }
            let after = client_audit(&table);
            *old = table;
            Ok((Some(before), Some(after)))
        },
    )
    .await
}

/// Removes a client. What it was given ends with it: its codes are burned, its refresh and
/// access tokens revoked, and its grants deleted, each with a consent record (method `admin`).
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
    remove_client(&state, &admin, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a client (API and admin pages).
pub(crate) async fn remove_client(
    state: &AppState,
    admin: &Admin,
    client_id: &str,
) -> Result<i64, ApiError> {
    change(
        state,
        admin,
        "client.delete",
        format!("client:{client_id}"),
        &[Removal::Client {
            client_id: client_id.to_string(),
            consent_method: consent::ADMIN_METHOD.into(),
            record_id_prefix: consent::record_id_prefix(),
        }],
        |doc| {
            let clients = doc.array_mut("clients");
            let at = clients
                .iter()
                .position(|c| c.get("client_id").and_then(Value::as_str) == Some(client_id))
                .ok_or_else(|| ApiError::not_found(format!("no client `{client_id}`")))?;
            let removed = clients.remove(at);
            let before = removed.as_table().map(client_audit);
            Ok((before, None))
        },
    )
    .await
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
    change(
        &state,
        &admin,
        "scopes.replace",
        "scopes".into(),
        &[],
        |doc| {
            let before = doc.table().get("scopes").map(to_json);
            doc.table_mut().insert("scopes".into(), new.clone());
            Ok((before, Some(to_json(&new))))
        },
    )
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
