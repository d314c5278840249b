//! The login events through the API: every login and refusal (who, upstream, client, result,
//! reason, time), newest first, filtered and paged. Kept 90 days.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::UserReader;
use super::error::{ApiError, ErrorBody, Query};
use crate::state::AppState;
use crate::store::{LoginEvent, LoginEventQuery, LoginResult};

/// Query parameters of the login events.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LoginEventParams {
    /// `success`, `failure` (the upstream or the mapping refused), `blocked` or `denied` (the
    /// user declined consent).
    pub result: Option<String>,
    /// Only this user's.
    pub sub: Option<String>,
    /// Only logins through this upstream.
    pub upstream: Option<String>,
    /// Only logins to this app.
    pub client_id: Option<String>,
    /// Events older than this one (`next` of the previous page).
    pub before: Option<String>,
    /// 1 to 100, default 50.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

impl LoginEventParams {
    /// The store's query, or what is wrong with the parameters.
    pub fn query(&self) -> Result<LoginEventQuery, ApiError> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Err(ApiError::invalid_request("limit: between 1 and 100"));
        }
        let result = match self.result.as_deref().filter(|r| !r.is_empty()) {
            None => None,
            Some(r) => Some(r.parse::<LoginResult>().map_err(|_| {
                ApiError::invalid_request("result: one of success, failure, blocked or denied")
            })?),
        };
        let before = match self.before.as_deref().filter(|b| !b.is_empty()) {
            None => None,
            Some(b) => Some(cursor(b).ok_or_else(|| {
                ApiError::invalid_request("before: the `next` value of the previous page")
            })?),
        };
        let text = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        Ok(LoginEventQuery {
            result,
            sub: text(&self.sub),
            upstream_id: text(&self.upstream),
            client_id: text(&self.client_id),
            before,
            limit,
        })
    }
}

/// A page's position: the id of its last event.
fn cursor(text: &str) -> Option<i64> {
    text.parse().ok().filter(|id| *id > 0)
}

/// The cursor after `event`.
pub fn next_cursor(event: &LoginEvent) -> String {
    event.id.to_string()
}

/// One login or refusal.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginEventView {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub at_utc: String,
    /// `success`, `failure`, `blocked` or `denied`.
    pub result: String,
    /// Herald's sub, when the user is known.
    pub sub: Option<String>,
    pub upstream: Option<String>,
    pub client_id: String,
    pub reason: Option<String>,
}

impl LoginEventView {
    pub fn of(e: LoginEvent) -> Self {
        Self {
            at_utc: crate::clock::rfc3339_utc(e.at),
            result: e.result.as_str().into(),
            id: e.id,
            at: e.at,
            sub: e.sub,
            upstream: e.upstream_id,
            client_id: e.client_id,
            reason: e.reason,
        }
    }
}

/// A page of login events.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginEventPage {
    pub events: Vec<LoginEventView>,
    /// `before` for the next (older) page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Logins and refusals, newest first.
#[utoipa::path(get, path = "/admin/api/login-events", tag = "users", params(LoginEventParams),
    responses((status = 200, body = LoginEventPage), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_login_events(
    _: UserReader,
    State(state): State<AppState>,
    Query(p): Query<LoginEventParams>,
) -> Result<Json<LoginEventPage>, ApiError> {
    let query = p.query()?;
    let events = state.store.login_events(&query).await?;
    let next = (events.len() as i64 == query.limit)
        .then(|| events.last().map(next_cursor))
        .flatten();
    Ok(Json(LoginEventPage {
        events: events.into_iter().map(LoginEventView::of).collect(),
        next,
    }))
}
