//! What went wrong in the store, in the terms callers act on: unavailable (retry later),
//! a conflict (a concurrent writer won), corrupt data, or anything else.

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

impl StoreError {
    /// The error's kind as `herald_store_errors_total` labels it.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Conflict(_) => "conflict",
            StoreError::Corrupt(_) => "corrupt",
            StoreError::Other(_) => "other",
        }
    }
}

/// Every database error is counted here, where it gets its kind.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let error = classify(e);
        crate::telemetry::metrics::store_error(error.kind());
        error
    }
}

fn classify(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => StoreError::Unavailable(e.to_string()),
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

pub type Result<T> = std::result::Result<T, StoreError>;
