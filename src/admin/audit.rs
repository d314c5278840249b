//! The audit log: every admin change with who, when, what and the state before and after,
//! newest first. Append-only in the database (triggers refuse updates and deletes).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::ConfigReader;
use super::error::{ApiError, ErrorBody, Query};
use crate::clock::rfc3339_utc;
use crate::state::AppState;
use crate::store::{AuditEntry, AuditFilter};
use crate::telemetry::events;

/// Logs and audits an admin action on the user `sub` (target `user:{sub}`), with the state
/// before and after it where there is one.
pub(crate) async fn audit_user_action(
    state: &AppState,
    actor: String,
    action: &str,
    sub: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<(), ApiError> {
    audit_action(state, actor, action, format!("user:{sub}"), before, after).await
}

/// Logs and audits an admin action outside the configuration on `target` (like `user:{sub}`),
/// with the state before and after it where there is one.
pub(crate) async fn audit_action(
    state: &AppState,
    actor: String,
    action: &str,
    target: String,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<(), ApiError> {
    events::admin_change(&actor, action, &target);
    state
        .store
        .append_audit(&AuditEntry {
            id: 0,
            at: state.now(),
            actor,
            action: action.into(),
            target,
            before: before.map(|v| v.to_string()),
            after: after.map(|v| v.to_string()),
            config_version: None,
        })
        .await?;
    Ok(())
}

/// Filters of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only changes by this actor (`bootstrap-token`, `client:{client_id}`).
    pub actor: Option<String>,
    /// Only changes to this target (`client:{client_id}`, `upstream:{id}`, `scopes`,
    /// `user:{sub}`).
    pub target: Option<String>,
    /// Only changes at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Only entries older than this id (the next page).
    pub before_id: Option<i64>,
    /// At most this many entries, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// One admin change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub at: i64,
    pub at_utc: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The configuration version the change produced.
    pub config_version: Option<i64>,
}

impl AuditView {
    fn of(e: AuditEntry) -> Self {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Self {
            id: e.id,
            at: e.at,
            at_utc: rfc3339_utc(e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            before: parse(e.before),
            after: parse(e.after),
            config_version: e.config_version,
        }
    }
}

/// Admin changes, newest first.
#[utoipa::path(get, path = "/admin/api/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = Vec<AuditView>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_audit(
    _: ConfigReader,
    State(state): State<AppState>,
    Query(p): Query<AuditParams>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid_request("limit: between 1 and 500"));
    }
    let entries = state
        .store
        .audit_entries(&AuditFilter {
            actor: p.actor,
            target: p.target,
            since: p.since,
            before_id: p.before_id,
            limit,
        })
        .await?;
    Ok(Json(entries.into_iter().map(AuditView::of).collect()))
}
