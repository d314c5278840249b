//! The embedded SQLite store (the default).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use super::{Result, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Herald's own `database_url` parameter `synchronous=full|normal` (SQLite's `PRAGMA
/// synchronous` in WAL mode), taken out of the URL before sqlx reads it.
///
/// - `full` (the default): every commit is flushed to disk (`fsync` of the WAL) before Herald
///   answers. A power cut or kernel crash loses nothing Herald confirmed.
/// - `normal`: commits are flushed at checkpoints only. A crash of Herald itself still loses
///   nothing (the WAL is in the operating system's cache); a power cut or kernel crash may lose
///   the transactions committed since the last checkpoint (consent decisions, codes, tokens,
///   logins of the last moments), never the database's consistency. BENCHMARKS.md has the
///   figure for each.
fn synchronous(url: &str) -> Result<(String, SqliteSynchronous)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), SqliteSynchronous::Full));
    };
    let mut mode = SqliteSynchronous::Full;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("synchronous", v)) => {
                mode = match v.to_ascii_lowercase().as_str() {
                    "full" => SqliteSynchronous::Full,
                    "normal" => SqliteSynchronous::Normal,
                    _ => {
                        return Err(StoreError::Other(format!(
                            "database_url: synchronous={v} is not `full` or `normal`"
                        )));
                    }
                }
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, mode))
}

/// A SQLite database file (created on first start), in WAL mode.
///
/// Two pools: `pool` for reads, whose connections are `query_only`, and `writer`, one connection
/// that every write goes through. SQLite takes one writer at a time, and a writer that finds the
/// lock taken sleeps in SQLite's busy handler (1, 2, 5, … 100 ms, then 100 ms at a time) instead of
/// queueing: under load that put tens to hundreds of milliseconds on some writes and starved
/// others for over a second. Writers now wait in order for the one writing connection (the pool's
/// own queue) and never meet the lock taken by another of Herald's writers. An in-memory database
/// exists per connection, so it keeps one connection for both.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    writer: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let (url, synchronous) = synchronous(url)?;
        let url = url.as_str();
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("database_url: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            // `sqlite://data/herald.db` on a fresh checkout: create `data/` too.
            let path = options.get_filename();
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Other(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        // The writer first: it creates the file and puts it in WAL mode.
        // No ping on every acquire (sqlx's default): a connection to a file in this process does
        // not go stale the way a network connection does, and each ping is one more round trip
        // to the connection's worker thread. sqlx still pings a connection when it is released.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            // A write waits its turn at most this long, then the request is shed with 503
            // instead of queueing without end.
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options.clone())
            .await?;
        if in_memory {
            return Ok(Self {
                pool: writer.clone(),
                writer,
            });
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(options.pragma("query_only", "true"))
            .await?;
        Ok(Self { pool, writer })
    }

    /// Whether the database file of `url` exists (an in-memory database never does).
    pub fn exists(url: &str) -> bool {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let Ok((url, _)) = synchronous(url) else {
            return false;
        };
        !in_memory && SqliteConnectOptions::from_str(&url).is_ok_and(|o| o.get_filename().is_file())
    }

    /// Removes the database file of `url` with its `-wal` and `-shm` companions: what a start
    /// that failed after creating the database leaves.
    pub fn remove_files(url: &str) -> std::io::Result<()> {
        let (url, _) = synchronous(url)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let options = SqliteConnectOptions::from_str(&url)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let path = options.get_filename().to_path_buf();
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The pool writes go through: the one writing connection.
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    async fn run_migrations(&self) -> Result<()> {
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Other(format!("migrations failed: {e}")))
    }

    /// `BEGIN IMMEDIATE`: the transaction takes the write lock at once (waiting up to the busy
    /// timeout for another writer), so one that reads before it writes is never refused when it
    /// later needs to write (a deferred transaction cannot upgrade past a concurrent writer).
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

super::sql::sql_store!(SqliteStore, sqlx::Sqlite);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchronous_is_taken_out_of_the_url_and_defaults_to_full() {
        let (url, mode) = synchronous("sqlite://data/h.db").unwrap();
        assert_eq!(
            (url.as_str(), mode),
            ("sqlite://data/h.db", SqliteSynchronous::Full)
        );
        let (url, mode) = synchronous("sqlite://h.db?synchronous=normal&mode=rwc").unwrap();
        assert_eq!(
            (url.as_str(), mode),
            ("sqlite://h.db?mode=rwc", SqliteSynchronous::Normal)
        );
        let (url, mode) = synchronous("sqlite://h.db?synchronous=FULL").unwrap();
        assert_eq!(
            (url.as_str(), mode),
            ("sqlite://h.db", SqliteSynchronous::Full)
        );
        let err = synchronous("sqlite://h.db?synchronous=off").unwrap_err();
        assert_eq!(
            err.to_string(),
            "database error: database_url: synchronous=off is not `full` or `normal`"
        );
    }
}
