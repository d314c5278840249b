//! The login events: every login and refusal, newest first, kept 90 days, for the admin pages
//! and `GET /admin/api/login-events`.

use super::LoginResult;

/// How long login events are kept (`purge_expired` deletes older ones).
pub const LOGIN_EVENT_RETENTION_SECS: i64 = 90 * 24 * 3600;

/// One login or refusal.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginEvent {
    /// Given by the store, in the order events are recorded (0 for one not stored yet).
    pub id: i64,
    pub at: i64,
    pub result: LoginResult,
    /// Herald's sub, when the user is known.
    pub sub: Option<String>,
    /// The upstream, when the login got that far.
    pub upstream_id: Option<String>,
    pub client_id: String,
    /// Why it was refused (not for a success).
    pub reason: Option<String>,
}

/// Which login events to list, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoginEventQuery {
    pub result: Option<LoginResult>,
    pub sub: Option<String>,
    pub upstream_id: Option<String>,
    pub client_id: Option<String>,
    /// Only events recorded before this one (paging: the last id of the previous page).
    pub before: Option<i64>,
    pub limit: i64,
}

/// A row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct LoginEventRow {
    pub id: i64,
    pub at: i64,
    #[sqlx(try_from = "String")]
    pub result: LoginResult,
    pub sub: Option<String>,
    pub upstream_id: Option<String>,
    pub client_id: String,
    pub reason: Option<String>,
}

impl LoginEventRow {
    pub(crate) fn into_event(self) -> LoginEvent {
        LoginEvent {
            result: self.result,
            id: self.id,
            at: self.at,
            sub: self.sub,
            upstream_id: self.upstream_id,
            client_id: self.client_id,
            reason: self.reason,
        }
    }
}
