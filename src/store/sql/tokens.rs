//! [`TokenStore`](crate::store::TokenStore) in SQL: codes, access and refresh tokens, and
//! client assertions and DPoP proofs. Single-use rows are consumed with one conditional `UPDATE`, so concurrent
//! replicas race safely.

macro_rules! token_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::TokenStore for $store {
            async fn insert_code(
                &self,
                c: &$crate::store::CodeRecord,
            ) -> $crate::store::Result<()> {
                let mut conn = self.write_conn().await?;
                shared::insert_code(&mut conn, c).await
            }

            async fn code(
                &self,
                code_hash: &str,
            ) -> $crate::store::Result<
                Option<(
                    $crate::store::CodeRecord,
                    Option<$crate::store::StoredContext>,
                )>,
            > {
                use sqlx::Row as _;
                let Some(row) = sqlx::query(
                    "SELECT c.*, x.id AS ctx_id, x.sub AS ctx_sub, \
                     x.upstream_id AS ctx_upstream_id, x.context AS ctx_context, \
                     x.auth_time AS ctx_auth_time, x.created_at AS ctx_created_at, \
                     x.expires_at AS ctx_expires_at, x.revoked_at AS ctx_revoked_at, \
                     x.upstream_sid AS ctx_upstream_sid, \
                     x.upstream_refresh AS ctx_upstream_refresh, \
                     x.upstream_subject AS ctx_upstream_subject \
                     FROM authorization_codes c LEFT JOIN auth_contexts x \
                     ON x.id = c.auth_context_id WHERE c.code_hash = $1",
                )
                .bind(code_hash)
                .fetch_optional(&mut *self.reader().await?)
                .await?
                else {
                    return Ok(None);
                };
                let code: $crate::store::CodeRecord = sqlx::FromRow::from_row(&row)?;
                let context = match row.try_get::<Option<String>, _>("ctx_id")? {
                    Some(id) => Some($crate::store::StoredContext {
                        id,
                        sub: row.try_get("ctx_sub")?,
                        upstream_id: row.try_get("ctx_upstream_id")?,
                        context: row.try_get("ctx_context")?,
                        auth_time: row.try_get("ctx_auth_time")?,
                        created_at: row.try_get("ctx_created_at")?,
                        expires_at: row.try_get("ctx_expires_at")?,
                        revoked_at: row.try_get("ctx_revoked_at")?,
                        upstream_sid: row.try_get("ctx_upstream_sid")?,
                        upstream_refresh: row.try_get("ctx_upstream_refresh")?,
                        upstream_subject: row.try_get("ctx_upstream_subject")?,
                    }),
                    None => None,
                };
                Ok(Some((code, context)))
            }

            async fn redeem_code(
                &self,
                code_hash: &str,
                now: i64,
                t: &$crate::store::AccessTokenRecord,
                refresh: Option<&$crate::store::RefreshTokenRecord>,
            ) -> $crate::store::Result<$crate::store::Redemption> {
                let mut tx = self.begin_write().await?;
                let consumed = sqlx::query(
                    "UPDATE authorization_codes SET consumed_at = $2 \
                     WHERE code_hash = $1 AND consumed_at IS NULL",
                )
                .bind(code_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if consumed.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok($crate::store::Redemption::AlreadyUsed);
                }
                shared::access_token(&mut tx, t).await?;
                if let Some(r) = refresh {
                    shared::refresh_token(&mut tx, r).await?;
                }
                tx.commit().await?;
                Ok($crate::store::Redemption::Redeemed)
            }

            async fn burn_code(&self, code_hash: &str, now: i64) -> $crate::store::Result<()> {
                sqlx::query(
                    "UPDATE authorization_codes SET consumed_at = $2 \
                     WHERE code_hash = $1 AND consumed_at IS NULL",
                )
                .bind(code_hash)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn revoke_tokens_of_code(
                &self,
                code_hash: &str,
                now: i64,
            ) -> $crate::store::Result<u64> {
                // Refresh tokens carry their family's code, so one predicate per table finds
                // everything descending from the code.
                let mut tx = self.begin_write().await?;
                let revoked = shared::revoke_by(
                    &mut tx,
                    &[
                        "UPDATE access_tokens SET revoked_at = $2 \
                         WHERE code_hash = $1 AND revoked_at IS NULL",
                        "UPDATE refresh_tokens SET revoked_at = $2 \
                         WHERE code_hash = $1 AND revoked_at IS NULL",
                    ],
                    code_hash,
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(revoked)
            }

            async fn access_token(
                &self,
                jti: &str,
            ) -> $crate::store::Result<Option<$crate::store::AccessTokenRecord>> {
                let row = sqlx::query_as("SELECT * FROM access_tokens WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                Ok(row)
            }

            async fn insert_access_token(
                &self,
                t: &$crate::store::AccessTokenRecord,
            ) -> $crate::store::Result<()> {
                let mut conn = self.write_conn().await?;
                shared::access_token(&mut conn, t).await
            }

            async fn revoke_access_token(
                &self,
                t: &$crate::store::AccessTokenRecord,
                now: i64,
            ) -> $crate::store::Result<u64> {
                // One statement: a row that exists gets revoked_at (unless it has one already),
                // a missing one is recorded as revoked.
                let done = sqlx::query(
                    "INSERT INTO access_tokens (jti, client_id, sub, scope, auth_context_id, \
                     code_hash, issued_at, expires_at, revoked_at, family_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (jti) DO UPDATE SET revoked_at = excluded.revoked_at \
                     WHERE access_tokens.revoked_at IS NULL",
                )
                .bind(&t.jti)
                .bind(&t.client_id)
                .bind(&t.sub)
                .bind(&t.scope)
                .bind(&t.auth_context_id)
                .bind(&t.code_hash)
                .bind(t.issued_at)
                .bind(t.expires_at)
                .bind(now)
                .bind(&t.family_id)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected())
            }

            async fn refresh_token(
                &self,
                token_hash: &str,
            ) -> $crate::store::Result<Option<$crate::store::RefreshTokenRecord>> {
                let row = sqlx::query_as("SELECT * FROM refresh_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?;
                Ok(row)
            }

            async fn rotate_refresh_token(
                &self,
                token_hash: &str,
                now: i64,
                grace_since: Option<i64>,
                successor: &$crate::store::RefreshTokenRecord,
                t: &$crate::store::AccessTokenRecord,
            ) -> $crate::store::Result<$crate::store::Rotation> {
                let mut tx = self.begin_write().await?;
                // The conditional UPDATE is the lock: of concurrent rotations exactly one sees
                // a current row (PostgreSQL re-checks the predicate after waiting on the row
                // lock; SQLite serialises writers). A token rotated within the grace period
                // counts as current once more, and that use is recorded in grace_used_at.
                let retired = sqlx::query(
                    "UPDATE refresh_tokens SET \
                       grace_used_at = CASE WHEN rotated_at IS NULL THEN grace_used_at \
                                            ELSE $2 END, \
                       rotated_at = COALESCE(rotated_at, $2) \
                     WHERE token_hash = $1 AND revoked_at IS NULL \
                       AND (rotated_at IS NULL \
                            OR ($3 IS NOT NULL AND rotated_at >= $3 \
                                AND grace_used_at IS NULL))",
                )
                .bind(token_hash)
                .bind(now)
                .bind(grace_since)
                .execute(&mut *tx)
                .await?;
                if retired.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok($crate::store::Rotation::NotCurrent);
                }
                shared::refresh_token(&mut tx, successor).await?;
                shared::access_token(&mut tx, t).await?;
                tx.commit().await?;
                Ok($crate::store::Rotation::Rotated)
            }

            async fn revoke_refresh_family(
                &self,
                family_id: &str,
                now: i64,
            ) -> $crate::store::Result<u64> {
                let mut tx = self.begin_write().await?;
                let revoked = shared::revoke_by(
                    &mut tx,
                    &[
                        "UPDATE refresh_tokens SET revoked_at = $2 \
                         WHERE family_id = $1 AND revoked_at IS NULL",
                        "UPDATE access_tokens SET revoked_at = $2 \
                         WHERE family_id = $1 AND revoked_at IS NULL",
                    ],
                    family_id,
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(revoked)
            }

            async fn revoke_grant_tokens(
                &self,
                sub: &str,
                client_id: &str,
                now: i64,
            ) -> $crate::store::Result<u64> {
                let mut tx = self.begin_write().await?;
                sqlx::query(
                    "UPDATE authorization_codes SET consumed_at = $3 \
                     WHERE sub = $1 AND client_id = $2 AND consumed_at IS NULL",
                )
                .bind(sub)
                .bind(client_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let mut revoked = 0;
                for sql in [
                    "UPDATE refresh_tokens SET revoked_at = $3 \
                     WHERE sub = $1 AND client_id = $2 AND revoked_at IS NULL",
                    "UPDATE access_tokens SET revoked_at = $3 \
                     WHERE sub = $1 AND client_id = $2 AND revoked_at IS NULL",
                ] {
                    revoked += sqlx::query(sql)
                        .bind(sub)
                        .bind(client_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(revoked)
            }

            async fn use_client_assertion(
                &self,
                client_id: &str,
                jti: &str,
                expires_at: i64,
                now: i64,
            ) -> $crate::store::Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO client_assertions (client_id, jti, expires_at, used_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (client_id, jti) DO NOTHING",
                )
                .bind(client_id)
                .bind(jti)
                .bind(expires_at)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn use_dpop_proof(
                &self,
                jkt: &str,
                jti: &str,
                expires_at: i64,
            ) -> $crate::store::Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO dpop_proofs (jkt, jti, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (jkt, jti) DO NOTHING",
                )
                .bind(jkt)
                .bind(jti)
                .bind(expires_at)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use token_sql;
