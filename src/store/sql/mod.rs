//! The SQL both backends share, as macros that implement the store traits for a store type
//! with three async methods: `reader()`, a connection for reading; `write_conn()`, a connection
//! for a write outside a transaction (any of the pool's on PostgreSQL, the one writing connection
//! on SQLite); and `begin_write()`, a transaction about to write. One file per trait, and
//! [`sql_store!`] to apply them all.
//!
//! Only the dialect common to SQLite (3.35+) and PostgreSQL is used: `$n` parameters,
//! `ON CONFLICT ... DO UPDATE`, `RETURNING`, plain integer and text columns. Booleans are stored
//! as integers so both decode them the same way. Queries are checked at run time (`query_as`
//! into the `FromRow` records), not at compile time: the store suite runs every statement on
//! both databases. Each backend also supplies `run_migrations`.

mod config;
mod consent;
pub(crate) mod ending;
mod keys;
mod login;
mod outbox;
mod sessions;
mod tokens;
pub(crate) mod users;

pub(super) use config::{audit_sql, config_sql};
pub(super) use consent::consent_sql;
pub(super) use keys::key_sql;
pub(super) use login::login_sql;
pub(super) use outbox::outbox_sql;
pub(super) use sessions::session_sql;
pub(super) use tokens::token_sql;
pub(super) use users::user_sql;

/// Implements every store trait for `$store`, a type in the invoking module with `reader()`,
/// `write_conn()` and `begin_write()` giving connections of `$db`.
macro_rules! sql_store {
    ($store:ident, $db:ty) => {
        $crate::store::sql::shared_sql!($db);
        $crate::store::sql::ending::ending_sql!($db);
        $crate::store::sql::maintenance_sql!($store);
        $crate::store::sql::key_sql!($store);
        $crate::store::sql::user_sql!($store);
        $crate::store::sql::login_sql!($store, $db);
        $crate::store::sql::consent_sql!($store);
        $crate::store::sql::token_sql!($store);
        $crate::store::sql::session_sql!($store);
        $crate::store::sql::config_sql!($store);
        $crate::store::sql::audit_sql!($store);
        $crate::store::sql::outbox_sql!($store);
    };
}

