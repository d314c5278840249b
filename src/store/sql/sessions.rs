//! [`SessionStore`](crate::store::SessionStore) in SQL: browser sessions.

macro_rules! session_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::SessionStore for $store {
            async fn create_session(
                &self,
                id: &str,
                record: &str,
                expires_at: i64,
            ) -> $crate::store::Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO sessions (id, record, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(id)
                .bind(record)
                .bind(expires_at)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn save_session(
                &self,
                id: &str,
                record: &str,
                expires_at: i64,
            ) -> $crate::store::Result<()> {
                sqlx::query(
                    "INSERT INTO sessions (id, record, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET record = excluded.record, \
                     expires_at = excluded.expires_at",
                )
                .bind(id)
                .bind(record)
                .bind(expires_at)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn load_session(
                &self,
                id: &str,
                now: i64,
            ) -> $crate::store::Result<Option<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT record FROM sessions WHERE id = $1 AND expires_at > $2",
                )
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *self.reader().await?)
                .await?)
            }

            async fn delete_session(&self, id: &str) -> $crate::store::Result<()> {
                sqlx::query("DELETE FROM sessions WHERE id = $1")
                    .bind(id)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use session_sql;
