//! Users Herald has seen: the list (paged, searched, filtered, projected), one user with their
//! upstream identity, last login and grants, their consent records, and withdrawing a grant for
//! them (recorded as consent method `admin` and in the audit log).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::audit::audit_user_action;
use super::auth::{Admin, UserReader};
use super::error::{ApiError, Body, ErrorBody, Path, Query};
use crate::consent::{self, ExportedRecord};
use crate::state::AppState;
use crate::store::{User, UserQuery, UserSort};

const MAX_PER_PAGE: i64 = 100;
/// The last page a list may ask for, so `page * per_page` stays far from overflowing.
const MAX_PAGE: i64 = 1_000_000;

/// Query parameters of the user list (the conventions of Auth0's Management API).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserListParams {
    /// Page number, from 0 to 1,000,000.
    #[param(minimum = 0, maximum = 1000000)]
    pub page: Option<i64>,
    /// Users per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
    /// `true`: answer `{users, start, limit, length, total}`; otherwise a bare list.
    pub include_totals: Option<bool>,
    /// `field:1` (ascending) or `field:-1` (descending); field is `last_login_at`,
    /// `created_at` or `sub`. Default `last_login_at:-1`.
    pub sort: Option<String>,
    /// Case-insensitive part of the user's `sub`, upstream subject, email or name.
    pub q: Option<String>,
    /// Only users of this upstream.
    pub upstream: Option<String>,
    /// Comma-separated fields to include (or, with `include_fields=false`, to leave out).
    pub fields: Option<String>,
    /// Whether `fields` lists the fields to include (default) or to leave out.
    pub include_fields: Option<bool>,
}

/// A user in the list. With `fields`, only the fields it chooses are present.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Herald's subject identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub sub: Option<String>,
    /// The upstream of the identity the user was created with (`null` for a user created
    /// without one); `GET /admin/api/users/{sub}` lists all their identities.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub upstream: Option<Option<String>>,
    /// The user's subject at that upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub upstream_subject: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64)]
    pub created_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64)]
    pub last_login_at: Option<i64>,
    /// The email the last login carried (`null` when it carried none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub picture: Option<Option<String>>,
    /// The address of the last login.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub last_ip: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = i64)]
    pub logins_count: Option<i64>,
    /// Refused at login until an admin lifts it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool)]
    pub blocked: Option<bool>,
}

impl UserView {
    /// The user's fields that `keep` keeps.
    fn of(u: &User, keep: impl Fn(&str) -> bool) -> Self {
        Self {
            sub: keep("sub").then(|| u.sub.clone()),
            upstream: keep("upstream").then(|| u.first_identity().map(|(up, _)| up.to_string())),
            upstream_subject: keep("upstream_subject")
                .then(|| u.first_identity().map(|(_, subject)| subject.to_string())),
            created_at: keep("created_at").then_some(u.created_at),
            last_login_at: keep("last_login_at").then_some(u.last_login_at),
            email: keep("email").then(|| u.email.clone()),
            email_verified: keep("email_verified").then_some(u.email_verified),
            name: keep("name").then(|| u.name.clone()),
            picture: keep("picture").then(|| u.picture.clone()),
            last_ip: keep("last_ip").then(|| u.last_ip.clone()),
            logins_count: keep("logins_count").then_some(u.logins_count),
            blocked: keep("blocked").then_some(u.blocked),
        }
    }
}

/// The user list: a bare list, or with `include_totals=true` a page with totals.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UserList {
    Users(Vec<UserView>),
    Page(UserPage),
}

/// A page of users with totals (Auth0's `include_totals`).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserView>,
    /// The index of the first user on this page.
    pub start: i64,
    /// `per_page`.
    pub limit: i64,
    /// Users on this page.
    pub length: usize,
    /// Users matching the query on all pages.
    pub total: i64,
}

fn parse_sort(raw: Option<&str>) -> Result<UserSort, ApiError> {
    let Some(raw) = raw else {
        return Ok(UserSort::default());
    };
    Ok(match raw {
        "last_login_at:-1" => UserSort::LastLoginDesc,
        "last_login_at:1" => UserSort::LastLoginAsc,
        "created_at:-1" => UserSort::CreatedDesc,
        "created_at:1" => UserSort::CreatedAsc,
        "sub:1" => UserSort::SubAsc,
        "sub:-1" => UserSort::SubDesc,
        _ => {
            return Err(ApiError::invalid_request(
                "sort: write `field:1` or `field:-1` with field last_login_at, created_at or sub",
            ));
        }
    })
}

