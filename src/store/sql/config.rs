//! [`ConfigStore`](crate::store::ConfigStore) and [`AuditStore`](crate::store::AuditStore) in
//! SQL: configuration versions and the audit log written with them.

macro_rules! config_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::ConfigStore for $store {
            async fn latest_config_version(&self) -> $crate::store::Result<Option<i64>> {
                Ok(sqlx::query_scalar("SELECT MAX(version) AS v FROM config_versions")
                    .fetch_one(&mut *self.reader().await?)
                    .await?)
            }

            async fn latest_config(
                &self,
            ) -> $crate::store::Result<Option<$crate::store::ConfigVersion>> {
                Ok(
                    sqlx::query_as("SELECT * FROM config_versions ORDER BY version DESC LIMIT 1")
                        .fetch_optional(&mut *self.reader().await?)
                        .await?,
                )
            }

            async fn seed_config(
                &self,
                first: &$crate::store::ConfigVersion,
            ) -> $crate::store::Result<bool> {
                let mut tx = self.begin_write().await?;
                let done = sqlx::query(
                    "INSERT INTO config_versions (version, document, created_at, author) \
                     SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM config_versions) \
                     ON CONFLICT (version) DO NOTHING",
                )
                .bind(first.version)
                .bind(&first.document)
                .bind(first.created_at)
                .bind(&first.author)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn save_config(
                &self,
                next: &$crate::store::ConfigVersion,
                audit: &$crate::store::AuditEntry,
                removals: &[$crate::store::Removal],
            ) -> $crate::store::Result<()> {
                let mut tx = self.begin_write().await?;
                // First, so a lost race fails before anything else is touched.
                sqlx::query(
                    "INSERT INTO config_versions (version, document, created_at, author) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(next.version)
                .bind(&next.document)
                .bind(next.created_at)
                .bind(&next.author)
                .execute(&mut *tx)
                .await?;
                for removal in removals {
                    shared::end(&mut tx, removal, audit.at).await?;
                }
                shared::audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

macro_rules! audit_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::AuditStore for $store {
            async fn append_audit(
                &self,
                entry: &$crate::store::AuditEntry,
            ) -> $crate::store::Result<i64> {
                let mut tx = self.begin_write().await?;
                let id = shared::audit(&mut tx, entry).await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn audit_entries(
                &self,
                f: &$crate::store::AuditFilter,
            ) -> $crate::store::Result<Vec<$crate::store::AuditEntry>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM audit_log WHERE ($1 IS NULL OR actor = $1) \
                     AND ($2 IS NULL OR target = $2) AND ($3 IS NULL OR at >= $3) \
                     AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5",
                )
                .bind(&f.actor)
                .bind(&f.target)
                .bind(f.since)
                .bind(f.before_id)
                .bind(f.limit)
                .fetch_all(&mut *self.reader().await?)
                .await?)
            }
        }
    };
}

pub(crate) use audit_sql;
pub(crate) use config_sql;
