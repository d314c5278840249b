//! Choosing the backend, once, from the scheme of `database_url`.

use std::sync::Arc;

use super::error::{Result, StoreError};
use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::traits::Store;

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
