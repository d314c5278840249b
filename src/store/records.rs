//! The records the store reads and writes, one struct per table row, and the small types its
//! methods take. Row types derive `sqlx::FromRow`, so one mapping serves both databases.

/// A boolean stored as an integer (0/1): both databases decode an integer column the same way,
/// while PostgreSQL would refuse to read an `INT8` as `BOOL`.
#[derive(Debug, Clone, Copy, sqlx::Type)]
#[sqlx(transparent)]
pub(crate) struct IntFlag(pub i64);

impl From<IntFlag> for bool {
    fn from(flag: IntFlag) -> bool {
        flag.0 != 0
    }
}

/// A stored text value that names no variant of the enum read into: the row is corrupt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// Text enums: each variant has one stored spelling, the same on both databases. Rows read them
/// with `#[sqlx(try_from = "String")]`, so an unknown value is a decode error, which the store
/// reports as [`StoreError::Corrupt`](super::StoreError::Corrupt); writes bind `as_str()`.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $kind:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The stored (and exported) spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { kind: $kind, value: s.to_string() }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownValue;

            fn try_from(s: String) -> Result<Self, UnknownValue> {
                s.parse()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

text_enum!(
    /// How a consent decision was made.
    ConsentMethod, "consent method" {
        /// On the consent page.
        Page = "page",
        /// Allowed without asking: the app is trusted.
        TrustedApp = "trusted_app",
        /// By an admin: a withdrawal through the admin API.
        Admin = "admin",
        /// Withdrawn by the user in the consent center (signed in, or through an account link).
        ConsentCenter = "consent_center",
        /// Withdrawn because the app was removed.
        ClientDeleted = "client_deleted",
        /// Made elsewhere (a consent-management platform) and imported; `source` says where.
        Import = "import",
    }
);

text_enum!(
    /// What a consent record decided. A withdrawal is not a denial: it ends consent given before.
    ConsentOutcome, "consent outcome" {
        /// Scopes (or purposes) were allowed; some others may have been refused.
        Granted = "granted",
        /// Everything decided was refused.
        Denied = "denied",
        /// Consent given before was withdrawn.
        Withdrawn = "withdrawn",
    }
);

text_enum!(
    /// What a login came to (see `LoginEvent`).
    LoginResult, "login result" {
        /// Signed in at Herald (consent may follow).
        Success = "success",
        /// The upstream refused or failed, or the mapping refused its claims.
        Failure = "failure",
        /// The user is blocked.
        Blocked = "blocked",
        /// The user declined the app's consent.
        Denied = "denied",
    }
);

text_enum!(
    /// Where an outbox row stands.
    DeliveryState, "delivery state" {
        /// Not delivered yet: due at `next_attempt_at`.
        Pending = "pending",
        /// Answered 2xx.
        Delivered = "delivered",
        /// Given up on (24 h of retries, or its destination is no longer configured); an admin
        /// may retry it.
        Failed = "failed",
    }
);

text_enum!(
    /// The JWS algorithm of a stored signing key, as stored. `tokens::keys::Alg` converts to and
    /// from it; the store keeps its own type because `tokens` stands on the store.
    KeyAlg, "key algorithm" {
        RS256 = "RS256",
        ES256 = "ES256",
        EdDSA = "EdDSA",
    }
);

/// A list of scope names, stored as one space-separated text. It never holds an empty name, so
/// `""` is the empty list and every stored value reads back as the list it was written from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeList(String);

impl ScopeList {
    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|s| !s.is_empty())
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.iter().any(|s| s == scope)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The stored form: the names separated by one space.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scopes as owned strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }
}

impl<S: AsRef<str>> FromIterator<S> for ScopeList {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut list = String::new();
        for name in iter {
            // A name never contains a space (RFC 6749 §3.3); split one that does, as reading
            // it back would.
            for part in name.as_ref().split(' ').filter(|s| !s.is_empty()) {
                if !list.is_empty() {
                    list.push(' ');
                }
                list.push_str(part);
            }
        }
        ScopeList(list)
    }
}

