//! [`KeyStore`](crate::store::KeyStore) in SQL: signing keys.

macro_rules! key_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::KeyStore for $store {
            async fn signing_keys(&self) -> $crate::store::Result<Vec<$crate::store::KeyRecord>> {
                Ok(
                    sqlx::query_as("SELECT * FROM signing_keys ORDER BY created_at, kid")
                        .fetch_all(&mut *self.reader().await?)
                        .await?,
                )
            }

            async fn insert_signing_key(
                &self,
                k: &$crate::store::KeyRecord,
            ) -> $crate::store::Result<()> {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, encryption, private_key, created_at, \
                     activates_at, retires_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&k.kid)
                .bind(k.alg.as_str())
                .bind(&k.encryption)
                .bind(&k.private_key)
                .bind(k.created_at)
                .bind(k.activates_at)
                .bind(k.retires_at)
                .bind(k.expires_at)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn retire_signing_key(
                &self,
                kid: &str,
                retires_at: i64,
                expires_at: i64,
            ) -> $crate::store::Result<()> {
                sqlx::query(
                    "UPDATE signing_keys SET retires_at = $2, expires_at = $3 WHERE kid = $1",
                )
                .bind(kid)
                .bind(retires_at)
                .bind(expires_at)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn reseal_signing_key(
                &self,
                kid: &str,
                from: &str,
                encryption: &str,
                private_key: &[u8],
            ) -> $crate::store::Result<bool> {
                let done = sqlx::query(
                    "UPDATE signing_keys SET encryption = $3, private_key = $4 \
                     WHERE kid = $1 AND encryption = $2",
                )
                .bind(kid)
                .bind(from)
                .bind(encryption)
                .bind(private_key)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use key_sql;
