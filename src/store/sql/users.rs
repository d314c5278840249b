//! [`UserStore`](crate::store::UserStore) in SQL: users, their upstream identities and their
//! authentication contexts.

macro_rules! user_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::UserStore for $store {
            async fn link_user(
                &self,
                upstream_id: &str,
                upstream_subject: &str,
                new_sub: &str,
                now: i64,
            ) -> $crate::store::Result<$crate::store::User> {
                Ok(sqlx::query_as(
                    "INSERT INTO users (sub, upstream_id, upstream_subject, created_at, \
                     last_login_at) VALUES ($1, $2, $3, $4, $4) \
                     ON CONFLICT (upstream_id, upstream_subject) \
                     DO UPDATE SET last_login_at = excluded.last_login_at RETURNING *",
                )
                .bind(new_sub)
                .bind(upstream_id)
                .bind(upstream_subject)
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn user_by_identity(
                &self,
                upstream_id: &str,
                subject: &str,
            ) -> $crate::store::Result<Option<$crate::store::User>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM users WHERE upstream_id = $1 AND upstream_subject = $2",
                )
                .bind(upstream_id)
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn user(&self, sub: &str) -> $crate::store::Result<Option<$crate::store::User>> {
                Ok(sqlx::query_as("SELECT * FROM users WHERE sub = $1")
                    .bind(sub)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn users_by_email(
                &self,
                email: &str,
            ) -> $crate::store::Result<Vec<$crate::store::User>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM users WHERE LOWER(email) = LOWER($1) ORDER BY created_at, sub",
                )
                .bind(email)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn set_user_blocked(
                &self,
                sub: &str,
                blocked: bool,
                now: i64,
            ) -> $crate::store::Result<Option<u64>> {
                let mut tx = self.begin_write().await?;
                let found = sqlx::query("UPDATE users SET blocked = $2 WHERE sub = $1")
                    .bind(sub)
                    .bind(i64::from(blocked))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if found == 0 {
                    return Ok(None);
                }
                let mut revoked = 0;
                if blocked {
                    revoked = shared::revoke_all(&mut tx, "sub", sub, now).await?;
                    for sql in [
                        "DELETE FROM auth_requests WHERE sub = $1",
                        "DELETE FROM sessions WHERE record LIKE '%' || $1 || '%'",
                    ] {
                        sqlx::query(sql).bind(sub).execute(&mut *tx).await?;
                    }
                }
                tx.commit().await?;
                Ok(Some(revoked))
            }

            async fn erase_user(
                &self,
                sub: &str,
                now: i64,
                pseudonym: Option<&str>,
                outbox: &[$crate::store::OutboxRow],
            ) -> $crate::store::Result<bool> {
                let mut tx = self.begin_write().await?;
                let gone = sqlx::query("DELETE FROM users WHERE sub = $1")
                    .bind(sub)
                    .execute(&mut *tx)
                    .await?;
                if gone.rows_affected() == 0 {
                    return Ok(false);
                }
                shared::revoke_all(&mut tx, "sub", sub, now).await?;
                for sql in [
                    "DELETE FROM grants WHERE sub = $1",
                    "DELETE FROM auth_contexts WHERE sub = $1",
                    "DELETE FROM auth_requests WHERE sub = $1",
                    "DELETE FROM purpose_states WHERE sub = $1",
                    "DELETE FROM account_links WHERE sub = $1",
                    "DELETE FROM login_events WHERE sub = $1",
                    // A browser session names its user's sub (a random 43-character token)
                    // inside its record.
                    "DELETE FROM sessions WHERE record LIKE '%' || $1 || '%'",
                ] {
                    sqlx::query(sql).bind(sub).execute(&mut *tx).await?;
                }
                match pseudonym {
                    Some(p) => {
                        sqlx::query(
                            "UPDATE consent_records SET sub = $2, source_reference = NULL \
                             WHERE sub = $1",
                        )
                        .bind(sub)
                        .bind(p)
                        .execute(&mut *tx)
                        .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM consent_records WHERE sub = $1")
                            .bind(sub)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                shared::enqueue(&mut tx, outbox).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn record_login_event(
                &self,
                event: &$crate::store::LoginEvent,
            ) -> $crate::store::Result<()> {
                let mut conn = self.pool.acquire().await?;
                shared::login_event(&mut conn, event).await
            }

            async fn login_events(
                &self,
                q: &$crate::store::LoginEventQuery,
            ) -> $crate::store::Result<Vec<$crate::store::LoginEvent>> {
                let rows: Vec<$crate::store::LoginEventRow> = sqlx::query_as(
                    "SELECT * FROM login_events WHERE ($1 IS NULL OR result = $1) \
                     AND ($2 IS NULL OR sub = $2) AND ($3 IS NULL OR upstream_id = $3) \
                     AND ($4 IS NULL OR client_id = $4) \
                     AND ($5 IS NULL OR id < $5) ORDER BY id DESC LIMIT $6",
                )
                .bind(q.result.map(|r| r.as_str()))
                .bind(&q.sub)
                .bind(&q.upstream_id)
                .bind(&q.client_id)
                .bind(q.before)
                .bind(q.limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|r| r.into_event()).collect())
            }

            async fn set_last_context(
                &self,
                sub: &str,
                context: &str,
            ) -> $crate::store::Result<()> {
                sqlx::query("UPDATE users SET last_context = $2 WHERE sub = $1")
                    .bind(sub)
                    .bind(context)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn user_holdings(
                &self,
                sub: &str,
            ) -> $crate::store::Result<$crate::store::UserHoldings> {
                let contexts = sqlx::query_as(
                    "SELECT * FROM auth_contexts WHERE sub = $1 ORDER BY created_at, id",
                )
                .bind(sub)
                .fetch_all(&self.pool)
                .await?;
                let access_tokens = sqlx::query_as(
                    "SELECT * FROM access_tokens WHERE sub = $1 ORDER BY issued_at, jti",
                )
                .bind(sub)
                .fetch_all(&self.pool)
                .await?;
                let refresh_tokens = sqlx::query_as(
                    "SELECT * FROM refresh_tokens WHERE sub = $1 ORDER BY issued_at, token_hash",
                )
                .bind(sub)
                .fetch_all(&self.pool)
                .await?;
                let session_expiries = sqlx::query_scalar(
                    "SELECT expires_at FROM sessions WHERE record LIKE $1 ORDER BY expires_at",
                )
                .bind(format!("%\"sub\":{}%", serde_json::Value::from(sub)))
                .fetch_all(&self.pool)
                .await?;
                Ok($crate::store::UserHoldings {
                    contexts,
                    access_tokens,
                    refresh_tokens,
                    session_expiries,
                })
            }

            async fn list_users(
                &self,
                q: &$crate::store::UserQuery,
            ) -> $crate::store::Result<(Vec<$crate::store::User>, i64)> {
                use $crate::store::UserSort;
                // The order comes from a closed set, never from the request text.
                let order = match q.sort {
                    UserSort::LastLoginDesc => "last_login_at DESC",
                    UserSort::LastLoginAsc => "last_login_at ASC",
                    UserSort::CreatedDesc => "created_at DESC",
                    UserSort::CreatedAsc => "created_at ASC",
                    UserSort::SubAsc => "sub ASC",
                    UserSort::SubDesc => "sub DESC",
                };
                let pattern = q.search.as_deref().map(|s| {
                    let mut p = String::from("%");
                    for ch in s.to_lowercase().chars() {
                        if matches!(ch, '%' | '_' | '\\') {
                            p.push('\\');
                        }
                        p.push(ch);
                    }
                    p.push('%');
                    p
                });
                let filter = "($1 IS NULL OR LOWER(sub) LIKE $1 ESCAPE '\\' \
                              OR LOWER(upstream_subject) LIKE $1 ESCAPE '\\' \
                              OR LOWER(email) LIKE $1 ESCAPE '\\' \
                              OR LOWER(name) LIKE $1 ESCAPE '\\') \
                              AND ($2 IS NULL OR upstream_id = $2)";
                let users = sqlx::query_as(&format!(
                    "SELECT * FROM users WHERE {filter} ORDER BY {order}, sub LIMIT $3 OFFSET $4"
                ))
                .bind(&pattern)
                .bind(&q.upstream_id)
                .bind(q.limit)
                .bind(q.offset)
                .fetch_all(&self.pool)
                .await?;
                let total =
                    sqlx::query_scalar(&format!("SELECT COUNT(*) AS n FROM users WHERE {filter}"))
                        .bind(&pattern)
                        .bind(&q.upstream_id)
                        .fetch_one(&self.pool)
                        .await?;
                Ok((users, total))
            }

            async fn insert_context(
                &self,
                c: &$crate::store::StoredContext,
            ) -> $crate::store::Result<()> {
                let mut conn = self.pool.acquire().await?;
                shared::context(&mut conn, c, &c.sub).await
            }

            async fn context(
                &self,
                id: &str,
            ) -> $crate::store::Result<Option<$crate::store::StoredContext>> {
                Ok(sqlx::query_as("SELECT * FROM auth_contexts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
            }
        }
    };
}

pub(crate) use user_sql;
