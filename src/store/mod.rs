//! Storage: everything a login needs, behind narrow traits.
//!
//! Each concern has its own trait ([`UserStore`], [`LoginStore`], [`ConsentStore`],
//! [`TokenStore`], [`SessionStore`], [`ConfigStore`], [`KeyStore`], [`AuditStore`],
//! [`MaintenanceStore`], [`OutboxStore`]); [`Store`] is all of them. They are implemented once per database:
//! [`sqlite::SqliteStore`] (the embedded default) and [`postgres::PgStore`] (several replicas).
//! Both are generated from the same SQL in `sql`, which keeps to the dialect SQLite and
//! PostgreSQL share (`$n` parameters, `ON CONFLICT`, `RETURNING`); the one store test-suite
//! (`tests/store.rs`) runs against both. The backend is chosen once, in [`connect`], from the
//! scheme of `database_url`.
//!
//! Layout: `records` (the row types), `issued` (codes and tokens as issued), `receipts` (consent evidence, account links, removals and
//! what ends a request), `traits` (the interface), `sql/` (one file per trait, the
//! SQL both backends run), `sqlite` and `postgres` (connecting and migrating).
//!
//! Trait methods need their trait in scope: `use crate::store::prelude::*;` brings every one.
//!
//! Conventions: timestamps are UTC Unix seconds (`i64`); codes, refresh tokens and other bearer
//! secrets are stored only as SHA-256 digests; a row that may be used once is consumed with a
//! single conditional `UPDATE`/`DELETE ... RETURNING`, so concurrent replicas race safely.

mod connect;
mod error;
mod identities;
mod issued;
mod login_events;
mod outbox;
mod postgres;
mod receipts;
mod records;
pub(crate) mod sql;
mod sqlite;
mod traits;

pub use connect::{DynStore, connect, connect_existing, redact_url};
pub use error::{Result, StoreError};
pub use identities::{AppLogin, CreateOutcome, EndLogins, LinkOutcome, LinkedIdentity, NewUser};
pub use issued::{AccessTokenRecord, CodeRecord, Redemption, RefreshTokenRecord, Rotation};
pub(crate) use login_events::LoginEventRow;
pub use login_events::{LOGIN_EVENT_RETENTION_SECS, LoginEvent, LoginEventQuery};
pub use outbox::Delivery;
pub use postgres::PgStore;
pub use receipts::{
    AccountLink, Conclusion, ConsentWrite, Logouts, PurposeDecision, PurposeState, Removal,
    UserHoldings, WithdrawGrant, Withdrawal,
};
pub use records::{
    AuditEntry, AuditFilter, AuthRequest, ConfigVersion, ConsentMethod, ConsentOutcome,
    ConsentRecord, DeliveryState, FinishedLogin, Grant, KeyAlg, KeyRecord, LoginResult, OutboxRow,
    PushedRequest, ScopeList, StoredContext, UnknownValue, UpstreamLogin, User, UserProfile,
    UserQuery, UserSort,
};
pub use sqlite::SqliteStore;
pub use traits::{
    AuditStore, ConfigStore, ConsentStore, KeyStore, LoginStore, MaintenanceStore, OutboxStore,
    SessionStore, Store, TokenStore, UserStore,
};

/// Every store trait, in scope without its name (so `SessionStore` does not clash with
/// tower-sessions' trait of that name): `use crate::store::prelude::*;` lets any caller call
/// any store method on a [`DynStore`].
pub mod prelude {
    pub use super::traits::{
        AuditStore as _, ConfigStore as _, ConsentStore as _, KeyStore as _, LoginStore as _,
        MaintenanceStore as _, OutboxStore as _, SessionStore as _, Store as _, TokenStore as _,
        UserStore as _,
    };
}