/// Whether a user field is shown, given `fields` and `include_fields`.
fn field_filter(fields: Option<&str>, include: bool) -> impl Fn(&str) -> bool {
    let names: Option<Vec<String>> = fields.map(|f| {
        f.split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect()
    });
    move |field| {
        names
            .as_ref()
            .is_none_or(|n| n.iter().any(|x| x == field) == include)
    }
}

/// Users Herald has seen, newest login first by default.
#[utoipa::path(get, path = "/admin/api/users", tag = "users", params(UserListParams),
    responses((status = 200, description = "a list of users, or with include_totals a page with totals", body = UserList),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)))]
pub async fn list_users(
    _: UserReader,
    State(state): State<AppState>,
    Query(p): Query<UserListParams>,
) -> Result<Json<UserList>, ApiError> {
    let per_page = p.per_page.unwrap_or(50);
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::invalid_request("per_page: between 1 and 100"));
    }
    let page = p.page.unwrap_or(0);
    if !(0..=MAX_PAGE).contains(&page) {
        return Err(ApiError::invalid_request("page: from 0 to 1000000"));
    }
    let query = UserQuery {
        search: p.q.filter(|q| !q.is_empty()),
        upstream_id: p.upstream,
        sort: parse_sort(p.sort.as_deref())?,
        offset: page * per_page,
        limit: per_page,
    };
    let (users, total) = state.store.list_users(&query).await?;
    let keep = field_filter(p.fields.as_deref(), p.include_fields.unwrap_or(true));
    let users: Vec<UserView> = users.iter().map(|u| UserView::of(u, &keep)).collect();
    Ok(Json(if p.include_totals.unwrap_or(false) {
        UserList::Page(UserPage {
            length: users.len(),
            users,
            start: query.offset,
            limit: per_page,
            total,
        })
    } else {
        UserList::Users(users)
    }))
}

/// A grant a user gave an app.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantView {
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub granted_at: i64,
    pub updated_at: i64,
}

/// One user: their profile, linked upstream identities, last login and grants. With `fields`,
/// only the fields it chooses are present.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetail {
    #[schema(required = false)]
    pub sub: String,
    /// The identity the user was created with; `null` for a user created without one (or whose
    /// first identity was unlinked).
    #[schema(required = false)]
    pub identity: Option<Identity>,
    /// Every upstream identity linked to the user (Auth0's `identities`), oldest first.
    #[schema(required = false)]
    pub identities: Vec<Identity>,
    #[schema(required = false)]
    pub created_at: i64,
    #[schema(required = false)]
    pub last_login_at: i64,
    #[schema(required = false)]
    pub last_login_at_utc: String,
    #[schema(required = false)]
    pub email: Option<String>,
    #[schema(required = false)]
    pub email_verified: bool,
    #[schema(required = false)]
    pub name: Option<String>,
    #[schema(required = false)]
    pub picture: Option<String>,
    #[schema(required = false)]
    pub last_ip: Option<String>,
    #[schema(required = false)]
    pub logins_count: i64,
    #[schema(required = false)]
    pub blocked: bool,
    #[schema(required = false)]
    pub grants: Vec<GrantView>,
}

/// An upstream account linked to a Herald user: logging in with it signs that user in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Identity {
    pub upstream: String,
    /// The upstream's display name, when it is still configured.
    pub upstream_name: Option<String>,
    pub subject: String,
    /// For an Auth0 upstream, the connection the subject names (`google-oauth2` in
    /// `google-oauth2|123`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// When it was linked (the user's creation, for the first).
    pub linked_at: i64,
}

impl Identity {
    pub fn of(settings: &crate::config::Settings, i: &crate::store::LinkedIdentity) -> Self {
        let upstream = settings.upstream(&i.upstream_id);
        Identity {
            upstream_name: upstream.map(|u| u.display_name.clone()),
            connection: upstream
                .filter(|u| u.kind == crate::config::UpstreamKind::Auth0)
                .and_then(|_| i.subject.split_once('|'))
                .map(|(c, _)| c.to_string()),
            upstream: i.upstream_id.clone(),
            subject: i.subject.clone(),
            linked_at: i.linked_at,
        }
    }
}