/// Statements several traits run inside their own transactions, as a module `shared` of
/// functions taking a connection of `$db`.
macro_rules! shared_sql {
    ($db:ty) => {
        mod shared {
            use $crate::store::{
                AccessTokenRecord, AuditEntry, CodeRecord, ConsentRecord, Grant, OutboxRow,
                PurposeDecision,
                RefreshTokenRecord, Removal, Result, StoredContext,
            };

            type Conn = <$db as sqlx::Database>::Connection;

            /// The user (upstream, subject) signs in, if any.
            pub async fn identity_user(
                conn: &mut Conn,
                upstream_id: &str,
                subject: &str,
            ) -> Result<Option<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT sub FROM identities WHERE upstream_id = $1 AND subject = $2",
                )
                .bind(upstream_id)
                .bind(subject)
                .fetch_optional(&mut *conn)
                .await?)
            }

            /// Links (upstream, subject) to `sub` unless it is linked already; whether it did.
            pub async fn insert_identity(
                conn: &mut Conn,
                upstream_id: &str,
                subject: &str,
                sub: &str,
                now: i64,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO identities (upstream_id, subject, sub, linked_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (upstream_id, subject) DO NOTHING",
                )
                .bind(upstream_id)
                .bind(subject)
                .bind(sub)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            /// Creates the user of an identity seen for the first time, with `new_sub`, and
            /// returns the sub it signs in: `new_sub`, or the user a concurrent first login (or
            /// an admin's link) gave the identity a moment before. The identity's insert is the
            /// lock: that login holds its primary key (PostgreSQL) or the write lock (SQLite)
            /// until it commits, and this one then finds the identity taken and creates no user.
            pub async fn insert_user(
                conn: &mut Conn,
                new_sub: &str,
                upstream_id: &str,
                subject: &str,
                now: i64,
            ) -> Result<String> {
                if !insert_identity(conn, upstream_id, subject, new_sub, now).await? {
                    return identity_user(conn, upstream_id, subject).await?.ok_or_else(|| {
                        $crate::store::StoreError::Conflict(format!(
                            "identity ({upstream_id}, {subject}) was unlinked meanwhile"
                        ))
                    });
                }
                // The user's first identity, unless a user left over from before holds it
                // there: then none (`('', sub)`), which names no identity.
                for (first_upstream, first_subject) in [(upstream_id, subject), ("", new_sub)] {
                    let created = sqlx::query(
                        "INSERT INTO users (sub, upstream_id, upstream_subject, created_at, \
                         last_login_at, logins_count) VALUES ($1, $2, $3, $4, $4, 0) \
                         ON CONFLICT (upstream_id, upstream_subject) DO NOTHING",
                    )
                    .bind(new_sub)
                    .bind(first_upstream)
                    .bind(first_subject)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    if created.rows_affected() == 1 {
                        break;
                    }
                }
                Ok(new_sub.to_string())
            }

            /// Stores a consent decision: the grant after it (`None` deletes the user's grant to
            /// the app), its record and its events.
            pub async fn decide(
                conn: &mut Conn,
                grant: Option<&Grant>,
                rec: &ConsentRecord,
                outbox: &[OutboxRow],
            ) -> Result<()> {
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
                        .execute(&mut *conn)
                        .await?;
                    }
                    None => {
                        sqlx::query("DELETE FROM grants WHERE sub = $1 AND client_id = $2")
                            .bind(&rec.sub)
                            .bind(&rec.client_id)
                            .execute(&mut *conn)
                            .await?;
                    }
                }
                insert_record(conn, rec).await?;
                enqueue(conn, outbox).await
            }

            pub async fn insert_code(conn: &mut Conn, c: &CodeRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, sub, \
                     scope, nonce, code_challenge, auth_context_id, auth_time, auth_time_required, \
                     created_at, expires_at, consumed_at, resources, dpop_jkt) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
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
                .bind(&c.resources)
                .bind(&c.dpop_jkt)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// Appends a consent record and moves the user's purpose states to what it decided.
            pub async fn insert_record(conn: &mut Conn, rec: &ConsentRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO consent_records (id, sub, client_id, allowed, denied, \
                     text_versions, method, decided_at, decision, locale, wording, purposes, \
                     source, source_reference) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(&rec.id)
                .bind(&rec.sub)
                .bind(&rec.client_id)
                .bind(rec.allowed.as_str())
                .bind(rec.denied.as_str())
                .bind(&rec.text_versions)
                .bind(rec.method.as_str())
                .bind(rec.decided_at)
                .bind(rec.decision.as_str())
                .bind(&rec.locale)
                .bind(&rec.wording)
                .bind(&rec.purposes)
                .bind(&rec.source)
                .bind(&rec.source_reference)
                .execute(&mut *conn)
                .await?;
                let purposes: std::collections::BTreeMap<String, PurposeDecision> =
                    serde_json::from_str(&rec.purposes).unwrap_or_default();
                for (name, p) in purposes {
                    // A later decision already stored (an import of an older one) wins.
                    sqlx::query(
                        "INSERT INTO purpose_states (sub, purpose, decision, version, \
                         record_id, decided_at) VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (sub, purpose) DO UPDATE SET decision = excluded.decision, \
                         version = excluded.version, record_id = excluded.record_id, \
                         decided_at = excluded.decided_at \
                         WHERE purpose_states.decided_at <= excluded.decided_at",
                    )
                    .bind(&rec.sub)
                    .bind(&name)
                    .bind(&p.decision)
                    .bind(&p.version)
                    .bind(&rec.id)
                    .bind(rec.decided_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            }

            /// Writes `rows` into the outbox, pending and due at once.
            /// Records a login or refusal.
            pub async fn login_event(
                conn: &mut Conn,
                e: &$crate::store::LoginEvent,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO login_events (at, result, sub, upstream_id, client_id, reason) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(e.at)
                .bind(e.result.as_str())
                .bind(&e.sub)
                .bind(&e.upstream_id)
                .bind(&e.client_id)
                .bind(&e.reason)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            pub async fn enqueue(conn: &mut Conn, rows: &[OutboxRow]) -> Result<()> {
                for r in rows {
                    sqlx::query(
                        "INSERT INTO outbox (id, event_id, event_type, destination, body, \
                         state, attempts, next_attempt_at, created_at) \
                         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
                    )
                    .bind(&r.id)
                    .bind(&r.event_id)
                    .bind(&r.event_type)
                    .bind(&r.destination)
                    .bind(&r.body)
                    .bind(r.created_at)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(())
            }

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

            /// Burns the unredeemed codes and revokes the refresh and access tokens whose
            /// `column` (`client_id` or `sub`) is `key`; codes first, so one redeemed meanwhile
            /// yields no live token.
            pub async fn revoke_all(
                conn: &mut Conn,
                column: &'static str,
                key: &str,
                now: i64,
            ) -> Result<u64> {
                let statements = [
                    format!(
                        "UPDATE authorization_codes SET consumed_at = $2 \
                         WHERE {column} = $1 AND consumed_at IS NULL"
                    ),
                    format!(
                        "UPDATE refresh_tokens SET revoked_at = $2 \
                         WHERE {column} = $1 AND revoked_at IS NULL"
                    ),
                    format!(
                        "UPDATE access_tokens SET revoked_at = $2 \
                         WHERE {column} = $1 AND revoked_at IS NULL"
                    ),
                ];
                let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
                revoke_by(conn, &statements, key, now).await
            }

            /// Ends what a removed client or upstream was given (see [`Removal`]).
            pub async fn end(conn: &mut Conn, removal: &Removal, now: i64) -> Result<()> {
                match removal {
                    Removal::Client {
                        client_id,
                        withdrawal,
                    } => {
                        revoke_all(conn, "client_id", client_id, now).await?;
                        // The grants deleted are exactly the ones recorded as withdrawn.
                        let grants: Vec<Grant> =
                            sqlx::query_as("DELETE FROM grants WHERE client_id = $1 RETURNING *")
                                .bind(client_id)
                                .fetch_all(&mut *conn)
                                .await?;
                        for g in grants {
                            let (record, events) = (withdrawal.0)(&g);
                            insert_record(conn, &record).await?;
                            enqueue(conn, &events).await?;
                        }
                    }
                    Removal::Upstream {
                        upstream_id,
                        logouts,
                    } => {
                        sqlx::query("DELETE FROM upstream_logins WHERE upstream_id = $1")
                            .bind(upstream_id)
                            .execute(&mut *conn)
                            .await?;
                        // Its logins end, with what was issued from them; their apps are told.
                        let which = $crate::store::EndLogins {
                            upstream_id: Some(upstream_id),
                            ..Default::default()
                        };
                        super::ending::end(conn, &which, now, logouts).await?;
                    }
                }
                Ok(())
            }

            pub async fn audit(conn: &mut Conn, a: &AuditEntry) -> Result<i64> {
                Ok(sqlx::query_scalar(
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
                .await?)
            }

            /// Stores an authentication context under `sub` (a login's user, which may differ
            /// from `c.sub` when a concurrent first login created the user).
            pub async fn context(conn: &mut Conn, c: &StoredContext, sub: &str) -> Result<()> {
                sqlx::query(
                    "INSERT INTO auth_contexts (id, sub, upstream_id, context, auth_time, \
                     created_at, expires_at, revoked_at, upstream_sid, upstream_refresh, \
                     upstream_subject) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&c.id)
                .bind(sub)
                .bind(&c.upstream_id)
                .bind(&c.context)
                .bind(c.auth_time)
                .bind(c.created_at)
                .bind(c.expires_at)
                .bind(c.revoked_at)
                .bind(&c.upstream_sid)
                .bind(&c.upstream_refresh)
                .bind(&c.upstream_subject)
                .execute(&mut *conn)
                .await?;
                Ok(())
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
                     family_expires_at, rotated_at, revoked_at, dpop_jkt, resources) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
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
                .bind(&t.dpop_jkt)
                .bind(&t.resources)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }
        }
    };
}

/// [`MaintenanceStore`](crate::store::MaintenanceStore): migrations, readiness, purging.
macro_rules! maintenance_sql {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::MaintenanceStore for $store {
            async fn migrate(&self) -> $crate::store::Result<()> {
                self.run_migrations().await
            }

            async fn ping(&self) -> $crate::store::Result<()> {
                sqlx::query("SELECT 1")
                    .execute(&mut *self.reader().await?)
                    .await?;
                Ok(())
            }

            async fn purge_expired(&self, now: i64) -> $crate::store::Result<u64> {
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
                    "DELETE FROM dpop_proofs WHERE expires_at < $1",
                    // A login past its end with nothing issued from it left (an exchanged
                    // token's, once the token has expired) serves nobody.
                    "DELETE FROM auth_contexts WHERE expires_at IS NOT NULL AND expires_at < $1 \
                     AND NOT EXISTS (SELECT 1 FROM access_tokens t \
                                     WHERE t.auth_context_id = auth_contexts.id) \
                     AND NOT EXISTS (SELECT 1 FROM refresh_tokens r \
                                     WHERE r.auth_context_id = auth_contexts.id) \
                     AND NOT EXISTS (SELECT 1 FROM authorization_codes c \
                                     WHERE c.auth_context_id = auth_contexts.id)",
                    "DELETE FROM pushed_requests WHERE expires_at < $1",
                    "DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at < $1",
                ] {
                    removed += sqlx::query(sql)
                        .bind(now)
                        .execute(&mut *self.write_conn().await?)
                        .await?
                        .rows_affected();
                }
                removed += sqlx::query("DELETE FROM login_events WHERE at < $1")
                    .bind(now - $crate::store::LOGIN_EVENT_RETENTION_SECS)
                    .execute(&mut *self.write_conn().await?)
                    .await?
                    .rows_affected();
                Ok(removed)
            }
        }
    };
}

pub(super) use maintenance_sql;
pub(super) use shared_sql;
pub(super) use sql_store;
