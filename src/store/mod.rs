//! Storage: everything a login needs, behind narrow traits.
//!
//! Each concern has its own trait ([`UserStore`], [`LoginStore`], [`ConsentStore`],
//! [`TokenStore`], [`SessionStore`], [`ConfigStore`], [`KeyStore`], [`AuditStore`],
//! [`MaintenanceStore`]); [`Store`] is all of them. They are implemented once per database:
//! [`sqlite::SqliteStore`] (the embedded default) and [`postgres::PgStore`] (several replicas).
//! Both are generated from the same SQL in `sql`, which keeps to the dialect SQLite and
//! PostgreSQL share (`$n` parameters, `ON CONFLICT`, `RETURNING`); the one store test-suite
//! (`tests/store.rs`) runs against both. The backend is chosen once, in [`connect`], from the
//! scheme of `database_url`.
//!
//! Layout: `records` (the row types), `traits` (the interface), `sql/` (one file per trait, the
//! SQL both backends run), `sqlite` and `postgres` (connecting and migrating).
//!
//! Trait methods need their trait in scope: `use crate::store::prelude::*;` brings every one.
//!
//! Conventions: timestamps are UTC Unix seconds (`i64`); codes, refresh tokens and other bearer
//! secrets are stored only as SHA-256 digests; a row that may be used once is consumed with a
//! single conditional `UPDATE`/`DELETE ... RETURNING`, so concurrent replicas race safely.

mod postgres;
mod records;
mod sql;
mod sqlite;
mod traits;

use std::sync::Arc;

pub use postgres::PgStore;
pub use records::{
    AccessTokenRecord, AuditEntry, AuditFilter, AuthRequest, CodeRecord, ConfigVersion,
    ConsentRecord, FinishedLogin, Grant, KeyRecord, Redemption, RefreshTokenRecord, Removal,
    Rotation, StoredContext, UpstreamLogin, User, UserQuery, UserSort,
};
pub use sqlite::SqliteStore;
pub use traits::{
    AuditStore, ConfigStore, ConsentStore, KeyStore, LoginStore, MaintenanceStore, SessionStore,
    Store, TokenStore, UserStore,
};

/// Every store trait, in scope without its name (so `SessionStore` does not clash with
/// tower-sessions' trait of that name): `use crate::store::prelude::*;` lets any caller call
/// any store method on a [`DynStore`].
pub mod prelude {
    pub use super::traits::{
        AuditStore as _, ConfigStore as _, ConsentStore as _, KeyStore as _, LoginStore as _,
        MaintenanceStore as _, SessionStore as _, Store as _, TokenStore as _, UserStore as _,
    };
}

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
