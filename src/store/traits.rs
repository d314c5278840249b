//! The storage interface, one narrow trait per concern.
//!
//! A function that needs one concern takes that trait (`&dyn ConsentStore`), so its signature
//! says what it touches and a test double would implement only that. [`Store`] is every trait
//! together; it has no methods of its own and is implemented for anything that implements all
//! of them. Methods are small and named for what the protocol needs.

use async_trait::async_trait;

use super::{
    AccessTokenRecord, AccountLink, AuditEntry, AuditFilter, AuthRequest, CodeRecord, Conclusion,
    ConfigVersion, ConsentRecord, CreateOutcome, Delivery, DeliveryState, EndLogins, FinishedLogin,
    Grant, KeyRecord, LinkOutcome, LinkedIdentity, LoginEvent, LoginEventQuery, Logouts, NewUser,
    OutboxRow, PurposeState, PushedRequest, Redemption, RefreshTokenRecord, Removal, Result,
    Rotation, StoredContext, UpstreamLogin, User, UserHoldings, UserQuery,
};

/// The database itself: schema, readiness and clean-up.
#[async_trait]
pub trait MaintenanceStore: Send + Sync + 'static {
    /// Runs the embedded migrations (idempotent; safe when replicas start together).
    async fn migrate(&self) -> Result<()>;
    /// A cheap round trip, for readiness.
    async fn ping(&self) -> Result<()>;
    /// Deletes expired codes, requests, login states and tokens; returns rows removed.
    async fn purge_expired(&self, now: i64) -> Result<u64>;
}

/// Signing keys (see `tokens::keys`).
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    async fn signing_keys(&self) -> Result<Vec<KeyRecord>>;
    async fn insert_signing_key(&self, key: &KeyRecord) -> Result<()>;
    /// Schedules a key's end: it stops signing at `retires_at`, leaves the JWKS at `expires_at`.
    async fn retire_signing_key(&self, kid: &str, retires_at: i64, expires_at: i64) -> Result<()>;
    /// Replaces how a key is stored, when it was stored as `from` (a plaintext key sealed once a
    /// key-encryption key is set); false when another replica did it first.
    async fn reseal_signing_key(
        &self,
        kid: &str,
        from: &str,
        encryption: &str,
        private_key: &[u8],
    ) -> Result<bool>;
}