/// Parses the space-separated form; runs of spaces separate like one.
impl From<&str> for ScopeList {
    fn from(s: &str) -> Self {
        s.split(' ').collect()
    }
}

impl From<String> for ScopeList {
    fn from(s: String) -> Self {
        s.as_str().into()
    }
}

impl std::fmt::Display for ScopeList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<&str> for ScopeList {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// A signing key as stored: the private part possibly encrypted (see `tokens::keys`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRecord {
    pub kid: String,
    #[sqlx(try_from = "String")]
    pub alg: KeyAlg,
    pub encryption: String,
    pub private_key: Vec<u8>,
    pub created_at: i64,
    /// Published in JWKS from `created_at`, signs from `activates_at`.
    pub activates_at: i64,
    /// Stops signing from here (set on rotation); `None` while current.
    pub retires_at: Option<i64>,
    /// Removed from JWKS from here: after every token it signed has expired.
    pub expires_at: Option<i64>,
}

/// A user as Herald knows them: one per (upstream, upstream subject), never keyed by email.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct User {
    /// Herald's own stable subject identifier.
    pub sub: String,
    pub upstream_id: String,
    pub upstream_subject: String,
    pub created_at: i64,
    pub last_login_at: i64,
    /// The authentication context of the last login (JSON), for `on_missing = "keep"`.
    pub last_context: Option<String>,
    /// The profile of the last login (see `UserProfile`).
    pub email: Option<String>,
    #[sqlx(try_from = "IntFlag")]
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    pub last_ip: Option<String>,
    pub logins_count: i64,
    /// Refused at login until an admin lifts it. Stored as 0/1.
    #[sqlx(try_from = "IntFlag")]
    pub blocked: bool,
}

/// The profile a login carried: written onto the user with the login, so an admin can find
/// them by email or name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserProfile {
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub picture: Option<String>,
    /// The address the login came from.
    pub ip: Option<String>,
}

/// An authorization request between `/authorize` and the redirect back to the client.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuthRequest {
    /// 256-bit random identifier (also what the browser carries between pages).
    pub id: String,
    pub client_id: String,
    pub redirect_uri: String,
    /// Space-separated, as requested and validated.
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub upstream_hint: Option<String>,
    /// Digest of the random value held in the browser session that started the request.
    pub browser_binding: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set once the user has logged in upstream.
    pub sub: Option<String>,
    pub auth_context_id: Option<String>,
    pub auth_time: Option<i64>,
    /// Set when consent has been decided; a request is decided at most once.
    pub decided_at: Option<i64>,
    /// `ui_locales` as asked (OIDC Core §3.1.2.1): preferred locales, space-separated.
    pub ui_locales: Option<String>,
    /// `acr_values` as asked (OIDC Core §3.1.2.1): the classes the login must meet, in order
    /// of preference, space-separated.
    pub acr_values: Option<String>,
    /// The request's parameters some upstream passes through (`pass_through`), as a JSON
    /// object of strings.
    pub pass_through: Option<String>,
    /// `resource` as asked (RFC 8707 §2): the APIs the tokens are for, space-separated.
    pub resources: Option<String>,
    /// `dpop_jkt` as asked (RFC 9449 §10): the DPoP key the code is bound to.
    pub dpop_jkt: Option<String>,
}

/// A pushed authorization request (RFC 9126): the parameters a client sent to `/par`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PushedRequest {
    /// The SHA-256 digest (hex) of the request_uri's random part.
    pub uri_hash: String,
    pub client_id: String,
    /// The authorization request's parameters, as a JSON object of strings.
    pub params: String,
    pub expires_at: i64,
}

/// The relying-party state of one upstream login attempt, keyed by the digest of `state`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UpstreamLogin {
    pub state_hash: String,
    pub auth_request_id: String,
    pub upstream_id: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Started again with `prompt=login` because the first answer was older than `max_age`.
    /// Stored as 0/1.
    #[sqlx(try_from = "IntFlag")]
    pub forced: bool,
}

