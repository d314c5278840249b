//! The SQL both backends share, as one macro that implements [`Store`](super::Store) for a
//! store type with a `pool: sqlx::Pool<DB>` field.
//!
//! Only the dialect common to SQLite (3.35+) and PostgreSQL is used: `$n` parameters,
//! `ON CONFLICT ... DO UPDATE`, `RETURNING`, plain integer and text columns. Booleans are stored
//! as integers so both decode them the same way. Each backend supplies `run_migrations` and
//! `begin_write` (how to open a transaction that is about to write).

macro_rules! sql_store {
    ($store:ty, $db:ty) => {
        mod rows {
            use sqlx::Row;

            use crate::store::*;

            type DbRow = <$db as sqlx::Database>::Row;

            pub fn key(r: &DbRow) -> Result<KeyRecord> {
                Ok(KeyRecord {
                    kid: r.try_get("kid")?,
                    alg: r.try_get("alg")?,
                    encryption: r.try_get("encryption")?,
                    private_key: r.try_get("private_key")?,
                    created_at: r.try_get("created_at")?,
                    activates_at: r.try_get("activates_at")?,
                    retires_at: r.try_get("retires_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            }

            pub fn user(r: &DbRow) -> Result<User> {
                Ok(User {
                    sub: r.try_get("sub")?,
                    upstream_id: r.try_get("upstream_id")?,
                    upstream_subject: r.try_get("upstream_subject")?,
                    created_at: r.try_get("created_at")?,
                    last_login_at: r.try_get("last_login_at")?,
                    last_context: r.try_get("last_context")?,
                })
            }

            pub fn auth_request(r: &DbRow) -> Result<AuthRequest> {
                Ok(AuthRequest {
                    id: r.try_get("id")?,
                    client_id: r.try_get("client_id")?,
                    redirect_uri: r.try_get("redirect_uri")?,
                    scope: r.try_get("scope")?,
                    state: r.try_get("state")?,
                    nonce: r.try_get("nonce")?,
                    code_challenge: r.try_get("code_challenge")?,
                    prompt: r.try_get("prompt")?,
                    max_age: r.try_get("max_age")?,
                    login_hint: r.try_get("login_hint")?,
                    upstream_hint: r.try_get("upstream_hint")?,
                    browser_binding: r.try_get("browser_binding")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    sub: r.try_get("sub")?,
                    auth_context_id: r.try_get("auth_context_id")?,
                    auth_time: r.try_get("auth_time")?,
                    consent_csrf: r.try_get("consent_csrf")?,
                    decided_at: r.try_get("decided_at")?,
                })
            }

            pub fn upstream_login(r: &DbRow) -> Result<UpstreamLogin> {
                Ok(UpstreamLogin {
                    state_hash: r.try_get("state_hash")?,
                    auth_request_id: r.try_get("auth_request_id")?,
                    upstream_id: r.try_get("upstream_id")?,
                    nonce: r.try_get("nonce")?,
                    pkce_verifier: r.try_get("pkce_verifier")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                })
            }

            pub fn context(r: &DbRow) -> Result<StoredContext> {
                Ok(StoredContext {
                    id: r.try_get("id")?,
                    sub: r.try_get("sub")?,
                    upstream_id: r.try_get("upstream_id")?,
                    context: r.try_get("context")?,
                    auth_time: r.try_get("auth_time")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            }

            pub fn grant(r: &DbRow) -> Result<Grant> {
                Ok(Grant {
                    sub: r.try_get("sub")?,
                    client_id: r.try_get("client_id")?,
                    scopes: r.try_get("scopes")?,
                    scope_versions: r.try_get("scope_versions")?,
                    granted_at: r.try_get("granted_at")?,
                    updated_at: r.try_get("updated_at")?,
                })
            }

            pub fn consent_record(r: &DbRow) -> Result<ConsentRecord> {
                Ok(ConsentRecord {
                    id: r.try_get("id")?,
                    sub: r.try_get("sub")?,
                    client_id: r.try_get("client_id")?,
                    allowed: r.try_get("allowed")?,
                    denied: r.try_get("denied")?,
                    text_versions: r.try_get("text_versions")?,
                    method: r.try_get("method")?,
                    decided_at: r.try_get("decided_at")?,
                })
            }

            pub fn code(r: &DbRow) -> Result<CodeRecord> {
                Ok(CodeRecord {
                    code_hash: r.try_get("code_hash")?,
                    client_id: r.try_get("client_id")?,
                    redirect_uri: r.try_get("redirect_uri")?,
                    sub: r.try_get("sub")?,
                    scope: r.try_get("scope")?,
                    nonce: r.try_get("nonce")?,
                    code_challenge: r.try_get("code_challenge")?,
                    auth_context_id: r.try_get("auth_context_id")?,
                    auth_time: r.try_get("auth_time")?,
                    auth_time_required: r.try_get::<i64, _>("auth_time_required")? != 0,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    consumed_at: r.try_get("consumed_at")?,
                })
            }

            pub fn access_token(r: &DbRow) -> Result<AccessTokenRecord> {
                Ok(AccessTokenRecord {
                    jti: r.try_get("jti")?,
                    client_id: r.try_get("client_id")?,
                    sub: r.try_get("sub")?,
                    scope: r.try_get("scope")?,
                    auth_context_id: r.try_get("auth_context_id")?,
                    code_hash: r.try_get("code_hash")?,
                    issued_at: r.try_get("issued_at")?,
                    expires_at: r.try_get("expires_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                    family_id: r.try_get("family_id")?,
                })
            }

            pub fn refresh_token(r: &DbRow) -> Result<RefreshTokenRecord> {
                Ok(RefreshTokenRecord {
                    token_hash: r.try_get("token_hash")?,
                    family_id: r.try_get("family_id")?,
                    client_id: r.try_get("client_id")?,
                    sub: r.try_get("sub")?,
                    scope: r.try_get("scope")?,
                    auth_context_id: r.try_get("auth_context_id")?,
                    auth_time: r.try_get("auth_time")?,
                    code_hash: r.try_get("code_hash")?,
                    issued_at: r.try_get("issued_at")?,
                    expires_at: r.try_get("expires_at")?,
                    family_expires_at: r.try_get("family_expires_at")?,
                    rotated_at: r.try_get("rotated_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                    grace_used_at: r.try_get("grace_used_at")?,
                })
            }
            pub fn config_version(r: &DbRow) -> Result<ConfigVersion> {
                Ok(ConfigVersion {
                    version: r.try_get("version")?,
                    document: r.try_get("document")?,
                    created_at: r.try_get("created_at")?,
                    author: r.try_get("author")?,
                })
            }

            pub fn audit(r: &DbRow) -> Result<AuditEntry> {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    before: r.try_get("before")?,
                    after: r.try_get("after")?,
                    config_version: r.try_get("config_version")?,
                })
            }
        }

        /// Inserts shared by several methods, run on a connection inside their transaction.
        mod inserts {
            use crate::store::{AccessTokenRecord, AuditEntry, RefreshTokenRecord, Removal, Result};

            type Conn = <$db as sqlx::Database>::Connection;

            /// Runs revocation `UPDATE`s that each take the same key as `$1` and `now` as `$2`;
            /// returns how many rows they revoked.
            pub async fn revoke_by(
                conn: &mut Conn,
                statements: &[&str],
                key: &str,
                now: i64,
            ) -> Result<u64> {
                let mut revoked = 0;
                for sql in statements {
                    revoked += sqlx::query(sql)
                        .bind(key)
                        .bind(now)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                }
                Ok(revoked)
            }

            /// Ends what a removed client or upstream was given (see [`Removal`]).
            pub async fn end(conn: &mut Conn, removal: &Removal, now: i64) -> Result<()> {
                match removal {
                    Removal::Client {
                        client_id,
                        consent_method,
                        record_id_prefix,
                    } => {
                        // Codes first, so one redeemed meanwhile yields no live token.
                        revoke_by(
                            conn,
                            &[
                                "UPDATE authorization_codes SET consumed_at = $2 \
                                 WHERE client_id = $1 AND consumed_at IS NULL",
                                "UPDATE refresh_tokens SET revoked_at = $2 \
                                 WHERE client_id = $1 AND revoked_at IS NULL",
                                "UPDATE access_tokens SET revoked_at = $2 \
                                 WHERE client_id = $1 AND revoked_at IS NULL",
                            ],
                            client_id,
                            now,
                        )
                        .await?;
                        // The grants deleted are exactly the ones recorded as withdrawn.
                        let grants = sqlx::query("DELETE FROM grants WHERE client_id = $1 RETURNING *")
                            .bind(client_id)
                            .fetch_all(&mut *conn)
                            .await?;
                        for g in grants.iter().map(super::rows::grant) {
                            let g = g?;
                            sqlx::query(
                                "INSERT INTO consent_records (id, sub, client_id, allowed, \
                                 denied, text_versions, method, decided_at) \
                                 VALUES ($1, $2, $3, '', $4, $5, $6, $7)",
                            )
                            .bind(format!("{record_id_prefix}{}", g.sub))
                            .bind(&g.sub)
                            .bind(&g.client_id)
                            .bind(&g.scopes)
                            .bind(&g.scope_versions)
                            .bind(consent_method)
                            .bind(now)
                            .execute(&mut *conn)
                            .await?;
                        }
                    }
                    Removal::Upstream { upstream_id } => {
                        sqlx::query("DELETE FROM upstream_logins WHERE upstream_id = $1")
                            .bind(upstream_id)
                            .execute(&mut *conn)
                            .await?;
                        // What was issued from its contexts first, then the contexts.
                        revoke_by(
                            conn,
                            &[
                                "UPDATE authorization_codes SET consumed_at = $2 \
                                 WHERE consumed_at IS NULL AND auth_context_id IN \
                                 (SELECT id FROM auth_contexts WHERE upstream_id = $1)",
                                "UPDATE refresh_tokens SET revoked_at = $2 \
                                 WHERE revoked_at IS NULL AND auth_context_id IN \
                                 (SELECT id FROM auth_contexts WHERE upstream_id = $1)",
                                "UPDATE access_tokens SET revoked_at = $2 \
                                 WHERE revoked_at IS NULL AND auth_context_id IN \
                                 (SELECT id FROM auth_contexts WHERE upstream_id = $1)",
                                "UPDATE auth_contexts SET revoked_at = $2 \
                                 WHERE upstream_id = $1 AND revoked_at IS NULL",
                            ],
                            upstream_id,
                            now,
                        )
                        .await?;
                    }
                }
                Ok(())
            }

            pub async fn audit(conn: &mut Conn, a: &AuditEntry) -> Result<i64> {
                let row = sqlx::query(
                    "INSERT INTO audit_log (at, actor, action, target, before, after, \
                     config_version) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(a.at)
                .bind(&a.actor)
                .bind(&a.action)
                .bind(&a.target)
                .bind(&a.before)
                .bind(&a.after)
                .bind(a.config_version)
                .fetch_one(&mut *conn)
                .await?;
                Ok(sqlx::Row::try_get(&row, "id")?)
            }

            pub async fn access_token(conn: &mut Conn, t: &AccessTokenRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO access_tokens (jti, client_id, sub, scope, auth_context_id, \
                     code_hash, issued_at, expires_at, revoked_at, family_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&t.jti)
                .bind(&t.client_id)
                .bind(&t.sub)
                .bind(&t.scope)
                .bind(&t.auth_context_id)
                .bind(&t.code_hash)
                .bind(t.issued_at)
                .bind(t.expires_at)
                .bind(t.revoked_at)
                .bind(&t.family_id)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            pub async fn refresh_token(conn: &mut Conn, t: &RefreshTokenRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, family_id, client_id, sub, scope, \
                     auth_context_id, auth_time, code_hash, issued_at, expires_at, \
                     family_expires_at, rotated_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&t.token_hash)
                .bind(&t.family_id)
                .bind(&t.client_id)
                .bind(&t.sub)
                .bind(&t.scope)
                .bind(&t.auth_context_id)
                .bind(t.auth_time)
                .bind(&t.code_hash)
                .bind(t.issued_at)
                .bind(t.expires_at)
                .bind(t.family_expires_at)
                .bind(t.rotated_at)
                .bind(t.revoked_at)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl crate::store::Store for $store {
            async fn migrate(&self) -> crate::store::Result<()> {
                self.run_migrations().await
            }

            async fn ping(&self) -> crate::store::Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn signing_keys(&self) -> crate::store::Result<Vec<crate::store::KeyRecord>> {
                let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(rows::key).collect()
            }

            async fn insert_signing_key(
                &self,
                k: &crate::store::KeyRecord,
            ) -> crate::store::Result<()> {
                sqlx::query(
                    "INSERT INTO signing_keys (kid, alg, encryption, private_key, created_at, \
                     activates_at, retires_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&k.kid)
                .bind(&k.alg)
                .bind(&k.encryption)
                .bind(&k.private_key)
                .bind(k.created_at)
                .bind(k.activates_at)
                .bind(k.retires_at)
                .bind(k.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn retire_signing_key(
                &self,
                kid: &str,
                retires_at: i64,
                expires_at: i64,
            ) -> crate::store::Result<()> {
                sqlx::query(
                    "UPDATE signing_keys SET retires_at = $2, expires_at = $3 WHERE kid = $1",
                )
                .bind(kid)
                .bind(retires_at)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn link_user(
                &self,
                upstream_id: &str,
                upstream_subject: &str,
                new_sub: &str,
                now: i64,
            ) -> crate::store::Result<crate::store::User> {
                let row = sqlx::query(
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
                .await?;
                rows::user(&row)
            }

            async fn user(&self, sub: &str) -> crate::store::Result<Option<crate::store::User>> {
                let row = sqlx::query("SELECT * FROM users WHERE sub = $1")
                    .bind(sub)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::user).transpose()
            }

            async fn set_last_context(&self, sub: &str, context: &str) -> crate::store::Result<()> {
                sqlx::query("UPDATE users SET last_context = $2 WHERE sub = $1")
                    .bind(sub)
                    .bind(context)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn insert_auth_request(
                &self,
                r: &crate::store::AuthRequest,
            ) -> crate::store::Result<()> {
                sqlx::query(
                    "INSERT INTO auth_requests (id, client_id, redirect_uri, scope, state, nonce, \
                     code_challenge, prompt, max_age, login_hint, upstream_hint, browser_binding, \
                     created_at, expires_at, sub, auth_context_id, auth_time, consent_csrf, \
                     decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                     $14, $15, $16, $17, $18, $19)",
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
                .bind(&r.consent_csrf)
                .bind(r.decided_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn auth_request(
                &self,
                id: &str,
            ) -> crate::store::Result<Option<crate::store::AuthRequest>> {
                let row = sqlx::query("SELECT * FROM auth_requests WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::auth_request).transpose()
            }

            async fn set_auth_request_login(
                &self,
                id: &str,
                sub: &str,
                auth_context_id: &str,
                auth_time: i64,
            ) -> crate::store::Result<()> {
                sqlx::query(
                    "UPDATE auth_requests SET sub = $2, auth_context_id = $3, auth_time = $4 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(sub)
                .bind(auth_context_id)
                .bind(auth_time)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn set_consent_csrf(&self, id: &str, csrf_hash: &str) -> crate::store::Result<()> {
                sqlx::query("UPDATE auth_requests SET consent_csrf = $2 WHERE id = $1")
                    .bind(id)
                    .bind(csrf_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn decide_auth_request(&self, id: &str, now: i64) -> crate::store::Result<bool> {
                let done = sqlx::query(
                    "UPDATE auth_requests SET decided_at = $2 WHERE id = $1 AND decided_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_upstream_login(
                &self,
                l: &crate::store::UpstreamLogin,
            ) -> crate::store::Result<()> {
                sqlx::query(
                    "INSERT INTO upstream_logins (state_hash, auth_request_id, upstream_id, nonce, \
                     pkce_verifier, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&l.state_hash)
                .bind(&l.auth_request_id)
                .bind(&l.upstream_id)
                .bind(&l.nonce)
                .bind(&l.pkce_verifier)
                .bind(l.created_at)
                .bind(l.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn take_upstream_login(
                &self,
                state_hash: &str,
            ) -> crate::store::Result<Option<crate::store::UpstreamLogin>> {
                let row =
                    sqlx::query("DELETE FROM upstream_logins WHERE state_hash = $1 RETURNING *")
                        .bind(state_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                row.as_ref().map(rows::upstream_login).transpose()
            }

            async fn insert_context(
                &self,
                c: &crate::store::StoredContext,
            ) -> crate::store::Result<()> {
                sqlx::query(
                    "INSERT INTO auth_contexts (id, sub, upstream_id, context, auth_time, \
                     created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&c.id)
                .bind(&c.sub)
                .bind(&c.upstream_id)
                .bind(&c.context)
                .bind(c.auth_time)
                .bind(c.created_at)
                .bind(c.expires_at)
                .bind(c.revoked_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn context(
                &self,
                id: &str,
            ) -> crate::store::Result<Option<crate::store::StoredContext>> {
                let row = sqlx::query("SELECT * FROM auth_contexts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::context).transpose()
            }

            async fn grant(
                &self,
                sub: &str,
                client_id: &str,
            ) -> crate::store::Result<Option<crate::store::Grant>> {
                let row = sqlx::query("SELECT * FROM grants WHERE sub = $1 AND client_id = $2")
                    .bind(sub)
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::grant).transpose()
            }

            async fn grants(&self, sub: &str) -> crate::store::Result<Vec<crate::store::Grant>> {
                let rows = sqlx::query("SELECT * FROM grants WHERE sub = $1 ORDER BY client_id")
                    .bind(sub)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(rows::grant).collect()
            }

            async fn record_consent(
                &self,
                grant: Option<&crate::store::Grant>,
                rec: &crate::store::ConsentRecord,
            ) -> crate::store::Result<()> {
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
                        .bind(&g.scopes)
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
                .bind(&rec.allowed)
                .bind(&rec.denied)
                .bind(&rec.text_versions)
                .bind(&rec.method)
                .bind(rec.decided_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn consent_records(
                &self,
                sub: &str,
            ) -> crate::store::Result<Vec<crate::store::ConsentRecord>> {
                let rows = sqlx::query(
                    "SELECT * FROM consent_records WHERE sub = $1 ORDER BY decided_at, id",
                )
                .bind(sub)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(rows::consent_record).collect()
            }

            async fn insert_code(&self, c: &crate::store::CodeRecord) -> crate::store::Result<()> {
                sqlx::query(
                    "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, sub, \
                     scope, nonce, code_challenge, auth_context_id, auth_time, auth_time_required, \
                     created_at, expires_at, consumed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&c.code_hash)
                .bind(&c.client_id)
                .bind(&c.redirect_uri)
                .bind(&c.sub)
                .bind(&c.scope)
                .bind(&c.nonce)
                .bind(&c.code_challenge)
                .bind(&c.auth_context_id)
                .bind(c.auth_time)
                .bind(i64::from(c.auth_time_required))
                .bind(c.created_at)
                .bind(c.expires_at)
                .bind(c.consumed_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn code(
                &self,
                code_hash: &str,
            ) -> crate::store::Result<Option<crate::store::CodeRecord>> {
                let row = sqlx::query("SELECT * FROM authorization_codes WHERE code_hash = $1")
                    .bind(code_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::code).transpose()
            }

            async fn redeem_code(
                &self,
                code_hash: &str,
                now: i64,
                t: &crate::store::AccessTokenRecord,
                refresh: Option<&crate::store::RefreshTokenRecord>,
            ) -> crate::store::Result<crate::store::Redemption> {
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
                    return Ok(crate::store::Redemption::AlreadyUsed);
                }
                inserts::access_token(&mut tx, t).await?;
                if let Some(r) = refresh {
                    inserts::refresh_token(&mut tx, r).await?;
                }
                tx.commit().await?;
                Ok(crate::store::Redemption::Redeemed)
            }

            async fn burn_code(&self, code_hash: &str, now: i64) -> crate::store::Result<()> {
                sqlx::query(
                    "UPDATE authorization_codes SET consumed_at = $2 \
                     WHERE code_hash = $1 AND consumed_at IS NULL",
                )
                .bind(code_hash)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn revoke_tokens_of_code(
                &self,
                code_hash: &str,
                now: i64,
            ) -> crate::store::Result<u64> {
                // Refresh tokens carry their family's code, so one predicate per table finds
                // everything descending from the code.
                let mut tx = self.begin_write().await?;
                let revoked = inserts::revoke_by(
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
            ) -> crate::store::Result<Option<crate::store::AccessTokenRecord>> {
                let row = sqlx::query("SELECT * FROM access_tokens WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::access_token).transpose()
            }

            async fn revoke_access_token(
                &self,
                t: &crate::store::AccessTokenRecord,
                now: i64,
            ) -> crate::store::Result<u64> {
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
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }

            async fn refresh_token(
                &self,
                token_hash: &str,
            ) -> crate::store::Result<Option<crate::store::RefreshTokenRecord>> {
                let row = sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::refresh_token).transpose()
            }

            async fn rotate_refresh_token(
                &self,
                token_hash: &str,
                now: i64,
                grace_since: Option<i64>,
                successor: &crate::store::RefreshTokenRecord,
                t: &crate::store::AccessTokenRecord,
            ) -> crate::store::Result<crate::store::Rotation> {
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
                    return Ok(crate::store::Rotation::NotCurrent);
                }
                inserts::refresh_token(&mut tx, successor).await?;
                inserts::access_token(&mut tx, t).await?;
                tx.commit().await?;
                Ok(crate::store::Rotation::Rotated)
            }

            async fn revoke_refresh_family(
                &self,
                family_id: &str,
                now: i64,
            ) -> crate::store::Result<u64> {
                let mut tx = self.begin_write().await?;
                let revoked = inserts::revoke_by(
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
            ) -> crate::store::Result<u64> {
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
            ) -> crate::store::Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO client_assertions (client_id, jti, expires_at, used_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (client_id, jti) DO NOTHING",
                )
                .bind(client_id)
                .bind(jti)
                .bind(expires_at)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_session(
                &self,
                id: &str,
                record: &str,
                expires_at: i64,
            ) -> crate::store::Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO sessions (id, record, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(id)
                .bind(record)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn save_session(
                &self,
                id: &str,
                record: &str,
                expires_at: i64,
            ) -> crate::store::Result<()> {
                sqlx::query(
                    "INSERT INTO sessions (id, record, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (id) DO UPDATE SET record = excluded.record, \
                     expires_at = excluded.expires_at",
                )
                .bind(id)
                .bind(record)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn load_session(
                &self,
                id: &str,
                now: i64,
            ) -> crate::store::Result<Option<String>> {
                let row = sqlx::query("SELECT record FROM sessions WHERE id = $1 AND expires_at > $2")
                    .bind(id)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(match row {
                    Some(r) => Some(sqlx::Row::try_get(&r, "record")?),
                    None => None,
                })
            }

            async fn delete_session(&self, id: &str) -> crate::store::Result<()> {
                sqlx::query("DELETE FROM sessions WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn latest_config_version(&self) -> crate::store::Result<Option<i64>> {
                let row = sqlx::query("SELECT MAX(version) AS v FROM config_versions")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(sqlx::Row::try_get(&row, "v")?)
            }

            async fn latest_config(
                &self,
            ) -> crate::store::Result<Option<crate::store::ConfigVersion>> {
                let row = sqlx::query(
                    "SELECT * FROM config_versions ORDER BY version DESC LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(rows::config_version).transpose()
            }

            async fn seed_config(
                &self,
                first: &crate::store::ConfigVersion,
            ) -> crate::store::Result<bool> {
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
                next: &crate::store::ConfigVersion,
                audit: &crate::store::AuditEntry,
                removals: &[crate::store::Removal],
            ) -> crate::store::Result<()> {
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
                    inserts::end(&mut tx, removal, audit.at).await?;
                }
                inserts::audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn append_audit(
                &self,
                entry: &crate::store::AuditEntry,
            ) -> crate::store::Result<i64> {
                let mut tx = self.begin_write().await?;
                let id = inserts::audit(&mut tx, entry).await?;
                tx.commit().await?;
                Ok(id)
            }

            async fn audit_entries(
                &self,
                f: &crate::store::AuditFilter,
            ) -> crate::store::Result<Vec<crate::store::AuditEntry>> {
                let rows = sqlx::query(
                    "SELECT * FROM audit_log WHERE ($1 IS NULL OR actor = $1) \
                     AND ($2 IS NULL OR target = $2) AND ($3 IS NULL OR at >= $3) \
                     AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5",
                )
                .bind(&f.actor)
                .bind(&f.target)
                .bind(f.since)
                .bind(f.before_id)
                .bind(f.limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(rows::audit).collect()
            }

            async fn list_users(
                &self,
                q: &crate::store::UserQuery,
            ) -> crate::store::Result<(Vec<crate::store::User>, i64)> {
                use crate::store::UserSort;
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
                              OR LOWER(upstream_subject) LIKE $1 ESCAPE '\\') \
                              AND ($2 IS NULL OR upstream_id = $2)";
                let rows = sqlx::query(&format!(
                    "SELECT * FROM users WHERE {filter} ORDER BY {order}, sub LIMIT $3 OFFSET $4"
                ))
                .bind(&pattern)
                .bind(&q.upstream_id)
                .bind(q.limit)
                .bind(q.offset)
                .fetch_all(&self.pool)
                .await?;
                let total = sqlx::query(&format!("SELECT COUNT(*) AS n FROM users WHERE {filter}"))
                    .bind(&pattern)
                    .bind(&q.upstream_id)
                    .fetch_one(&self.pool)
                    .await?;
                let users = rows.iter().map(rows::user).collect::<crate::store::Result<_>>()?;
                Ok((users, sqlx::Row::try_get(&total, "n")?))
            }

            async fn purge_expired(&self, now: i64) -> crate::store::Result<u64> {
                // Small statements, one table at a time: no long locks. Codes are kept a while
                // after expiry so a late replay is still recognised and its tokens revoked.
                let mut removed = 0;
                for sql in [
                    "DELETE FROM auth_requests WHERE expires_at < $1",
                    "DELETE FROM upstream_logins WHERE expires_at < $1",
                    "DELETE FROM authorization_codes WHERE expires_at < $1 - 86400",
                    "DELETE FROM access_tokens WHERE expires_at < $1",
                    // Rotated tokens stay while their family lives, so a late reuse is still
                    // recognised and revokes the family; a current token goes at idle expiry.
                    "DELETE FROM refresh_tokens WHERE family_expires_at < $1 \
                     OR (rotated_at IS NULL AND expires_at < $1)",
                    "DELETE FROM sessions WHERE expires_at < $1",
                    "DELETE FROM client_assertions WHERE expires_at < $1",
                    "DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at < $1",
                ] {
                    removed += sqlx::query(sql)
                        .bind(now)
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                }
                Ok(removed)
            }
        }
    };
}

pub(super) use sql_store;
