//! Users before their first login, and the identities a user logs in with (Auth0's
//! `POST /api/v2/users` and `POST/DELETE /api/v2/users/{id}/identities`, in Herald's terms).
//!
//! An admin creates a user with their email (the first login whose upstream says that email
//! is verified joins them) or with the upstream identity they will log in with, so that an
//! upstream with `allow_signup = false` lets them in. Linking gives an existing user another
//! identity; unlinking takes one away, and its next login is a stranger's again.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::audit::audit_user_action;
use super::auth::Admin;
use super::error::{ApiError, Body, ErrorBody, Path};
use super::users::{Identity, UserDetail, known_user, user_detail};
use crate::state::AppState;
use crate::store::{CreateOutcome, EndLogins, LinkOutcome, NewUser, UserProfile};
use crate::tokens::hashing::random_token;

/// The longest email, subject or name accepted.
const MAX_LEN: usize = 320;

/// An upstream identity: the upstream's id in Herald and the subject it asserts.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityRef {
    /// The upstream's id in Herald's configuration.
    pub upstream: String,
    /// The subject (`sub`) the upstream asserts for the account, like `auth0|64f1…`.
    pub subject: String,
}

/// A user to create before their first login: an email, an identity, or both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// Their first login whose upstream says this email is verified joins them (unless
    /// `email_verified` is `false`).
    pub email: Option<String>,
    /// Whether the admin vouches for the email (default `true`); an unverified email is never
    /// linked to.
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub picture: Option<String>,
    /// The identity they will log in with, when it is known.
    pub identity: Option<IdentityRef>,
}

/// Checks an identity names a configured upstream and a plausible subject.
fn check_identity(state: &AppState, i: &IdentityRef) -> Result<(), ApiError> {
    if state.settings().upstream(&i.upstream).is_none() {
        return Err(ApiError::invalid_request(format!(
            "identity.upstream: no upstream `{}` is configured; GET /admin/api/upstreams lists them",
            i.upstream
        )));
    }
    if i.subject.trim().is_empty() || i.subject.len() > MAX_LEN {
        return Err(ApiError::invalid_request(
            "identity.subject: the subject the upstream asserts, 1 to 320 characters",
        ));
    }
    Ok(())
}

/// A text field of at most [`MAX_LEN`] characters, `None` when empty.
fn text(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    let value = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    if value.as_ref().is_some_and(|v| v.len() > MAX_LEN) {
        return Err(ApiError::invalid_request(format!(
            "{name}: at most {MAX_LEN} characters"
        )));
    }
    Ok(value)
}

/// Creates a user before their first login. Answers 201 with the user; 409 when the identity
/// belongs to a user already.
#[utoipa::path(post, path = "/admin/api/users", tag = "users", request_body = NewUserBody,
    responses((status = 201, body = UserDetail), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn create_user(
    admin: Admin,
    State(state): State<AppState>,
    Body(body): Body<NewUserBody>,
) -> Result<Response, ApiError> {
    let email = text("email", body.email)?;
    if email.as_ref().is_some_and(|e| !e.contains('@')) {
        return Err(ApiError::invalid_request(
            "email: an address like ann@example.com",
        ));
    }
    if let Some(i) = &body.identity {
        check_identity(&state, i)?;
    }
    if email.is_none() && body.identity.is_none() {
        return Err(ApiError::invalid_request(
            "give `email`, `identity`, or both: a user is found at their first login by one",
        ));
    }
    let user = NewUser {
        sub: random_token(),
        profile: UserProfile {
            email_verified: email.is_some() && body.email_verified.unwrap_or(true),
            email,
            name: text("name", body.name)?,
            picture: text("picture", body.picture)?,
            ip: None,
        },
        identity: body.identity.map(|i| (i.upstream, i.subject)),
        now: state.now(),
    };
    let user = match state.store.create_user(&user).await? {
        CreateOutcome::Created(user) => user,
        CreateOutcome::IdentityTaken(holder) => {
            return Err(ApiError::conflict(format!(
                "identity: it belongs to user `{holder}` already"
            )));
        }
    };
    let detail = user_detail(&state, user).await?;
    audit_user_action(
        &state,
        admin.actor,
        "user.create",
        &detail.sub,
        None,
        Some(json!({ "email": detail.email, "identities": detail.identities })),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(detail)).into_response())
}