/// A stored authentication context (JSON of `claims::AuthContext`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredContext {
    pub id: String,
    pub sub: String,
    pub upstream_id: String,
    pub context: String,
    pub auth_time: i64,
    pub created_at: i64,
    /// After this the context is not reused (`auth_context_ttl`); `None`: as long as the session.
    pub expires_at: Option<i64>,
    /// Set when its upstream was removed, or the upstream ended the session (back-channel
    /// logout): nothing is served from it any more.
    pub revoked_at: Option<i64>,
    /// The upstream's session id (`sid` of its ID token), which its back-channel logout names.
    pub upstream_sid: Option<String>,
    /// The upstream's refresh token (`refresh_upstream`), sealed with the key-encryption key.
    pub upstream_refresh: Option<String>,
    /// The subject the upstream asserted for this login (none for logins stored before it was
    /// kept, or made outside an upstream login).
    pub upstream_subject: Option<String>,
}

/// What a user allowed an app: the current state, replaced on every decision.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Grant {
    pub sub: String,
    pub client_id: String,
    /// The granted scopes.
    #[sqlx(try_from = "String")]
    pub scopes: ScopeList,
    /// JSON object: scope -> version of the consent text it was granted under.
    pub scope_versions: String,
    pub granted_at: i64,
    pub updated_at: i64,
}

/// One consent decision, appended and never rewritten (proof of consent).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConsentRecord {
    pub id: String,
    pub sub: String,
    pub client_id: String,
    #[sqlx(try_from = "String")]
    pub allowed: ScopeList,
    #[sqlx(try_from = "String")]
    pub denied: ScopeList,
    /// JSON object: scope -> consent-text version shown.
    pub text_versions: String,
    #[sqlx(try_from = "String")]
    pub method: ConsentMethod,
    pub decided_at: i64,
    #[sqlx(try_from = "String")]
    pub decision: ConsentOutcome,
    /// The locale the wording was shown in.
    pub locale: String,
    /// JSON object: `{"scopes": {scope: text}, "purposes": {purpose: text}}`, the exact words
    /// shown (or, for an import, the words the source reported).
    pub wording: String,
    /// JSON object: purpose -> [`PurposeDecision`].
    pub purposes: String,
    /// Where an imported decision was made (`method = import`).
    pub source: Option<String>,
    /// The decision's id at the source; dropped when the user is erased.
    pub source_reference: Option<String>,
}

/// One version of the managed configuration (TOML text), written once.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConfigVersion {
    pub version: i64,
    pub document: String,
    pub created_at: i64,
    /// `seed` for the version taken from the file, else the admin who made the change.
    pub author: String,
}

/// One event for one destination, written in the transaction of the change it describes.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// The delivery's id (random).
    pub id: String,
    /// The event's id: the same for every destination, and on every attempt.
    pub event_id: String,
    pub event_type: String,
    /// `webhook <url>` or `hook <index> <kind>`.
    pub destination: String,
    /// The event as webhooks receive it.
    pub body: String,
    pub created_at: i64,
    /// Written only when the login created its user (`user.created`).
    pub only_for_new_user: bool,
}

/// One admin change, appended and never rewritten.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEntry {
    /// Assigned by the store on insert; ascending.
    pub id: i64,
    pub at: i64,
    /// Who: `bootstrap-token` or `client:{client_id}`.
    pub actor: String,
    /// What, e.g. `client.create`, `upstream.mappings.replace`, `grant.withdraw`.
    pub action: String,
    /// What it concerned, e.g. `client:app`, `upstream:test`, `user:{sub}`.
    pub target: String,
    /// JSON of the state before and after; `None` where there was none.
    pub before: Option<String>,
    pub after: Option<String>,
    /// The configuration version the change produced, if it changed the configuration.
    pub config_version: Option<i64>,
}