/// Query parameters of one user.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UserFieldsParams {
    /// Comma-separated fields to include (or, with `include_fields=false`, to leave out).
    pub fields: Option<String>,
    /// Whether `fields` lists the fields to include (default) or to leave out.
    pub include_fields: Option<bool>,
}

/// The user `sub`, or 404.
pub(super) async fn known_user(state: &AppState, sub: &str) -> Result<User, ApiError> {
    state
        .store
        .user(sub)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user `{sub}`")))
}

/// One user, with their identities, last login and grants; `fields` and `include_fields`
/// choose fields as on the list.
#[utoipa::path(get, path = "/admin/api/users/{sub}", tag = "users",
    params(("sub" = String, Path, description = "Herald's subject identifier"), UserFieldsParams),
    responses((status = 200, body = UserDetail), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn get_user(
    _: UserReader,
    State(state): State<AppState>,
    Path(sub): Path<String>,
    Query(p): Query<UserFieldsParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let detail = user_detail(&state, known_user(&state, &sub).await?).await?;
    let mut value = serde_json::to_value(detail)
        .map_err(|e| ApiError::internal(format!("the user could not be written out: {e}")))?;
    let keep = field_filter(p.fields.as_deref(), p.include_fields.unwrap_or(true));
    if let serde_json::Value::Object(map) = &mut value {
        map.retain(|field, _| keep(field));
    }
    Ok(Json(value))
}

/// User `user` in full, with their identities and grants.
pub(super) async fn user_detail(state: &AppState, user: User) -> Result<UserDetail, ApiError> {
    let sub = user.sub.clone();
    let settings = state.settings();
    let identities: Vec<Identity> = state
        .store
        .identities(&sub)
        .await?
        .iter()
        .map(|i| Identity::of(&settings, i))
        .collect();
    let identity = user.first_identity().and_then(|(upstream, subject)| {
        identities
            .iter()
            .find(|i| i.upstream == upstream && i.subject == subject)
            .cloned()
    });
    let grants = state
        .store
        .grants(&sub)
        .await?
        .into_iter()
        .map(|g| GrantView {
            client_name: settings.app_name(&g.client_id),
            client_id: g.client_id,
            scopes: g.scopes.to_vec(),
            granted_at: g.granted_at,
            updated_at: g.updated_at,
        })
        .collect();
    Ok(UserDetail {
        identities,
        identity,
        sub: user.sub,
        created_at: user.created_at,
        last_login_at: user.last_login_at,
        last_login_at_utc: crate::clock::rfc3339_utc(user.last_login_at),
        email: user.email,
        email_verified: user.email_verified,
        name: user.name,
        picture: user.picture,
        last_ip: user.last_ip,
        logins_count: user.logins_count,
        blocked: user.blocked,
        grants,
    })
}

/// Query parameters of users-by-email.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ByEmailParams {
    /// The email, compared case-insensitively and in full.
    pub email: String,
}

/// The users whose email is `email` (Auth0's `GET /api/v2/users-by-email`): an exact,
/// case-insensitive match, oldest first; an empty list when there is none.
#[utoipa::path(get, path = "/admin/api/users-by-email", tag = "users", params(ByEmailParams),
    responses((status = 200, body = Vec<UserView>), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn users_by_email(
    _: UserReader,
    State(state): State<AppState>,
    Query(p): Query<ByEmailParams>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let email = p.email.trim();
    if email.is_empty() || email.len() > 320 {
        return Err(ApiError::invalid_request(
            "email: the full address to look for, like ann@example.com",
        ));
    }
    let users = state.store.users_by_email(email).await?;
    Ok(Json(
        users.iter().map(|u| UserView::of(u, |_| true)).collect(),
    ))
}

/// What `PATCH /admin/api/users/{sub}` changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// `true` refuses the user's next logins, revokes their codes and tokens and ends their
    /// browser sessions; `false` lets them sign in again.
    pub blocked: bool,
}

