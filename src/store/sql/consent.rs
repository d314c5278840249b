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
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn grants(&self, sub: &str) -> $crate::store::Result<Vec<$crate::store::Grant>> {
                Ok(sqlx::query_as("SELECT * FROM grants WHERE sub = $1 ORDER BY client_id")
                    .bind(sub)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn record_consent(
                &self,
                grant: Option<&$crate::store::Grant>,
                rec: &$crate::store::ConsentRecord,
                outbox: &[$crate::store::OutboxRow],
            ) -> $crate::store::Result<()> {
                let mut tx = self.begin_write().await?;
                match grant {
                    Some(g) => {
                        sqlx::query(
                            "INSERT INTO grants (sub, client_id, scopes, scope_versions, \
                             granted_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                             ON CONFLICT (sub, client_id) DO UPDATE SET scopes = excluded.scopes, \
                             scope_versions = excluded.scope_versions, \
                             updated_at = excluded.updated_at",
                        )
                        .bind(&g.sub)
                        .bind(&g.client_id)
                        .bind(g.scopes.as_str())
                        .bind(&g.scope_versions)
                        .bind(g.granted_at)
                        .bind(g.updated_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM grants WHERE sub = $1 AND client_id = $2")
                            .bind(&rec.sub)
                            .bind(&rec.client_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                sqlx::query(
                    "INSERT INTO consent_records (id, sub, client_id, allowed, denied, \
                     text_versions, method, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&rec.id)
                .bind(&rec.sub)
                .bind(&rec.client_id)
                .bind(rec.allowed.as_str())
                .bind(rec.denied.as_str())
                .bind(&rec.text_versions)
                .bind(rec.method.as_str())
                .bind(rec.decided_at)
                .execute(&mut *tx)
                .await?;
                shared::enqueue(&mut tx, outbox).await?;
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
                .fetch_all(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use consent_sql;
