//! The store conformance suite: every test is written once against `dyn Store` and run on both
//! backends, SQLite and PostgreSQL, by [`conformance!`].
//!
//! Each SQLite test gets a fresh database file in the temp directory; each PostgreSQL test gets
//! its own schema in the `test` database (dropped afterwards), so runs never see each other's
//! rows. When PostgreSQL cannot be reached the PostgreSQL tests are skipped loudly, except under
//! `CI=true`, where they fail: a green CI run must mean both backends passed.

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Once};
use std::time::Duration;

use herald::store::{
    AccessTokenRecord, AccountLink, AuditEntry, AuditFilter, AuthRequest, CodeRecord,
    ConfigVersion, ConsentMethod, ConsentOutcome, ConsentRecord, CreateOutcome, DeliveryState,
    DynStore, EndLogins, FinishedLogin, Grant, KeyAlg, KeyRecord, LinkOutcome, LoginEvent,
    LoginEventQuery, LoginResult, Logouts, NewUser, OutboxRow, Redemption, RefreshTokenRecord,
    Removal, Rotation, StoreError, StoredContext, UpstreamLogin, User, UserProfile, UserQuery,
    UserSort, Withdrawal, connect,
};
use herald::tokens::random_token;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;

/// 2100-01-01T00:00:00Z: past 2038, so a 32-bit column anywhere would show.
const T: i64 = 4_102_444_800;

const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Generates `sqlite::<name>` and `postgres::<name>` tests from each `async fn <name>(DynStore)`.
///
/// A test function missing from the list is never called, which `dead_code` (and so clippy with
/// `-D warnings`) reports.
macro_rules! conformance {
    ($($name:ident),+ $(,)?; raw: $($raw:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::on_sqlite(|store, _| super::$name(store)).await;
                }
            )+
            $(
                #[tokio::test]
                async fn $raw() {
                    super::on_sqlite(super::$raw).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::on_postgres(|store, _| super::$name(store)).await;
                }
            )+
            $(
                #[tokio::test]
                async fn $raw() {
                    super::on_postgres(super::$raw).await;
                }
            )+
        }
    };
}

conformance!(
    a_pushed_request_is_taken_once_and_not_after_it_expires,
    a_client_assertion_jti_is_accepted_once_and_purged_after_expiry,
    a_dpop_proof_jti_is_accepted_once_per_key_and_purged_after_expiry,
    the_apps_of_a_login_are_found_and_owed_logout_rows_only_when_it_ends,
    a_login_past_its_end_is_purged_once_nothing_issued_from_it_is_left,
    a_refresh_tokens_dpop_binding_is_kept_through_rotation,
    retiring_a_signing_key_schedules_its_end_and_leaves_others_alone,
    a_plaintext_key_is_resealed_once,
    migrations_run_again_on_a_migrated_database,
    signing_keys_are_listed_by_creation_time_then_kid,
    inserting_a_row_whose_key_exists_is_a_conflict,
    link_user_creates_the_user_once_and_returns_the_same_sub_on_later_logins,
    a_request_is_read_with_the_grant_of_its_user_for_its_app,
    link_user_gives_another_subject_or_upstream_its_own_user,
    set_last_context_is_kept_across_later_logins,
    user_by_identity_finds_the_linked_user_and_creates_nothing,
    identities_are_linked_unlinked_and_held_by_one_user_only,
    logins_end_by_upstream_session_user_or_context_with_what_was_issued_from_them,
    a_refreshed_context_replaces_its_claims_unless_it_has_ended,
    a_first_login_linked_to_a_created_user_joins_them,
    a_first_upstream_login_creates_the_user_its_context_and_records_the_login,
    a_second_upstream_login_keeps_the_sub_and_replaces_the_last_context,
    users_are_found_by_email_and_name_and_a_login_records_its_event,
    blocking_a_user_revokes_their_tokens_and_ends_their_sessions,
    login_events_filter_page_expire_and_go_with_an_erased_user,
    an_upstream_login_that_fails_midway_stores_nothing,
    concurrent_first_logins_of_one_identity_end_with_one_user,
    auth_requests_round_trip_and_record_the_login,
    an_auth_request_is_decided_only_once,
    an_upstream_login_can_be_taken_only_once,
    a_request_and_its_upstream_login_are_stored_in_one_transaction,
    a_finished_login_spends_its_state_and_a_second_answer_stores_nothing,
    contexts_round_trip_with_and_without_expiry,
    record_consent_upserts_the_grant_and_keeps_its_first_granted_at,
    a_decision_and_its_events_are_stored_together_or_not_at_all,
    a_login_writes_its_events_under_the_users_sub_and_user_created_only_once,
    one_holder_has_the_outbox_lease_until_it_expires,
    an_erased_user_leaves_only_pseudonymised_records_and_its_event,
    deliveries_go_from_pending_to_delivered_or_failed_and_failed_ones_can_be_retried,
    withdrawing_consent_removes_the_grant_but_keeps_every_consent_record,
    grants_lists_one_users_grants_by_client_id,
    a_code_is_redeemed_once_and_its_token_exists_only_after_redemption,
    redeeming_an_unknown_code_stores_no_token,
    a_burnt_code_cannot_be_redeemed,
    revoking_the_tokens_of_a_code_counts_each_token_once,
    revoking_a_grants_tokens_touches_only_that_user_and_app_and_burns_its_codes,
    sessions_are_created_once_saved_loaded_until_expiry_and_deleted,
    purge_expired_removes_expired_rows_and_keeps_live_ones,
    timestamps_past_2038_round_trip_exactly,
    twenty_concurrent_redemptions_of_one_code_redeem_it_exactly_once,
    a_code_redeemed_with_offline_access_stores_the_first_refresh_token_with_it,
    a_refresh_token_rotates_once_into_its_successor_and_access_token,
    a_rotated_refresh_token_rotates_once_more_within_a_grace_period_only,
    revoking_a_refresh_family_revokes_its_tokens_and_access_tokens_only,
    replaying_a_code_revokes_the_refresh_tokens_descending_from_it,
    revoke_grant_tokens_revokes_every_token_of_one_user_and_client_only,
    revoking_an_access_token_marks_its_row_or_records_an_unknown_one,
    purge_expired_keeps_rotated_refresh_tokens_while_their_family_lives,
    twenty_concurrent_rotations_of_one_refresh_token_rotate_it_exactly_once,
    the_first_configuration_is_seeded_once_and_later_versions_follow_it,
    a_configuration_version_is_written_once_with_its_audit_entry,
    the_audit_log_is_filtered_newest_first_and_pages_backwards,
    users_are_listed_by_page_search_upstream_and_sort_with_a_total,
    removing_a_client_burns_its_codes_revokes_its_tokens_and_ends_its_grants_with_records,
    removing_an_upstream_revokes_its_logins_and_everything_issued_from_them_only,
    removals_in_a_configuration_change_that_lost_the_race_change_nothing,
    purpose_states_follow_the_latest_decision_and_an_older_import_does_not_win,
    an_account_link_is_spent_once_and_not_after_it_expires,
    user_holdings_list_a_users_logins_tokens_and_sessions_only;
    // These also write rows through their own SQL (`Raw`), as no store method would.
    raw:
    an_unknown_consent_method_reads_back_as_corrupt,
    an_unknown_key_algorithm_reads_back_as_corrupt,
);

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

/// The database a test's store uses, for SQL the store itself would never run (a row with a
/// value no release writes).
#[derive(Debug, Clone)]
enum Raw {
    Sqlite(String),
    Postgres(String),
}

impl Raw {
    async fn execute(&self, sql: &str) {
        match self {
            Raw::Sqlite(url) => {
                let mut conn = SqliteConnection::connect(url).await.expect("raw SQLite");
                sqlx::query(sql).execute(&mut conn).await.expect(sql);
            }
            Raw::Postgres(url) => {
                let mut conn = PgConnection::connect(url).await.expect("raw PostgreSQL");
                sqlx::query(sql).execute(&mut conn).await.expect(sql);
            }
        }
    }
}

/// Runs `test` on a fresh SQLite file, removed afterwards even when the test fails.
async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(DynStore, Raw) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let path = std::env::temp_dir().join(format!("herald-store-test-{}.db", random_token()));
    let url = format!("sqlite://{}", path.display());
    let store = connect(&url)
        .await
        .expect("a fresh SQLite database opens and migrates");
    let outcome = tokio::spawn(test(store, Raw::Sqlite(url.clone()))).await;
    let _ = herald::store::SqliteStore::remove_files(&url);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Runs `test` in a schema of its own in the `test` database, dropped afterwards.
async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(DynStore, Raw) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // One plain connection, not a pool: a refused connection fails at once instead of being
    // retried until a pool timeout; the timeout covers a host that does not answer at all.
    let attempt = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(PG_ADMIN_URL))
        .await
        .map_err(|_| "no answer within 5 s".to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let mut admin = match attempt {
        Ok(conn) => conn,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL at {PG_ADMIN_URL} is unreachable and CI=true: {e}")
        }
        Err(e) => {
            // Written past libtest's output capture (which takes `eprintln!`), once per run.
            static WARNED: Once = Once::new();
            WARNED.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\n!!! PostgreSQL tests SKIPPED: cannot connect to {PG_ADMIN_URL} ({e}).\n\
                     !!! Every postgres::* test reported `ok` in this run did NOT run. \
                     Set CI=true to make this a failure.\n"
                );
            });
            return;
        }
    };

    // Identifiers cannot be bound as parameters: keep the name to [a-z0-9_].
    let schema = format!(
        "herald_t_{}",
        random_token()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .take(20)
            .collect::<String>()
    );
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .expect("the test user may create schemas");

    let url = format!("{PG_ADMIN_URL}?options=-c%20search_path%3D{schema}");
    let store = match connect(&url).await {
        Ok(store) => store,
        Err(e) => {
            drop_schema(admin, &schema).await;
            panic!("connecting the store to schema {schema} failed: {e}");
        }
    };
    // Guard against the search_path option being ignored: the tables must be in our schema.
    let (tables,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.tables \
         WHERE table_schema = $1 AND table_name = 'authorization_codes'",
    )
    .bind(&schema)
    .fetch_one(&mut admin)
    .await
    .expect("information_schema is readable");
    if tables != 1 {
        drop_schema(admin, &schema).await;
        panic!("the migrations did not create their tables in schema {schema}");
    }

    let outcome = tokio::spawn(test(store, Raw::Postgres(url))).await;
    drop_schema(admin, &schema).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Best effort: a schema left behind only costs disk space, never another run's correctness.
