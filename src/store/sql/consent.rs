//! [`ConsentStore`](crate::store::ConsentStore) in SQL: grants and consent records.

macro_rules! consent_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::ConsentStore for $store {
            async fn grant(
                &self,
                sub: &str,
                client_id: &str,
            ) -> $crate::store::Result<Option<$crate::store::Grant>> {
                Ok(sqlx::query_as("SELECT * FROM grants WHERE sub = $1 AND client_id = $2")
                    .bind(sub)
                    .bind(client_id)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?)
            }

            async fn grants(&self, sub: &str) -> $crate::store::Result<Vec<$crate::store::Grant>> {
                Ok(sqlx::query_as("SELECT * FROM grants WHERE sub = $1 ORDER BY client_id")
                    .bind(sub)
                    .fetch_all(&mut *self.reader().await?)
                    .await?)
            }

            async fn record_consent(
                &self,
                grant: Option<&$crate::store::Grant>,
                rec: &$crate::store::ConsentRecord,
                outbox: &[$crate::store::OutboxRow],
            ) -> $crate::store::Result<()> {
                let mut tx = self.begin_write().await?;
                shared::decide(&mut tx, grant, rec, outbox).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn consent_records(
                &self,
                sub: &str,
            ) -> $crate::store::Result<Vec<$crate::store::ConsentRecord>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM consent_records WHERE sub = $1 ORDER BY decided_at, id",
                )
                .bind(sub)
                .fetch_all(&mut *self.reader().await?)
                .await?)
            }

            async fn purpose_states(
                &self,
                sub: &str,
            ) -> $crate::store::Result<Vec<$crate::store::PurposeState>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM purpose_states WHERE sub = $1 ORDER BY purpose",
                )
                .bind(sub)
                .fetch_all(&mut *self.reader().await?)
                .await?)
            }

            async fn import_consents(
                &self,
                records: &[$crate::store::ConsentRecord],
                outbox: &[$crate::store::OutboxRow],
            ) -> $crate::store::Result<()> {
                let mut tx = self.begin_write().await?;
                for rec in records {
                    shared::insert_record(&mut tx, rec).await?;
                }
                shared::enqueue(&mut tx, outbox).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_account_link(
                &self,
                link: &$crate::store::AccountLink,
            ) -> $crate::store::Result<()> {
                sqlx::query(
                    "INSERT INTO account_links (token_hash, sub, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&link.token_hash)
                .bind(&link.sub)
                .bind(link.created_at)
                .bind(link.expires_at)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn use_account_link(
                &self,
                token_hash: &str,
                now: i64,
            ) -> $crate::store::Result<Option<$crate::store::AccountLink>> {
                // One conditional write spends it: of two racing uses, exactly one gets a row.
                let spent: Option<$crate::store::AccountLink> = sqlx::query_as(
                    "UPDATE account_links SET used_at = $2 \
                     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING *",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&mut *self.write_conn().await?)
                .await?;
                if let Some(mut link) = spent {
                    // As it was before this use.
                    link.used_at = None;
                    return Ok(Some(link));
                }
                // Not spent now: unknown, used before, or expired; say which.
                Ok(sqlx::query_as("SELECT * FROM account_links WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?)
            }
        }
    };
}

pub(crate) use consent_sql;
