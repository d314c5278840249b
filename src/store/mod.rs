//! Storage: everything a login needs, behind one narrow trait.
//!
//! [`Store`] is implemented once per database: [`sqlite::SqliteStore`] (the embedded default) and
//! [`postgres::PgStore`] (several replicas). Both are generated from the same SQL in [`sql`],
//! which keeps to the dialect SQLite and PostgreSQL share (`$n` parameters, `ON CONFLICT`,
//! `RETURNING`); the one store test-suite runs against both. The backend is chosen once, in
//! [`connect`], from the scheme of `database_url`.
//!
//! Conventions: timestamps are UTC Unix seconds (`i64`); codes, refresh tokens and other bearer
//! secrets are stored only as SHA-256 digests; a row that may be used once is consumed with a
//! single conditional `UPDATE`/`DELETE ... RETURNING`, so concurrent replicas race safely.

mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// What went wrong in the store, in the terms callers act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or the pool is exhausted: retry later (503).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A concurrent writer won (unique violation, serialization failure, SQLite busy).
    #[error("a concurrent change conflicted: {0}")]
    Conflict(String),
    /// A stored row cannot be read back (corrupt JSON, unknown enum value).
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                // 40001 serialization_failure, 40P01 deadlock, 23505 unique_violation (PG);
                // 5/6 BUSY/LOCKED and 2067/1555 unique constraint (SQLite extended codes).
                if matches!(
                    code.as_ref(),
                    "40001" | "40P01" | "23505" | "5" | "6" | "517" | "2067" | "1555"
                ) {
                    StoreError::Conflict(e.to_string())
                } else if code.starts_with("08") || code == "57P01" || code == "57P03" {
                    StoreError::Unavailable(e.to_string())
                } else {
                    StoreError::Other(e.to_string())
                }
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(e.to_string())
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A signing key as stored: the private part possibly encrypted (see `tokens::keys`).
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: String,
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
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Herald's own stable subject identifier.
    pub sub: String,
    pub upstream_id: String,
    pub upstream_subject: String,
    pub created_at: i64,
    pub last_login_at: i64,
    /// The authentication context of the last login (JSON), for `on_missing = "keep"`.
    pub last_context: Option<String>,
}

/// An authorization request between `/authorize` and the redirect back to the client.
#[derive(Debug, Clone, PartialEq)]
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
    /// Digest of the CSRF token on the consent page shown for this request.
    pub consent_csrf: Option<String>,
    /// Set when consent has been decided; a request is decided at most once.
    pub decided_at: Option<i64>,
}

/// The relying-party state of one upstream login attempt, keyed by the digest of `state`.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamLogin {
    pub state_hash: String,
    pub auth_request_id: String,
    pub upstream_id: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A stored authentication context (JSON of `claims::AuthContext`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredContext {
    pub id: String,
    pub sub: String,
    pub upstream_id: String,
    pub context: String,
    pub auth_time: i64,
    pub created_at: i64,
    /// After this the context is not reused (`auth_context_ttl`); `None`: as long as the session.
    pub expires_at: Option<i64>,
    /// Set when its upstream was removed: nothing is served from it any more.
    pub revoked_at: Option<i64>,
}

/// What a user allowed an app: the current state, replaced on every decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub sub: String,
    pub client_id: String,
    /// Space-separated granted scopes.
    pub scopes: String,
    /// JSON object: scope -> version of the consent text it was granted under.
    pub scope_versions: String,
    pub granted_at: i64,
    pub updated_at: i64,
}

/// One consent decision, appended and never rewritten (proof of consent).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentRecord {
    pub id: String,
    pub sub: String,
    pub client_id: String,
    pub allowed: String,
    pub denied: String,
    /// JSON object: scope -> consent-text version shown.
    pub text_versions: String,
    /// `page`, `trusted_app` or `admin`.
    pub method: String,
    pub decided_at: i64,
}

/// An authorization code, keyed by its digest.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeRecord {
    pub code_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub sub: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_context_id: String,
    pub auth_time: i64,
    /// Whether the ID token must carry `auth_time` (max_age was sent).
    pub auth_time_required: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
}

/// An issued access token, so it can be revoked (code replay, withdrawal) and used at userinfo.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessTokenRecord {
    pub jti: String,
    pub client_id: String,
    pub sub: String,
    pub scope: String,
    pub auth_context_id: String,
    /// The code it was issued from, to revoke it if that code is replayed.
    pub code_hash: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The refresh-token family it belongs to, to revoke it with the family.
    pub family_id: Option<String>,
}

/// A refresh token (RFC 6749 §1.5, §6), keyed by the digest of its value. Tokens rotated from
/// one another share a `family_id`; reusing a rotated one revokes the family (RFC 9700 §4.14.2).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub sub: String,
    /// The scopes originally granted; a refresh may narrow what it asks for, never widen this.
    pub scope: String,
    pub auth_context_id: String,
    /// When the user authenticated, kept for `auth_time` in refreshed ID tokens (OIDC §12.2).
    pub auth_time: i64,
    /// The authorization code the family came from.
    pub code_hash: Option<String>,
    pub issued_at: i64,
    /// Idle expiry of this token, never past `family_expires_at`.
    pub expires_at: i64,
    /// Absolute expiry of the whole family.
    pub family_expires_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When the one use allowed within the client's grace period after rotation happened.
    pub grace_used_at: Option<i64>,
}

