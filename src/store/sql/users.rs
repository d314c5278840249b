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
                let mut tx = self.begin_write().await?;
                let sub = shared::identity_user(&mut tx, upstream_id, upstream_subject).await?;
                let sub = match sub {
                    Some(sub) => sub,
                    None => {
                        shared::insert_user(&mut tx, new_sub, upstream_id, upstream_subject, now)
                            .await?
                    }
                };
                let user = sqlx::query_as(
                    "UPDATE users SET last_login_at = $2, logins_count = CASE WHEN \
                     logins_count < 1 THEN 1 ELSE logins_count END WHERE sub = $1 RETURNING *",
                )
                .bind(&sub)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(user)
            }

            async fn user_by_identity(
                &self,
                upstream_id: &str,
                subject: &str,
            ) -> $crate::store::Result<Option<$crate::store::User>> {
                Ok(sqlx::query_as(
                    "SELECT users.* FROM identities JOIN users ON users.sub = identities.sub \
                     WHERE identities.upstream_id = $1 AND identities.subject = $2",
                )
                .bind(upstream_id)
                .bind(subject)
                .fetch_optional(&mut *self.reader().await?)
                .await?)
            }

            async fn identities(
                &self,
                sub: &str,
            ) -> $crate::store::Result<Vec<$crate::store::LinkedIdentity>> {
                Ok(sqlx::query_as(
                    "SELECT * FROM identities WHERE sub = $1 \
                     ORDER BY linked_at, upstream_id, subject",
                )
                .bind(sub)
                .fetch_all(&mut *self.reader().await?)
                .await?)
            }

            async fn link_identity(
                &self,
                sub: &str,
                upstream_id: &str,
                subject: &str,
                now: i64,
            ) -> $crate::store::Result<$crate::store::LinkOutcome> {
                use $crate::store::LinkOutcome;
                let mut tx = self.begin_write().await?;
                let exists: Option<String> = sqlx::query_scalar("SELECT sub FROM users WHERE sub = $1")
                    .bind(sub)
                    .fetch_optional(&mut *tx)
                    .await?;
                if exists.is_none() {
                    return Ok(LinkOutcome::NoUser);
                }
                let linked = shared::insert_identity(&mut tx, upstream_id, subject, sub, now).await?;
                let holder = shared::identity_user(&mut tx, upstream_id, subject)
                    .await?
                    .unwrap_or_default();
                tx.commit().await?;
                Ok(if linked {
                    LinkOutcome::Linked
                } else if holder == sub {
                    LinkOutcome::AlreadyLinked
                } else {
                    LinkOutcome::TakenBy(holder)
                })
            }

            async fn unlink_identity(
                &self,
                sub: &str,
                upstream_id: &str,
                subject: &str,
            ) -> $crate::store::Result<bool> {
                let mut tx = self.begin_write().await?;
                let gone = sqlx::query(
                    "DELETE FROM identities WHERE upstream_id = $1 AND subject = $2 AND sub = $3",
                )
                .bind(upstream_id)
                .bind(subject)
                .bind(sub)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // The identity the user was created with no longer holds the first-login lock,
                // so its next login can create a user of its own.
                sqlx::query(
                    "UPDATE users SET upstream_id = '', upstream_subject = sub \
                     WHERE sub = $1 AND upstream_id = $2 AND upstream_subject = $3",
                )
                .bind(sub)
                .bind(upstream_id)
                .bind(subject)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(gone == 1)
            }

            async fn create_user(
                &self,
                u: &$crate::store::NewUser,
            ) -> $crate::store::Result<$crate::store::CreateOutcome> {
                use $crate::store::CreateOutcome;
                let mut tx = self.begin_write().await?;
                let (upstream_id, subject) = match &u.identity {
                    Some((upstream_id, subject)) => {
                        if let Some(holder) =
                            shared::identity_user(&mut tx, upstream_id, subject).await?
                        {
                            return Ok(CreateOutcome::IdentityTaken(holder));
                        }
                        (upstream_id.as_str(), subject.as_str())
                    }
                    None => ("", u.sub.as_str()),
                };
                let p = &u.profile;
                let user = sqlx::query_as(
                    "INSERT INTO users (sub, upstream_id, upstream_subject, created_at, \
                     last_login_at, email, email_verified, name, picture, logins_count) \
                     VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, 0) RETURNING *",
                )
                .bind(&u.sub)
                .bind(upstream_id)
                .bind(subject)
                .bind(u.now)
                .bind(&p.email)
                .bind(i64::from(p.email_verified))
                .bind(&p.name)
                .bind(&p.picture)
                .fetch_one(&mut *tx)
                .await?;
                if !upstream_id.is_empty() {
                    shared::insert_identity(&mut tx, upstream_id, subject, &u.sub, u.now).await?;
                }
                tx.commit().await?;
                Ok(CreateOutcome::Created(user))
            }

            async fn user(&self, sub: &str) -> $crate::store::Result<Option<$crate::store::User>> {
                Ok(sqlx::query_as("SELECT * FROM users WHERE sub = $1")
                    .bind(sub)
                    .fetch_optional(&mut *self.reader().await?)
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
                .fetch_all(&mut *self.reader().await?)
                .await?)
            }

            async fn set_user_blocked(
                &self,
                sub: &str,
                blocked: bool,
                now: i64,
                logouts: &$crate::store::Logouts,
            ) -> $crate::store::Result<Option<u64>> {
                let mut tx = self.begin_write().await?;
                let was: Option<i64> = sqlx::query_scalar("SELECT blocked FROM users WHERE sub = $1")
                    .bind(sub)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(was) = was else {
                    return Ok(None);
                };
                // Blocking a blocked user (or unblocking an unblocked one) changes nothing.
                if (was != 0) == blocked {
                    return Ok(Some(0));
                }
                sqlx::query("UPDATE users SET blocked = $2 WHERE sub = $1")
                    .bind(sub)
                    .bind(i64::from(blocked))
                    .execute(&mut *tx)
                    .await?;
                let mut revoked = 0;
                if blocked {
                    // Counted first, so the count is every code and token of the user; then
                    // the user's logins end, and the apps they reached are told.
                    revoked = shared::revoke_all(&mut tx, "sub", sub, now).await?;
                    let which = $crate::store::EndLogins {
                        sub: Some(sub),
                        ..Default::default()
                    };
                    ending::end(&mut tx, &which, now, logouts).await?;
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
                logouts: &$crate::store::Logouts,
            ) -> $crate::store::Result<bool> {
                let mut tx = self.begin_write().await?;
                // The apps the user's live logins reached are told, before the logins go.
                let which = $crate::store::EndLogins {
                    sub: Some(sub),
                    ..Default::default()
                };
                ending::end(&mut tx, &which, now, logouts).await?;
                let gone = sqlx::query("DELETE FROM users WHERE sub = $1")
                    .bind(sub)
                    .execute(&mut *tx)
                    .await?;
                if gone.rows_affected() == 0 {
                    // Nothing erased: nothing ended either.
                    tx.rollback().await?;
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
                    "DELETE FROM identities WHERE sub = $1",
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
                let mut conn = self.write_conn().await?;
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
                .fetch_all(&mut *self.reader().await?)
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
                    .execute(&mut *self.write_conn().await?)
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
                .fetch_all(&mut *self.reader().await?)
                .await?;
                let access_tokens = sqlx::query_as(
                    "SELECT * FROM access_tokens WHERE sub = $1 ORDER BY issued_at, jti",
                )
                .bind(sub)
                .fetch_all(&mut *self.reader().await?)
                .await?;
                let refresh_tokens = sqlx::query_as(
                    "SELECT * FROM refresh_tokens WHERE sub = $1 ORDER BY issued_at, token_hash",
                )
                .bind(sub)
                .fetch_all(&mut *self.reader().await?)
                .await?;
                let session_expiries = sqlx::query_scalar(
                    "SELECT expires_at FROM sessions WHERE record LIKE $1 ORDER BY expires_at",
                )
                .bind(format!("%\"sub\":{}%", serde_json::Value::from(sub)))
                .fetch_all(&mut *self.reader().await?)
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
                              OR EXISTS (SELECT 1 FROM identities i WHERE i.sub = users.sub \
                              AND LOWER(i.subject) LIKE $1 ESCAPE '\\') \
                              OR LOWER(email) LIKE $1 ESCAPE '\\' \
                              OR LOWER(name) LIKE $1 ESCAPE '\\') \
                              AND ($2 IS NULL OR EXISTS (SELECT 1 FROM identities i \
                              WHERE i.sub = users.sub AND i.upstream_id = $2))";
                let users = sqlx::query_as(&format!(
                    "SELECT * FROM users WHERE {filter} ORDER BY {order}, sub LIMIT $3 OFFSET $4"
                ))
                .bind(&pattern)
                .bind(&q.upstream_id)
                .bind(q.limit)
                .bind(q.offset)
                .fetch_all(&mut *self.reader().await?)
                .await?;
                let total =
                    sqlx::query_scalar(&format!("SELECT COUNT(*) AS n FROM users WHERE {filter}"))
                        .bind(&pattern)
                        .bind(&q.upstream_id)
                        .fetch_one(&mut *self.reader().await?)
                        .await?;
                Ok((users, total))
            }

            async fn insert_context(
                &self,
                c: &$crate::store::StoredContext,
            ) -> $crate::store::Result<()> {
                let mut conn = self.write_conn().await?;
                shared::context(&mut conn, c, &c.sub).await
            }

            async fn claim_refresh(
                &self,
                id: &str,
                sealed: Option<&str>,
                now: i64,
                until: i64,
            ) -> $crate::store::Result<bool> {
                let claimed = sqlx::query(
                    "UPDATE auth_contexts SET refreshing_until = $3 WHERE id = $1 \
                     AND revoked_at IS NULL \
                     AND (refreshing_until IS NULL OR refreshing_until <= $2) \
                     AND ($4 IS NULL OR upstream_refresh = $4)",
                )
                .bind(id)
                .bind(now)
                .bind(until)
                .bind(sealed)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(claimed.rows_affected() == 1)
            }

            async fn keep_upstream_refresh(
                &self,
                id: &str,
                sealed: &str,
            ) -> $crate::store::Result<()> {
                sqlx::query(
                    "UPDATE auth_contexts SET upstream_refresh = $2 \
                     WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(sealed)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn release_refresh(&self, id: &str) -> $crate::store::Result<()> {
                sqlx::query("UPDATE auth_contexts SET refreshing_until = NULL WHERE id = $1")
                    .bind(id)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn refresh_context(
                &self,
                c: &$crate::store::StoredContext,
            ) -> $crate::store::Result<bool> {
                let mut tx = self.begin_write().await?;
                let updated = sqlx::query(
                    "UPDATE auth_contexts SET context = $2, expires_at = $3, \
                     upstream_refresh = $4, refreshing_until = NULL \
                     WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(&c.id)
                .bind(&c.context)
                .bind(c.expires_at)
                .bind(&c.upstream_refresh)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated == 1 {
                    sqlx::query("UPDATE users SET last_context = $2 WHERE sub = $1")
                        .bind(&c.sub)
                        .bind(&c.context)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(updated == 1)
            }

            async fn end_logins(
                &self,
                which: &$crate::store::EndLogins<'_>,
                now: i64,
                logouts: &$crate::store::Logouts,
            ) -> $crate::store::Result<u64> {
                if which.is_empty() {
                    return Ok(0);
                }
                let mut tx = self.begin_write().await?;
                let ended = ending::end(&mut tx, which, now, logouts).await?;
                tx.commit().await?;
                Ok(ended)
            }

            async fn owe_logouts(
                &self,
                which: &$crate::store::EndLogins<'_>,
                logouts: &$crate::store::Logouts,
            ) -> $crate::store::Result<usize> {
                if which.is_empty() {
                    return Ok(0);
                }
                let mut tx = self.begin_write().await?;
                let owed = ending::owe(&mut tx, which, logouts).await?;
                tx.commit().await?;
                Ok(owed)
            }

            async fn context(
                &self,
                id: &str,
            ) -> $crate::store::Result<Option<$crate::store::StoredContext>> {
                Ok(sqlx::query_as("SELECT * FROM auth_contexts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?)
            }
        }
    };
}

pub(crate) use user_sql;
