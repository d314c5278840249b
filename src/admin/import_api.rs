//! Profiles coming in: `POST /admin/api/users/import` imports them through an upstream's
//! mappings, the way `herald import` does from a file (see [`crate::profiles`]; for more than
//! [`MAX_USERS`] users at a time, use `herald import`), and `POST /admin/api/users/{sub}/refresh`
//! re-reads one user from the upstream now.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::audit::{audit_action, audit_user_action};
use super::auth::Admin;
use super::error::{ApiError, Body, ErrorBody, Path};
use super::users::known_user;
use crate::claims::AuthContext;
use crate::config::UpstreamKind;
use crate::login::Stale;
use crate::profiles::management_api::ManagementApi;
use crate::profiles::{self, ImportOptions, ImportReport, LineOutcome};
use crate::state::AppState;

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
        let outcome =
            profiles::import_line(&*state.store, &settings, upstream, user, opts, state.now())
                .await?;
        report.record(i + 1, outcome);
    }
    if !opts.dry_run && report.created + report.updated > 0 {
        let counts = json!({
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "failed": report.failed,
        });
        let target = format!("upstream:{}", upstream.id);
        audit_action(
            &state,
            admin.actor,
            "user.import",
            target,
            None,
            Some(counts),
        )
        .await?;
    }
    Ok(Json(report))
}

/// How a user's profile was re-read.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Refetched {
    /// `refresh_token` (the user's newest live login, refreshed at its upstream) or
    /// `management_api` (Auth0's record of the user).
    pub source: String,
    pub upstream: String,
    /// The attributes whose values changed.
    pub changed: Vec<String>,
}

/// Re-reads one user from the upstream now and re-maps them: a target for "this profile
/// changed" webhooks. The newest live login with an upstream refresh token is refreshed
/// there (its next tokens carry the new values); otherwise an identity at an Auth0 upstream is
/// read from the Management API into the stored context.
#[utoipa::path(post, path = "/admin/api/users/{sub}/refresh", tag = "users",
    params(("sub" = String, Path, description = "Herald's subject identifier")),
    responses((status = 200, body = Refetched), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn refresh_user(
    admin: Admin,
    State(state): State<AppState>,
    Path(sub): Path<String>,
) -> Result<Json<Refetched>, ApiError> {
    known_user(&state, &sub).await?;
    let settings = state.settings();
    let held = state.store.user_holdings(&sub).await?;
    let refreshable = held.contexts.into_iter().rev().find(|c| {
        c.revoked_at.is_none()
            && c.upstream_refresh.is_some()
            && settings
                .upstream(&c.upstream_id)
                .is_some_and(|u| u.refresh_upstream)
    });
    let refetched = match refreshable {
        Some(ctx) => {
            let before: Option<AuthContext> = serde_json::from_str(&ctx.context).ok();
            let upstream = ctx.upstream_id.clone();
            let fresh = match crate::login::freshness::refresh_now(&state, ctx).await {
                Ok(fresh) => fresh,
                Err(Stale::Refused(why)) => {
                    return Err(ApiError::conflict(format!(
                        "the identity provider refused to refresh this user's login, which has \
                         ended: {why}"
                    )));
                }
                Err(Stale::Unavailable(why)) => return Err(ApiError::unavailable(why)),
            };
            let after: AuthContext = serde_json::from_str(&fresh.context)
                .map_err(|e| ApiError::internal(format!("the refreshed context: {e}")))?;
            Refetched {
                source: "refresh_token".into(),
                upstream,
                changed: profiles::changed_names(before.as_ref(), &after),
            }
        }
        None => from_management_api(&state, &sub).await?,
    };
    audit_user_action(
        &state,
        admin.actor,
        "user.refresh",
        &sub,
        None,
        Some(json!({ "source": refetched.source, "changed": refetched.changed })),
    )
    .await?;
    Ok(Json(refetched))
}

/// The user's record at an Auth0 upstream they have an identity at, imported.
async fn from_management_api(state: &AppState, sub: &str) -> Result<Refetched, ApiError> {
    let settings = state.settings();
    let identities = state.store.identities(sub).await?;
    let Some((up, subject)) = identities.iter().find_map(|i| {
        settings
            .upstream(&i.upstream_id)
            .filter(|u| u.kind == UpstreamKind::Auth0)
            .map(|u| (u, i.subject.as_str()))
    }) else {
        return Err(ApiError::conflict(
            "Herald has no way to re-read this user: no live login of theirs holds an upstream \
             refresh token (refresh_upstream), and none of their identities is at an Auth0 \
             upstream, whose Management API could be asked",
        ));
    };
    let api = ManagementApi::for_upstream(up).map_err(ApiError::conflict)?;
    let token = api.token().await.map_err(ApiError::unavailable)?;
    let profile = api
        .user(&token, subject)
        .await
        .map_err(ApiError::unavailable)?;
    let changed = match profiles::import_line(
        &*state.store,
        &settings,
        up,
        &Value::Object(profile),
        ImportOptions::default(),
        state.now(),
    )
    .await?
    {
        LineOutcome::Updated { changed, .. } => changed,
        LineOutcome::Unchanged { .. } | LineOutcome::Created { .. } => Vec::new(),
        LineOutcome::Failed(why) => {
            return Err(ApiError::conflict(format!(
                "the Management API's record of the user was refused: {why}"
            )));
        }
    };
    Ok(Refetched {
        source: "management_api".into(),
        upstream: up.id.clone(),
        changed,
    })
}
