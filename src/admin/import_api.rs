//! `POST /admin/api/users/import`: profiles imported through an upstream's mappings, the way
//! `herald import` does from a file (see [`crate::profiles`]). For more than
//! [`MAX_USERS`] users at a time, use `herald import`.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiError, Body, ErrorBody};
use crate::profiles::{self, ImportOptions, ImportReport, LineOutcome};
use crate::state::AppState;
use crate::store::AuditEntry;
use crate::telemetry::events;

/// The most users one request imports.
pub const MAX_USERS: usize = 1000;

/// Profiles to import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    /// The upstream whose attributes and mappings the profiles go through.
    pub upstream: String,
    /// Create a user for a profile that matches nobody (otherwise it fails).
    #[serde(default)]
    pub allow_create: bool,
    /// Report what would change and store nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Each user's upstream-shaped claims: `{"id_token": {…}, "userinfo": {…}}`, or one flat
    /// object read as both, with the subject in `sub` (or Auth0's `user_id`).
    #[schema(value_type = Vec<Object>)]
    pub users: Vec<Value>,
}

/// Imports profiles: each through the upstream's mappings with their merge strategies against
/// the user's stored context; users are matched by identity, then by verified email when the
/// upstream links by it, and created only with `allow_create`.
#[utoipa::path(post, path = "/admin/api/users/import", tag = "users", request_body = ImportBody,
    responses((status = 200, body = ImportReport), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn import_users(
    admin: Admin,
    State(state): State<AppState>,
    Body(body): Body<ImportBody>,
) -> Result<Json<ImportReport>, ApiError> {
    let settings = state.settings();
    let upstream = settings.upstream(&body.upstream).ok_or_else(|| {
        ApiError::invalid_request(format!(
            "upstream: no upstream `{}` is configured",
            body.upstream
        ))
    })?;
    if body.users.len() > MAX_USERS {
        return Err(ApiError::invalid_request(format!(
            "users: at most {MAX_USERS} at a time; import more with `herald import`"
        )));
    }
    let opts = ImportOptions {
        allow_create: body.allow_create,
        dry_run: body.dry_run,
    };
    let mut report = ImportReport {
        dry_run: opts.dry_run,
        ..ImportReport::default()
    };
    for (i, user) in body.users.iter().enumerate() {
        let outcome = match user {
            Value::Object(line) => {
                profiles::import_line(&*state.store, upstream, line, opts, state.now()).await?
            }
            _ => LineOutcome::Failed("not a JSON object".into()),
        };
        report.record(i + 1, outcome);
    }
    if !opts.dry_run && report.created + report.updated > 0 {
        let target = format!("upstream:{}", upstream.id);
        events::admin_change(&admin.actor, "user.import", &target);
        state
            .store
            .append_audit(&AuditEntry {
                id: 0,
                at: state.now(),
                actor: admin.actor,
                action: "user.import".into(),
                target,
                before: None,
                after: Some(
                    json!({
                        "created": report.created,
                        "updated": report.updated,
                        "unchanged": report.unchanged,
                        "failed": report.failed,
                    })
                    .to_string(),
                ),
                config_version: None,
            })
            .await?;
    }
    Ok(Json(report))
}
