//! The records of consent as evidence and as events (issue 16): purpose decisions and states,
//! account links, what ends a pending request in one transaction, how a removed client's grants
//! are recorded (with the [`Removal`] of configuration changes), and what an export reads about
//! a user.

use super::identities::AppLogin;
use super::issued::{AccessTokenRecord, CodeRecord, RefreshTokenRecord};
use super::records::{ConsentOutcome, ConsentRecord, Grant, OutboxRow, StoredContext};

/// One purpose decided in a consent record (the record's `purposes` JSON: name -> this).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PurposeDecision {
    /// `granted`, `denied` or `withdrawn`.
    pub decision: String,
    /// The purpose's version the decision was made under.
    pub version: String,
    /// Its legal basis then (`consent`, `contract`, …).
    pub legal_basis: String,
}

/// A user's current decision on one purpose: the latest record that decided it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PurposeState {
    pub sub: String,
    pub purpose: String,
    #[sqlx(try_from = "String")]
    pub decision: ConsentOutcome,
    pub version: String,
    pub record_id: String,
    pub decided_at: i64,
}

/// A consent decision to store: the grant after it (`None` deletes the user's grant to the
/// app), its record and the events it makes.
#[derive(Debug, Clone, Copy)]
pub struct ConsentWrite<'a> {
    pub grant: Option<&'a Grant>,
    pub record: &'a ConsentRecord,
    pub outbox: &'a [OutboxRow],
}

/// How a pending authorization request ends, stored in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct Conclusion<'a> {
    pub request_id: &'a str,
    pub now: i64,
    /// The consent decision made for it, if one was made now.
    pub consent: Option<ConsentWrite<'a>>,
    /// The code it ends with; `None` when it ends refused.
    pub code: Option<&'a CodeRecord>,
}

/// What the store holds about a user besides the profile, grants and consent records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserHoldings {
    /// Stored logins (authentication contexts), oldest first.
    pub contexts: Vec<StoredContext>,
    pub access_tokens: Vec<AccessTokenRecord>,
    pub refresh_tokens: Vec<RefreshTokenRecord>,
    /// The expiry of each browser session in the database that names the user.
    pub session_expiries: Vec<i64>,
}

/// A single-use link to one user's consent center, keyed by the digest of its token.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AccountLink {
    pub token_hash: String,
    pub sub: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// Makes the consent record and events of one grant withdrawn with its client.
pub type WithdrawGrant = dyn Fn(&Grant) -> (ConsentRecord, Vec<OutboxRow>) + Send + Sync;

/// How the grants deleted with a client are recorded: for each, its consent record and the
/// events it makes. Built above the store (which knows neither wording nor event formats) and
/// called inside the removal's transaction, on exactly the grants deleted.
#[derive(Clone)]
pub struct Withdrawal(pub std::sync::Arc<WithdrawGrant>);

impl std::fmt::Debug for Withdrawal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Withdrawal(..)")
    }
}

impl PartialEq for Withdrawal {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Makes the logout tokens owed to the apps of logins that end (Back-Channel Logout 1.0).
pub type OweLogouts = dyn Fn(&[AppLogin]) -> Vec<OutboxRow> + Send + Sync;

/// How the apps of ending logins are told: built above the store (which knows neither the
/// clients nor the token format) and called inside the transaction that ends the logins, on
/// exactly the apps those logins reached.
#[derive(Clone)]
pub struct Logouts(pub std::sync::Arc<OweLogouts>);

impl Logouts {
    /// Nobody is told (no app listens, or a test of the store alone).
    pub fn none() -> Logouts {
        Logouts(std::sync::Arc::new(|_| Vec::new()))
    }
}

impl std::fmt::Debug for Logouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Logouts(..)")
    }
}

impl PartialEq for Logouts {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Something a configuration change removed. [`ConfigStore::save_config`](super::ConfigStore::save_config) ends what it was given in
/// the transaction that stores the change, so the change is never in effect without it, and
/// every replica sees the revocations at once (they are rows, not one replica's memory).
#[derive(Debug, Clone, PartialEq)]
pub enum Removal {
    /// A client: its unredeemed codes are burned, its refresh and access tokens revoked, and
    /// its grants deleted, each with the consent record and events `withdrawal` makes of it.
    Client {
        client_id: String,
        /// The record and events of each grant withdrawn with the client.
        withdrawal: Withdrawal,
    },
    /// An upstream: the authentication contexts of its logins are revoked together with every
    /// code, refresh token and access token issued from them, and its logins in flight (upstream
    /// states) are dropped; the apps those logins reached are owed logout tokens.
    Upstream {
        upstream_id: String,
        logouts: Logouts,
    },
}
