//! Browser sessions (tower-sessions) kept in Herald's own store, so a login started on one
//! replica finishes on another, and sessions expire with everything else.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use crate::store::{DynStore, StoreError};

/// The session store: records as JSON in the `sessions` table.
#[derive(Clone)]
pub struct StoreSessions {
    store: DynStore,
}

impl std::fmt::Debug for StoreSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreSessions")
    }
}

impl StoreSessions {
    pub fn new(store: DynStore) -> Self {
        Self { store }
    }
}

fn backend(e: StoreError) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encode(record: &Record) -> session_store::Result<String> {
    serde_json::to_string(record).map_err(|e| session_store::Error::Encode(e.to_string()))
}

#[async_trait]
impl SessionStore for StoreSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(record)?;
        // Ids are 128-bit random; on the rare collision draw another.
        while !self
            .store
            .create_session(
                &record.id.to_string(),
                &data,
                record.expiry_date.unix_timestamp(),
            )
            .await
            .map_err(backend)?
        {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.store
            .save_session(
                &record.id.to_string(),
                &encode(record)?,
                record.expiry_date.unix_timestamp(),
            )
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match self
            .store
            .load_session(&id.to_string(), now)
            .await
            .map_err(backend)?
        {
            Some(data) => serde_json::from_str(&data)
                .map(Some)
                .map_err(|e| session_store::Error::Decode(e.to_string())),
            None => Ok(None),
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.store
            .delete_session(&id.to_string())
            .await
            .map_err(backend)
    }
}

/// Browser sessions in Redis (`session_store = "redis://..."`): keys `herald:session:{id}`
/// that expire with the session. The connection manager reconnects by itself.
#[derive(Clone)]
pub struct RedisSessions {
    conn: redis::aio::ConnectionManager,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisSessions")
    }
}

const REDIS_PREFIX: &str = "herald:session:";

/// How long a start waits for the session store.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A Redis URL fit for messages: the password replaced.
fn redact(url: &str) -> String {
    crate::store::redact_url(url)
}

fn redis_error(e: redis::RedisError) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

impl RedisSessions {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("session_store: {e}"))?;
        // The connection manager retries a first connection for minutes; a start waits 5 s.
        let conn =
            tokio::time::timeout(CONNECT_TIMEOUT, redis::aio::ConnectionManager::new(client))
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "cannot reach the session store {}: no connection within {} s",
                        redact(url),
                        CONNECT_TIMEOUT.as_secs()
                    )
                })?
                .map_err(|e| {
                    anyhow::anyhow!("cannot reach the session store {}: {e}", redact(url))
                })?;
        Ok(Self { conn })
    }

    /// Deletes every session whose record names `sub` (erasure). Sessions are keyed by id, not
    /// user, so this walks the session keys with `SCAN`: erasure is rare and this keeps the
    /// login path free of a per-user index. Returns how many were deleted.
    pub async fn erase_user(&self, sub: &str) -> anyhow::Result<u64> {
        let needle = format!("\"sub\":{}", serde_json::to_string(sub)?);
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{REDIS_PREFIX}*"))
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await?;
            for key in keys {
                let data: Option<String> =
                    redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
                if data.is_some_and(|d| d.contains(&needle)) {
                    let n: u64 = redis::cmd("DEL").arg(&key).query_async(&mut conn).await?;
                    deleted += n;
                }
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    async fn set(&self, record: &Record, only_if_new: bool) -> session_store::Result<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{REDIS_PREFIX}{}", record.id))
            .arg(encode(record)?)
            .arg("EXAT")
            .arg(record.expiry_date.unix_timestamp());
        if only_if_new {
            cmd.arg("NX");
        }
        let reply: Option<String> = cmd
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        Ok(reply.is_some())
    }
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        while !self.set(record, true).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.set(record, false).await.map(|_| ())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let data: Option<String> = redis::cmd("GET")
            .arg(format!("{REDIS_PREFIX}{id}"))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error)?;
        data.map(|d| {
            serde_json::from_str(&d).map_err(|e| session_store::Error::Decode(e.to_string()))
        })
        .transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        redis::cmd("DEL")
            .arg(format!("{REDIS_PREFIX}{id}"))
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(redis_error)
    }
}

/// The session store chosen by configuration: the main database, or Redis.
#[derive(Debug, Clone)]
pub enum Sessions {
    Store(StoreSessions),
    Redis(RedisSessions),
}

#[async_trait]
impl SessionStore for Sessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Sessions::Store(s) => s.create(record).await,
            Sessions::Redis(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Sessions::Store(s) => s.save(record).await,
            Sessions::Redis(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Sessions::Store(s) => s.load(id).await,
            Sessions::Redis(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Sessions::Store(s) => s.delete(id).await,
            Sessions::Redis(s) => s.delete(id).await,
        }
    }
}
