//! The PostgreSQL store, for several Herald replicas sharing one database.

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};

use super::{Result, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // Fail fast when the database is down or the pool is exhausted (503, not a hang).
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn run_migrations(&self) -> Result<()> {
        // sqlx takes an advisory lock, so replicas starting together migrate once.
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(format!("migrations failed: {e}")))
    }

    /// A connection for reading.
    async fn reader(&self) -> Result<PoolConnection<Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    /// A connection for a write outside a transaction: any of the pool's, since PostgreSQL
    /// queues writers on row locks itself (SQLite's store keeps one writing connection).
    async fn write_conn(&self) -> Result<PoolConnection<Postgres>> {
        self.reader().await
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

super::sql::sql_store!(PgStore, sqlx::Postgres);
