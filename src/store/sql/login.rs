//! [`LoginStore`](crate::store::LoginStore) in SQL: authorization requests, upstream login
//! states, and a finished upstream login written in one transaction.

macro_rules! login_sql {
    ($store:ident, $db:ty) => {
        /// The rows a login in flight starts with, on any connection (a transaction's included).
        mod login_rows {
            use $crate::store::{AuthRequest, Result, UpstreamLogin};

            type Conn = <$db as sqlx::Database>::Connection;

            pub async fn request(conn: &mut Conn, r: &AuthRequest) -> Result<()> {
                sqlx::query(
                    "INSERT INTO auth_requests (id, client_id, redirect_uri, scope, state, nonce, \
                     code_challenge, prompt, max_age, login_hint, upstream_hint, browser_binding, \
                     created_at, expires_at, sub, auth_context_id, auth_time, decided_at, \
                     ui_locales, acr_values, pass_through, resources, dpop_jkt) VALUES ($1, $2, \
                     $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
                     $19, $20, $21, $22, $23)",
                )
                .bind(&r.id)
                .bind(&r.client_id)
                .bind(&r.redirect_uri)
                .bind(&r.scope)
                .bind(&r.state)
                .bind(&r.nonce)
                .bind(&r.code_challenge)
                .bind(&r.prompt)
                .bind(r.max_age)
                .bind(&r.login_hint)
                .bind(&r.upstream_hint)
                .bind(&r.browser_binding)
                .bind(r.created_at)
                .bind(r.expires_at)
                .bind(&r.sub)
                .bind(&r.auth_context_id)
                .bind(r.auth_time)
                .bind(r.decided_at)
                .bind(&r.ui_locales)
                .bind(&r.acr_values)
                .bind(&r.pass_through)
                .bind(&r.resources)
                .bind(&r.dpop_jkt)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            pub async fn upstream_login(conn: &mut Conn, l: &UpstreamLogin) -> Result<()> {
                sqlx::query(
                    "INSERT INTO upstream_logins (state_hash, auth_request_id, upstream_id, nonce, \
                     pkce_verifier, created_at, expires_at, forced) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&l.state_hash)
                .bind(&l.auth_request_id)
                .bind(&l.upstream_id)
                .bind(&l.nonce)
                .bind(&l.pkce_verifier)
                .bind(l.created_at)
                .bind(l.expires_at)
                .bind(i64::from(l.forced))
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::LoginStore for $store {
            async fn insert_auth_request(
                &self,
                r: &$crate::store::AuthRequest,
            ) -> $crate::store::Result<()> {
                let mut conn = self.write_conn().await?;
                login_rows::request(&mut conn, r).await
            }

            async fn start_upstream_login(
                &self,
                r: &$crate::store::AuthRequest,
                l: &$crate::store::UpstreamLogin,
            ) -> $crate::store::Result<()> {
                let mut tx = self.begin_write().await?;
                login_rows::request(&mut tx, r).await?;
                login_rows::upstream_login(&mut tx, l).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn auth_request(
                &self,
                id: &str,
            ) -> $crate::store::Result<Option<$crate::store::AuthRequest>> {
                Ok(sqlx::query_as("SELECT * FROM auth_requests WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *self.reader().await?)
                    .await?)
            }

            async fn auth_request_with_grant(
                &self,
                id: &str,
            ) -> $crate::store::Result<
                Option<($crate::store::AuthRequest, Option<$crate::store::Grant>)>,
            > {
                use sqlx::Row as _;
                let Some(row) = sqlx::query(
                    "SELECT r.*, g.scopes AS grant_scopes, \
                     g.scope_versions AS grant_scope_versions, \
                     g.granted_at AS grant_granted_at, g.updated_at AS grant_updated_at \
                     FROM auth_requests r LEFT JOIN grants g \
                     ON g.sub = r.sub AND g.client_id = r.client_id WHERE r.id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *self.reader().await?)
                .await?
                else {
                    return Ok(None);
                };
                let req: $crate::store::AuthRequest = sqlx::FromRow::from_row(&row)?;
                let scopes: Option<String> = row.try_get("grant_scopes")?;
                let grant = match (scopes, &req.sub) {
                    (Some(scopes), Some(sub)) => Some($crate::store::Grant {
                        sub: sub.clone(),
                        client_id: req.client_id.clone(),
                        scopes: scopes.into(),
                        scope_versions: row.try_get("grant_scope_versions")?,
                        granted_at: row.try_get("grant_granted_at")?,
                        updated_at: row.try_get("grant_updated_at")?,
                    }),
                    _ => None,
                };
                Ok(Some((req, grant)))
            }

            async fn set_auth_request_login(
                &self,
                id: &str,
                sub: &str,
                auth_context_id: &str,
                auth_time: i64,
            ) -> $crate::store::Result<()> {
                sqlx::query(
                    "UPDATE auth_requests SET sub = $2, auth_context_id = $3, auth_time = $4 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(sub)
                .bind(auth_context_id)
                .bind(auth_time)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn decide_auth_request(&self, id: &str, now: i64) -> $crate::store::Result<bool> {
                let done = sqlx::query(
                    "UPDATE auth_requests SET decided_at = $2 WHERE id = $1 AND decided_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn conclude_auth_request(
                &self,
                c: &$crate::store::Conclusion<'_>,
            ) -> $crate::store::Result<bool> {
                let mut tx = self.begin_write().await?;
                let decided = sqlx::query(
                    "UPDATE auth_requests SET decided_at = $2 WHERE id = $1 AND decided_at IS NULL",
                )
                .bind(c.request_id)
                .bind(c.now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if decided != 1 {
                    // Decided before (a replayed form): nothing of this one is stored.
                    return Ok(false);
                }
                if let Some(d) = &c.consent {
                    shared::decide(&mut tx, d.grant, d.record, d.outbox).await?;
                }
                if let Some(code) = c.code {
                    shared::insert_code(&mut tx, code).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn insert_upstream_login(
                &self,
                l: &$crate::store::UpstreamLogin,
            ) -> $crate::store::Result<()> {
                let mut conn = self.write_conn().await?;
                login_rows::upstream_login(&mut conn, l).await
            }

            async fn upstream_login(
                &self,
                state_hash: &str,
            ) -> $crate::store::Result<
                Option<($crate::store::UpstreamLogin, Option<$crate::store::AuthRequest>)>,
            > {
                use sqlx::Row as _;
                // The request's columns under their own names, the login's prefixed.
                let Some(row) = sqlx::query(
                    "SELECT r.*, u.state_hash AS u_state_hash, \
                     u.auth_request_id AS u_auth_request_id, u.upstream_id AS u_upstream_id, \
                     u.nonce AS u_nonce, u.pkce_verifier AS u_pkce_verifier, \
                     u.created_at AS u_created_at, u.expires_at AS u_expires_at, \
                     u.forced AS u_forced \
                     FROM upstream_logins u LEFT JOIN auth_requests r \
                     ON r.id = u.auth_request_id WHERE u.state_hash = $1",
                )
                .bind(state_hash)
                .fetch_optional(&mut *self.reader().await?)
                .await?
                else {
                    return Ok(None);
                };
                let login = $crate::store::UpstreamLogin {
                    state_hash: row.try_get("u_state_hash")?,
                    auth_request_id: row.try_get("u_auth_request_id")?,
                    upstream_id: row.try_get("u_upstream_id")?,
                    nonce: row.try_get("u_nonce")?,
                    pkce_verifier: row.try_get("u_pkce_verifier")?,
                    created_at: row.try_get("u_created_at")?,
                    expires_at: row.try_get("u_expires_at")?,
                    forced: row
                        .try_get::<$crate::store::records::IntFlag, _>("u_forced")?
                        .into(),
                };
                let request = match row.try_get::<Option<String>, _>("id")? {
                    Some(_) => Some(sqlx::FromRow::from_row(&row)?),
                    None => None,
                };
                Ok(Some((login, request)))
            }

            async fn take_upstream_login(
                &self,
                state_hash: &str,
            ) -> $crate::store::Result<Option<$crate::store::UpstreamLogin>> {
                Ok(
                    sqlx::query_as("DELETE FROM upstream_logins WHERE state_hash = $1 RETURNING *")
                        .bind(state_hash)
                        .fetch_optional(&mut *self.write_conn().await?)
                        .await?,
                )
            }

            async fn push_request(
                &self,
                p: &$crate::store::PushedRequest,
            ) -> $crate::store::Result<()> {
                sqlx::query(
                    "INSERT INTO pushed_requests (uri_hash, client_id, params, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&p.uri_hash)
                .bind(&p.client_id)
                .bind(&p.params)
                .bind(p.expires_at)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn take_pushed_request(
                &self,
                uri_hash: &str,
                now: i64,
            ) -> $crate::store::Result<Option<$crate::store::PushedRequest>> {
                // Spent whether or not it has expired; only a live one is returned.
                let taken: Option<$crate::store::PushedRequest> =
                    sqlx::query_as("DELETE FROM pushed_requests WHERE uri_hash = $1 RETURNING *")
                        .bind(uri_hash)
                        .fetch_optional(&mut *self.write_conn().await?)
                        .await?;
                Ok(taken.filter(|p| p.expires_at >= now))
            }

            async fn finish_upstream_login(
                &self,
                login: &$crate::store::FinishedLogin,
            ) -> $crate::store::Result<Option<$crate::store::User>> {
                let mut tx = self.begin_write().await?;
                if let Some(state_hash) = &login.upstream_state_hash {
                    let spent = sqlx::query("DELETE FROM upstream_logins WHERE state_hash = $1")
                        .bind(state_hash)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if spent != 1 {
                        // Another answer with the same state finished first.
                        return Ok(None);
                    }
                }
                let (upstream_id, subject) = (&login.upstream_id, &login.subject);
                if let Some(link_to) = &login.link_to {
                    // Joins that user unless the identity has one already.
                    shared::insert_identity(&mut tx, upstream_id, subject, link_to, login.now)
                        .await?;
                }
                // An identity the callback found new is created without a read first;
                // `insert_user` takes the user a concurrent first login gave it meanwhile.
                let existing = if login.known || login.link_to.is_some() {
                    shared::identity_user(&mut tx, upstream_id, subject).await?
                } else {
                    None
                };
                let sub = match existing {
                    Some(sub) => sub,
                    None => {
                        shared::insert_user(&mut tx, &login.new_sub, upstream_id, subject, login.now)
                            .await?
                    }
                };
                let p = &login.profile;
                let user: $crate::store::User = sqlx::query_as(
                    "UPDATE users SET last_login_at = $2, last_context = $3, email = $4, \
                     email_verified = $5, name = $6, picture = $7, last_ip = $8, \
                     logins_count = logins_count + 1 WHERE sub = $1 RETURNING *",
                )
                .bind(&sub)
                .bind(login.now)
                .bind(&login.context.context)
                .bind(&p.email)
                .bind(i64::from(p.email_verified))
                .bind(&p.name)
                .bind(&p.picture)
                .bind(&p.ip)
                .fetch_one(&mut *tx)
                .await?;
                shared::login_event(
                    &mut tx,
                    &$crate::store::LoginEvent {
                        id: 0,
                        at: login.now,
                        result: $crate::store::LoginResult::Success,
                        sub: Some(user.sub.clone()),
                        upstream_id: Some(login.upstream_id.clone()),
                        client_id: login.client_id.clone(),
                        reason: None,
                    },
                )
                .await?;
                let c = &login.context;
                shared::context(&mut tx, c, &user.sub).await?;
                sqlx::query(
                    "UPDATE auth_requests SET sub = $2, auth_context_id = $3, auth_time = $4 \
                     WHERE id = $1",
                )
                .bind(&login.auth_request_id)
                .bind(&user.sub)
                .bind(&c.id)
                .bind(c.auth_time)
                .execute(&mut *tx)
                .await?;
                if user.sub == login.new_sub {
                    shared::enqueue(&mut tx, &login.outbox).await?;
                } else {
                    // The identity had a user already (perhaps created a moment ago by a
                    // concurrent first login): its events name that user, and none says created.
                    let existing: Vec<$crate::store::OutboxRow> = login
                        .outbox
                        .iter()
                        .filter(|r| !r.only_for_new_user)
                        .map(|r| $crate::store::OutboxRow {
                            body: r.body.replace(&login.new_sub, &user.sub),
                            ..r.clone()
                        })
                        .collect();
                    shared::enqueue(&mut tx, &existing).await?;
                }
                tx.commit().await?;
                Ok(Some(user))
            }
        }
    };
}

pub(crate) use login_sql;