async fn drop_schema(mut admin: PgConnection, schema: &str) {
    let dropped = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    if let Err(e) = dropped {
        eprintln!("could not drop test schema {schema}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

fn key(kid: &str, created_at: i64) -> KeyRecord {
    KeyRecord {
        kid: kid.into(),
        alg: KeyAlg::ES256,
        encryption: "none".into(),
        private_key: vec![0, 1, 2, 254, 255, kid.len() as u8],
        created_at,
        activates_at: created_at + 3600,
        retires_at: None,
        expires_at: None,
    }
}

/// `KeyRecord` has no `PartialEq` (it holds key material); its debug form covers every field.
fn assert_keys_eq(actual: &[KeyRecord], expected: &[KeyRecord]) {
    assert_eq!(format!("{actual:#?}"), format!("{expected:#?}"));
}

/// A request as `/authorize` stores it: every optional parameter present, not logged in yet.
fn auth_request(id: &str, created_at: i64, expires_at: i64) -> AuthRequest {
    AuthRequest {
        id: id.into(),
        client_id: "app".into(),
        redirect_uri: "https://app.example/cb".into(),
        scope: "openid profile email".into(),
        state: Some("st-123".into()),
        nonce: Some("n-456".into()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        prompt: Some("login consent".into()),
        max_age: Some(300),
        login_hint: Some("ada@example.com".into()),
        upstream_hint: Some("auth0".into()),
        browser_binding: "binding-digest".into(),
        created_at,
        expires_at,
        sub: None,
        auth_context_id: None,
        auth_time: None,
        decided_at: None,
        ui_locales: Some("fr-CA fr".into()),
        acr_values: Some("phr mfa".into()),
        pass_through: Some(r#"{"connection":"google-oauth2"}"#.into()),
        resources: Some("https://api.example/orders https://api.example/billing".into()),
        dpop_jkt: Some("jkt-1".into()),
    }
}

fn upstream_login(state_hash: &str, created_at: i64, expires_at: i64) -> UpstreamLogin {
    UpstreamLogin {
        state_hash: state_hash.into(),
        auth_request_id: "req-1".into(),
        upstream_id: "auth0".into(),
        nonce: "upstream-nonce".into(),
        pkce_verifier: "verifier-verifier-verifier-verifier-verifier".into(),
        created_at,
        expires_at,
        forced: false,
    }
}

fn code(code_hash: &str, created_at: i64, expires_at: i64) -> CodeRecord {
    CodeRecord {
        code_hash: code_hash.into(),
        client_id: "app".into(),
        redirect_uri: "https://app.example/cb".into(),
        sub: "sub-1".into(),
        scope: "openid email".into(),
        nonce: Some("n-456".into()),
        code_challenge: Some("challenge".into()),
        auth_context_id: "ctx-1".into(),
        auth_time: created_at - 5,
        auth_time_required: true,
        created_at,
        expires_at,
        consumed_at: None,
        resources: Some("https://api.example/orders".into()),
        dpop_jkt: None,
    }
}

/// The code stored under `code_hash`, without the login read with it.
async fn issued_code(store: &DynStore, code_hash: &str) -> Option<CodeRecord> {
    store.code(code_hash).await.unwrap().map(|(code, _)| code)
}

fn token(jti: &str, code_hash: &str, issued_at: i64, expires_at: i64) -> AccessTokenRecord {
    AccessTokenRecord {
        jti: jti.into(),
        client_id: "app".into(),
        sub: "sub-1".into(),
        scope: "openid email".into(),
        auth_context_id: "ctx-1".into(),
        code_hash: Some(code_hash.into()),
        issued_at,
        expires_at,
        revoked_at: None,
        family_id: None,
    }
}

/// The first refresh token of family `family`, issued from `code-1` at `issued_at`.
fn refresh(hash: &str, family: &str, issued_at: i64) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.into(),
        family_id: family.into(),
        client_id: "app".into(),
        sub: "sub-1".into(),
        scope: "openid offline_access".into(),
        auth_context_id: "ctx-1".into(),
        auth_time: issued_at - 5,
        code_hash: Some("code-1".into()),
        issued_at,
        expires_at: issued_at + 3600,
        family_expires_at: issued_at + 86_400,
        rotated_at: None,
        revoked_at: None,
        grace_used_at: None,
        dpop_jkt: None,
        resources: Some("https://api.example/orders".into()),
    }
}

/// An access token of refresh family `family`.
fn family_token(jti: &str, family: &str, issued_at: i64) -> AccessTokenRecord {
    AccessTokenRecord {
        family_id: Some(family.into()),
        ..token(jti, "code-1", issued_at, issued_at + 3600)
    }
}

fn grant(scopes: &str, granted_at: i64, updated_at: i64) -> Grant {
    Grant {
        sub: "sub-1".into(),
        client_id: "app".into(),
        scopes: scopes.into(),
        scope_versions: r#"{"email":"1","openid":"1"}"#.into(),
        granted_at,
        updated_at,
    }
}

fn consent(id: &str, sub: &str, allowed: &str, denied: &str, decided_at: i64) -> ConsentRecord {
    ConsentRecord {
        id: id.into(),
        sub: sub.into(),
        client_id: "app".into(),
        allowed: allowed.into(),
        denied: denied.into(),
        text_versions: r#"{"email":"1","profile":"2"}"#.into(),
        method: ConsentMethod::Page,
        decided_at,
        decision: if allowed.is_empty() {
            ConsentOutcome::Denied
        } else {
            ConsentOutcome::Granted
        },
        locale: "fr".into(),
        wording: r#"{"scopes":{"email":"Votre adresse e-mail"},"purposes":{}}"#.into(),
        purposes: "{}".into(),
        source: None,
        source_reference: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

async fn migrations_run_again_on_a_migrated_database(store: DynStore) {
    store.migrate().await.expect("migrating twice is a no-op");
    store.ping().await.expect("the database answers");
}

async fn signing_keys_are_listed_by_creation_time_then_kid(store: DynStore) {
    assert!(store.signing_keys().await.unwrap().is_empty());

    let newer_b = key("b", T + 10);
    let oldest = KeyRecord {
        retires_at: Some(T + 86_400),
        expires_at: Some(T + 2 * 86_400),
        encryption: "aes-256-gcm".into(),
        ..key("c", T)
    };
    let newer_a = key("a", T + 10);
    for k in [&newer_b, &oldest, &newer_a] {
        store.insert_signing_key(k).await.unwrap();
    }

    assert_keys_eq(
        &store.signing_keys().await.unwrap(),
        &[oldest, newer_a, newer_b],
    );
}

async fn retiring_a_signing_key_schedules_its_end_and_leaves_others_alone(store: DynStore) {
    store.insert_signing_key(&key("old", T)).await.unwrap();
    store.insert_signing_key(&key("new", T + 5)).await.unwrap();
    store
        .retire_signing_key("old", T + 300, T + 4_000)
        .await
        .unwrap();
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys[0].kid, "old");
    assert_eq!(
        (keys[0].retires_at, keys[0].expires_at),
        (Some(T + 300), Some(T + 4_000))
    );
    assert_eq!((keys[1].retires_at, keys[1].expires_at), (None, None));
}

async fn a_plaintext_key_is_resealed_once(store: DynStore) {
    store.insert_signing_key(&key("plain", T)).await.unwrap();
    store
        .insert_signing_key(&key("other", T + 1))
        .await
        .unwrap();
    assert!(
        store
            .reseal_signing_key("plain", "none", "aes256gcm", &[9, 9, 9])
            .await
            .unwrap()
    );
    // A second replica doing the same finds it done and changes nothing.
    assert!(
        !store
            .reseal_signing_key("plain", "none", "aes256gcm", &[7, 7])
            .await
            .unwrap()
    );
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        (keys[0].encryption.as_str(), keys[0].private_key.as_slice()),
        ("aes256gcm", &[9u8, 9, 9][..])
    );
    assert_keys_eq(&keys[1..], &[key("other", T + 1)]);
}

async fn a_pushed_request_is_taken_once_and_not_after_it_expires(store: DynStore) {
    let pushed = |hash: &str| herald::store::PushedRequest {
        uri_hash: hash.into(),
        client_id: "app".into(),
        params: r#"{"scope":"openid"}"#.into(),
        expires_at: T + 60,
    };
    store.push_request(&pushed("a")).await.unwrap();
    store.push_request(&pushed("b")).await.unwrap();
    assert_eq!(
        store.take_pushed_request("a", T + 60).await.unwrap(),
        Some(pushed("a"))
    );
    // Once only.
    assert_eq!(store.take_pushed_request("a", T + 1).await.unwrap(), None);
    // Expired: spent, not returned; and purged with the rest.
    assert_eq!(store.take_pushed_request("b", T + 61).await.unwrap(), None);
    store.push_request(&pushed("c")).await.unwrap();
    store.purge_expired(T + 61).await.unwrap();
    assert_eq!(store.take_pushed_request("c", T).await.unwrap(), None);
}

async fn a_client_assertion_jti_is_accepted_once_and_purged_after_expiry(store: DynStore) {
    assert!(
        store
            .use_client_assertion("c", "j", T + 60, T)
            .await
            .unwrap()
    );
    assert!(
        !store
            .use_client_assertion("c", "j", T + 60, T + 1)
            .await
            .unwrap()
    );
    assert!(
        store
            .use_client_assertion("other", "j", T + 60, T)
            .await
            .unwrap()
    );
    store.purge_expired(T + 61).await.unwrap();
    assert!(
        store
            .use_client_assertion("c", "j", T + 200, T + 62)
            .await
            .unwrap()
    );
}

async fn a_dpop_proof_jti_is_accepted_once_per_key_and_purged_after_expiry(store: DynStore) {
    assert!(store.use_dpop_proof("k1", "j", T + 60).await.unwrap());
    assert!(!store.use_dpop_proof("k1", "j", T + 60).await.unwrap());
    // The same jti from another key is another proof.
    assert!(store.use_dpop_proof("k2", "j", T + 60).await.unwrap());
    store.purge_expired(T + 59).await.unwrap();
    assert!(!store.use_dpop_proof("k1", "j", T + 60).await.unwrap());
    store.purge_expired(T + 61).await.unwrap();
    assert!(store.use_dpop_proof("k1", "j", T + 200).await.unwrap());
}

async fn a_refresh_tokens_dpop_binding_is_kept_through_rotation(store: DynStore) {
    let bound = |hash: &str, at: i64| RefreshTokenRecord {
        dpop_jkt: Some("jkt-1".into()),
        ..refresh(hash, "fam-1", at)
    };
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();
    store
        .redeem_code(
            "code-1",
            T + 1,
            &family_token("jti-1", "fam-1", T + 1),
            Some(&bound("rt-1", T + 1)),
        )
        .await
        .unwrap();
    let read = store.refresh_token("rt-1").await.unwrap().unwrap();
    assert_eq!(read.dpop_jkt.as_deref(), Some("jkt-1"));
    store
        .rotate_refresh_token(
            "rt-1",
            T + 10,
            None,
            &bound("rt-2", T + 10),
            &family_token("jti-2", "fam-1", T + 10),
        )
        .await
        .unwrap();
    let read = store.refresh_token("rt-2").await.unwrap().unwrap();
    assert_eq!(read.dpop_jkt.as_deref(), Some("jkt-1"));
}

async fn inserting_a_row_whose_key_exists_is_a_conflict(store: DynStore) {
    store.insert_signing_key(&key("k1", T)).await.unwrap();
    let err = store
        .insert_signing_key(&key("k1", T + 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "got {err:?}");

    store.insert_code(&code("c1", T, T + 60)).await.unwrap();
    let err = store.insert_code(&code("c1", T, T + 60)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "got {err:?}");

    // The first rows are untouched.
    assert_eq!(store.signing_keys().await.unwrap()[0].created_at, T);
    assert_eq!(issued_code(&store, "c1").await, Some(code("c1", T, T + 60)));
}

async fn link_user_creates_the_user_once_and_returns_the_same_sub_on_later_logins(store: DynStore) {
    let first = store
        .link_user("auth0", "auth0|ada", "sub-1", T)
        .await
        .unwrap();
    assert_eq!(
        first,
        User {
            sub: "sub-1".into(),
            upstream_id: "auth0".into(),
            upstream_subject: "auth0|ada".into(),
            created_at: T,
            last_login_at: T,
            last_context: None,
            email: None,
            email_verified: false,
            name: None,
            picture: None,
            last_ip: None,
            logins_count: 1,
            blocked: false,
        }
    );

    // A later login proposes a fresh sub; the existing one wins and the login time moves.
    let again = store
        .link_user("auth0", "auth0|ada", "sub-2", T + 60)
        .await
        .unwrap();
    assert_eq!(again.sub, "sub-1");
    assert_eq!(again.created_at, T);
    assert_eq!(again.last_login_at, T + 60);

    assert_eq!(store.user("sub-1").await.unwrap(), Some(again));
    assert_eq!(store.user("sub-2").await.unwrap(), None);
}

async fn link_user_gives_another_subject_or_upstream_its_own_user(store: DynStore) {
    let ada = store
        .link_user("auth0", "auth0|ada", "sub-1", T)
        .await
        .unwrap();
    let bob = store
        .link_user("auth0", "auth0|bob", "sub-2", T + 1)
        .await
        .unwrap();
    // The same subject string at another upstream is another person.
    let other = store
        .link_user("okta", "auth0|ada", "sub-3", T + 2)
        .await
        .unwrap();

    assert_eq!((ada.sub.as_str(), ada.last_login_at), ("sub-1", T));
    assert_eq!(
        (bob.sub.as_str(), bob.upstream_subject.as_str()),
        ("sub-2", "auth0|bob")
    );
    assert_eq!(
        (other.sub.as_str(), other.upstream_id.as_str()),
        ("sub-3", "okta")
    );

    // Bob's login did not touch Ada's row.
    assert_eq!(store.user("sub-1").await.unwrap(), Some(ada));
}

async fn set_last_context_is_kept_across_later_logins(store: DynStore) {
    store
        .link_user("auth0", "auth0|ada", "sub-1", T)
        .await
        .unwrap();
    let context = r#"{"acr":"mfa","amr":["pwd","otp"]}"#;
    store.set_last_context("sub-1", context).await.unwrap();

    let user = store.user("sub-1").await.unwrap().unwrap();
    assert_eq!(user.last_context.as_deref(), Some(context));

    let relogin = store
        .link_user("auth0", "auth0|ada", "sub-9", T + 5)
        .await
        .unwrap();
    assert_eq!(relogin.last_context.as_deref(), Some(context));

    // Unknown users are not created by it.
    store.set_last_context("nobody", context).await.unwrap();
    assert_eq!(store.user("nobody").await.unwrap(), None);
}

/// A user created before their first login, with an email and perhaps an identity at `auth0`.
fn new_user(sub: &str, email: &str, identity: Option<&str>) -> NewUser {
    NewUser {
        sub: sub.into(),
        profile: UserProfile {
            email: Some(email.into()),
            email_verified: true,
            ..UserProfile::default()
        },
        identity: identity.map(|s| ("auth0".to_string(), s.to_string())),
        now: T,
    }
}

/// The subjects of a user's identities, oldest first.
async fn subjects(store: &DynStore, sub: &str) -> Vec<String> {
    store
        .identities(sub)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.subject)
        .collect()
}

async fn identities_are_linked_unlinked_and_held_by_one_user_only(store: DynStore) {
    // Created with an email only: no identity, and nothing finds them by one.
    let CreateOutcome::Created(ann) = store
        .create_user(&new_user("sub-ann", "ann@example.com", None))
        .await
        .unwrap()
    else {
        panic!("not created")
    };
    assert_eq!(ann.first_identity(), None);
    assert_eq!(ann.logins_count, 0);
    assert!(ann.email_verified);
    assert!(subjects(&store, "sub-ann").await.is_empty());
    // Created with an identity: a login with it finds them.
    store
        .create_user(&new_user("sub-bob", "bob@example.com", Some("auth0|bob")))
        .await
        .unwrap();
    let bob = store.user_by_identity("auth0", "auth0|bob").await.unwrap();
    assert_eq!(bob.map(|u| u.sub).as_deref(), Some("sub-bob"));
    assert_eq!(
        store
            .create_user(&new_user("sub-x", "x@example.com", Some("auth0|bob")))
            .await
            .unwrap(),
        CreateOutcome::IdentityTaken("sub-bob".into())
    );
    assert_eq!(store.user("sub-x").await.unwrap(), None);

    let link = |sub: &'static str, subject: &'static str| {
        let store = store.clone();
        async move {
            store
                .link_identity(sub, "auth0", subject, T + 5)
                .await
                .unwrap()
        }
    };
    assert_eq!(link("sub-ann", "google|ann").await, LinkOutcome::Linked);
    assert_eq!(
        link("sub-ann", "google|ann").await,
        LinkOutcome::AlreadyLinked
    );
    assert_eq!(
        link("sub-ann", "auth0|bob").await,
        LinkOutcome::TakenBy("sub-bob".into())
    );
    assert_eq!(link("nobody", "auth0|z").await, LinkOutcome::NoUser);
    assert_eq!(subjects(&store, "sub-ann").await, vec!["google|ann"]);
    let found = store.user_by_identity("auth0", "google|ann").await.unwrap();
    assert_eq!(found.map(|u| u.sub).as_deref(), Some("sub-ann"));
    // The list filters and searches by any identity.
    let (by_upstream, total) = store
        .list_users(&UserQuery {
            upstream_id: Some("auth0".into()),
            search: Some("GOOGLE|".into()),
            limit: 10,
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert_eq!((by_upstream.len(), total), (1, 1));
    assert_eq!(by_upstream[0].sub, "sub-ann");

    // Unlinking: only the holder's, and a first identity unlinked no longer names the user.
    assert!(
        !store
            .unlink_identity("sub-ann", "auth0", "auth0|bob")
            .await
            .unwrap()
    );
    assert!(
        store
            .unlink_identity("sub-bob", "auth0", "auth0|bob")
            .await
            .unwrap()
    );
    let bob = store.user("sub-bob").await.unwrap().unwrap();
    assert_eq!(bob.first_identity(), None);
    assert_eq!(
        store.user_by_identity("auth0", "auth0|bob").await.unwrap(),
        None
    );
    // Its next login is someone new.
    let again = store
        .finish_upstream_login(&finished("auth0|bob", "sub-new", "ctx-1", "req-1", T + 9))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.sub, "sub-new");
    assert_eq!(again.first_identity(), Some(("auth0", "auth0|bob")));

    // Erasure takes the identities with the user.
    assert!(
        store
            .erase_user("sub-ann", T + 10, None, &[], &Logouts::none())
            .await
            .unwrap()
    );
    assert_eq!(
        store.user_by_identity("auth0", "google|ann").await.unwrap(),
        None
    );
    assert!(subjects(&store, "sub-ann").await.is_empty());
}

async fn a_first_login_linked_to_a_created_user_joins_them(store: DynStore) {
    store
        .create_user(&new_user("sub-inv", "ada@example.com", None))
        .await
        .unwrap();
    for (n, ctx) in ["ctx-1", "ctx-2"].into_iter().enumerate() {
        let req = format!("req-{n}");
        store
            .insert_auth_request(&auth_request(&req, T, T + 600))
            .await
            .unwrap();
        // The second login does not ask to link: the identity finds its user by itself.
        let link_to = (n == 0).then(|| "sub-inv".to_string());
        let user = store
            .finish_upstream_login(&FinishedLogin {
                link_to,
                ..finished("auth0|ada", &format!("sub-{n}"), ctx, &req, T + n as i64)
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.sub, "sub-inv");
        assert_eq!(user.logins_count, n as i64 + 1);
        // The login's profile replaces the one the admin gave.
        assert_eq!(user.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(store.context(ctx).await.unwrap().unwrap().sub, "sub-inv");
    }
    assert_eq!(subjects(&store, "sub-inv").await, vec!["auth0|ada"]);
    assert_eq!(store.user("sub-0").await.unwrap(), None);
    assert_eq!(store.user("sub-1").await.unwrap(), None);
}

/// A finished login of `subject` at upstream `auth0` answering `req_id`, proposing `new_sub`
/// and storing context `ctx_id` (whose `sub` is the proposal, as a caller would fill it in).
fn finished(subject: &str, new_sub: &str, ctx_id: &str, req_id: &str, now: i64) -> FinishedLogin {
    FinishedLogin {
        upstream_id: "auth0".into(),
        subject: subject.into(),
        new_sub: new_sub.into(),
        context: StoredContext {
            id: ctx_id.into(),
            sub: new_sub.into(),
            upstream_id: "auth0".into(),
            context: format!(r#"{{"claims":{{"login":"{ctx_id}"}}}}"#),
            auth_time: now - 2,
            created_at: now,
            expires_at: Some(now + 3600),
            revoked_at: None,
            upstream_sid: None,
            upstream_refresh: None,
            upstream_subject: None,
        },
        auth_request_id: req_id.into(),
        upstream_state_hash: None,
        now,
        outbox: Vec::new(),
        profile: UserProfile {
            email: Some("Ada@Example.com".into()),
            email_verified: true,
            name: Some("Ada Lovelace".into()),
            picture: None,
            ip: Some("192.0.2.7".into()),
        },
        client_id: "app".into(),
        link_to: None,
        known: false,
    }
}

async fn user_by_identity_finds_the_linked_user_and_creates_nothing(store: DynStore) {
    assert_eq!(
        store.user_by_identity("auth0", "auth0|ada").await.unwrap(),
        None
    );
    // Looking did not create anyone.
    let (users, total) = store.list_users(&all_users()).await.unwrap();
    assert_eq!((users, total), (vec![], 0));

    let ada = store
        .link_user("auth0", "auth0|ada", "sub-1", T)
        .await
        .unwrap();
    assert_eq!(
        store.user_by_identity("auth0", "auth0|ada").await.unwrap(),
        Some(ada)
    );
    // Another upstream's identical subject is another identity.
    assert_eq!(
        store.user_by_identity("okta", "auth0|ada").await.unwrap(),
        None
    );
    assert_eq!(
        store.user_by_identity("auth0", "auth0|bob").await.unwrap(),
        None
    );
}

/// Every user, newest login first.
fn all_users() -> UserQuery {
    UserQuery {
        limit: 100,
        ..UserQuery::default()
    }
}

async fn a_first_upstream_login_creates_the_user_its_context_and_records_the_login(
    store: DynStore,
) {
    store
        .insert_auth_request(&auth_request("req-1", T, T + 600))
        .await
        .unwrap();
    store
        .insert_auth_request(&auth_request("req-other", T, T + 600))
        .await
        .unwrap();
    let login = finished("auth0|ada", "sub-1", "ctx-1", "req-1", T + 10);

    let user = store.finish_upstream_login(&login).await.unwrap().unwrap();

    let expected = User {
        sub: "sub-1".into(),
        upstream_id: "auth0".into(),
        upstream_subject: "auth0|ada".into(),
        created_at: T + 10,
        last_login_at: T + 10,
        last_context: Some(login.context.context.clone()),
        email: Some("Ada@Example.com".into()),
        email_verified: true,
        name: Some("Ada Lovelace".into()),
        picture: None,
        last_ip: Some("192.0.2.7".into()),
        logins_count: 1,
        blocked: false,
    };
    assert_eq!(user, expected);
    assert_eq!(
        store.user_by_identity("auth0", "auth0|ada").await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(store.user("sub-1").await.unwrap(), Some(expected));
    assert_eq!(
        store.context("ctx-1").await.unwrap(),
        Some(login.context.clone())
    );
    assert_eq!(
        store.auth_request("req-1").await.unwrap(),
        Some(AuthRequest {
            sub: Some("sub-1".into()),
            auth_context_id: Some("ctx-1".into()),
            auth_time: Some(T + 8),
            ..auth_request("req-1", T, T + 600)
        })
    );
    // Only the request the login answers records it.
    assert_eq!(
        store.auth_request("req-other").await.unwrap(),
        Some(auth_request("req-other", T, T + 600))
    );
}

async fn a_second_upstream_login_keeps_the_sub_and_replaces_the_last_context(store: DynStore) {
    for id in ["req-1", "req-2", "req-3"] {
        store
            .insert_auth_request(&auth_request(id, T, T + 600))
            .await
            .unwrap();
    }
    let first = finished("auth0|ada", "sub-1", "ctx-1", "req-1", T);
    store.finish_upstream_login(&first).await.unwrap().unwrap();

    // The second login proposes a fresh sub, and its context carries that proposal.
    let second = FinishedLogin {
        known: true,
        ..finished("auth0|ada", "sub-2", "ctx-2", "req-2", T + 60)
    };
    let user = store.finish_upstream_login(&second).await.unwrap().unwrap();

    assert_eq!(
        user,
        User {
            sub: "sub-1".into(),
            upstream_id: "auth0".into(),
            upstream_subject: "auth0|ada".into(),
            created_at: T,
            last_login_at: T + 60,
            last_context: Some(second.context.context.clone()),
            email: Some("Ada@Example.com".into()),
            email_verified: true,
            name: Some("Ada Lovelace".into()),
            picture: None,
            last_ip: Some("192.0.2.7".into()),
            logins_count: 2,
            blocked: false,
        }
    );
    assert_eq!(store.user("sub-1").await.unwrap(), Some(user));
    assert_eq!(store.user("sub-2").await.unwrap(), None);
    // Stored under the user's sub, not the proposal.
    assert_eq!(
        store.context("ctx-2").await.unwrap(),
        Some(StoredContext {
            sub: "sub-1".into(),
            ..second.context.clone()
        })
    );
    assert_eq!(
        store.context("ctx-1").await.unwrap(),
        Some(first.context.clone())
    );
    let req = store.auth_request("req-2").await.unwrap().unwrap();
    assert_eq!(
        (
            req.sub.as_deref(),
            req.auth_context_id.as_deref(),
            req.auth_time
        ),
        (Some("sub-1"), Some("ctx-2"), Some(T + 58))
    );
    assert_eq!(store.list_users(&all_users()).await.unwrap().1, 1);

    // A login that began before the identity had a user (a concurrent first login finished
    // first) signs in that user too, and creates none.
    let third = finished("auth0|ada", "sub-3", "ctx-3", "req-3", T + 120);
    let user = store.finish_upstream_login(&third).await.unwrap().unwrap();
    assert_eq!((user.sub.as_str(), user.logins_count), ("sub-1", 3));
    assert_eq!(store.context("ctx-3").await.unwrap().unwrap().sub, "sub-1");
    assert_eq!(store.list_users(&all_users()).await.unwrap().1, 1);
}

async fn an_upstream_login_that_fails_midway_stores_nothing(store: DynStore) {
    for id in ["req-1", "req-2", "req-3"] {
        store
            .insert_auth_request(&auth_request(id, T, T + 600))
            .await
            .unwrap();
    }
    // A context id already taken makes the context insert fail, after the user is written.
    let taken = finished("auth0|someone", "sub-0", "ctx-taken", "req-1", T).context;
    store.insert_context(&taken).await.unwrap();

    // A first login: the user it created is rolled back with the rest.
    let err = store
        .finish_upstream_login(&finished(
            "auth0|bob",
            "sub-bob",
            "ctx-taken",
            "req-1",
            T + 5,
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "got {err:?}");
    assert_eq!(
        store.user_by_identity("auth0", "auth0|bob").await.unwrap(),
        None
    );
    assert_eq!(store.user("sub-bob").await.unwrap(), None);
    assert_eq!(store.list_users(&all_users()).await.unwrap().1, 0);
    assert_eq!(
        store.context("ctx-taken").await.unwrap(),
        Some(taken.clone())
    );
    assert_eq!(
        store.auth_request("req-1").await.unwrap(),
        Some(auth_request("req-1", T, T + 600))
    );

    // A later login of an existing user: its login time and last context stay as they were.
    let first = finished("auth0|ada", "sub-1", "ctx-1", "req-2", T + 10);
    let ada = store.finish_upstream_login(&first).await.unwrap().unwrap();
    let err = store
        .finish_upstream_login(&finished(
            "auth0|ada",
            "sub-9",
            "ctx-taken",
            "req-3",
            T + 60,
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "got {err:?}");
    assert_eq!(store.user("sub-1").await.unwrap(), Some(ada.clone()));
    assert_eq!(ada.last_context, Some(first.context.context.clone()));
    assert_eq!(ada.last_login_at, T + 10);
    assert_eq!(store.context("ctx-taken").await.unwrap(), Some(taken));
    assert_eq!(
        store.auth_request("req-3").await.unwrap(),
        Some(auth_request("req-3", T, T + 600))
    );
}

async fn concurrent_first_logins_of_one_identity_end_with_one_user(store: DynStore) {
    const RACERS: usize = 8;
    for i in 0..RACERS {
        store
            .insert_auth_request(&auth_request(&format!("req-{i}"), T, T + 600))
            .await
            .unwrap();
    }
    let racers: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let login = finished(
                    "auth0|ada",
                    &format!("sub-{i}"),
                    &format!("ctx-{i}"),
                    &format!("req-{i}"),
                    T + 1,
                );
                store.finish_upstream_login(&login).await
            })
        })
        .collect();
    let mut subs = Vec::new();
    for (i, racer) in racers.into_iter().enumerate() {
        match racer.await.unwrap() {
            Ok(Some(user)) => subs.push(user.sub),
            Ok(None) => panic!("racer {i} found no state to spend, and none was asked for"),
            Err(e) => panic!("racer {i} failed: {e:?}"),
        }
    }

    // Every login ended with the one user the first of them created.
    let sub = subs[0].clone();
    assert!(subs.iter().all(|s| *s == sub), "subs: {subs:?}");
    let (users, total) = store.list_users(&all_users()).await.unwrap();
    assert_eq!(total, 1, "users: {users:?}");
    assert_eq!(users[0].sub, sub);
    assert_eq!(users[0].upstream_subject, "auth0|ada");
    for i in 0..RACERS {
        let ctx = store.context(&format!("ctx-{i}")).await.unwrap().unwrap();
        assert_eq!(ctx.sub, sub, "context ctx-{i}");
        let req = store
            .auth_request(&format!("req-{i}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(req.sub.as_deref(), Some(sub.as_str()), "request req-{i}");
        assert_eq!(req.auth_context_id, Some(format!("ctx-{i}")));
    }
    // Its last context is the one of some login among them.
    let last = users[0].last_context.clone().unwrap();
    assert!(
        (0..RACERS).any(|i| last.contains(&format!("\"ctx-{i}\""))),
        "last_context: {last}"
    );
}

async fn auth_requests_round_trip_and_record_the_login(store: DynStore) {
    let full = auth_request("req-full", T, T + 600);
    let bare = AuthRequest {
        state: None,
        nonce: None,
        code_challenge: None,
        prompt: None,
        max_age: None,
        login_hint: None,
        upstream_hint: None,
        ..auth_request("req-bare", T, T + 600)
    };
    store.insert_auth_request(&full).await.unwrap();
    store.insert_auth_request(&bare).await.unwrap();
    assert_eq!(
        store.auth_request("req-full").await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(
        store.auth_request("req-bare").await.unwrap(),
        Some(bare.clone())
    );
    assert_eq!(store.auth_request("req-missing").await.unwrap(), None);

    store
        .set_auth_request_login("req-full", "sub-1", "ctx-1", T + 30)
        .await
        .unwrap();

    let expected = AuthRequest {
        sub: Some("sub-1".into()),
        auth_context_id: Some("ctx-1".into()),
        auth_time: Some(T + 30),
        ..full
    };
    assert_eq!(
        store.auth_request("req-full").await.unwrap(),
        Some(expected)
    );
    assert_eq!(store.auth_request("req-bare").await.unwrap(), Some(bare));
}

async fn an_auth_request_is_decided_only_once(store: DynStore) {
    store
        .insert_auth_request(&auth_request("req-1", T, T + 600))
        .await
        .unwrap();

    assert!(store.decide_auth_request("req-1", T + 10).await.unwrap());
    assert!(!store.decide_auth_request("req-1", T + 20).await.unwrap());
    assert!(
        !store
            .decide_auth_request("req-missing", T + 20)
            .await
            .unwrap()
    );

    let req = store.auth_request("req-1").await.unwrap().unwrap();
    assert_eq!(
        req.decided_at,
        Some(T + 10),
        "the replay must not move decided_at"
    );
}

async fn an_upstream_login_can_be_taken_only_once(store: DynStore) {
    let login = upstream_login("state-digest", T, T + 600);
    store.insert_upstream_login(&login).await.unwrap();
    store
        .insert_upstream_login(&upstream_login("other", T, T + 600))
        .await
        .unwrap();

    assert_eq!(
        store.take_upstream_login("state-digest").await.unwrap(),
        Some(login)
    );
    assert_eq!(
        store.take_upstream_login("state-digest").await.unwrap(),
        None
    );
    assert_eq!(
        store.take_upstream_login("never-issued").await.unwrap(),
        None
    );
    // Taking one state leaves the others.
    assert!(store.take_upstream_login("other").await.unwrap().is_some());
}

async fn a_request_and_its_upstream_login_are_stored_in_one_transaction(store: DynStore) {
    let req = auth_request("req-1", T, T + 600);
    let login = upstream_login("state-digest", T, T + 600);
    store.start_upstream_login(&req, &login).await.unwrap();
    assert_eq!(
        store.auth_request("req-1").await.unwrap(),
        Some(req.clone())
    );
    // The state is read with its request.
    assert_eq!(
        store.upstream_login("state-digest").await.unwrap(),
        Some((login.clone(), Some(req)))
    );

    // A state that exists already (the second write fails): the new request is not stored
    // without it.
    let mut again = auth_request("req-2", T, T + 600);
    again.browser_binding = "another-binding".into();
    let mut clash = login;
    clash.auth_request_id = "req-2".into();
    assert!(store.start_upstream_login(&again, &clash).await.is_err());
    assert_eq!(store.auth_request("req-2").await.unwrap(), None);
}

async fn a_finished_login_spends_its_state_and_a_second_answer_stores_nothing(store: DynStore) {
    store
        .insert_auth_request(&auth_request("req-1", T, T + 600))
        .await
        .unwrap();
    store
        .insert_auth_request(&auth_request("req-2", T, T + 600))
        .await
        .unwrap();
    let state = upstream_login("state-digest", T, T + 600);
    store.insert_upstream_login(&state).await.unwrap();
    // Reading the state leaves it in place.
    assert_eq!(
        store.upstream_login("state-digest").await.unwrap(),
        Some((state.clone(), store.auth_request("req-1").await.unwrap()))
    );
    assert_eq!(store.upstream_login("never-issued").await.unwrap(), None);
    // A state whose request is gone is read without it.
    let orphan = UpstreamLogin {
        auth_request_id: "req-gone".into(),
        forced: true,
        ..upstream_login("orphan", T, T + 600)
    };
    store.insert_upstream_login(&orphan).await.unwrap();
    assert_eq!(
        store.upstream_login("orphan").await.unwrap(),
        Some((orphan, None))
    );

    let mut first = finished("auth0|ada", "sub-1", "ctx-1", "req-1", T + 10);
    first.upstream_state_hash = Some("state-digest".into());
    let ada = store.finish_upstream_login(&first).await.unwrap();
    assert_eq!(ada.map(|u| u.sub).as_deref(), Some("sub-1"));
    assert_eq!(store.upstream_login("state-digest").await.unwrap(), None);

    // A second answer with the same state (a replay that raced the first): nothing of it is
    // stored, not its user, its context or its request's login.
    let mut second = finished("auth0|bob", "sub-2", "ctx-2", "req-2", T + 11);
    second.upstream_state_hash = Some("state-digest".into());
    assert_eq!(store.finish_upstream_login(&second).await.unwrap(), None);
    assert_eq!(
        store.user_by_identity("auth0", "auth0|bob").await.unwrap(),
        None
    );
    assert_eq!(store.context("ctx-2").await.unwrap(), None);
    assert_eq!(
        store.auth_request("req-2").await.unwrap(),
        Some(auth_request("req-2", T, T + 600))
    );
}

async fn contexts_round_trip_with_and_without_expiry(store: DynStore) {
    let session_long = StoredContext {
        id: "ctx-1".into(),
        sub: "sub-1".into(),
        upstream_id: "auth0".into(),
        context: r#"{"claims":{"email":"ada@example.com"}}"#.into(),
        auth_time: T - 5,
        created_at: T,
        expires_at: None,
        revoked_at: None,
        upstream_sid: None,
        upstream_refresh: None,
        upstream_subject: None,
    };
    let bounded = StoredContext {
        id: "ctx-2".into(),
        expires_at: Some(T + 3600),
        ..session_long.clone()
    };
    store.insert_context(&session_long).await.unwrap();
    store.insert_context(&bounded).await.unwrap();

    assert_eq!(store.context("ctx-1").await.unwrap(), Some(session_long));
    assert_eq!(store.context("ctx-2").await.unwrap(), Some(bounded));
    assert_eq!(store.context("ctx-3").await.unwrap(), None);
}

async fn a_request_is_read_with_the_grant_of_its_user_for_its_app(store: DynStore) {
    let req = auth_request("req-1", T, T + 600);
    store.insert_auth_request(&req).await.unwrap();
    store
        .insert_auth_request(&AuthRequest {
            client_id: "other-app".into(),
            ..auth_request("req-2", T, T + 600)
        })
        .await
        .unwrap();
    // sub-1's grant for `app`, and another user's for the same app.
    let granted = grant("openid email", T, T + 5);
    store
        .record_consent(
            Some(&granted),
            &consent("cr-1", "sub-1", "openid email", "", T),
            &[],
        )
        .await
        .unwrap();
    let someone_else = Grant {
        sub: "sub-2".into(),
        ..grant("openid", T, T)
    };
    store
        .record_consent(
            Some(&someone_else),
            &consent("cr-2", "sub-2", "openid", "", T),
            &[],
        )
        .await
        .unwrap();

    // No user yet: no grant, though users hold grants for the app.
    assert_eq!(
        store.auth_request_with_grant("req-1").await.unwrap(),
        Some((req.clone(), None))
    );
    assert_eq!(
        store.auth_request_with_grant("req-missing").await.unwrap(),
        None
    );

    store
        .set_auth_request_login("req-1", "sub-1", "ctx-1", T + 30)
        .await
        .unwrap();
    store
        .set_auth_request_login("req-2", "sub-1", "ctx-1", T + 30)
        .await
        .unwrap();
    let (read, with) = store
        .auth_request_with_grant("req-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Some(read), store.auth_request("req-1").await.unwrap());
    assert_eq!(with, Some(granted));
    // The same user's request for an app they granted nothing.
    let (_, without) = store
        .auth_request_with_grant("req-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(without, None);
}

async fn record_consent_upserts_the_grant_and_keeps_its_first_granted_at(store: DynStore) {
    assert_eq!(store.grant("sub-1", "app").await.unwrap(), None);

    let first = grant("openid", T, T);
    store
        .record_consent(
            Some(&first),
            &consent("cr-1", "sub-1", "openid", "email", T),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(store.grant("sub-1", "app").await.unwrap(), Some(first));

    // A later decision replaces scopes and versions; granted_at stays the first grant's.
    let widened = Grant {
        scope_versions: r#"{"email":"2","openid":"1"}"#.into(),
        ..grant("openid email", T + 100, T + 100)
    };
    store
        .record_consent(
            Some(&widened),
            &consent("cr-2", "sub-1", "openid email", "", T + 100),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        store.grant("sub-1", "app").await.unwrap(),
        Some(Grant {
            granted_at: T,
            ..widened
        })
    );
    assert_eq!(store.grant("sub-1", "other-app").await.unwrap(), None);
}

async fn withdrawing_consent_removes_the_grant_but_keeps_every_consent_record(store: DynStore) {
    let records = [
        consent("cr-1", "sub-1", "openid", "email", T),
        consent("cr-2", "sub-1", "openid email", "", T + 100),
        consent("cr-3", "sub-1", "", "openid email", T + 200),
    ];
    store
        .record_consent(Some(&grant("openid", T, T)), &records[0], &[])
        .await
        .unwrap();
    store
        .record_consent(
            Some(&grant("openid email", T + 100, T + 100)),
            &records[1],
            &[],
        )
        .await
        .unwrap();
    // Someone else's decision must not show in sub-1's list.
    store
        .record_consent(None, &consent("cr-x", "sub-2", "", "openid", T + 150), &[])
        .await
        .unwrap();
    store.record_consent(None, &records[2], &[]).await.unwrap();

    assert_eq!(store.grant("sub-1", "app").await.unwrap(), None);
    assert_eq!(
        store.consent_records("sub-1").await.unwrap(),
        records.to_vec()
    );
    assert_eq!(store.consent_records("sub-2").await.unwrap().len(), 1);
}

async fn grants_lists_one_users_grants_by_client_id(store: DynStore) {
    assert!(store.grants("sub-1").await.unwrap().is_empty());
    let zeta = Grant {
        client_id: "zeta".into(),
        ..grant("openid", T, T)
    };
    let alpha = Grant {
        client_id: "alpha".into(),
        ..grant("openid email", T + 10, T + 20)
    };
    let someone_else = Grant {
        sub: "sub-2".into(),
        ..grant("openid", T, T)
    };
    for (g, id) in [(&zeta, "cr-1"), (&alpha, "cr-2"), (&someone_else, "cr-3")] {
        let rec = ConsentRecord {
            sub: g.sub.clone(),
            client_id: g.client_id.clone(),
            ..consent(id, &g.sub, g.scopes.as_str(), "", g.updated_at)
        };
        store.record_consent(Some(g), &rec, &[]).await.unwrap();
    }
    assert_eq!(store.grants("sub-1").await.unwrap(), vec![alpha, zeta]);
    assert_eq!(store.grants("sub-2").await.unwrap(), vec![someone_else]);
}

async fn a_code_is_redeemed_once_and_its_token_exists_only_after_redemption(store: DynStore) {
    let issued = code("code-1", T, T + 60);
    store.insert_code(&issued).await.unwrap();
    assert_eq!(issued_code(&store, "code-1").await, Some(issued.clone()));
    assert_eq!(issued_code(&store, "code-2").await, None);
    // The login the code was issued from is read with it, and is `None` once it is gone.
    assert_eq!(
        store.code("code-1").await.unwrap(),
        Some((issued.clone(), None))
    );
    // Every field set, and none equal to the code's column of the same name.
    let login = StoredContext {
        sub: "sub-of-the-login".into(),
        created_at: T - 30,
        revoked_at: Some(T + 7),
        upstream_sid: Some("sid-1".into()),
        upstream_refresh: Some("sealed-refresh".into()),
        upstream_subject: Some("auth0|ada".into()),
        ..finished("auth0|ada", "sub-1", "ctx-1", "req-1", T).context
    };
    store.insert_context(&login).await.unwrap();
    assert_eq!(
        store.code("code-1").await.unwrap(),
        Some((issued.clone(), Some(login)))
    );

    let first = token("jti-1", "code-1", T + 5, T + 3605);
    assert_eq!(store.access_token("jti-1").await.unwrap(), None);
    assert_eq!(
        store
            .redeem_code("code-1", T + 5, &first, None)
            .await
            .unwrap(),
        Redemption::Redeemed
    );
    assert_eq!(store.access_token("jti-1").await.unwrap(), Some(first));
    assert_eq!(
        issued_code(&store, "code-1").await,
        Some(CodeRecord {
            consumed_at: Some(T + 5),
            ..issued
        })
    );

    // The replay is refused, its token never stored, and the first consumption time kept.
    let replay = token("jti-2", "code-1", T + 9, T + 3609);
    assert_eq!(
        store
            .redeem_code("code-1", T + 9, &replay, None)
            .await
            .unwrap(),
        Redemption::AlreadyUsed
    );
    assert_eq!(store.access_token("jti-2").await.unwrap(), None);
    assert_eq!(
        issued_code(&store, "code-1").await.unwrap().consumed_at,
        Some(T + 5)
    );
}

async fn redeeming_an_unknown_code_stores_no_token(store: DynStore) {
    let stray = token("jti-1", "never-issued", T, T + 3600);
    assert_eq!(
        store
            .redeem_code("never-issued", T, &stray, None)
            .await
            .unwrap(),
        Redemption::AlreadyUsed
    );
    assert_eq!(store.access_token("jti-1").await.unwrap(), None);
}

async fn a_burnt_code_cannot_be_redeemed(store: DynStore) {
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();
    store.burn_code("code-1", T + 3).await.unwrap();
    assert_eq!(
        issued_code(&store, "code-1").await.unwrap().consumed_at,
        Some(T + 3)
    );

    // Burning again does not move the time it was first consumed.
    store.burn_code("code-1", T + 4).await.unwrap();
    assert_eq!(
        issued_code(&store, "code-1").await.unwrap().consumed_at,
        Some(T + 3)
    );

    let late = token("jti-1", "code-1", T + 5, T + 3605);
    assert_eq!(
        store
            .redeem_code("code-1", T + 5, &late, None)
            .await
            .unwrap(),
        Redemption::AlreadyUsed
    );
    assert_eq!(store.access_token("jti-1").await.unwrap(), None);

    // Burning a code that never existed is harmless.
    store.burn_code("never-issued", T).await.unwrap();
}

async fn revoking_the_tokens_of_a_code_counts_each_token_once(store: DynStore) {
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();
    store.insert_code(&code("code-2", T, T + 60)).await.unwrap();
    let replayed = token("jti-1", "code-1", T + 1, T + 3601);
    let innocent = token("jti-2", "code-2", T + 1, T + 3601);
    store
        .redeem_code("code-1", T + 1, &replayed, None)
        .await
        .unwrap();
    store
        .redeem_code("code-2", T + 1, &innocent, None)
        .await
        .unwrap();

    assert_eq!(
        store.revoke_tokens_of_code("code-1", T + 30).await.unwrap(),
        1
    );
    assert_eq!(
        store.access_token("jti-1").await.unwrap(),
        Some(AccessTokenRecord {
            revoked_at: Some(T + 30),
            ..replayed
        })
    );
    assert_eq!(store.access_token("jti-2").await.unwrap(), Some(innocent));

    // Already revoked: nothing more to count, and the first revocation time stays.
    assert_eq!(
        store.revoke_tokens_of_code("code-1", T + 40).await.unwrap(),
        0
    );
    let again = store.access_token("jti-1").await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(T + 30));
    assert_eq!(
        store
            .revoke_tokens_of_code("never-issued", T)
            .await
            .unwrap(),
        0
    );
}

async fn revoking_a_grants_tokens_touches_only_that_user_and_app_and_burns_its_codes(
    store: DynStore,
) {
    for c in [
        "code-1",
        "code-2",
        "code-other-app",
        "code-other-user",
        "code-pending",
    ] {
        let mut record = code(c, T, T + 60);
        if c == "code-other-app" {
            record.client_id = "other-app".into();
        }
        if c == "code-other-user" {
            record.sub = "sub-2".into();
        }
        store.insert_code(&record).await.unwrap();
    }
    let mine = [
        token("jti-1", "code-1", T + 1, T + 3601),
        token("jti-2", "code-2", T + 1, T + 3601),
    ];
    let other_app = AccessTokenRecord {
        client_id: "other-app".into(),
        ..token("jti-3", "code-other-app", T + 1, T + 3601)
    };
    let other_user = AccessTokenRecord {
        sub: "sub-2".into(),
        ..token("jti-4", "code-other-user", T + 1, T + 3601)
    };
    for t in mine.iter().chain([&other_app, &other_user]) {
        let code_hash = t.code_hash.clone().unwrap();
        store.redeem_code(&code_hash, T + 1, t, None).await.unwrap();
    }

    assert_eq!(
        store
            .revoke_grant_tokens("sub-1", "app", T + 30)
            .await
            .unwrap(),
        2
    );
    for t in &mine {
        let stored = store.access_token(&t.jti).await.unwrap().unwrap();
        assert_eq!(stored.revoked_at, Some(T + 30), "{}", t.jti);
    }
    assert_eq!(store.access_token("jti-3").await.unwrap(), Some(other_app));
    assert_eq!(store.access_token("jti-4").await.unwrap(), Some(other_user));
    // A code issued under the grant but not yet redeemed can no longer yield a token.
    let late = token("jti-5", "code-pending", T + 31, T + 3631);
    assert_eq!(
        store
            .redeem_code("code-pending", T + 31, &late, None)
            .await
            .unwrap(),
        Redemption::AlreadyUsed
    );
    assert_eq!(store.access_token("jti-5").await.unwrap(), None);
    // Nothing left to revoke; the first revocation time stays.
    assert_eq!(
        store
            .revoke_grant_tokens("sub-1", "app", T + 40)
            .await
            .unwrap(),
        0
    );
    let again = store.access_token("jti-1").await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(T + 30));
}

async fn sessions_are_created_once_saved_loaded_until_expiry_and_deleted(store: DynStore) {
    assert!(
        store
            .create_session("s-1", r#"{"v":1}"#, T + 100)
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_session("s-1", r#"{"v":"intruder"}"#, T + 900)
            .await
            .unwrap()
    );
    assert_eq!(
        store.load_session("s-1", T).await.unwrap().as_deref(),
        Some(r#"{"v":1}"#),
        "a refused create must not overwrite the record"
    );

    store
        .save_session("s-1", r#"{"v":2}"#, T + 200)
        .await
        .unwrap();
    assert_eq!(
        store.load_session("s-1", T + 150).await.unwrap().as_deref(),
        Some(r#"{"v":2}"#)
    );
    // Expired sessions are not returned, from their expiry time on.
    assert_eq!(store.load_session("s-1", T + 200).await.unwrap(), None);
    assert_eq!(store.load_session("s-1", T + 201).await.unwrap(), None);

    // Saving an unknown id stores it.
    store
        .save_session("s-2", r#"{"v":3}"#, T + 100)
        .await
        .unwrap();
    assert_eq!(
        store.load_session("s-2", T).await.unwrap().as_deref(),
        Some(r#"{"v":3}"#)
    );

    store.delete_session("s-1").await.unwrap();
    assert_eq!(store.load_session("s-1", T).await.unwrap(), None);
    assert!(
        store
            .create_session("s-1", r#"{"v":4}"#, T + 100)
            .await
            .unwrap()
    );
    store.delete_session("never-created").await.unwrap();
}

async fn purge_expired_removes_expired_rows_and_keeps_live_ones(store: DynStore) {
    let now = T;
    store
        .insert_auth_request(&auth_request("req-old", now - 700, now - 100))
        .await
        .unwrap();
    store
        .insert_auth_request(&auth_request("req-live", now - 10, now + 600))
        .await
        .unwrap();
    store
        .insert_upstream_login(&upstream_login("ul-old", now - 700, now - 100))
        .await
        .unwrap();
    store
        .insert_upstream_login(&upstream_login("ul-live", now - 10, now + 600))
        .await
        .unwrap();
    // Codes stay a day past expiry so a late replay is still recognised.
    store
        .insert_code(&code("code-ancient", now - 90_000, now - 86_401))
        .await
        .unwrap();
    store
        .insert_code(&code("code-recent", now - 200, now - 100))
        .await
        .unwrap();
    store
        .insert_code(&code("code-live", now - 10, now + 50))
        .await
        .unwrap();
    let old_token = token("jti-old", "code-recent", now - 200, now - 1);
    let live_token = token("jti-live", "code-live", now - 10, now + 3600);
    store
        .redeem_code("code-recent", now - 200, &old_token, None)
        .await
        .unwrap();
    store
        .redeem_code("code-live", now - 10, &live_token, None)
        .await
        .unwrap();
    store.create_session("s-old", "{}", now - 1).await.unwrap();
    store
        .create_session("s-live", "{}", now + 100)
        .await
        .unwrap();
    let retired = KeyRecord {
        retires_at: Some(now - 200),
        expires_at: Some(now - 100),
        ..key("k-expired", now - 1000)
    };
    let retiring = KeyRecord {
        retires_at: Some(now - 200),
        expires_at: Some(now + 100),
        ..key("k-retiring", now - 900)
    };
    let current = key("k-current", now - 500);
    for k in [&retired, &retiring, &current] {
        store.insert_signing_key(k).await.unwrap();
    }

    // One expired row each: request, login, ancient code, token, session, key.
    assert_eq!(store.purge_expired(now).await.unwrap(), 6);

    assert_eq!(store.auth_request("req-old").await.unwrap(), None);
    assert!(store.auth_request("req-live").await.unwrap().is_some());
    assert_eq!(store.take_upstream_login("ul-old").await.unwrap(), None);
    assert!(
        store
            .take_upstream_login("ul-live")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(issued_code(&store, "code-ancient").await, None);
    assert!(issued_code(&store, "code-recent").await.is_some());
    assert!(issued_code(&store, "code-live").await.is_some());
    assert_eq!(store.access_token("jti-old").await.unwrap(), None);
    assert_eq!(
        store.access_token("jti-live").await.unwrap(),
        Some(live_token)
    );
    assert_eq!(
        store.load_session("s-live", now).await.unwrap().as_deref(),
        Some("{}")
    );
    assert!(
        store.create_session("s-old", "{}", now + 5).await.unwrap(),
        "s-old was removed"
    );
    assert_keys_eq(&store.signing_keys().await.unwrap(), &[retiring, current]);

    assert_eq!(
        store.purge_expired(now).await.unwrap(),
        0,
        "nothing left to purge"
    );
}

async fn timestamps_past_2038_round_trip_exactly(store: DynStore) {
    // 9999-12-31T23:59:59Z and the largest i64: no column may narrow or round them.
    const Y9999: i64 = 253_402_300_799;
    let far = KeyRecord {
        activates_at: Y9999,
        retires_at: Some(Y9999 + 1),
        expires_at: Some(i64::MAX),
        ..key("k-far", T)
    };
    store.insert_signing_key(&far).await.unwrap();
    assert_keys_eq(&store.signing_keys().await.unwrap(), &[far]);

    let user = store
        .link_user("auth0", "auth0|ada", "sub-1", Y9999)
        .await
        .unwrap();
    assert_eq!((user.created_at, user.last_login_at), (Y9999, Y9999));

    let req = AuthRequest {
        max_age: Some(i64::MAX),
        ..auth_request("req-1", T, Y9999)
    };
    store.insert_auth_request(&req).await.unwrap();
    store
        .set_auth_request_login("req-1", "sub-1", "ctx-1", T + 1)
        .await
        .unwrap();
    store.decide_auth_request("req-1", Y9999 - 1).await.unwrap();
    let back = store.auth_request("req-1").await.unwrap().unwrap();
    assert_eq!(
        (
            back.created_at,
            back.expires_at,
            back.max_age,
            back.auth_time,
            back.decided_at
        ),
        (T, Y9999, Some(i64::MAX), Some(T + 1), Some(Y9999 - 1))
    );

    store
        .insert_code(&code("code-1", T, i64::MAX))
        .await
        .unwrap();
    let long_lived = token("jti-1", "code-1", Y9999, i64::MAX);
    store
        .redeem_code("code-1", Y9999, &long_lived, None)
        .await
        .unwrap();
    assert_eq!(
        issued_code(&store, "code-1").await.unwrap().consumed_at,
        Some(Y9999)
    );
    assert_eq!(store.access_token("jti-1").await.unwrap(), Some(long_lived));

    store.create_session("s-1", "{}", i64::MAX).await.unwrap();
    assert_eq!(
        store
            .load_session("s-1", i64::MAX - 1)
            .await
            .unwrap()
            .as_deref(),
        Some("{}")
    );
    assert_eq!(store.load_session("s-1", i64::MAX).await.unwrap(), None);
}

async fn twenty_concurrent_redemptions_of_one_code_redeem_it_exactly_once(store: DynStore) {
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();

    let racers: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let t = token(&format!("jti-{i}"), "code-1", T + 1, T + 3601);
                (i, store.redeem_code("code-1", T + 1, &t, None).await)
            })
        })
        .collect();

    let (mut winners, mut replays, mut conflicts) = (Vec::new(), 0, 0);
    for racer in racers {
        match racer.await.unwrap() {
            (i, Ok(Redemption::Redeemed)) => winners.push(i),
            (_, Ok(Redemption::AlreadyUsed)) => replays += 1,
            // SQLite may report lock contention instead of waiting: still not a redemption.
            (_, Err(StoreError::Conflict(_))) => conflicts += 1,
            (i, Err(e)) => panic!("racer {i} failed with an unexpected error: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(replays + conflicts, 19);

    // Only the winner's token was stored.
    for i in 0..20 {
        let stored = store.access_token(&format!("jti-{i}")).await.unwrap();
        assert_eq!(stored.is_some(), i == winners[0], "token jti-{i}");
    }
}

async fn a_code_redeemed_with_offline_access_stores_the_first_refresh_token_with_it(
    store: DynStore,
) {
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();
    let first = refresh("rt-1", "fam-1", T + 1);
    let access = family_token("jti-1", "fam-1", T + 1);
    assert_eq!(store.refresh_token("rt-1").await.unwrap(), None);
    assert_eq!(
        store
            .redeem_code("code-1", T + 1, &access, Some(&first))
            .await
            .unwrap(),
        Redemption::Redeemed
    );
    assert_eq!(store.refresh_token("rt-1").await.unwrap(), Some(first));
    assert_eq!(store.access_token("jti-1").await.unwrap(), Some(access));

    // A replay stores neither token.
    let again = refresh("rt-2", "fam-2", T + 2);
    let replay = family_token("jti-2", "fam-2", T + 2);
    assert_eq!(
        store
            .redeem_code("code-1", T + 2, &replay, Some(&again))
            .await
            .unwrap(),
        Redemption::AlreadyUsed
    );
    assert_eq!(store.refresh_token("rt-2").await.unwrap(), None);
    assert_eq!(store.access_token("jti-2").await.unwrap(), None);
}

async fn a_refresh_token_rotates_once_into_its_successor_and_access_token(store: DynStore) {
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();
    let first = refresh("rt-1", "fam-1", T + 1);
    store
        .redeem_code(
            "code-1",
            T + 1,
            &family_token("jti-1", "fam-1", T + 1),
            Some(&first),
        )
        .await
        .unwrap();

    let second = refresh("rt-2", "fam-1", T + 100);
    let access = family_token("jti-2", "fam-1", T + 100);
    assert_eq!(
        store
            .rotate_refresh_token("rt-1", T + 100, None, &second, &access)
            .await
            .unwrap(),
        Rotation::Rotated
    );
    assert_eq!(
        store.refresh_token("rt-1").await.unwrap(),
        Some(RefreshTokenRecord {
            rotated_at: Some(T + 100),
            ..first
        })
    );
    assert_eq!(store.refresh_token("rt-2").await.unwrap(), Some(second));
    assert_eq!(store.access_token("jti-2").await.unwrap(), Some(access));

    // The retired token cannot rotate again, and nothing of the attempt is stored.
    let third = refresh("rt-3", "fam-1", T + 200);
    assert_eq!(
        store
            .rotate_refresh_token(
                "rt-1",
                T + 200,
                None,
                &third,
                &family_token("jti-3", "fam-1", T + 200)
            )
            .await
            .unwrap(),
        Rotation::NotCurrent
    );
    assert_eq!(store.refresh_token("rt-3").await.unwrap(), None);
    assert_eq!(store.access_token("jti-3").await.unwrap(), None);
    assert_eq!(
        store
            .refresh_token("rt-1")
            .await
            .unwrap()
            .unwrap()
            .rotated_at,
        Some(T + 100),
        "the first rotation time stays"
    );
    // Nor can an unknown one.
    assert_eq!(
        store
            .rotate_refresh_token(
                "never-issued",
                T,
                None,
                &refresh("rt-4", "fam-1", T),
                &family_token("jti-4", "fam-1", T)
            )
            .await
            .unwrap(),
        Rotation::NotCurrent
    );
}

async fn a_rotated_refresh_token_rotates_once_more_within_a_grace_period_only(store: DynStore) {
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();
    store
        .redeem_code(
            "code-1",
            T + 1,
            &family_token("jti-1", "fam-1", T + 1),
            Some(&refresh("rt-1", "fam-1", T + 1)),
        )
        .await
        .unwrap();
    let rotate = |hash: &'static str, at: i64, grace_since: Option<i64>, next: &'static str| {
        let store = store.clone();
        async move {
            store
                .rotate_refresh_token(
                    hash,
                    at,
                    grace_since,
                    &refresh(next, "fam-1", at),
                    &family_token(&format!("jti-{next}"), "fam-1", at),
                )
                .await
                .unwrap()
        }
    };
    // rt-1 is rotated at T + 10 into rt-2.
    assert_eq!(
        rotate("rt-1", T + 10, None, "rt-2").await,
        Rotation::Rotated
    );
    // Without a grace period, a second use is not current.
    assert_eq!(
        rotate("rt-1", T + 11, None, "rt-x").await,
        Rotation::NotCurrent
    );
    // Rotated before the grace period began: not current either.
    assert_eq!(
        rotate("rt-1", T + 20, Some(T + 11), "rt-y").await,
        Rotation::NotCurrent
    );
    // Within it: once, recorded; the first successor stays current.
    assert_eq!(
        rotate("rt-1", T + 12, Some(T + 9), "rt-3").await,
        Rotation::Rotated
    );
    let rt1 = store.refresh_token("rt-1").await.unwrap().unwrap();
    assert_eq!(
        rt1.rotated_at,
        Some(T + 10),
        "the first rotation time stays"
    );
    assert_eq!(rt1.grace_used_at, Some(T + 12));
    assert!(store.refresh_token("rt-3").await.unwrap().is_some());
    let rt2 = store.refresh_token("rt-2").await.unwrap().unwrap();
    assert_eq!((rt2.rotated_at, rt2.revoked_at), (None, None));
    // A second use within the grace period is not current, and nothing of it is stored.
    assert_eq!(
        rotate("rt-1", T + 13, Some(T + 9), "rt-4").await,
        Rotation::NotCurrent
    );
    assert!(store.refresh_token("rt-4").await.unwrap().is_none());
    // A current token rotates as ever, whatever the grace period.
    assert_eq!(
        rotate("rt-2", T + 14, Some(T + 9), "rt-5").await,
        Rotation::Rotated
    );
}

async fn revoking_a_refresh_family_revokes_its_tokens_and_access_tokens_only(store: DynStore) {
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();
    store.insert_code(&code("code-2", T, T + 60)).await.unwrap();
    store
        .redeem_code(
            "code-1",
            T + 1,
            &family_token("jti-1", "fam-1", T + 1),
            Some(&refresh("rt-1", "fam-1", T + 1)),
        )
        .await
        .unwrap();
    store
        .rotate_refresh_token(
            "rt-1",
            T + 2,
            None,
            &refresh("rt-2", "fam-1", T + 2),
            &family_token("jti-2", "fam-1", T + 2),
        )
        .await
        .unwrap();
    let other = RefreshTokenRecord {
        code_hash: Some("code-2".into()),
        ..refresh("rt-9", "fam-9", T + 1)
    };
    let other_access = AccessTokenRecord {
        code_hash: Some("code-2".into()),
        ..family_token("jti-9", "fam-9", T + 1)
    };
    store
        .redeem_code("code-2", T + 1, &other_access, Some(&other))
        .await
        .unwrap();

    // Two refresh tokens and two access tokens.
    assert_eq!(
        store.revoke_refresh_family("fam-1", T + 10).await.unwrap(),
        4
    );
    for rt in ["rt-1", "rt-2"] {
        let r = store.refresh_token(rt).await.unwrap().unwrap();
        assert_eq!(r.revoked_at, Some(T + 10), "{rt}");
    }
    for jti in ["jti-1", "jti-2"] {
        let t = store.access_token(jti).await.unwrap().unwrap();
        assert_eq!(t.revoked_at, Some(T + 10), "{jti}");
    }
    assert_eq!(store.refresh_token("rt-9").await.unwrap(), Some(other));
    assert_eq!(
        store.access_token("jti-9").await.unwrap(),
        Some(other_access)
    );
    // A revoked token cannot rotate, and revoking again counts nothing.
    assert_eq!(
        store
            .rotate_refresh_token(
                "rt-2",
                T + 11,
                None,
                &refresh("rt-3", "fam-1", T + 11),
                &family_token("jti-3", "fam-1", T + 11)
            )
            .await
            .unwrap(),
        Rotation::NotCurrent
    );
    assert_eq!(
        store.revoke_refresh_family("fam-1", T + 12).await.unwrap(),
        0
    );
}

async fn replaying_a_code_revokes_the_refresh_tokens_descending_from_it(store: DynStore) {
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();
    store
        .redeem_code(
            "code-1",
            T + 1,
            &family_token("jti-1", "fam-1", T + 1),
            Some(&refresh("rt-1", "fam-1", T + 1)),
        )
        .await
        .unwrap();
    store
        .rotate_refresh_token(
            "rt-1",
            T + 2,
            None,
            &refresh("rt-2", "fam-1", T + 2),
            &family_token("jti-2", "fam-1", T + 2),
        )
        .await
        .unwrap();
    // Two access tokens and two refresh tokens descend from code-1.
    assert_eq!(
        store.revoke_tokens_of_code("code-1", T + 30).await.unwrap(),
        4
    );
    assert_eq!(
        store
            .refresh_token("rt-2")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(T + 30)
    );
    assert_eq!(
        store
            .access_token("jti-2")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(T + 30)
    );
}

async fn revoke_grant_tokens_revokes_every_token_of_one_user_and_client_only(store: DynStore) {
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();
    store
        .redeem_code(
            "code-1",
            T + 1,
            &family_token("jti-1", "fam-1", T + 1),
            Some(&refresh("rt-1", "fam-1", T + 1)),
        )
        .await
        .unwrap();
    // The same user at another client, and another user at the same client.
    let other_client = CodeRecord {
        client_id: "other".into(),
        ..code("code-2", T, T + 60)
    };
    store.insert_code(&other_client).await.unwrap();
    store
        .redeem_code(
            "code-2",
            T + 1,
            &AccessTokenRecord {
                client_id: "other".into(),
                ..token("jti-2", "code-2", T + 1, T + 3601)
            },
            Some(&RefreshTokenRecord {
                client_id: "other".into(),
                ..refresh("rt-2", "fam-2", T + 1)
            }),
        )
        .await
        .unwrap();
    store.insert_code(&code("code-3", T, T + 60)).await.unwrap();
    store
        .redeem_code(
            "code-3",
            T + 1,
            &AccessTokenRecord {
                sub: "sub-2".into(),
                ..token("jti-3", "code-3", T + 1, T + 3601)
            },
            Some(&RefreshTokenRecord {
                sub: "sub-2".into(),
                ..refresh("rt-3", "fam-3", T + 1)
            }),
        )
        .await
        .unwrap();

    assert_eq!(
        store
            .revoke_grant_tokens("sub-1", "app", T + 50)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .refresh_token("rt-1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(T + 50)
    );
    assert_eq!(
        store
            .access_token("jti-1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(T + 50)
    );
    for (rt, jti) in [("rt-2", "jti-2"), ("rt-3", "jti-3")] {
        assert_eq!(
            store.refresh_token(rt).await.unwrap().unwrap().revoked_at,
            None
        );
        assert_eq!(
            store.access_token(jti).await.unwrap().unwrap().revoked_at,
            None
        );
    }
    assert_eq!(
        store
            .revoke_grant_tokens("sub-1", "app", T + 60)
            .await
            .unwrap(),
        0
    );
}

async fn revoking_an_access_token_marks_its_row_or_records_an_unknown_one(store: DynStore) {
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();
    let stored = token("jti-1", "code-1", T + 1, T + 3601);
    store
        .redeem_code("code-1", T + 1, &stored, None)
        .await
        .unwrap();
    assert_eq!(store.revoke_access_token(&stored, T + 5).await.unwrap(), 1);
    assert_eq!(store.revoke_access_token(&stored, T + 9).await.unwrap(), 0);
    assert_eq!(
        store.access_token("jti-1").await.unwrap(),
        Some(AccessTokenRecord {
            revoked_at: Some(T + 5),
            ..stored
        })
    );

    // A client_credentials token has no row until it is revoked.
    let machine = AccessTokenRecord {
        sub: "m2m".into(),
        client_id: "m2m".into(),
        auth_context_id: String::new(),
        code_hash: None,
        ..token("jti-m", "none", T + 1, T + 3601)
    };
    assert_eq!(store.revoke_access_token(&machine, T + 7).await.unwrap(), 1);
    assert_eq!(
        store.access_token("jti-m").await.unwrap(),
        Some(AccessTokenRecord {
            revoked_at: Some(T + 7),
            ..machine
        })
    );
}

async fn purge_expired_keeps_rotated_refresh_tokens_while_their_family_lives(store: DynStore) {
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();
    store
        .redeem_code(
            "code-1",
            T,
            &family_token("jti-1", "fam-1", T),
            Some(&refresh("rt-1", "fam-1", T)),
        )
        .await
        .unwrap();
    store
        .rotate_refresh_token(
            "rt-1",
            T + 10,
            None,
            &refresh("rt-2", "fam-1", T + 10),
            &family_token("jti-2", "fam-1", T + 10),
        )
        .await
        .unwrap();
    // rt-1 (rotated) is past its idle expiry, rt-2 (current) is not: both stay.
    store.purge_expired(T + 3605).await.unwrap();
    assert!(store.refresh_token("rt-1").await.unwrap().is_some());
    assert!(store.refresh_token("rt-2").await.unwrap().is_some());
    // rt-2 idles out: it goes, the rotated rt-1 stays for reuse detection.
    store.purge_expired(T + 3611).await.unwrap();
    assert!(store.refresh_token("rt-1").await.unwrap().is_some());
    assert_eq!(store.refresh_token("rt-2").await.unwrap(), None);
    // The family's absolute expiry (from rt-1's record) takes the rest.
    store.purge_expired(T + 86_401).await.unwrap();
    assert_eq!(store.refresh_token("rt-1").await.unwrap(), None);
}

async fn twenty_concurrent_rotations_of_one_refresh_token_rotate_it_exactly_once(store: DynStore) {
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();
    store
        .redeem_code(
            "code-1",
            T,
            &family_token("jti-0", "fam-1", T),
            Some(&refresh("rt-0", "fam-1", T)),
        )
        .await
        .unwrap();

    let racers: Vec<_> = (1..=20)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let next = refresh(&format!("rt-{i}"), "fam-1", T + 1);
                let t = family_token(&format!("jti-{i}"), "fam-1", T + 1);
                (
                    i,
                    store
                        .rotate_refresh_token("rt-0", T + 1, None, &next, &t)
                        .await,
                )
            })
        })
        .collect();
    let (mut winners, mut losers) = (Vec::new(), 0);
    for racer in racers {
        match racer.await.unwrap() {
            (i, Ok(Rotation::Rotated)) => winners.push(i),
            (_, Ok(Rotation::NotCurrent)) => losers += 1,
            // SQLite may report lock contention instead of waiting: still not a rotation.
            (_, Err(StoreError::Conflict(_))) => losers += 1,
            (i, Err(e)) => panic!("racer {i} failed with an unexpected error: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(losers, 19);
    for i in 1..=20 {
        let won = i == winners[0];
        let rt = store.refresh_token(&format!("rt-{i}")).await.unwrap();
        let at = store.access_token(&format!("jti-{i}")).await.unwrap();
        assert_eq!((rt.is_some(), at.is_some()), (won, won), "racer {i}");
    }
}

fn config(version: i64, document: &str) -> ConfigVersion {
    ConfigVersion {
        version,
        document: document.into(),
        created_at: T + version,
        author: if version == 1 {
            "seed".into()
        } else {
            "client:ops".into()
        },
    }
}

fn audit(actor: &str, target: &str, at: i64, version: Option<i64>) -> AuditEntry {
    AuditEntry {
        id: 0,
        at,
        actor: actor.into(),
        action: "client.update".into(),
        target: target.into(),
        before: Some(r#"{"a":1}"#.into()),
        after: Some(r#"{"a":2}"#.into()),
        config_version: version,
    }
}

async fn the_first_configuration_is_seeded_once_and_later_versions_follow_it(store: DynStore) {
    assert_eq!(store.latest_config_version().await.unwrap(), None);
    assert_eq!(store.latest_config().await.unwrap(), None);
    assert!(store.seed_config(&config(1, "a = 1")).await.unwrap());
    // A second replica starting with another file does not replace the seed.
    assert!(!store.seed_config(&config(1, "a = 2")).await.unwrap());
    assert_eq!(
        store.latest_config().await.unwrap(),
        Some(config(1, "a = 1"))
    );
    store
        .save_config(
            &config(2, "a = 3"),
            &audit("client:ops", "x", T, Some(2)),
            &[],
        )
        .await
        .unwrap();
    // Seeding after a change is a no-op too.
    assert!(!store.seed_config(&config(1, "a = 4")).await.unwrap());
    assert_eq!(store.latest_config_version().await.unwrap(), Some(2));
    assert_eq!(
        store.latest_config().await.unwrap(),
        Some(config(2, "a = 3"))
    );
}

async fn a_configuration_version_is_written_once_with_its_audit_entry(store: DynStore) {
    store.seed_config(&config(1, "a = 1")).await.unwrap();
    store
        .save_config(
            &config(2, "a = 2"),
            &audit("client:one", "x", T, Some(2)),
            &[],
        )
        .await
        .unwrap();
    // A concurrent change on the same base loses, and leaves no audit entry behind.
    let err = store
        .save_config(
            &config(2, "a = 3"),
            &audit("client:two", "x", T, Some(2)),
            &[],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.latest_config().await.unwrap(),
        Some(config(2, "a = 2"))
    );
    let entries = store
        .audit_entries(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor, "client:one");
    assert_eq!(entries[0].config_version, Some(2));
    assert_eq!(entries[0].before.as_deref(), Some(r#"{"a":1}"#));
    assert_eq!(entries[0].after.as_deref(), Some(r#"{"a":2}"#));
}

async fn the_audit_log_is_filtered_newest_first_and_pages_backwards(store: DynStore) {
    let a = store
        .append_audit(&audit("alice", "client:x", T, None))
        .await
        .unwrap();
    let b = store
        .append_audit(&audit("bob", "client:x", T + 10, None))
        .await
        .unwrap();
    let c = store
        .append_audit(&audit("alice", "client:y", T + 20, None))
        .await
        .unwrap();
    assert!(a < b && b < c);
    let ids = |v: Vec<AuditEntry>| v.into_iter().map(|e| e.id).collect::<Vec<_>>();
    let all = AuditFilter {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(ids(store.audit_entries(&all).await.unwrap()), [c, b, a]);
    let by_alice = AuditFilter {
        actor: Some("alice".into()),
        ..all.clone()
    };
    assert_eq!(ids(store.audit_entries(&by_alice).await.unwrap()), [c, a]);
    let on_x_since = AuditFilter {
        target: Some("client:x".into()),
        since: Some(T + 5),
        ..all.clone()
    };
    assert_eq!(ids(store.audit_entries(&on_x_since).await.unwrap()), [b]);
    let page = AuditFilter {
        before_id: Some(c),
        limit: 1,
        ..all.clone()
    };
    assert_eq!(ids(store.audit_entries(&page).await.unwrap()), [b]);
}

async fn users_are_listed_by_page_search_upstream_and_sort_with_a_total(store: DynStore) {
    for (i, (up, subj)) in [
        ("auth0", "alice@example.com"),
        ("auth0", "bob@example.com"),
        ("okta", "Alice.Smith"),
        ("okta", "carol_1"),
        ("okta", "carol%2"),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .link_user(up, subj, &format!("sub-{i}"), T + i as i64)
            .await
            .unwrap();
    }
    let q = |search: Option<&str>, upstream: Option<&str>, sort, offset, limit| UserQuery {
        search: search.map(str::to_string),
        upstream_id: upstream.map(str::to_string),
        sort,
        offset,
        limit,
    };
    let subs = |v: (Vec<User>, i64)| (v.0.into_iter().map(|u| u.sub).collect::<Vec<_>>(), v.1);
    let all = store
        .list_users(&q(None, None, UserSort::LastLoginDesc, 0, 2))
        .await
        .unwrap();
    assert_eq!(subs(all), (vec!["sub-4".to_string(), "sub-3".into()], 5));
    let page2 = store
        .list_users(&q(None, None, UserSort::LastLoginDesc, 2, 2))
        .await
        .unwrap();
    assert_eq!(subs(page2), (vec!["sub-2".to_string(), "sub-1".into()], 5));
    // Case-insensitive, on the upstream subject or the sub.
    let alice = store
        .list_users(&q(Some("ALICE"), None, UserSort::SubAsc, 0, 10))
        .await
        .unwrap();
    assert_eq!(subs(alice), (vec!["sub-0".to_string(), "sub-2".into()], 2));
    let by_sub = store
        .list_users(&q(Some("sub-3"), None, UserSort::SubAsc, 0, 10))
        .await
        .unwrap();
    assert_eq!(subs(by_sub).1, 1);
    // LIKE wildcards in the search are literal characters.
    let pct = store
        .list_users(&q(Some("%"), None, UserSort::SubAsc, 0, 10))
        .await
        .unwrap();
    assert_eq!(subs(pct), (vec!["sub-4".to_string()], 1));
    let under = store
        .list_users(&q(Some("l_"), None, UserSort::SubAsc, 0, 10))
        .await
        .unwrap();
    assert_eq!(subs(under), (vec!["sub-3".to_string()], 1));
    let okta = store
        .list_users(&q(None, Some("okta"), UserSort::CreatedAsc, 0, 10))
        .await
        .unwrap();
    assert_eq!(
        subs(okta),
        (vec!["sub-2".to_string(), "sub-3".into(), "sub-4".into()], 3)
    );
}

/// What a client `client_id` was given by user `sub` on login `ctx`: an unredeemed code, a
/// redeemed one with its access token and refresh token, and a grant.
async fn issue_to(store: &DynStore, client_id: &str, sub: &str, ctx: &str) {
    let tag = format!("{client_id}-{sub}");
    let mine = |mut c: CodeRecord| {
        c.client_id = client_id.into();
        c.sub = sub.into();
        c.auth_context_id = ctx.into();
        c
    };
    store
        .insert_code(&mine(code(&format!("open-{tag}"), T, T + 60)))
        .await
        .unwrap();
    let redeemed = mine(code(&format!("used-{tag}"), T, T + 60));
    store.insert_code(&redeemed).await.unwrap();
    let access = AccessTokenRecord {
        client_id: client_id.into(),
        sub: sub.into(),
        auth_context_id: ctx.into(),
        family_id: Some(format!("fam-{tag}")),
        ..token(&format!("at-{tag}"), &redeemed.code_hash, T, T + 3600)
    };
    let first = RefreshTokenRecord {
        client_id: client_id.into(),
        sub: sub.into(),
        auth_context_id: ctx.into(),
        code_hash: Some(redeemed.code_hash.clone()),
        ..refresh(&format!("rt-{tag}"), &format!("fam-{tag}"), T)
    };
    assert_eq!(
        store
            .redeem_code(&redeemed.code_hash, T, &access, Some(&first))
            .await
            .unwrap(),
        Redemption::Redeemed
    );
    let g = Grant {
        sub: sub.into(),
        client_id: client_id.into(),
        ..grant("openid email", T, T)
    };
    let rec = ConsentRecord {
        client_id: client_id.into(),
        ..consent(&format!("cr-{tag}"), sub, "openid email", "", T)
    };
    store.record_consent(Some(&g), &rec, &[]).await.unwrap();
}

/// Whether each thing `issue_to` gave is still live: (open code, access token, refresh token,
/// grant).
async fn still_live(store: &DynStore, client_id: &str, sub: &str) -> (bool, bool, bool, bool) {
    let tag = format!("{client_id}-{sub}");
    let code = issued_code(store, &format!("open-{tag}")).await.unwrap();
    let at = store
        .access_token(&format!("at-{tag}"))
        .await
        .unwrap()
        .unwrap();
    let rt = store
        .refresh_token(&format!("rt-{tag}"))
        .await
        .unwrap()
        .unwrap();
    let grant = store.grant(sub, client_id).await.unwrap();
    (
        code.consumed_at.is_none(),
        at.revoked_at.is_none(),
        rt.revoked_at.is_none(),
        grant.is_some(),
    )
}

/// A removal whose withdrawals are recorded as Herald records them (one record and one
/// `consent.withdrawn` row per grant), with ids the test can name.
fn client_removal(client_id: &str) -> Removal {
    Removal::Client {
        client_id: client_id.into(),
        withdrawal: Withdrawal(Arc::new(|g: &Grant| {
            let record = ConsentRecord {
                id: format!("0001-removal-{}", g.sub),
                sub: g.sub.clone(),
                client_id: g.client_id.clone(),
                allowed: "".into(),
                denied: g.scopes.clone(),
                text_versions: g.scope_versions.clone(),
                method: ConsentMethod::ClientDeleted,
                decided_at: T + 10,
                decision: ConsentOutcome::Withdrawn,
                locale: "en".into(),
                wording: "{}".into(),
                purposes: r#"{"marketing":{"decision":"withdrawn","version":"v1","legal_basis":"consent"}}"#.into(),
                source: None,
                source_reference: None,
            };
            let event = outbox_row(
                &format!("withdrawn-{}", g.sub),
                "consent.withdrawn",
                "webhook https://a.example/h",
                "{}",
                T + 10,
            );
            (record, vec![event])
        })),
    }
}

async fn removing_a_client_burns_its_codes_revokes_its_tokens_and_ends_its_grants_with_records(
    store: DynStore,
) {
    store.seed_config(&config(1, "a = 1")).await.unwrap();
    issue_to(&store, "gone", "sub-1", "ctx-1").await;
    issue_to(&store, "gone", "sub-2", "ctx-2").await;
    issue_to(&store, "kept", "sub-1", "ctx-1").await;

    store
        .save_config(
            &config(2, "a = 2"),
            &audit("client:ops", "client:gone", T + 10, Some(2)),
            &[client_removal("gone")],
        )
        .await
        .unwrap();

    for sub in ["sub-1", "sub-2"] {
        assert_eq!(
            still_live(&store, "gone", sub).await,
            (false, false, false, false),
            "{sub}"
        );
        let at = store
            .access_token(&format!("at-gone-{sub}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(at.revoked_at, Some(T + 10));
        // The withdrawal is on record: everything granted, withdrawn with the client, with its
        // event and the purpose state it moved.
        let records = store.consent_records(sub).await.unwrap();
        let last = records
            .iter()
            .find(|r| r.method == ConsentMethod::ClientDeleted)
            .unwrap();
        assert_eq!(last.id, format!("0001-removal-{sub}"));
        assert_eq!(
            (last.allowed.as_str(), last.denied.as_str()),
            ("", "openid email")
        );
        assert_eq!(last.text_versions, r#"{"email":"1","openid":"1"}"#);
        assert_eq!(last.decision, ConsentOutcome::Withdrawn);
        let states = store.purpose_states(sub).await.unwrap();
        assert_eq!(states.len(), 1);
        assert_eq!(
            (states[0].purpose.as_str(), states[0].decision),
            ("marketing", ConsentOutcome::Withdrawn)
        );
        let pending = store
            .deliveries(Some(DeliveryState::Pending), 50)
            .await
            .unwrap();
        assert!(
            pending
                .iter()
                .any(|d| d.event_id == format!("withdrawn-{sub}")),
            "{pending:?}"
        );
        // Earlier records stay: they are proof of what was allowed.
        assert!(records.iter().any(|r| r.id == format!("cr-gone-{sub}")));
    }
    assert_eq!(
        still_live(&store, "kept", "sub-1").await,
        (true, true, true, true)
    );
    assert_eq!(store.latest_config_version().await.unwrap(), Some(2));
    let entries = store
        .audit_entries(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].target, "client:gone");
}

async fn removing_an_upstream_revokes_its_logins_and_everything_issued_from_them_only(
    store: DynStore,
) {
    store.seed_config(&config(1, "a = 1")).await.unwrap();
    for (id, sub, upstream) in [("ctx-1", "sub-1", "gone"), ("ctx-2", "sub-2", "kept")] {
        store
            .insert_context(&StoredContext {
                id: id.into(),
                sub: sub.into(),
                upstream_id: upstream.into(),
                context: "{}".into(),
                auth_time: T - 5,
                created_at: T,
                expires_at: None,
                revoked_at: None,
                upstream_sid: None,
                upstream_refresh: None,
                upstream_subject: None,
            })
            .await
            .unwrap();
        store
            .insert_upstream_login(&UpstreamLogin {
                upstream_id: upstream.into(),
                ..upstream_login(&format!("state-{upstream}"), T, T + 600)
            })
            .await
            .unwrap();
        issue_to(&store, "app", sub, id).await;
    }

    store
        .save_config(
            &config(2, "a = 2"),
            &audit("client:ops", "upstream:gone", T + 10, Some(2)),
            &[Removal::Upstream {
                upstream_id: "gone".into(),
                logouts: Logouts::none(),
            }],
        )
        .await
        .unwrap();

    let ended = store.context("ctx-1").await.unwrap().unwrap();
    assert_eq!(ended.revoked_at, Some(T + 10));
    // The login's codes and tokens end; the user's grant is theirs, not the upstream's.
    assert_eq!(
        still_live(&store, "app", "sub-1").await,
        (false, false, false, true)
    );
    let rt = store.refresh_token("rt-app-sub-1").await.unwrap().unwrap();
    assert_eq!(rt.revoked_at, Some(T + 10));
    assert!(
        store
            .take_upstream_login("state-gone")
            .await
            .unwrap()
            .is_none()
    );

    assert_eq!(
        store.context("ctx-2").await.unwrap().unwrap().revoked_at,
        None
    );
    assert_eq!(
        still_live(&store, "app", "sub-2").await,
        (true, true, true, true)
    );
    assert!(
        store
            .take_upstream_login("state-kept")
            .await
            .unwrap()
            .is_some()
    );
}

async fn removals_in_a_configuration_change_that_lost_the_race_change_nothing(store: DynStore) {
    store.seed_config(&config(1, "a = 1")).await.unwrap();
    issue_to(&store, "app", "sub-1", "ctx-1").await;
    store
        .insert_context(&StoredContext {
            id: "ctx-1".into(),
            sub: "sub-1".into(),
            upstream_id: "auth0".into(),
            context: "{}".into(),
            auth_time: T - 5,
            created_at: T,
            expires_at: None,
            revoked_at: None,
            upstream_sid: None,
            upstream_refresh: None,
            upstream_subject: None,
        })
        .await
        .unwrap();
    store
        .save_config(
            &config(2, "a = 2"),
            &audit("client:one", "x", T, Some(2)),
            &[],
        )
        .await
        .unwrap();

    let err = store
        .save_config(
            &config(2, "a = 3"),
            &audit("client:two", "client:app", T + 10, Some(2)),
            &[
                client_removal("app"),
                Removal::Upstream {
                    upstream_id: "auth0".into(),
                    logouts: Logouts::none(),
                },
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        still_live(&store, "app", "sub-1").await,
        (true, true, true, true)
    );
    assert_eq!(
        store.context("ctx-1").await.unwrap().unwrap().revoked_at,
        None
    );
    assert!(
        store
            .consent_records("sub-1")
            .await
            .unwrap()
            .iter()
            .all(|r| r.method != "admin")
    );
}

// ---------------------------------------------------------------------------------------------
// Stored values no release writes
// ---------------------------------------------------------------------------------------------

async fn an_unknown_consent_method_reads_back_as_corrupt(store: DynStore, raw: Raw) {
    store
        .record_consent(None, &consent("r1", "sub-1", "openid", "", T), &[])
        .await
        .unwrap();
    raw.execute(
        "INSERT INTO consent_records (id, sub, client_id, allowed, denied, text_versions, \
         method, decided_at) VALUES ('r2', 'sub-1', 'app', '', 'openid', '{}', 'carrier_pigeon', 1)",
    )
    .await;
    let read = store.consent_records("sub-1").await;
    assert!(
        matches!(&read, Err(StoreError::Corrupt(e)) if e.contains("column method")),
        "{read:?}"
    );
    // Another user's records are unaffected.
    assert!(store.consent_records("sub-2").await.unwrap().is_empty());
}

async fn an_unknown_key_algorithm_reads_back_as_corrupt(store: DynStore, raw: Raw) {
    store.insert_signing_key(&key("k1", T)).await.unwrap();
    assert_eq!(store.signing_keys().await.unwrap()[0].alg, KeyAlg::ES256);
    raw.execute("UPDATE signing_keys SET alg = 'HS256' WHERE kid = 'k1'")
        .await;
    let read = store.signing_keys().await;
    assert!(
        matches!(&read, Err(StoreError::Corrupt(e)) if e.contains("column alg")),
        "{read:?}"
    );
}

/// What a failed start leaves is removed whole: the database file and its `-wal` and `-shm`.
#[tokio::test]
async fn an_sqlite_database_is_removed_with_its_companion_files() {
    let path = std::env::temp_dir().join(format!("herald-remove-{}.db", random_token()));
    let url = format!("sqlite://{}", path.display());
    let store = connect(&url).await.unwrap();
    store.ping().await.unwrap();
    let files: Vec<std::path::PathBuf> = ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut file = path.clone().into_os_string();
            file.push(suffix);
            file.into()
        })
        .collect();
    assert!(files.iter().all(|f| f.exists()), "{files:?}");
    herald::store::SqliteStore::remove_files(&url).unwrap();
    assert!(files.iter().all(|f| !f.exists()), "{files:?}");
    assert!(!herald::store::SqliteStore::exists(&url));
    // Nothing to remove is no error.
    herald::store::SqliteStore::remove_files(&url).unwrap();
}

/// An outbox row for `destination`, as `herald::outbox::rows` makes them.
fn outbox_row(
    event_id: &str,
    event_type: &str,
    destination: &str,
    body: &str,
    at: i64,
) -> OutboxRow {
    OutboxRow {
        id: random_token(),
        event_id: event_id.into(),
        event_type: event_type.into(),
        destination: destination.into(),
        body: body.into(),
        created_at: at,
        only_for_new_user: event_type == "user.created",
    }
}

async fn a_decision_and_its_events_are_stored_together_or_not_at_all(store: DynStore) {
    let rows = [
        outbox_row(
            "e1",
            "consent.granted",
            "webhook https://a.example/h",
            "{}",
            T,
        ),
        outbox_row(
            "e1",
            "consent.granted",
            "webhook https://b.example/h",
            "{}",
            T,
        ),
    ];
    let rec = consent("cr-1", "sub-1", "openid", "", T);
    store
        .record_consent(Some(&grant("openid", T, T)), &rec, &rows)
        .await
        .unwrap();
    let stored = store.deliveries(None, 10).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(
        stored
            .iter()
            .all(|d| d.event_id == "e1" && d.state == DeliveryState::Pending)
    );
    assert!(
        stored
            .iter()
            .all(|d| d.attempts == 0 && d.next_attempt_at == T)
    );
    // The same record id again: the decision fails, and so no event of it is written.
    let again = [outbox_row(
        "e2",
        "consent.granted",
        "webhook https://a.example/h",
        "{}",
        T,
    )];
    let err = store
        .record_consent(Some(&grant("openid", T, T)), &rec, &again)
        .await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert_eq!(store.deliveries(None, 10).await.unwrap().len(), 2);
}

async fn a_login_writes_its_events_under_the_users_sub_and_user_created_only_once(store: DynStore) {
    let events = |new_sub: &str, tag: &str| {
        vec![
            outbox_row(
                &format!("login-{tag}"),
                "login.succeeded",
                "webhook https://a.example/h",
                &format!(r#"{{"data":{{"sub":"{new_sub}"}}}}"#),
                T,
            ),
            outbox_row(
                &format!("created-{tag}"),
                "user.created",
                "webhook https://a.example/h",
                &format!(r#"{{"data":{{"sub":"{new_sub}"}}}}"#),
                T,
            ),
        ]
    };
    for (req, sub, ctx) in [
        ("req-1", "proposal-1", "ctx-1"),
        ("req-2", "proposal-2", "ctx-2"),
    ] {
        store
            .insert_auth_request(&auth_request(req, T, T + 600))
            .await
            .unwrap();
        let mut login = finished("alice", sub, ctx, req, T);
        login.outbox = events(sub, req);
        store.finish_upstream_login(&login).await.unwrap().unwrap();
    }
    let mut rows = store.deliveries(None, 10).await.unwrap();
    rows.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    let ids: Vec<&str> = rows.iter().map(|d| d.event_id.as_str()).collect();
    // The second login found the user: no second user.created, and its login names the user.
    assert_eq!(ids, ["created-req-1", "login-req-1", "login-req-2"]);
    assert!(
        rows.iter().all(|d| d.body.contains("proposal-1")),
        "{rows:?}"
    );
}

async fn one_holder_has_the_outbox_lease_until_it_expires(store: DynStore) {
    assert!(store.take_lease("outbox", "a", T, T + 60).await.unwrap());
    assert!(
        !store
            .take_lease("outbox", "b", T + 10, T + 70)
            .await
            .unwrap()
    );
    assert!(
        store
            .take_lease("outbox", "a", T + 30, T + 90)
            .await
            .unwrap(),
        "renewed"
    );
    assert!(
        !store
            .take_lease("outbox", "b", T + 89, T + 149)
            .await
            .unwrap()
    );
    assert!(
        store
            .take_lease("outbox", "b", T + 90, T + 150)
            .await
            .unwrap(),
        "expired"
    );
    assert!(
        !store
            .take_lease("outbox", "a", T + 100, T + 160)
            .await
            .unwrap()
    );
    assert!(
        store
            .take_lease("other", "a", T + 100, T + 160)
            .await
            .unwrap()
    );
}

async fn deliveries_go_from_pending_to_delivered_or_failed_and_failed_ones_can_be_retried(
    store: DynStore,
) {
    let rows: Vec<OutboxRow> = (0..3)
        .map(|i| {
            outbox_row(
                &format!("e{i}"),
                "login.succeeded",
                "webhook https://a.example/h",
                "{}",
                T + i,
            )
        })
        .collect();
    let rec = consent("cr-1", "sub-1", "openid", "", T);
    store
        .record_consent(Some(&grant("openid", T, T)), &rec, &rows)
        .await
        .unwrap();
    let due = store.due_deliveries(T + 2, 10).await.unwrap();
    assert_eq!(due.len(), 3, "due at their creation");
    assert_eq!(store.due_deliveries(T + 1, 10).await.unwrap().len(), 2);
    assert_eq!(store.due_deliveries(T + 2, 1).await.unwrap().len(), 1);
    let (a, b, c) = (&due[0].id, &due[1].id, &due[2].id);
    store.delivery_done(a, 1, T + 5).await.unwrap();
    store
        .delivery_failed(b, 1, Some(T + 100), "answered 500")
        .await
        .unwrap();
    store.delivery_failed(c, 3, None, "gave up").await.unwrap();
    assert!(store.due_deliveries(T + 99, 10).await.unwrap().is_empty());
    let again = store.due_deliveries(T + 100, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].attempts, again[0].last_error.as_deref()),
        (1, Some("answered 500"))
    );
    let delivered = store
        .deliveries(Some(DeliveryState::Delivered), 10)
        .await
        .unwrap();
    assert_eq!(
        (delivered.len(), delivered[0].delivered_at),
        (1, Some(T + 5))
    );
    let failed = store
        .deliveries(Some(DeliveryState::Failed), 10)
        .await
        .unwrap();
    assert_eq!((failed.len(), failed[0].attempts), (1, 3));
    assert!(
        !store.retry_delivery(a, T + 200).await.unwrap(),
        "only failed ones"
    );
    assert!(store.retry_delivery(c, T + 200).await.unwrap());
    assert_eq!(store.due_deliveries(T + 200, 10).await.unwrap().len(), 2);
}

async fn an_erased_user_leaves_only_pseudonymised_records_and_its_event(store: DynStore) {
    for sub in ["sub-1", "sub-2"] {
        store
            .link_user("auth0", &format!("auth0|{sub}"), sub, T)
            .await
            .unwrap();
        let mut g = grant("openid", T, T);
        g.sub = sub.into();
        store
            .record_consent(
                Some(&g),
                &consent(&format!("cr-{sub}"), sub, "openid", "", T),
                &[],
            )
            .await
            .unwrap();
    }
    let event = [outbox_row(
        "e1",
        "user.deleted",
        "webhook https://a.example/h",
        "{}",
        T,
    )];
    assert!(
        store
            .erase_user("sub-1", T + 1, Some("erased-x"), &event, &Logouts::none())
            .await
            .unwrap()
    );
    assert_eq!(store.user("sub-1").await.unwrap(), None);
    assert!(store.grants("sub-1").await.unwrap().is_empty());
    assert!(store.consent_records("sub-1").await.unwrap().is_empty());
    let kept = store.consent_records("erased-x").await.unwrap();
    assert_eq!((kept.len(), kept[0].id.as_str()), (1, "cr-sub-1"));
    assert_eq!(store.deliveries(None, 10).await.unwrap().len(), 1);
    // Another user is untouched; an unknown sub is no erasure and writes no event.
    assert!(store.user("sub-2").await.unwrap().is_some());
    assert_eq!(store.grants("sub-2").await.unwrap().len(), 1);
    assert!(
        !store
            .erase_user("sub-1", T + 2, None, &event, &Logouts::none())
            .await
            .unwrap()
    );
    assert_eq!(store.deliveries(None, 10).await.unwrap().len(), 1);
    // Purged: no record stays.
    assert!(
        store
            .erase_user("sub-2", T + 3, None, &[], &Logouts::none())
            .await
            .unwrap()
    );
    assert!(store.consent_records("sub-2").await.unwrap().is_empty());
}

/// A record deciding `purpose` at `at`, as an import writes it.
fn purpose_record(
    id: &str,
    sub: &str,
    purpose: &str,
    decision: ConsentOutcome,
    at: i64,
) -> ConsentRecord {
    ConsentRecord {
        method: ConsentMethod::Import,
        decision,
        purposes: format!(
            r#"{{"{purpose}":{{"decision":"{}","version":"v1","legal_basis":"consent"}}}}"#,
            decision.as_str()
        ),
        source: Some("onetrust".into()),
        source_reference: Some("rcpt-1".into()),
        ..consent(id, sub, "", "", at)
    }
}

async fn purpose_states_follow_the_latest_decision_and_an_older_import_does_not_win(
    store: DynStore,
) {
    let events = [outbox_row(
        "imp-1",
        "consent.granted",
        "webhook https://a.example/h",
        "{}",
        T,
    )];
    store
        .import_consents(
            &[
                purpose_record("r1", "sub-1", "marketing", ConsentOutcome::Granted, T),
                purpose_record("r2", "sub-1", "analytics", ConsentOutcome::Denied, T),
            ],
            &events,
        )
        .await
        .unwrap();
    // A later withdrawal made in Herald moves the state.
    store
        .record_consent(
            None,
            &purpose_record(
                "r3",
                "sub-1",
                "marketing",
                ConsentOutcome::Withdrawn,
                T + 20,
            ),
            &[],
        )
        .await
        .unwrap();
    // An import of an older decision is recorded but does not undo it.
    store
        .import_consents(
            &[purpose_record(
                "r4",
                "sub-1",
                "marketing",
                ConsentOutcome::Granted,
                T + 10,
            )],
            &[],
        )
        .await
        .unwrap();
    let states = store.purpose_states("sub-1").await.unwrap();
    let got: Vec<(&str, ConsentOutcome, &str)> = states
        .iter()
        .map(|s| (s.purpose.as_str(), s.decision, s.record_id.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("analytics", ConsentOutcome::Denied, "r2"),
            ("marketing", ConsentOutcome::Withdrawn, "r3"),
        ]
    );
    let records = store.consent_records("sub-1").await.unwrap();
    assert_eq!(records.len(), 4);
    let imported = records.iter().find(|r| r.id == "r4").unwrap();
    assert_eq!(imported.source.as_deref(), Some("onetrust"));
    assert_eq!(imported.source_reference.as_deref(), Some("rcpt-1"));
    assert_eq!(imported.method, ConsentMethod::Import);
    assert!(store.purpose_states("sub-2").await.unwrap().is_empty());
    let pending = store
        .deliveries(Some(DeliveryState::Pending), 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
}

async fn an_account_link_is_spent_once_and_not_after_it_expires(store: DynStore) {
    let link = |hash: &str, expires_at: i64| AccountLink {
        token_hash: hash.into(),
        sub: "sub-1".into(),
        created_at: T,
        expires_at,
        used_at: None,
    };
    store
        .create_account_link(&link("h1", T + 900))
        .await
        .unwrap();
    store
        .create_account_link(&link("h2", T + 900))
        .await
        .unwrap();
    // First use: the link as it was (unused, unexpired).
    let first = store.use_account_link("h1", T + 10).await.unwrap().unwrap();
    assert_eq!((first.sub.as_str(), first.used_at), ("sub-1", None));
    // Second use: reported used, at the first use's time.
    let second = store.use_account_link("h1", T + 20).await.unwrap().unwrap();
    assert_eq!(second.used_at, Some(T + 10));
    // Past its expiry: not spent, reported as it is.
    let late = store
        .use_account_link("h2", T + 900)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((late.used_at, late.expires_at), (None, T + 900));
    assert_eq!(store.use_account_link("nope", T).await.unwrap(), None);
    // Twenty browsers racing on one link: exactly one spends it.
    store
        .create_account_link(&link("h3", T + 900))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.use_account_link("h3", T + 30).await.unwrap().unwrap()
        }));
    }
    let mut spent = 0;
    for t in tasks {
        if t.await.unwrap().used_at.is_none() {
            spent += 1;
        }
    }
    assert_eq!(spent, 1);
}

async fn user_holdings_list_a_users_logins_tokens_and_sessions_only(store: DynStore) {
    for (ctx, sub) in [("ctx-1", "sub-1"), ("ctx-2", "sub-2")] {
        store
            .insert_context(&StoredContext {
                id: ctx.into(),
                sub: sub.into(),
                upstream_id: "auth0".into(),
                context: r#"{"attributes":{}}"#.into(),
                auth_time: T,
                created_at: T,
                expires_at: None,
                revoked_at: None,
                upstream_sid: None,
                upstream_refresh: None,
                upstream_subject: None,
            })
            .await
            .unwrap();
        issue_to(&store, "app", sub, ctx).await;
    }
    let session = |sub: &str| format!(r#"{{"id":"x","data":{{"login":{{"sub":"{sub}"}}}}}}"#);
    assert!(
        store
            .create_session("s1", &session("sub-1"), T + 100)
            .await
            .unwrap()
    );
    assert!(
        store
            .create_session("s2", &session("sub-2"), T + 200)
            .await
            .unwrap()
    );
    let held = store.user_holdings("sub-1").await.unwrap();
    assert_eq!(held.contexts.len(), 1);
    assert_eq!(held.contexts[0].id, "ctx-1");
    assert_eq!(held.access_tokens.len(), 1);
    assert_eq!(held.access_tokens[0].jti, "at-app-sub-1");
    assert_eq!(held.refresh_tokens.len(), 1);
    assert_eq!(held.session_expiries, [T + 100]);
    assert_eq!(
        store.user_holdings("nobody").await.unwrap(),
        Default::default()
    );
}

async fn users_are_found_by_email_and_name_and_a_login_records_its_event(store: DynStore) {
    store
        .insert_auth_request(&auth_request("req-1", T, T + 600))
        .await
        .unwrap();
    let login = finished("auth0|ada", "sub-1", "ctx-1", "req-1", T + 10);
    store.finish_upstream_login(&login).await.unwrap().unwrap();
    store
        .link_user("auth0", "auth0|bob", "sub-2", T)
        .await
        .unwrap();

    // users-by-email: the whole address, in any case; nothing for a part of it.
    let found = store.users_by_email("ada@EXAMPLE.com").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].sub, "sub-1");
    assert!(store.users_by_email("ada@").await.unwrap().is_empty());
    // The list's search matches a part of the email or the name, in any case.
    for q in ["example.COM", "lovelace"] {
        let (users, total) = store
            .list_users(&UserQuery {
                search: Some(q.into()),
                limit: 10,
                ..UserQuery::default()
            })
            .await
            .unwrap();
        assert_eq!((users.len(), total), (1, 1), "{q}");
        assert_eq!(users[0].sub, "sub-1");
    }
    // The login wrote its success event in its transaction.
    let events = store
        .login_events(&LoginEventQuery {
            limit: 10,
            ..LoginEventQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (
            e.result,
            e.sub.as_deref(),
            e.upstream_id.as_deref(),
            e.client_id.as_str(),
            e.at
        ),
        (
            LoginResult::Success,
            Some("sub-1"),
            Some("auth0"),
            "app",
            T + 10
        )
    );
}

async fn blocking_a_user_revokes_their_tokens_and_ends_their_sessions(store: DynStore) {
    assert_eq!(
        store
            .set_user_blocked("nobody", true, T, &Logouts::none())
            .await
            .unwrap(),
        None
    );
    store
        .link_user("auth0", "auth0|ada", "sub-1", T)
        .await
        .unwrap();
    store.insert_code(&code("code-1", T, T + 60)).await.unwrap();
    store
        .redeem_code(
            "code-1",
            T + 1,
            &token("at-1", "code-1", T + 1, T + 3600),
            Some(&refresh("rt-1", "fam-1", T + 1)),
        )
        .await
        .unwrap();
    store
        .create_session("s-ada", r#"{"login":{"sub":"sub-1"}}"#, T + 3600)
        .await
        .unwrap();
    store
        .create_session("s-bob", r#"{"login":{"sub":"sub-2"}}"#, T + 3600)
        .await
        .unwrap();

    assert_eq!(
        store
            .set_user_blocked("sub-1", true, T + 5, &Logouts::none())
            .await
            .unwrap(),
        Some(2)
    );
    assert!(store.user("sub-1").await.unwrap().unwrap().blocked);
    assert_eq!(
        store
            .access_token("at-1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(T + 5)
    );
    assert_eq!(
        store
            .refresh_token("rt-1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(T + 5)
    );
    assert_eq!(store.load_session("s-ada", T + 6).await.unwrap(), None);
    assert!(store.load_session("s-bob", T + 6).await.unwrap().is_some());
    // Unblocking lifts the flag and revives nothing.
    assert_eq!(
        store
            .set_user_blocked("sub-1", false, T + 7, &Logouts::none())
            .await
            .unwrap(),
        Some(0)
    );
    let user = store.user("sub-1").await.unwrap().unwrap();
    assert!(!user.blocked);
    assert!(
        store
            .access_token("at-1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
}

fn login_event(
    id: &str,
    at: i64,
    result: LoginResult,
    sub: Option<&str>,
    client: &str,
) -> LoginEvent {
    LoginEvent {
        id: 0,
        at,
        result,
        sub: sub.map(str::to_string),
        upstream_id: Some("auth0".into()),
        client_id: client.into(),
        // The test's name for it.
        reason: Some(id.into()),
    }
}

async fn login_events_filter_page_expire_and_go_with_an_erased_user(store: DynStore) {
    store
        .link_user("auth0", "auth0|ada", "sub-1", T)
        .await
        .unwrap();
    let events = [
        login_event("e1", T, LoginResult::Success, Some("sub-1"), "app"),
        login_event("e2", T + 1, LoginResult::Failure, None, "app"),
        login_event("e3", T + 1, LoginResult::Blocked, Some("sub-1"), "spa"),
        login_event("e4", T + 2, LoginResult::Denied, Some("sub-2"), "app"),
    ];
    for e in &events {
        store.record_login_event(e).await.unwrap();
    }
    let ids = |q: LoginEventQuery| {
        let store = store.clone();
        async move {
            store
                .login_events(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.reason.unwrap())
                .collect::<Vec<_>>()
        }
    };
    let all = LoginEventQuery {
        limit: 10,
        ..LoginEventQuery::default()
    };
    assert_eq!(ids(all.clone()).await, ["e4", "e3", "e2", "e1"]);
    let listed = store.login_events(&all).await.unwrap();
    assert_eq!(
        listed[1],
        LoginEvent {
            id: listed[1].id,
            ..events[2].clone()
        },
        "read back as written"
    );
    // Ids follow the order of recording.
    assert!(listed.windows(2).all(|w| w[0].id > w[1].id));
    let only = |f: fn(&mut LoginEventQuery)| {
        let mut q = all.clone();
        f(&mut q);
        q
    };
    assert_eq!(
        ids(only(|q| q.result = Some(LoginResult::Failure))).await,
        ["e2"]
    );
    assert_eq!(
        ids(only(|q| q.sub = Some("sub-1".into()))).await,
        ["e3", "e1"]
    );
    assert_eq!(
        ids(only(|q| q.client_id = Some("spa".into()))).await,
        ["e3"]
    );
    assert!(
        ids(only(|q| q.upstream_id = Some("okta".into())))
            .await
            .is_empty()
    );
    // Pages: two at a time, the second after the first's last (same second, smaller id).
    let first = ids(only(|q| q.limit = 2)).await;
    assert_eq!(first, ["e4", "e3"]);
    let second = ids(LoginEventQuery {
        before: Some(listed[1].id),
        limit: 2,
        ..LoginEventQuery::default()
    })
    .await;
    assert_eq!(second, ["e2", "e1"]);

    // Kept 90 days.
    store
        .purge_expired(T + 1 + herald::store::LOGIN_EVENT_RETENTION_SECS)
        .await
        .unwrap();
    assert_eq!(ids(all.clone()).await, ["e4", "e3", "e2"]);
    // An erased user's events go with them; others stay.
    assert!(
        store
            .erase_user("sub-1", T + 3, None, &[], &Logouts::none())
            .await
            .unwrap()
    );
    assert_eq!(ids(all).await, ["e4", "e2"]);
}

async fn a_login_past_its_end_is_purged_once_nothing_issued_from_it_is_left(store: DynStore) {
    // session_context expires at T + 600.
    for (id, sub) in [("ctx-bare", "sub-1"), ("ctx-issued", "sub-2")] {
        store
            .insert_context(&session_context(id, sub, "up", None))
            .await
            .unwrap();
    }
    issue_to(&store, "app", "sub-2", "ctx-issued").await;
    store.purge_expired(T + 599).await.unwrap();
    assert!(
        store.context("ctx-bare").await.unwrap().is_some(),
        "not yet past its end"
    );
    store.purge_expired(T + 601).await.unwrap();
    assert!(store.context("ctx-bare").await.unwrap().is_none());
    assert!(
        store.context("ctx-issued").await.unwrap().is_some(),
        "its refresh token lives"
    );
}

/// The apps a [`Logouts`] was called with: client, sub, login.
type Seen = std::sync::Mutex<Vec<(String, String, String)>>;

async fn the_apps_of_a_login_are_found_and_owed_logout_rows_only_when_it_ends(store: DynStore) {
    for (id, sub) in [("ctx-1", "sub-1"), ("ctx-2", "sub-2")] {
        store
            .insert_context(&session_context(id, sub, "up", None))
            .await
            .unwrap();
    }
    issue_to(&store, "app", "sub-1", "ctx-1").await;
    issue_to(&store, "other", "sub-1", "ctx-1").await;
    issue_to(&store, "app", "sub-2", "ctx-2").await;
    // Logouts that record the apps they are called with and owe each one a row.
    let seen: Arc<Seen> = Arc::default();
    let record = seen.clone();
    let logouts = Logouts(Arc::new(move |apps: &[herald::store::AppLogin]| {
        let mut seen = record.lock().unwrap();
        apps.iter()
            .map(|a| {
                seen.push((
                    a.client_id.clone(),
                    a.sub.clone(),
                    a.auth_context_id.clone(),
                ));
                outbox_row(
                    &random_token(),
                    "logout.backchannel",
                    "backchannel x",
                    "{}",
                    T,
                )
            })
            .collect()
    }));
    let taken = |seen: &Arc<Seen>| std::mem::take(&mut *seen.lock().unwrap());
    let one = EndLogins {
        context_id: Some("ctx-1"),
        ..EndLogins::default()
    };
    // Owed without ending: both apps of the login, once each.
    assert_eq!(store.owe_logouts(&one, &logouts).await.unwrap(), 2);
    let want = |c: &str, s: &str, x: &str| (c.to_string(), s.to_string(), x.to_string());
    assert_eq!(
        taken(&seen),
        [
            want("app", "sub-1", "ctx-1"),
            want("other", "sub-1", "ctx-1")
        ]
    );
    assert_eq!(store.due_deliveries(T + 1, 10).await.unwrap().len(), 2);
    // Ended: the same apps, their rows in the same transaction.
    assert_eq!(store.end_logins(&one, T + 1, &logouts).await.unwrap(), 1);
    assert_eq!(taken(&seen).len(), 2);
    assert_eq!(store.due_deliveries(T + 1, 10).await.unwrap().len(), 4);
    // Ended already: nothing ends, no app is found, no row is written.
    assert_eq!(store.end_logins(&one, T + 2, &logouts).await.unwrap(), 0);
    assert!(taken(&seen).is_empty());
    assert_eq!(store.due_deliveries(T + 2, 10).await.unwrap().len(), 4);
    // Blocking ends the user's logins once: a second block changes and writes nothing.
    store
        .link_user("up", "subject-of-sub-2", "sub-2", T)
        .await
        .unwrap();
    // The count is every code and token of the user, those of its live logins included: the
    // open code, the access token and the refresh token issue_to made.
    assert_eq!(
        store
            .set_user_blocked("sub-2", true, T + 3, &logouts)
            .await
            .unwrap()
            .map(|revoked| (revoked, taken(&seen).len())),
        Some((3, 1))
    );
    assert_eq!(
        store
            .set_user_blocked("sub-2", true, T + 4, &logouts)
            .await
            .unwrap(),
        Some(0)
    );
    assert!(taken(&seen).is_empty());
}

/// A context `id` of `sub` through `upstream` in upstream session `sid`.
fn session_context(id: &str, sub: &str, upstream: &str, sid: Option<&str>) -> StoredContext {
    StoredContext {
        id: id.into(),
        sub: sub.into(),
        upstream_id: upstream.into(),
        context: "{}".into(),
        auth_time: T - 5,
        created_at: T,
        expires_at: Some(T + 600),
        revoked_at: None,
        upstream_sid: sid.map(str::to_string),
        upstream_refresh: Some("aes256gcm:sealed".into()),
        upstream_subject: Some(format!("subject-of-{sub}")),
    }
}

async fn logins_end_by_upstream_session_user_or_context_with_what_was_issued_from_them(
    store: DynStore,
) {
    let contexts = [
        ("ctx-1", "sub-1", "up", Some("sid-a")),
        ("ctx-2", "sub-1", "up", Some("sid-b")),
        ("ctx-3", "sub-2", "up", Some("sid-a")),
        ("ctx-4", "sub-1", "other", Some("sid-a")),
    ];
    for (id, sub, upstream, sid) in contexts {
        store
            .insert_context(&session_context(id, sub, upstream, sid))
            .await
            .unwrap();
    }
    issue_to(&store, "app", "sub-1", "ctx-1").await;
    issue_to(&store, "app", "sub-2", "ctx-3").await;
    let ended = |id: &'static str| {
        let store = store.clone();
        async move {
            store
                .context(id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        }
    };
    // Naming nothing ends nothing.
    let none = EndLogins::default();
    assert_eq!(
        store
            .end_logins(&none, T + 1, &Logouts::none())
            .await
            .unwrap(),
        0
    );
    // Session sid-a of sub-1 at `up`: one context, and its tokens.
    let which = EndLogins {
        upstream_id: Some("up"),
        sub: Some("sub-1"),
        sid: Some("sid-a"),
        ..EndLogins::default()
    };
    assert_eq!(
        store
            .end_logins(&which, T + 2, &Logouts::none())
            .await
            .unwrap(),
        1
    );
    assert!(ended("ctx-1").await);
    assert!(!ended("ctx-2").await && !ended("ctx-3").await && !ended("ctx-4").await);
    assert_eq!(
        still_live(&store, "app", "sub-1").await,
        (false, false, false, true)
    );
    assert_eq!(
        still_live(&store, "app", "sub-2").await,
        (true, true, true, true)
    );
    // Session sid-a at `up`, whoever: sub-2's context (sub-1's is ended already).
    let which = EndLogins {
        upstream_id: Some("up"),
        sid: Some("sid-a"),
        ..EndLogins::default()
    };
    assert_eq!(
        store
            .end_logins(&which, T + 3, &Logouts::none())
            .await
            .unwrap(),
        1
    );
    assert!(ended("ctx-3").await);
    // A user at `up`: the rest of theirs there, not at `other`.
    let which = EndLogins {
        upstream_id: Some("up"),
        sub: Some("sub-1"),
        ..EndLogins::default()
    };
    assert_eq!(
        store
            .end_logins(&which, T + 4, &Logouts::none())
            .await
            .unwrap(),
        1
    );
    assert!(ended("ctx-2").await && !ended("ctx-4").await);
    // One context by id.
    let which = EndLogins {
        context_id: Some("ctx-4"),
        ..EndLogins::default()
    };
    assert_eq!(
        store
            .end_logins(&which, T + 5, &Logouts::none())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.context("ctx-4").await.unwrap().unwrap().revoked_at,
        Some(T + 5)
    );
    // By the subject at the upstream: that account's logins there only.
    store
        .insert_context(&session_context("ctx-5", "sub-3", "up", None))
        .await
        .unwrap();
    store
        .insert_context(&session_context("ctx-6", "sub-3", "other", None))
        .await
        .unwrap();
    let which = EndLogins {
        upstream_id: Some("up"),
        subject: Some("subject-of-sub-3"),
        ..EndLogins::default()
    };
    assert_eq!(
        store
            .end_logins(&which, T + 6, &Logouts::none())
            .await
            .unwrap(),
        1
    );
    assert!(ended("ctx-5").await && !ended("ctx-6").await);
}

async fn a_refreshed_context_replaces_its_claims_unless_it_has_ended(store: DynStore) {
    store.link_user("up", "up|ada", "sub-1", T).await.unwrap();
    store
        .insert_context(&session_context("ctx-1", "sub-1", "up", None))
        .await
        .unwrap();
    let fresh = StoredContext {
        context: r#"{"claims":"new"}"#.into(),
        expires_at: Some(T + 1200),
        upstream_refresh: Some("aes256gcm:rotated".into()),
        ..session_context("ctx-1", "sub-1", "up", None)
    };
    // The right to refresh: only with the token stored now, and one holder at a time.
    let stored = Some("aes256gcm:sealed");
    assert!(
        !store
            .claim_refresh("ctx-1", Some("aes256gcm:other"), T, T + 30)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_refresh("ctx-1", stored, T, T + 30)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_refresh("ctx-1", stored, T + 1, T + 31)
            .await
            .unwrap()
    );
    store.release_refresh("ctx-1").await.unwrap();
    assert!(
        store
            .claim_refresh("ctx-1", stored, T + 2, T + 32)
            .await
            .unwrap()
    );
    assert!(store.refresh_context(&fresh).await.unwrap());
    // The token it rotated to is the one a claim must now name.
    assert!(
        !store
            .claim_refresh("ctx-1", stored, T + 3, T + 33)
            .await
            .unwrap()
    );
    let rotated = Some("aes256gcm:rotated");
    assert!(
        store
            .claim_refresh("ctx-1", rotated, T + 3, T + 33)
            .await
            .unwrap()
    );
    assert_eq!(store.context("ctx-1").await.unwrap().unwrap(), fresh);
    let user = store.user("sub-1").await.unwrap().unwrap();
    assert_eq!(user.last_context.as_deref(), Some(r#"{"claims":"new"}"#));
    // Once ended, a late refresh changes nothing.
    let which = EndLogins {
        context_id: Some("ctx-1"),
        ..EndLogins::default()
    };
    store
        .end_logins(&which, T + 5, &Logouts::none())
        .await
        .unwrap();
    let late = StoredContext {
        context: r#"{"claims":"late"}"#.into(),
        ..fresh.clone()
    };
    assert!(!store.refresh_context(&late).await.unwrap());
    assert_eq!(
        store.context("ctx-1").await.unwrap().unwrap().context,
        r#"{"claims":"new"}"#
    );
}