/// One version of the managed configuration (TOML text), written once.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigVersion {
    pub version: i64,
    pub document: String,
    pub created_at: i64,
    /// `seed` for the version taken from the file, else the admin who made the change.
    pub author: String,
}

/// Something a configuration change removed. [`Store::save_config`] ends what it was given in
/// the transaction that stores the change, so the change is never in effect without it, and
/// every replica sees the revocations at once (they are rows, not one replica's memory).
#[derive(Debug, Clone, PartialEq)]
pub enum Removal {
    /// A client: its unredeemed codes are burned, its refresh and access tokens revoked, and
    /// its grants deleted, each with a consent record appended (`consent_method`, every
    /// granted scope denied, at the text versions it was granted under) whose id is
    /// `record_id_prefix` followed by the user's sub.
    Client {
        client_id: String,
        consent_method: String,
        record_id_prefix: String,
    },
    /// An upstream: the authentication contexts of its logins are revoked together with every
    /// code, refresh token and access token issued from them, and its logins in flight (upstream
    /// states) are dropped.
    Upstream { upstream_id: String },
}

/// One admin change, appended and never rewritten.
#[derive(Debug, Clone, PartialEq)]
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
    /// Case-insensitive substring of `sub` or the upstream subject.
    pub search: Option<String>,
    pub upstream_id: Option<String>,
    pub sort: UserSort,
    pub offset: i64,
    pub limit: i64,
}

/// Outcome of rotating a refresh token.
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// This call retired the token and stored its successor and access token.
    Rotated,
    /// It was already rotated or revoked (a reuse, or a lost race): nothing was stored.
    NotCurrent,
}

/// Outcome of redeeming a code.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    /// This call consumed the code and stored the access token in the same transaction.
    Redeemed,
    /// Someone consumed it before: a replay.
    AlreadyUsed,
}