/// Users, the upstream identities they are linked to, and their authentication contexts.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Returns the user linked to (upstream, subject), creating it with `new_sub` if absent;
    /// records the login time.
    async fn link_user(
        &self,
        upstream_id: &str,
        upstream_subject: &str,
        new_sub: &str,
        now: i64,
    ) -> Result<User>;
    /// The user linked to (upstream, subject), if any; writes nothing.
    async fn user_by_identity(&self, upstream_id: &str, subject: &str) -> Result<Option<User>>;
    /// The identities linked to user `sub`, oldest first.
    async fn identities(&self, sub: &str) -> Result<Vec<LinkedIdentity>>;
    /// Links (upstream, subject) to user `sub`, unless another user holds it.
    async fn link_identity(
        &self,
        sub: &str,
        upstream_id: &str,
        subject: &str,
        now: i64,
    ) -> Result<LinkOutcome>;
    /// Unlinks (upstream, subject) from user `sub`; `false` when it was not theirs. Its next
    /// login creates (or joins) a user like one seen for the first time.
    async fn unlink_identity(&self, sub: &str, upstream_id: &str, subject: &str) -> Result<bool>;
    /// Creates a user before their first login.
    async fn create_user(&self, user: &NewUser) -> Result<CreateOutcome>;
    async fn user(&self, sub: &str) -> Result<Option<User>>;
    /// The users whose email is `email`, compared case-insensitively (Auth0's users-by-email).
    async fn users_by_email(&self, email: &str) -> Result<Vec<User>>;
    /// Blocks or unblocks user `sub`; `None` when there is no such user. Blocking, in one
    /// transaction, also revokes the user's codes and tokens and ends their browser sessions
    /// (in the database) and pending requests; returns how many codes and tokens it revoked.
    /// Blocking also ends the user's live logins, and `logouts` makes what their apps are owed;
    /// blocking a blocked user changes and writes nothing.
    async fn set_user_blocked(
        &self,
        sub: &str,
        blocked: bool,
        now: i64,
        logouts: &Logouts,
    ) -> Result<Option<u64>>;
    /// Records a login or refusal.
    async fn record_login_event(&self, event: &LoginEvent) -> Result<()>;
    /// Login events matching `query`, newest first.
    async fn login_events(&self, query: &LoginEventQuery) -> Result<Vec<LoginEvent>>;
    /// Erases a user in one transaction: codes burned, tokens revoked, grants, stored contexts,
    /// pending requests and sessions deleted, the user removed; consent records kept under
    /// `pseudonym` as evidence (deleted when `None`); `outbox` written. False for an unknown sub.
    async fn erase_user(
        &self,
        sub: &str,
        now: i64,
        pseudonym: Option<&str>,
        outbox: &[OutboxRow],
        logouts: &Logouts,
    ) -> Result<bool>;
    async fn set_last_context(&self, sub: &str, context: &str) -> Result<()>;
    /// A page of users and the number of users matching the query overall.
    async fn list_users(&self, query: &UserQuery) -> Result<(Vec<User>, i64)>;
    /// Everything kept about a user besides the profile, grants and consent records (for an
    /// export): stored logins, tokens and browser sessions in the database.
    async fn user_holdings(&self, sub: &str) -> Result<UserHoldings>;

    async fn insert_context(&self, ctx: &StoredContext) -> Result<()>;
    /// Takes the right to refresh live context `id` at its upstream until `until`, if its sealed
    /// upstream refresh token is still `sealed` (the one the caller read and would spend);
    /// `false` when another request holds the right, has refreshed it since (the token
    /// changed), or the context has ended.
    async fn claim_refresh(
        &self,
        id: &str,
        sealed: Option<&str>,
        now: i64,
        until: i64,
    ) -> Result<bool>;
    /// Replaces live context `id`'s sealed upstream refresh token (one the upstream rotated to
    /// in a refresh that then failed).
    async fn keep_upstream_refresh(&self, id: &str, sealed: &str) -> Result<()>;
    /// Gives that right back after a refresh that did not happen.
    async fn release_refresh(&self, id: &str) -> Result<()>;
    /// Replaces a live context's claims, freshness and upstream refresh token after a refresh
    /// at its upstream (and gives back the right to refresh it), and its user's `last_context`; `false` when the context has ended (or
    /// is gone) and nothing changed.
    async fn refresh_context(&self, ctx: &StoredContext) -> Result<bool>;
    /// Ends the live logins `which` names (a back-channel logout from their upstream, or one
    /// login its upstream refused to refresh): their contexts, and the codes and tokens issued
    /// from them, in one transaction with the logout tokens `logouts` makes for the apps they
    /// reached. Returns how many contexts it ended; one naming no login ends nothing.
    async fn end_logins(&self, which: &EndLogins<'_>, now: i64, logouts: &Logouts) -> Result<u64>;
    /// Writes the logout tokens `logouts` makes for the apps the live logins `which` reached,
    /// without ending the logins (RP-initiated logout ends the browser's session, and offline
    /// tokens live on: Back-Channel Logout 1.0 §2.7). Returns how many it wrote.
    async fn owe_logouts(&self, which: &EndLogins<'_>, logouts: &Logouts) -> Result<usize>;
    async fn context(&self, id: &str) -> Result<Option<StoredContext>>;
}

/// A login in flight: authorization requests and the upstream logins that answer them.
#[async_trait]
pub trait LoginStore: Send + Sync + 'static {
    async fn insert_auth_request(&self, req: &AuthRequest) -> Result<()>;
    async fn auth_request(&self, id: &str) -> Result<Option<AuthRequest>>;
    /// The request `id` with the grant its signed-in user holds for its app (none before the
    /// request has a user): what a consent step reads, in one statement.
    async fn auth_request_with_grant(
        &self,
        id: &str,
    ) -> Result<Option<(AuthRequest, Option<Grant>)>>;
    /// Records the login on a pending request.
    async fn set_auth_request_login(
        &self,
        id: &str,
        sub: &str,
        auth_context_id: &str,
        auth_time: i64,
    ) -> Result<()>;
    /// Marks the request decided; false when it already was (a replayed decision).
    async fn decide_auth_request(&self, id: &str, now: i64) -> Result<bool>;
    /// Ends a pending request in one transaction: marks it decided and stores the consent
    /// decision and the code it ends with, if any. `false`, with nothing stored, when it was
    /// decided before.
    async fn conclude_auth_request(&self, conclusion: &Conclusion<'_>) -> Result<bool>;

    async fn insert_upstream_login(&self, login: &UpstreamLogin) -> Result<()>;
    /// Stores a new request with the upstream login that starts it, in one transaction: a
    /// request sent straight to its upstream from `/authorize`.
    async fn start_upstream_login(&self, req: &AuthRequest, login: &UpstreamLogin) -> Result<()>;
    /// The login state, left in place: a successful login spends it inside
    /// [`finish_upstream_login`](Self::finish_upstream_login), a failed one with
    /// [`take_upstream_login`](Self::take_upstream_login).
    ///
    /// Read with the request it was started for, in one statement: `None` for the request when
    /// it is gone (purged after it expired).
    async fn upstream_login(
        &self,
        state_hash: &str,
    ) -> Result<Option<(UpstreamLogin, Option<AuthRequest>)>>;
    /// Removes and returns the login state: each `state` works once.
    async fn take_upstream_login(&self, state_hash: &str) -> Result<Option<UpstreamLogin>>;

    /// Stores a pushed authorization request (RFC 9126) under the digest of its request_uri.
    async fn push_request(&self, pushed: &PushedRequest) -> Result<()>;
    /// Removes and returns a pushed request that has not expired at `now`: each request_uri
    /// works once.
    async fn take_pushed_request(&self, uri_hash: &str, now: i64) -> Result<Option<PushedRequest>>;

    /// Records a finished upstream login in one transaction: links the identity to a user
    /// (created with `login.new_sub` if absent; an existing user keeps their sub, also when a
    /// concurrent login created it first), stores `login.context` under the user's sub, makes
    /// it the user's `last_context`, and records the login (sub, context id, the context's
    /// `auth_time`) on the authorization request. Either all of it is stored or nothing is.
    /// Like [`set_auth_request_login`](Self::set_auth_request_login), a request that is gone
    /// (expired and purged) is not an error. When `login.upstream_state_hash` is set, that
    /// upstream login state is spent in the same transaction; if it is gone already (a
    /// concurrent answer with the same `state` finished first), nothing is stored and the
    /// result is `None`. Returns the user as stored.
    async fn finish_upstream_login(&self, login: &FinishedLogin) -> Result<Option<User>>;
}

/// What users allowed apps: the current grants and the append-only consent records.
#[async_trait]
pub trait ConsentStore: Send + Sync + 'static {
    async fn grant(&self, sub: &str, client_id: &str) -> Result<Option<Grant>>;
    /// Every grant of one user, by client_id (for the consent center).
    async fn grants(&self, sub: &str) -> Result<Vec<Grant>>;
    /// Stores the new state of a grant and appends the decision, in one transaction.
    /// Stores a decision: the new grant (`None` deletes the user's grant to the app), its
    /// record, and the events it makes, in one transaction.
    async fn record_consent(
        &self,
        grant: Option<&Grant>,
        record: &ConsentRecord,
        outbox: &[OutboxRow],
    ) -> Result<()>;
    async fn consent_records(&self, sub: &str) -> Result<Vec<ConsentRecord>>;
    /// The user's current decision per purpose, by purpose name.
    async fn purpose_states(&self, sub: &str) -> Result<Vec<PurposeState>>;
    /// Appends imported decisions (each moving the purpose states it decides, unless a later
    /// decision is stored) and their events, in one transaction.
    async fn import_consents(&self, records: &[ConsentRecord], outbox: &[OutboxRow]) -> Result<()>;
    async fn create_account_link(&self, link: &AccountLink) -> Result<()>;
    /// Spends the link `token_hash` if it is unused and unexpired. Returns the link as it was
    /// before (`used_at` unset and `expires_at` after `now` exactly when this call spent it), a
    /// link whose `used_at` is set when it was spent before, or `None` for an unknown link.
    async fn use_account_link(&self, token_hash: &str, now: i64) -> Result<Option<AccountLink>>;
}

