//! Ending logins, shared by the traits whose changes end them (a logout from the upstream, a
//! block, an erasure, a removed upstream): the apps the logins reached are read, the logout
//! tokens they are owed made (by the caller's [`Logouts`](crate::store::Logouts)) and written,
//! and the logins ended with what was issued from them, all in the caller's transaction.

/// The live logins an [`EndLogins`](crate::store::EndLogins) names, as a subquery: `$1`
/// context id, `$2` upstream, `$3` sub, `$4` upstream sid, `$6` upstream subject (`$5` is left
/// to the statement).
pub(crate) const ENDED: &str = "(SELECT id FROM auth_contexts WHERE revoked_at IS NULL \
     AND ($1 IS NULL OR id = $1) AND ($2 IS NULL OR upstream_id = $2) \
     AND ($3 IS NULL OR sub = $3) AND ($4 IS NULL OR upstream_sid = $4) \
     AND ($6 IS NULL OR upstream_subject = $6))";

/// A module `ending` of functions taking a connection of `$db`.
macro_rules! ending_sql {
    ($db:ty) => {
        mod ending {
            use $crate::store::{AppLogin, EndLogins, Logouts, Result};
            use $crate::store::sql::ending::ENDED;

            type Conn = <$db as sqlx::Database>::Connection;

            /// The apps the live logins `which` reached, once per app and login. Codes are
            /// kept a day after they expire, refresh tokens while their family lives, access
            /// tokens until they expire: together, the apps still holding something.
            pub async fn apps_of(conn: &mut Conn, which: &EndLogins<'_>) -> Result<Vec<AppLogin>> {
                let sql = format!(
                    "SELECT DISTINCT client_id, sub, auth_context_id FROM ( \
                     SELECT client_id, sub, auth_context_id FROM authorization_codes \
                     UNION SELECT client_id, sub, auth_context_id FROM refresh_tokens \
                     UNION SELECT client_id, sub, auth_context_id FROM access_tokens) issued \
                     WHERE auth_context_id IN {ENDED} ORDER BY client_id, auth_context_id"
                );
                Ok(sqlx::query_as(&sql)
                    .bind(which.context_id)
                    .bind(which.upstream_id)
                    .bind(which.sub)
                    .bind(which.sid)
                    .bind(0_i64)
                    .bind(which.subject)
                    .fetch_all(&mut *conn)
                    .await?)
            }

            /// Writes what `logouts` makes of the apps the live logins `which` reached;
            /// returns how many rows.
            pub async fn owe(
                conn: &mut Conn,
                which: &EndLogins<'_>,
                logouts: &Logouts,
            ) -> Result<usize> {
                let apps = apps_of(conn, which).await?;
                let rows = (logouts.0)(&apps);
                super::shared::enqueue(conn, &rows).await?;
                Ok(rows.len())
            }

            /// Ends the live logins `which` names with the codes and tokens issued from them,
            /// and writes the logout tokens their apps are owed (none when no login ended).
            /// Returns how many logins ended.
            pub async fn end(
                conn: &mut Conn,
                which: &EndLogins<'_>,
                now: i64,
                logouts: &Logouts,
            ) -> Result<u64> {
                // Read before the contexts end: the subquery names live ones only.
                let apps = apps_of(conn, which).await?;
                let mut ended = 0;
                // What was issued from the contexts first, then the contexts.
                for sql in [
                    "UPDATE authorization_codes SET consumed_at = $5 \
                     WHERE consumed_at IS NULL AND auth_context_id IN ",
                    "UPDATE refresh_tokens SET revoked_at = $5 \
                     WHERE revoked_at IS NULL AND auth_context_id IN ",
                    "UPDATE access_tokens SET revoked_at = $5 \
                     WHERE revoked_at IS NULL AND auth_context_id IN ",
                    "UPDATE auth_contexts SET revoked_at = $5 WHERE id IN ",
                ] {
                    ended = sqlx::query(&format!("{sql}{ENDED}"))
                        .bind(which.context_id)
                        .bind(which.upstream_id)
                        .bind(which.sub)
                        .bind(which.sid)
                        .bind(now)
                        .bind(which.subject)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                }
                // No event without its change: the logout tokens only if a login ended.
                if ended > 0 {
                    super::shared::enqueue(conn, &(logouts.0)(&apps)).await?;
                }
                // The last statement's count: the contexts.
                Ok(ended)
            }
        }
    };
}

pub(crate) use ending_sql;