/// The storage interface. Methods are small and named for what the protocol needs.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Runs the embedded migrations (idempotent; safe when replicas start together).
    async fn migrate(&self) -> Result<()>;
    /// A cheap round trip, for readiness.
    async fn ping(&self) -> Result<()>;

    async fn signing_keys(&self) -> Result<Vec<KeyRecord>>;
    async fn insert_signing_key(&self, key: &KeyRecord) -> Result<()>;
    /// Schedules a key's end: it stops signing at `retires_at`, leaves the JWKS at `expires_at`.
    async fn retire_signing_key(&self, kid: &str, retires_at: i64, expires_at: i64) -> Result<()>;

    /// Returns the user linked to (upstream, subject), creating it with `new_sub` if absent;
    /// records the login time.
    async fn link_user(
        &self,
        upstream_id: &str,
        upstream_subject: &str,
        new_sub: &str,
        now: i64,
    ) -> Result<User>;
    async fn user(&self, sub: &str) -> Result<Option<User>>;
    async fn set_last_context(&self, sub: &str, context: &str) -> Result<()>;

    async fn insert_auth_request(&self, req: &AuthRequest) -> Result<()>;
    async fn auth_request(&self, id: &str) -> Result<Option<AuthRequest>>;
    /// Records the login on a pending request.
    async fn set_auth_request_login(
        &self,
        id: &str,
        sub: &str,
        auth_context_id: &str,
        auth_time: i64,
    ) -> Result<()>;
    async fn set_consent_csrf(&self, id: &str, csrf_hash: &str) -> Result<()>;
    /// Marks the request decided; false when it already was (a replayed decision).
    async fn decide_auth_request(&self, id: &str, now: i64) -> Result<bool>;

    async fn insert_upstream_login(&self, login: &UpstreamLogin) -> Result<()>;
    /// Removes and returns the login state: each `state` works once.
    async fn take_upstream_login(&self, state_hash: &str) -> Result<Option<UpstreamLogin>>;

    async fn insert_context(&self, ctx: &StoredContext) -> Result<()>;
    async fn context(&self, id: &str) -> Result<Option<StoredContext>>;

    async fn grant(&self, sub: &str, client_id: &str) -> Result<Option<Grant>>;
    /// Every grant of one user, by client_id (for the consent center).
    async fn grants(&self, sub: &str) -> Result<Vec<Grant>>;
    /// Stores the new state of a grant and appends the decision, in one transaction.
    async fn record_consent(&self, grant: Option<&Grant>, record: &ConsentRecord) -> Result<()>;
    async fn consent_records(&self, sub: &str) -> Result<Vec<ConsentRecord>>;

    async fn insert_code(&self, code: &CodeRecord) -> Result<()>;
    async fn code(&self, code_hash: &str) -> Result<Option<CodeRecord>>;
    /// Consumes the code and stores the tokens issued from it (the access token, and the first
    /// refresh token of a family when offline access was granted), atomically.
    async fn redeem_code(
        &self,
        code_hash: &str,
        now: i64,
        token: &AccessTokenRecord,
        refresh: Option<&RefreshTokenRecord>,
    ) -> Result<Redemption>;
    /// Consumes a code without issuing anything (a failed PKCE check burns it).
    async fn burn_code(&self, code_hash: &str, now: i64) -> Result<()>;
    /// Revokes every access and refresh token descending from a code; returns how many.
    async fn revoke_tokens_of_code(&self, code_hash: &str, now: i64) -> Result<u64>;
    async fn access_token(&self, jti: &str) -> Result<Option<AccessTokenRecord>>;
    /// Marks the access token `token.jti` revoked; when there is no row for it (client
    /// credentials tokens are not stored), inserts `token` as a revoked row so verifiers see it.
    /// Returns 1 when this call revoked it, 0 when it already was.
    async fn revoke_access_token(&self, token: &AccessTokenRecord, now: i64) -> Result<u64>;

    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>>;
    /// Retires the current refresh token `token_hash` and stores its successor and the access
    /// token issued with it, in one transaction. Only one of any number of concurrent calls for
    /// the same token rotates it: the retirement is a single conditional `UPDATE`.
    /// `grace_since`: a token rotated at or after this time may be rotated once more (the
    /// client's grace period); `None` when the client has none.
    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
        grace_since: Option<i64>,
        successor: &RefreshTokenRecord,
        token: &AccessTokenRecord,
    ) -> Result<Rotation>;
    /// Revokes every refresh token of a family and every access token issued with them.
    async fn revoke_refresh_family(&self, family_id: &str, now: i64) -> Result<u64>;
    /// Ends what a withdrawn grant allowed, in one transaction: burns the unredeemed codes of
    /// (sub, client_id) first, so a code redeemed meanwhile yields no live token, then revokes
    /// every refresh and access token issued to them. Returns how many tokens were revoked.
    async fn revoke_grant_tokens(&self, sub: &str, client_id: &str, now: i64) -> Result<u64>;

    /// Records a client assertion's `jti` until `expires_at`; false when it was seen before
    /// (a replay).
    async fn use_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool>;

    /// Inserts a new browser session; false when the id is taken.
    async fn create_session(&self, id: &str, record: &str, expires_at: i64) -> Result<bool>;
    async fn save_session(&self, id: &str, record: &str, expires_at: i64) -> Result<()>;
    /// The session's record, unless absent or expired.
    async fn load_session(&self, id: &str, now: i64) -> Result<Option<String>>;
    async fn delete_session(&self, id: &str) -> Result<()>;

    /// The highest configuration version, if any (cheap: every replica polls it).
    async fn latest_config_version(&self) -> Result<Option<i64>>;
    /// The highest configuration version with its document.
    async fn latest_config(&self) -> Result<Option<ConfigVersion>>;
    /// Stores `first` as version 1 unless a version exists (replicas starting together seed
    /// once); returns whether this call stored it.
    async fn seed_config(&self, first: &ConfigVersion) -> Result<bool>;
    /// Stores `next` (whose version must be the latest + 1), ends what `removals` were given (at
    /// `audit.at`) and appends `audit`, in one transaction. `StoreError::Conflict` when another
    /// change took that version first; then nothing is changed.
    async fn save_config(
        &self,
        next: &ConfigVersion,
        audit: &AuditEntry,
        removals: &[Removal],
    ) -> Result<()>;
    /// Appends an audit entry for a change outside the configuration; returns its id.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64>;
    async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>>;
    /// A page of users and the number of users matching the query overall.
    async fn list_users(&self, query: &UserQuery) -> Result<(Vec<User>, i64)>;

    /// Deletes expired codes, requests, login states and tokens; returns rows removed.
    async fn purge_expired(&self, now: i64) -> Result<u64>;
}

/// The store chosen by `database_url`.
pub type DynStore = Arc<dyn Store>;

/// Opens the database named by `database_url` and runs migrations.
pub async fn connect(database_url: &str) -> Result<DynStore> {
    let store: DynStore = if database_url.starts_with("sqlite:") {
        Arc::new(SqliteStore::connect(database_url).await?)
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Arc::new(PgStore::connect(database_url).await?)
    } else {
        return Err(StoreError::Other(format!(
            "unsupported database_url scheme in `{}`",
            redact_url(database_url)
        )));
    };
    store.migrate().await?;
    Ok(store)
}

/// Opens the database for a command that reads it: `None`, creating nothing, when there is no
/// database yet (an SQLite file not created, or an in-memory one); otherwise like [`connect`].
pub async fn connect_existing(database_url: &str) -> Result<Option<DynStore>> {
    if database_url.starts_with("sqlite:") && !SqliteStore::exists(database_url) {
        return Ok(None);
    }
    connect(database_url).await.map(Some)
}

/// A database URL fit for logs: the password replaced.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
