//! `DELETE /admin/api/users/{sub}`: erasure (issue 16). The user's profile, stored contexts,
//! grants, sessions and pending requests go, their codes and tokens are revoked, and their
//! consent records stay as evidence under a pseudonym (or go too, with `purge_records=true`);
//! `user.deleted` is emitted through the outbox in the same transaction, and the audit log
//! records who erased whom.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use utoipa::{IntoParams, ToSchema};

use super::audit::audit_user_action;
use super::auth::Admin;
use super::error::{ApiError, ErrorBody, Path, Query};
use super::users::known_user;
use crate::state::AppState;
use crate::tokens::random_token;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EraseParams {
    /// Delete the consent records too, instead of keeping them under a pseudonym.
    pub purge_records: Option<bool>,
}

/// What an erasure did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Erased {
    pub sub: String,
    /// `pseudonymised` (kept as evidence under `pseudonym`) or `purged`.
    pub consent_records: String,
    /// The sub the consent records are kept under; absent when purged.
    pub pseudonym: Option<String>,
    /// Browser sessions deleted from Redis (0 when sessions live in the database, where they
    /// go with the user).
    pub redis_sessions_deleted: u64,
}

/// Erases a user (right to erasure): see the module's description.
#[utoipa::path(delete, path = "/admin/api/users/{sub}", tag = "users", params(
        ("sub" = String, Path, description = "Herald's subject identifier"), EraseParams),
    responses((status = 200, body = Erased), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn erase_user(
    admin: Admin,
    State(state): State<AppState>,
    Path(sub): Path<String>,
    Query(p): Query<EraseParams>,
) -> Result<Json<Erased>, ApiError> {
    erase(&state, &admin, sub, p.purge_records.unwrap_or(false))
        .await
        .map(Json)
}

/// Erases `sub` for `admin`, the way the API and the user's admin page both do: see the
/// module's description.
pub async fn erase(
    state: &AppState,
    admin: &Admin,
    sub: String,
    purge: bool,
) -> Result<Erased, ApiError> {
    let now = state.now();
    known_user(state, &sub).await?;
    // Sessions in Redis are outside the database's transaction: deleted first, so a Redis that
    // cannot be reached fails the erasure before anything is erased, and a retry finishes it.
    let redis_sessions = match &state.redis_sessions {
        Some(r) => r.erase_user(&sub).await.map_err(|e| {
            ApiError::unavailable(format!(
                "the session store could not be reached, so nothing was erased; retry: {e}"
            ))
        })?,
        None => 0,
    };
    let pseudonym = (!purge).then(|| format!("erased-{}", random_token()));
    let mut data = Map::new();
    data.insert("sub".into(), json!(sub));
    let outbox = crate::outbox::rows(&state.settings().outbox, "user.deleted", data, None, now);
    // The apps the user's logins reached are owed logout tokens.
    let logouts = crate::login::ending::logouts(state);
    if !state
        .store
        .erase_user(&sub, now, pseudonym.as_deref(), &outbox, &logouts)
        .await?
    {
        return Err(ApiError::not_found(format!("no user `{sub}`")));
    }
    let records = if purge { "purged" } else { "pseudonymised" };
    audit_user_action(
        state,
        admin.actor.clone(),
        "user.erase",
        &sub,
        None,
        Some(json!({
            "consent_records": records,
            "pseudonym": pseudonym,
            "redis_sessions_deleted": redis_sessions,
        })),
    )
    .await?;
    Ok(Erased {
        sub,
        consent_records: records.into(),
        pseudonym,
        redis_sessions_deleted: redis_sessions,
    })
}
