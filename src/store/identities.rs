//! The upstream identities a user holds, and users that exist before their first login.
//!
//! A login finds its user through `identities`: the identity it was created with, others
//! linked by verified email at login, and those an admin links. A user an admin creates (or an
//! import) may have none yet; their first login joins them by identity or by verified email.

use super::{User, UserProfile};

/// An upstream account linked to a user: logging in with it signs that user in.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkedIdentity {
    pub upstream_id: String,
    /// The subject the upstream asserts for the account.
    pub subject: String,
    /// The Herald user it signs in.
    pub sub: String,
    pub linked_at: i64,
}

/// What linking an identity to a user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    Linked,
    /// It was linked to this user already; nothing changed.
    AlreadyLinked,
    /// Another user holds it (their sub); nothing changed.
    TakenBy(String),
    /// There is no such user.
    NoUser,
}

/// A user created before their first login, by an admin or an import.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub sub: String,
    /// Its `ip` is not used.
    pub profile: UserProfile,
    /// The upstream identity they will log in with, when it is known: (upstream, subject).
    pub identity: Option<(String, String)>,
    pub now: i64,
}

/// What creating a user did.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    Created(User),
    /// The identity belongs to this user already; nothing was created.
    IdentityTaken(String),
}

impl User {
    /// The identity the user was created with, `None` for one created without any (or whose
    /// first identity was unlinked): (upstream, subject).
    pub fn first_identity(&self) -> Option<(&str, &str)> {
        (!self.upstream_id.is_empty())
            .then_some((self.upstream_id.as_str(), self.upstream_subject.as_str()))
    }
}

/// An app a login got codes or tokens for: who, which login, which app.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AppLogin {
    pub client_id: String,
    pub sub: String,
    pub auth_context_id: String,
}

/// Which logins to end: every condition given must hold, and one of `context_id`, `sub`, `sid`
/// and `subject` must be given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndLogins<'a> {
    /// One login.
    pub context_id: Option<&'a str>,
    /// Logins through this upstream.
    pub upstream_id: Option<&'a str>,
    /// Logins of this Herald user.
    pub sub: Option<&'a str>,
    /// Logins in this upstream session (`sid` of the upstream's ID token).
    pub sid: Option<&'a str>,
    /// Logins made with this subject at the upstream.
    pub subject: Option<&'a str>,
}

impl EndLogins<'_> {
    /// Names no login: none of `context_id`, `sub`, `sid` and `subject` is given.
    pub fn is_empty(&self) -> bool {
        self.context_id.is_none()
            && self.sub.is_none()
            && self.sid.is_none()
            && self.subject.is_none()
    }
}
