//! The embedded SQLite store (the default).

use std::str::FromStr;
use std::time::Duration;

use std::ops::{Deref, DerefMut};

use deadpool::managed::{Metrics, PoolError, RecycleResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Database, Sqlite, TransactionManager};

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
/// Two pools: `readers`, up to eight `query_only` connections, and `writer`, one connection that
/// every write goes through. SQLite takes one writer at a time, and a writer that finds the lock
/// taken sleeps in SQLite's busy handler (1, 2, 5, … 100 ms, then 100 ms at a time) instead of
/// queueing: under load that put tens to hundreds of milliseconds on some writes and starved
/// others for over a second. Writers wait in order for the one writing connection (the pool's
/// queue is a fair semaphore) and never meet the lock taken by another of Herald's writers. An
/// in-memory database exists per connection, so it keeps one connection for both.
///
/// The pools are deadpool's, not sqlx's: sqlx's pool pings every connection it takes back (a
/// round trip to the connection's worker thread, from a task spawned to do it) after every
/// statement outside a transaction and after every transaction. A connection to a file in this
/// process does not go stale, and sqlx's worker itself rolls back a transaction whose `BEGIN` or
/// whose holder was dropped, so a connection goes back to its pool as it is.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    readers: Pool,
    writer: Pool,
}

/// Opens the connections of one pool; hands a returned connection out again without a check.
#[derive(Debug)]
struct Connector(SqliteConnectOptions);

impl deadpool::managed::Manager for Connector {
    type Type = SqliteConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> std::result::Result<SqliteConnection, sqlx::Error> {
        self.0.connect().await
    }

    async fn recycle(&self, _: &mut SqliteConnection, _: &Metrics) -> RecycleResult<sqlx::Error> {
        Ok(())
    }
}

type Pool = deadpool::managed::Pool<Connector>;

/// A connection taken from one of the store's pools; back in it when dropped.
type Conn = deadpool::managed::Object<Connector>;

/// How long a statement waits for a connection before the request is shed with 503 instead of
/// queueing without end.
const WAIT: Duration = Duration::from_secs(3);

fn pool(
    options: SqliteConnectOptions,
    size: usize,
    queue: deadpool::managed::QueueMode,
) -> Result<Pool> {
    Pool::builder(Connector(options))
        .max_size(size)
        .queue_mode(queue)
        .wait_timeout(Some(WAIT))
        .create_timeout(Some(WAIT))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Other(format!("cannot build the connection pool: {e}")))
}

async fn take(pool: &Pool) -> Result<Conn> {
    pool.get().await.map_err(|e| match e {
        PoolError::Backend(e) => e.into(),
        PoolError::Timeout(_) => sqlx::Error::PoolTimedOut.into(),
        PoolError::Closed => sqlx::Error::PoolClosed.into(),
        other => StoreError::Other(other.to_string()),
    })
}

/// A write transaction on the writing connection, begun with `BEGIN IMMEDIATE`: what sqlx's
/// `Transaction` is, over a connection of the store's own pool. Dropped without `commit` or
/// `rollback`, it is rolled back (by the connection's worker, before the next command it runs).
pub(crate) struct WriteTx {
    conn: Conn,
    open: bool,
}

/// sqlx's transaction commands for SQLite (`BEGIN`, `COMMIT`, `ROLLBACK` on the worker).
type Transactions = <Sqlite as Database>::TransactionManager;

impl WriteTx {
    pub async fn commit(mut self) -> sqlx::Result<()> {
        Transactions::commit(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }

    pub async fn rollback(mut self) -> sqlx::Result<()> {
        Transactions::rollback(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.open {
            Transactions::start_rollback(&mut self.conn);
        }
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
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
        // The writer first, opened now: it creates the file and puts it in WAL mode, and a
        // database that cannot be opened is an error at start. Readers are opened as needed.
        use deadpool::managed::QueueMode;
        let writer = pool(options.clone(), 1, QueueMode::Fifo)?;
        drop(take(&writer).await?);
        if in_memory {
            return Ok(Self {
                readers: writer.clone(),
                writer,
            });
        }
        // Readers are handed out in turn. Handing out the one used last first (LIFO) kept fewer
        // of them busy, but Herald's memory after 30,000 logins grew to 1.83x idle against 1.47x
        // in turn (BENCHMARKS.md, "Login path").
        let readers = pool(options.pragma("query_only", "true"), 8, QueueMode::Fifo)?;
        Ok(Self { readers, writer })
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

    /// A connection for reading.
    async fn reader(&self) -> Result<Conn> {
        take(&self.readers).await
    }

    /// The writing connection, for a write outside a transaction.
    async fn write_conn(&self) -> Result<Conn> {
        take(&self.writer).await
    }

    async fn run_migrations(&self) -> Result<()> {
        let mut conn = self.write_conn().await?;
        MIGRATOR
            .run_direct(&mut *conn)
            .await
            .map_err(|e| StoreError::Other(format!("migrations failed: {e}")))
    }

    /// `BEGIN IMMEDIATE`: the transaction takes the write lock at once (waiting up to the busy
    /// timeout for another writer), so one that reads before it writes is never refused when it
    /// later needs to write (a deferred transaction cannot upgrade past a concurrent writer).
    async fn begin_write(&self) -> Result<WriteTx> {
        let mut conn = self.write_conn().await?;
        Transactions::begin(&mut conn, Some("BEGIN IMMEDIATE".into())).await?;
        Ok(WriteTx { conn, open: true })
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