/// Links an upstream identity to a user: logging in with it signs this user in. Answers 201
/// with the user's identities (200 when it was theirs already); 409 when another user holds
/// it.
#[utoipa::path(post, path = "/admin/api/users/{sub}/identities", tag = "users",
    params(("sub" = String, Path, description = "Herald's subject identifier")),
    request_body = IdentityRef,
    responses((status = 201, body = Vec<Identity>), (status = 200, body = Vec<Identity>),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
pub async fn link_identity(
    admin: Admin,
    State(state): State<AppState>,
    Path(sub): Path<String>,
    Body(identity): Body<IdentityRef>,
) -> Result<Response, ApiError> {
    check_identity(&state, &identity)?;
    let outcome = state
        .store
        .link_identity(&sub, &identity.upstream, &identity.subject, state.now())
        .await?;
    let status = match outcome {
        LinkOutcome::Linked => StatusCode::CREATED,
        LinkOutcome::AlreadyLinked => StatusCode::OK,
        LinkOutcome::NoUser => return Err(ApiError::not_found(format!("no user `{sub}`"))),
        LinkOutcome::TakenBy(holder) => {
            return Err(ApiError::conflict(format!(
                "the identity belongs to user `{holder}`; unlink it there first \
                 (DELETE /admin/api/users/{holder}/identities/{}/{})",
                identity.upstream, identity.subject
            )));
        }
    };
    if status == StatusCode::CREATED {
        audit_user_action(
            &state,
            admin.actor,
            "user.link",
            &sub,
            None,
            Some(json!({ "upstream": identity.upstream, "subject": identity.subject })),
        )
        .await?;
    }
    Ok((status, Json(identities(&state, &sub).await?)).into_response())
}

/// Unlinks an upstream identity from a user: its next login creates (or joins) a user as a
/// first login does. Answers with the identities the user keeps; 404 when it was not theirs.
#[utoipa::path(delete, path = "/admin/api/users/{sub}/identities/{upstream}/{subject}",
    tag = "users",
    params(("sub" = String, Path, description = "Herald's subject identifier"),
           ("upstream" = String, Path, description = "The upstream's id"),
           ("subject" = String, Path, description = "The subject at the upstream (URL-encoded)")),
    responses((status = 200, body = Vec<Identity>), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unlink_identity(
    admin: Admin,
    State(state): State<AppState>,
    Path((sub, upstream, subject)): Path<(String, String, String)>,
) -> Result<Json<Vec<Identity>>, ApiError> {
    Ok(Json(
        unlink(&state, &admin, &sub, &upstream, &subject).await?,
    ))
}

/// Unlinks `subject` at `upstream` from user `sub` for `admin`, the way the API and the user's
/// admin page both do (audited as `user.unlink`); the identities the user keeps.
pub async fn unlink(
    state: &AppState,
    admin: &Admin,
    sub: &str,
    upstream: &str,
    subject: &str,
) -> Result<Vec<Identity>, ApiError> {
    known_user(state, sub).await?;
    if !state.store.unlink_identity(sub, upstream, subject).await? {
        return Err(ApiError::not_found(format!(
            "user `{sub}` has no identity `{subject}` at upstream `{upstream}`"
        )));
    }
    // What was signed in through it ends with the link: no one keeps this user's access by an
    // account that is no longer theirs.
    let which = EndLogins {
        upstream_id: Some(upstream),
        subject: Some(subject),
        sub: Some(sub),
        ..EndLogins::default()
    };
    crate::login::ending::end_logins(state, &which).await?;
    audit_user_action(
        state,
        admin.actor.clone(),
        "user.unlink",
        sub,
        Some(json!({ "upstream": upstream, "subject": subject })),
        None,
    )
    .await?;
    identities(state, sub).await
}

async fn identities(state: &AppState, sub: &str) -> Result<Vec<Identity>, ApiError> {
    let settings = state.settings();
    Ok(state
        .store
        .identities(sub)
        .await?
        .iter()
        .map(|i| Identity::of(&settings, i))
        .collect())
}