/// Which audit entries to list: newest first, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub target: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<i64>,
    /// Only entries with an id below this one (paging backwards).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// How the admin user list is sorted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserSort {
    #[default]
    LastLoginDesc,
    LastLoginAsc,
    CreatedDesc,
    CreatedAsc,
    SubAsc,
    SubDesc,
}

/// A page of the admin user list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserQuery {
    /// Case-insensitive substring of `sub`, the upstream subject, the email or the name.
    pub search: Option<String>,
    pub upstream_id: Option<String>,
    pub sort: UserSort,
    pub offset: i64,
    pub limit: i64,
}

/// An upstream login that has finished: the user's link, the context built from the upstream's
/// claims, and the authorization request waiting for it, written together by
/// [`LoginStore::finish_upstream_login`](super::LoginStore::finish_upstream_login).
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedLogin {
    pub upstream_id: String,
    /// The subject the upstream asserted.
    pub subject: String,
    /// Herald's sub for this identity if it has no user yet; an existing user keeps theirs.
    pub new_sub: String,
    /// The context to store. Its `sub` is replaced by the user's final sub, and its `context`
    /// JSON becomes the user's `last_context`.
    pub context: StoredContext,
    /// The pending request the login answers.
    pub auth_request_id: String,
    /// The digest of the upstream `state` this login answers: spent (deleted) in the same
    /// transaction, so the callback's writes are one transaction and a `state` works once.
    pub upstream_state_hash: Option<String>,
    /// The login time: `last_login_at`, and `created_at` of a new user.
    pub now: i64,
    /// The profile this login carried, written onto the user.
    pub profile: UserProfile,
    /// The app the login is for (its login event names it).
    pub client_id: String,
    /// Its events (`login.succeeded`, and `user.created` marked `only_for_new_user`), written
    /// for `new_sub`: when the identity already had a user, `new_sub` in them is replaced by the
    /// user's sub and the new-user-only rows are dropped.
    pub outbox: Vec<OutboxRow>,
    /// The user an identity seen for the first time joins (linked by verified email); `None`
    /// creates a user with `new_sub`. Ignored when the identity has a user already.
    pub link_to: Option<String>,
    /// Whether the identity had a user when the callback looked it up: a hint only. When it had
    /// none, the store creates one straight away (no read first), and takes the one a concurrent
    /// first login created if that login was quicker.
    pub known: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_list_reads_back_as_the_list_it_was_written_from() {
        let list: ScopeList = ["openid", "email"].into_iter().collect();
        assert_eq!(list.as_str(), "openid email");
        assert_eq!(ScopeList::from(list.to_string()), list);
        assert_eq!(list.iter().collect::<Vec<_>>(), ["openid", "email"]);
        assert!(list.contains("email") && !list.contains("mail"));
    }

    #[test]
    fn an_empty_scope_list_is_the_empty_text() {
        let none: ScopeList = Vec::<String>::new().into_iter().collect();
        assert_eq!(none, "");
        assert!(none.is_empty() && none.iter().next().is_none());
        assert_eq!(ScopeList::from(""), none);
        assert_eq!(ScopeList::from(" a  b "), "a b");
    }

    #[test]
    fn text_enums_read_back_what_they_store_and_refuse_anything_else() {
        for m in [
            ConsentMethod::Page,
            ConsentMethod::TrustedApp,
            ConsentMethod::Admin,
        ] {
            assert_eq!(m.as_str().parse::<ConsentMethod>(), Ok(m));
        }
        assert_eq!(ConsentMethod::TrustedApp.to_string(), "trusted_app");
        for a in [KeyAlg::RS256, KeyAlg::ES256, KeyAlg::EdDSA] {
            assert_eq!(KeyAlg::try_from(a.as_str().to_string()), Ok(a));
        }
        let err = "Page".parse::<ConsentMethod>().unwrap_err();
        assert_eq!(err.to_string(), "unknown consent method `Page`");
    }
}