/// What is issued to clients: codes, access and refresh tokens, and seen client assertions.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    async fn insert_code(&self, code: &CodeRecord) -> Result<()>;
    /// The code, with the login it was issued from (`None` when that is gone), in one read.
    async fn code(&self, code_hash: &str) -> Result<Option<(CodeRecord, Option<StoredContext>)>>;
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
    /// Stores an access token issued without a code or refresh token (a token exchange).
    async fn insert_access_token(&self, token: &AccessTokenRecord) -> Result<()>;
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
    /// Records a DPoP proof's `jti` for the key `jkt` until `expires_at`; false when it was
    /// seen before (a replay, RFC 9449 §11.1).
    async fn use_dpop_proof(&self, jkt: &str, jti: &str, expires_at: i64) -> Result<bool>;
}

/// Browser sessions (tower-sessions records, as JSON).
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts a new browser session; false when the id is taken.
    async fn create_session(&self, id: &str, record: &str, expires_at: i64) -> Result<bool>;
    async fn save_session(&self, id: &str, record: &str, expires_at: i64) -> Result<()>;
    /// The session's record, unless absent or expired.
    async fn load_session(&self, id: &str, now: i64) -> Result<Option<String>>;
    async fn delete_session(&self, id: &str) -> Result<()>;
}

