//! [`OutboxStore`](crate::store::OutboxStore) in SQL: the lease, due deliveries and their
//! outcomes. Rows are written by the other traits' methods, in their transactions
//! (`shared::enqueue`).

macro_rules! outbox_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::OutboxStore for $store {
            async fn take_lease(
                &self,
                name: &str,
                holder: &str,
                now: i64,
                until: i64,
            ) -> $crate::store::Result<bool> {
                // One statement: insert, or take over an expired lease, or renew one's own.
                let row: Option<(String,)> = sqlx::query_as(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     expires_at = excluded.expires_at \
                     WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder \
                     RETURNING holder",
                )
                .bind(name)
                .bind(holder)
                .bind(until)
                .bind(now)
                .fetch_optional(&mut *self.write_conn().await?)
                .await?;
                Ok(row.is_some())
            }

            async fn release_lease(&self, name: &str, holder: &str) -> $crate::store::Result<()> {
                sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                    .bind(name)
                    .bind(holder)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn due_deliveries(
                &self,
                now: i64,
                limit: i64,
            ) -> $crate::store::Result<Vec<$crate::store::Delivery>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 \
                     ORDER BY next_attempt_at, created_at, id LIMIT $2",
                )
                .bind(now)
                .bind(limit)
                .fetch_all(&mut *self.reader().await?)
                .await?)
            }

            async fn delivery_done(
                &self,
                id: &str,
                attempts: i64,
                now: i64,
            ) -> $crate::store::Result<()> {
                sqlx::query(
                    "UPDATE outbox SET state = 'delivered', attempts = $2, delivered_at = $3, \
                     last_error = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(attempts)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn delivery_failed(
                &self,
                id: &str,
                attempts: i64,
                next_attempt_at: Option<i64>,
                error: &str,
            ) -> $crate::store::Result<()> {
                let state = if next_attempt_at.is_some() {
                    "pending"
                } else {
                    "failed"
                };
                sqlx::query(
                    "UPDATE outbox SET state = $2, attempts = $3, \
                     next_attempt_at = COALESCE($4, next_attempt_at), last_error = $5 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(state)
                .bind(attempts)
                .bind(next_attempt_at)
                .bind(error)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn deliveries(
                &self,
                state: Option<$crate::store::DeliveryState>,
                limit: i64,
            ) -> $crate::store::Result<Vec<$crate::store::Delivery>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM outbox WHERE ($1 IS NULL OR state = $1) \
                     ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(state.map(|s| s.as_str()))
                .bind(limit)
                .fetch_all(&mut *self.reader().await?)
                .await?)
            }

            async fn retry_delivery(&self, id: &str, now: i64) -> $crate::store::Result<bool> {
                let done = sqlx::query(
                    "UPDATE outbox SET state = 'pending', next_attempt_at = $2 \
                     WHERE id = $1 AND state = 'failed'",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use outbox_sql;