/// Blocks or unblocks a user (Auth0's `PATCH /api/v2/users/{id}` with `blocked`).
#[utoipa::path(patch, path = "/admin/api/users/{sub}", tag = "users",
    params(("sub" = String, Path, description = "Herald's subject identifier")),
    request_body = UserPatch,
    responses((status = 200, body = UserDetail), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn patch_user(
    admin: Admin,
    State(state): State<AppState>,
    Path(sub): Path<String>,
    Body(patch): Body<UserPatch>,
) -> Result<Json<UserDetail>, ApiError> {
    set_blocked(&state, &admin, &sub, patch.blocked).await?;
    Ok(Json(
        user_detail(&state, known_user(&state, &sub).await?).await?,
    ))
}

/// Blocks or unblocks user `sub` for `admin`, the way the API and the user's admin page both
/// do; audited as `user.block` or `user.unblock` when it changes anything.
pub async fn set_blocked(
    state: &AppState,
    admin: &Admin,
    sub: &str,
    blocked: bool,
) -> Result<(), ApiError> {
    let before = known_user(state, sub).await?.blocked;
    // Sessions in Redis are outside the database's transaction: ended first, so a Redis that
    // cannot be reached fails the block before anything changes, and a retry finishes it.
    if blocked && let Some(r) = &state.redis_sessions {
        r.erase_user(sub).await.map_err(|e| {
            ApiError::unavailable(format!(
                "the session store could not be reached, so the user was not blocked; retry: {e}"
            ))
        })?;
    }
    // A block ends the user's logins: the apps they reached are owed logout tokens.
    let logouts = crate::login::ending::logouts(state);
    let revoked = state
        .store
        .set_user_blocked(sub, blocked, state.now(), &logouts)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user `{sub}`")))?;
    if before != blocked {
        audit_user_action(
            state,
            admin.actor.clone(),
            if blocked {
                "user.block"
            } else {
                "user.unblock"
            },
            sub,
            Some(json!({ "blocked": before })),
            Some(json!({ "blocked": blocked, "tokens_revoked": revoked })),
        )
        .await?;
    }
    Ok(())
}

/// A user's consent records.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentRecords {
    pub sub: String,
    /// Oldest first.
    pub records: Vec<ExportedRecord>,
}

/// The user's consent records, as the user downloads them from the consent center.
#[utoipa::path(get, path = "/admin/api/users/{sub}/consents", tag = "users",
    params(("sub" = String, Path, description = "Herald's subject identifier")),
    responses((status = 200, body = ConsentRecords),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn get_consents(
    _: UserReader,
    State(state): State<AppState>,
    Path(sub): Path<String>,
) -> Result<Json<ConsentRecords>, ApiError> {
    known_user(&state, &sub).await?;
    let settings = state.settings();
    let records = state
        .store
        .consent_records(&sub)
        .await?
        .iter()
        .map(|r| consent::export_record(r, &settings.app_name(&r.client_id)))
        .collect();
    Ok(Json(ConsentRecords { sub, records }))
}

/// What a withdrawal ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct Withdrawn {
    /// The scopes the grant held; empty when there was no grant.
    pub withdrawn: Vec<String>,
}

/// Withdraws the user's consent for an app, as the user could in the consent center: the grant
/// goes, a consent record (method `admin`) is appended, the grant's tokens are revoked.
#[utoipa::path(delete, path = "/admin/api/users/{sub}/grants/{client_id}", tag = "users",
    params(("sub" = String, Path, description = "Herald's subject identifier"),
           ("client_id" = String, Path, description = "The app's client_id")),
    responses((status = 200, body = Withdrawn), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn withdraw_grant(
    admin: Admin,
    State(state): State<AppState>,
    Path((sub, client_id)): Path<(String, String)>,
) -> Result<Json<Withdrawn>, ApiError> {
    let withdrawn = withdraw(&state, &admin, &sub, &client_id).await?;
    Ok(Json(Withdrawn { withdrawn }))
}

/// Withdraws `sub`'s consent for `client_id` for `admin`, the way the API and the user's admin
/// page both do; returns the scopes withdrawn.
pub async fn withdraw(
    state: &AppState,
    admin: &Admin,
    sub: &str,
    client_id: &str,
) -> Result<Vec<String>, ApiError> {
    known_user(state, sub).await?;
    let before = state.store.grant(sub, client_id).await?;
    let settings = state.settings();
    let now = state.now();
    let withdrawn = consent::withdraw(
        &*state.store,
        &settings,
        sub,
        client_id,
        crate::store::ConsentMethod::Admin,
        now,
    )
    .await?;
    if let Some(g) = before {
        audit_user_action(
            state,
            admin.actor.clone(),
            "grant.withdraw",
            sub,
            Some(json!({ "client_id": g.client_id, "scopes": withdrawn })),
            None,
        )
        .await?;
    }
    Ok(withdrawn)
}