/// The managed configuration, one immutable row per version.
#[async_trait]
pub trait ConfigStore: Send + Sync + 'static {
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
}

/// The admin audit log, append-only.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends an audit entry for a change outside the configuration; returns its id.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64>;
    async fn audit_entries(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>>;
}

/// The outbox: events written beside their changes (by the other traits' methods), delivered
/// at least once by the replica holding the lease.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Takes or renews the lease `name` for `holder` until `until`; false while another holder's
    /// lease has not expired.
    async fn take_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool>;
    /// Gives the lease up, if `holder` has it (a replica shutting down).
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
    /// Pending deliveries due at `now`, oldest first.
    async fn due_deliveries(&self, now: i64, limit: i64) -> Result<Vec<Delivery>>;
    async fn delivery_done(&self, id: &str, attempts: i64, now: i64) -> Result<()>;
    /// An attempt failed: due again at `next_attempt_at`, or given up (`None`: failed).
    async fn delivery_failed(
        &self,
        id: &str,
        attempts: i64,
        next_attempt_at: Option<i64>,
        error: &str,
    ) -> Result<()>;
    /// Deliveries newest first, of one state or all.
    async fn deliveries(&self, state: Option<DeliveryState>, limit: i64) -> Result<Vec<Delivery>>;
    /// A failed delivery due again now; false when there is no failed delivery `id`.
    async fn retry_delivery(&self, id: &str, now: i64) -> Result<bool>;
}

/// Everything Herald stores: what [`super::connect`] returns and `AppState` holds.
pub trait Store:
    MaintenanceStore
    + KeyStore
    + UserStore
    + LoginStore
    + ConsentStore
    + TokenStore
    + SessionStore
    + ConfigStore
    + AuditStore
    + OutboxStore
{
}

impl<T> Store for T where
    T: MaintenanceStore
        + KeyStore
        + UserStore
        + LoginStore
        + ConsentStore
        + TokenStore
        + SessionStore
        + ConfigStore
        + AuditStore
        + OutboxStore
        + ?Sized
{
}
