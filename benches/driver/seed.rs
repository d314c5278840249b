//! Putting state into the store before a run: fresh authorization codes through Herald's public
//! store API, and a million rows of past logins in bulk SQL.

use std::path::Path;
use std::time::Instant;

use herald::claims::AuthContext;
use herald::store::{CodeRecord, StoredContext};
use herald::tokens::hashing::{digest_hex, random_token};
use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use crate::ClientArgs;

/// The scopes every minted code carries: those of a login through the development upstream.
const SCOPE: &str = "openid profile email groups";

/// What a login through the development upstream leaves in the context (see `dev_upstream`).
fn context() -> AuthContext {
    let mut attributes = Map::new();
    for (k, v) in [
        ("name", json!("bench")),
        ("preferred_username", json!("bench")),
        ("email", json!("bench@example.com")),
        ("email_verified", json!(false)),
        ("groups", json!(["staff", "herald-admins"])),
    ] {
        attributes.insert(k.into(), v);
    }
    AuthContext {
        upstream: "dev".into(),
        subject: "dev|bench".into(),
        attributes,
        origins: Default::default(),
        amr: None,
        acr: None,
    }
}

pub async fn mint_codes(
    database_url: &str,
    client: &ClientArgs,
    n: usize,
    out: &Path,
) -> anyhow::Result<Value> {
    let store = herald::store::connect(database_url).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ctx = StoredContext {
        id: random_token(),
        sub: "u_bench".into(),
        upstream_id: "dev".into(),
        context: serde_json::to_string(&context())?,
        auth_time: now,
        created_at: now,
        expires_at: None,
        revoked_at: None,
        upstream_sid: None,
        upstream_refresh: None,
        upstream_subject: None,
    };
    store.insert_context(&ctx).await?;
    let started = Instant::now();
    let codes: Vec<String> = (0..n).map(|_| random_token()).collect();
    // A few writers at once; each code is its own row, as `/authorize` would store it.
    let mut writers = JoinSet::new();
    for chunk in codes.chunks(n.div_ceil(8).max(1)) {
        let (store, chunk, ctx_id) = (store.clone(), chunk.to_vec(), ctx.id.clone());
        let (client_id, redirect_uri) = (client.client_id.clone(), client.redirect_uri.clone());
        writers.spawn(async move {
            for code in chunk {
                store
                    .insert_code(&CodeRecord {
                        code_hash: digest_hex(&code),
                        client_id: client_id.clone(),
                        redirect_uri: redirect_uri.clone(),
                        sub: "u_bench".into(),
                        scope: SCOPE.into(),
                        nonce: Some(random_token()),
                        code_challenge: None,
                        auth_context_id: ctx_id.clone(),
                        auth_time: now,
                        auth_time_required: false,
                        created_at: now,
                        // Longer than a real code (60 s), so minting may precede the run.
                        expires_at: now + 3600,
                        consumed_at: None,
                        resources: None,
                        dpop_jkt: None,
                    })
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = writers.join_next().await {
        r??;
    }
    std::fs::write(out, codes.join("\n") + "\n")?;
    Ok(json!({ "minted": n, "seconds": started.elapsed().as_secs_f64() }))
}

/// Bulk inserts standing for `rows` past logins: users, grants, consumed codes and the access
/// tokens issued from them, none expiring during the run.
pub async fn seed(database_url: &str, rows: u64) -> anyhow::Result<Value> {
    // Migrations first, through the normal path.
    drop(herald::store::connect(database_url).await?);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let until = now + 86_400;
    let started = Instant::now();
    let rows = rows as i64;
    if database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database_url).await?;
        let series = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)";
        for sql in [
            format!(
                "INSERT INTO users (sub, upstream_id, upstream_subject, created_at, last_login_at) \
                 {series} SELECT 'seed-' || i, 'dev', 'dev|seed-' || i, $2, $2 FROM n"
            ),
            format!(
                "INSERT INTO grants (sub, client_id, scopes, scope_versions, granted_at, updated_at) \
                 {series} SELECT 'seed-' || i, 'bench', '{SCOPE}', '{{}}', $2, $2 FROM n"
            ),
            format!(
                "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, sub, scope, \
                 auth_context_id, auth_time, auth_time_required, created_at, expires_at, consumed_at) \
                 {series} SELECT printf('%064x', i), 'bench', 'http://127.0.0.1:9/cb', 'seed-' || i, \
                 '{SCOPE}', 'seed-ctx', $2, 0, $2, $3, $2 FROM n"
            ),
            format!(
                "INSERT INTO access_tokens (jti, client_id, sub, scope, auth_context_id, code_hash, \
                 issued_at, expires_at) \
                 {series} SELECT 'seed-' || i, 'bench', 'seed-' || i, '{SCOPE}', 'seed-ctx', \
                 printf('%064x', i), $2, $3 FROM n"
            ),
        ] {
            sqlx::query(&sql)
                .bind(rows)
                .bind(now)
                .bind(until)
                .execute(&pool)
                .await?;
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(database_url).await?;
        let series = "FROM generate_series(1, $1::bigint) AS i";
        for sql in [
            format!(
                "INSERT INTO users (sub, upstream_id, upstream_subject, created_at, last_login_at) \
                 SELECT 'seed-' || i, 'dev', 'dev|seed-' || i, $2, $2 {series}"
            ),
            format!(
                "INSERT INTO grants (sub, client_id, scopes, scope_versions, granted_at, updated_at) \
                 SELECT 'seed-' || i, 'bench', '{SCOPE}', '{{}}', $2, $2 {series}"
            ),
            format!(
                "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, sub, scope, \
                 auth_context_id, auth_time, auth_time_required, created_at, expires_at, consumed_at) \
                 SELECT lpad(to_hex(i), 64, '0'), 'bench', 'http://127.0.0.1:9/cb', 'seed-' || i, \
                 '{SCOPE}', 'seed-ctx', $2, 0, $2, $3, $2 {series}"
            ),
            format!(
                "INSERT INTO access_tokens (jti, client_id, sub, scope, auth_context_id, code_hash, \
                 issued_at, expires_at) \
                 SELECT 'seed-' || i, 'bench', 'seed-' || i, '{SCOPE}', 'seed-ctx', \
                 lpad(to_hex(i), 64, '0'), $2, $3 {series}"
            ),
            "ANALYZE".to_string(),
        ] {
            sqlx::query(&sql)
                .bind(rows)
                .bind(now)
                .bind(until)
                .execute(&pool)
                .await?;
        }
        pool.close().await;
    }
    Ok(json!({ "seeded_rows_per_table": rows, "seconds": started.elapsed().as_secs_f64() }))
}
