//! The consent center at `/account`: a signed-in user sees every app they allowed, withdraws
//! consent, and downloads their consent records as JSON.
//!
//! # How a user signs in here
//!
//! The account pages use the browser's login at Herald ([`flow::current_login`]), the same login
//! that lets a second app skip the upstream. Without one, they start an ordinary authorization
//! request for the built-in client [`ACCOUNT_CLIENT_ID`] and hand it to [`flow::proceed`], so the
//! user meets the same upstream chooser, upstream login and session binding as for any app. The
//! request is built in-process rather than sent through `/authorize` over HTTP: it never leaves
//! Herald, so it needs no code, no PKCE and no tokens. When the login is done,
//! [`flow::consent_stage`] hands the request to [`signed_in`], which completes it and returns to
//! `/account`.
//!
//! `herald-account` is neither trusted nor untrusted: it is Herald itself, receives no claims,
//! and so gets no grant and no consent record. It cannot be configured (the id is reserved) or
//! named in `/authorize` (it is not a registered client). Being logged in at Herald grants no app
//! anything either: apps still need their own grant.
//!
//! # Withdrawal
//!
//! A withdraw form carries a CSRF token kept in the browser session (synchronizer token, bound to
//! the signed-in user, compared in constant time). Withdrawing deletes the grant, appends a
//! consent record (method `page`, everything denied) and revokes what the grant allowed
//! ([`crate::store::Store::revoke_grant_tokens`]); the app's next login asks again.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tower_sessions::Session;

use crate::app::AppState;
use crate::config::Settings;
use crate::provider::flow::{self, LoginSession};
use crate::store::{AuthRequest, StoreError};
use crate::tokens::hashing::{constant_time_eq, digest_hex, random_token};
use crate::web::pages::{AccountApp, AccountPage, AccountScope};
use crate::web::{ReturnLink, error_page, render, store_failure_page, unavailable_page};

/// The built-in client the consent center signs users in as (defined with the configuration,
/// which reserves it).
pub use crate::config::ACCOUNT_CLIENT_ID;

const CSRF_KEY: &str = "account_csrf";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(show).post(withdraw))
        .route("/account/consents.json", get(export))
}

/// The name people see for the app behind `client_id`: its `client_name`, the client_id for an
/// app no longer configured, and "your Herald account" for the consent center itself.
pub fn app_name(settings: &Settings, client_id: &str) -> String {
    if client_id == ACCOUNT_CLIENT_ID {
        return "your Herald account".into();
    }
    settings
        .client(client_id)
        .map(|c| c.client_name.clone())
        .unwrap_or_else(|| client_id.to_string())
}

/// Completes a sign-in to one of Herald's own pages: the request is marked decided (no code is
/// issued) and the browser returns to the page that asked ([`start_sign_in`]), now with a login.
pub async fn signed_in(state: &AppState, req: &AuthRequest) -> Response {
    let settings = state.settings();
    let local = req
        .redirect_uri
        .strip_prefix(settings.issuer.as_str())
        .filter(|p| p.starts_with('/') && !p.starts_with("//"));
    // Admin pages on a listener of their own are at another origin (see `return_url`).
    let admin = settings.admin_origin().filter(|o| {
        req.redirect_uri
            .strip_prefix(o.as_str())
            .is_some_and(is_admin_page)
    });
    let back = match (local, admin) {
        (Some(path), _) => path.to_string(),
        (None, Some(_)) => req.redirect_uri.clone(),
        (None, None) => "/account".to_string(),
    };
    match state.store.decide_auth_request(&req.id, state.now()).await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(e) => flow::store_failure(e),
    }
}

/// The browser's login, unless absent, past its `auth_context_ttl` or ended (its upstream was
/// removed); a store failure is the page to show.
pub async fn signed_in_user(
    state: &AppState,
    session: &Session,
) -> Result<Option<LoginSession>, Response> {
    flow::live_login(state, session).await.map_err(store_failed)
}

/// Starts a login for one of Herald's own pages (the consent center, the admin pages), exactly as
/// for an app's authorization request; the browser comes back to `return_path` (a path on
/// Herald, such as `/account`), or there with `?error=…` when the login fails.
///
/// `max_age` (seconds) asks for a login at least that fresh, as in OIDC Core §3.1.2.1: an older
/// browser login is not reused, so the user signs in at the upstream again.
pub async fn start_sign_in(
    state: &AppState,
    session: &Session,
    return_path: &str,
    max_age: Option<i64>,
) -> Response {
    let binding = match flow::browser_binding(session).await {
        Ok(b) => b,
        Err(page) => return page,
    };
    let settings = state.settings();
    let now = state.now();
    let req = AuthRequest {
        id: random_token(),
        client_id: ACCOUNT_CLIENT_ID.into(),
        // Where the browser returns: after the login, or with an OAuth error when it fails.
        redirect_uri: return_url(&settings, return_path),
        scope: "openid".into(),
        state: None,
        nonce: None,
        code_challenge: None,
        prompt: None,
        max_age,
        login_hint: None,
        upstream_hint: None,
        browser_binding: digest_hex(&binding),
        created_at: now,
        expires_at: now + settings.tokens.login_ttl.as_secs() as i64,
        sub: None,
        auth_context_id: None,
        auth_time: None,
        consent_csrf: None,
        decided_at: None,
    };
    if let Err(e) = state.store.insert_auth_request(&req).await {
        return flow::store_failure(e);
    }
    flow::proceed(state, session, req, None).await
}

/// Whether a path (with its query) is one of the admin pages.
fn is_admin_page(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/") || path.starts_with("/admin?")
}

/// The absolute URL of `return_path` on Herald: on the issuer, except for the admin pages when
/// they have a listener of their own ([`Settings::admin_origin`]).
fn return_url(settings: &Settings, return_path: &str) -> String {
    match settings.admin_origin() {
        Some(origin) if is_admin_page(return_path) => format!("{origin}{return_path}"),
        _ => format!("{}{return_path}", settings.issuer),
    }
}

/// The session's CSRF token for this user; a new one when absent or issued to another user.
#[derive(Serialize, Deserialize)]
struct AccountCsrf {
    sub: String,
    token: String,
}

async fn csrf_token(session: &Session, sub: &str) -> Result<String, Response> {
    if let Ok(Some(c)) = session.get::<AccountCsrf>(CSRF_KEY).await
        && c.sub == sub
    {
        return Ok(c.token);
    }
    let fresh = AccountCsrf {
        sub: sub.to_string(),
        token: random_token(),
    };
    session.insert(CSRF_KEY, &fresh).await.map_err(|e| {
        tracing::warn!(error = %e, "session store failed");
        unavailable_page()
    })?;
    Ok(fresh.token)
}

async fn csrf_matches(session: &Session, sub: &str, presented: &str) -> bool {
    match session.get::<AccountCsrf>(CSRF_KEY).await {
        Ok(Some(c)) => c.sub == sub && constant_time_eq(&c.token, presented),
        _ => false,
    }
}

fn refused(message: &str) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        message,
        Some(back_to_center()),
    )
}

fn back_to_center() -> ReturnLink {
    ReturnLink {
        url: "/account".into(),
        app_name: "your consent center".into(),
    }
}

fn store_failed(e: StoreError) -> Response {
    store_failure_page(
        e,
        "in the consent center",
        "Herald could not load or change your consents. Nothing was changed; please try again.",
        Some(back_to_center()),
    )
}

/// A Unix time as people read it, in UTC: "3 March 2025, 14:05 UTC".
pub fn readable_utc(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{} {} {}, {:02}:{:02} UTC",
            t.day(),
            t.month(),
            t.year(),
            t.hour(),
            t.minute()
        ),
        Err(_) => secs.to_string(),
    }
}

/// A Unix time as RFC 3339 in UTC, for `<time datetime>` and the JSON export.
pub fn rfc3339_utc(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => secs.to_string(),
    }
}

#[derive(Deserialize)]
struct ShowQuery {
    /// Set after a withdrawal, to confirm it.
    withdrawn: Option<String>,
    /// Set when a consent-center login failed (an OAuth error sent back to `/account`).
    error: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    session: Session,
    query: Result<Query<ShowQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = query.ok().map(|q| q.0);
    let login = match signed_in_user(&state, &session).await {
        Ok(l) => l,
        Err(page) => return page,
    };
    let Some(login) = login else {
        if query.as_ref().is_some_and(|q| q.error.is_some()) {
            // The login was cancelled or failed: say so instead of starting another at once.
            return error_page(
                StatusCode::OK,
                "You are not signed in",
                "Signing in to your consent center did not complete. You can try again.",
                Some(back_to_center()),
            );
        }
        return start_sign_in(&state, &session, "/account", None).await;
    };
    let csrf = match csrf_token(&session, &login.sub).await {
        Ok(t) => t,
        Err(page) => return page,
    };
    let grants = match state.store.grants(&login.sub).await {
        Ok(g) => g,
        Err(e) => return store_failed(e),
    };
    let settings = state.settings();
    let apps = grants
        .into_iter()
        .map(|g| AccountApp {
            name: app_name(&settings, &g.client_id),
            scopes: g
                .scopes
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(|s| AccountScope {
                    name: s.to_string(),
                    description: settings
                        .scopes
                        .get(s)
                        .map(|d| d.description.clone())
                        .unwrap_or_else(|| s.to_string()),
                })
                .collect(),
            granted_at: readable_utc(g.granted_at),
            granted_at_iso: rfc3339_utc(g.granted_at),
            updated_at: readable_utc(g.updated_at),
            updated_at_iso: rfc3339_utc(g.updated_at),
            client_id: g.client_id,
        })
        .collect();
    let notice = query.and_then(|q| q.withdrawn).map(|id| {
        format!(
            "You withdrew your consent for {}. It will ask again the next time you sign in.",
            app_name(&settings, &id)
        )
    });
    render(StatusCode::OK, &AccountPage { csrf, apps, notice })
}

async fn withdraw(State(state): State<AppState>, session: Session, body: Bytes) -> Response {
    let login = match signed_in_user(&state, &session).await {
        Ok(l) => l,
        Err(page) => return page,
    };
    let Some(login) = login else {
        return refused(
            "You are not signed in to your consent center in this browser, so nothing was \
             changed. Open your consent center and sign in first.",
        );
    };
    let mut csrf = None;
    let mut client_id = None;
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "csrf" => csrf = Some(v.into_owned()),
            "withdraw" => client_id = Some(v.into_owned()),
            _ => {}
        }
    }
    let csrf_ok = match csrf {
        Some(c) => csrf_matches(&session, &login.sub, &c).await,
        None => false,
    };
    if !csrf_ok {
        return refused(
            "This form's security token is missing, wrong or from another session, so nothing \
             was changed. Open your consent center again and retry.",
        );
    }
    let Some(client_id) = client_id.filter(|c| !c.is_empty()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "Choose the app whose consent you want to withdraw.",
            Some(back_to_center()),
        );
    };
    let settings = state.settings();
    let now = state.now();
    match crate::consent::withdraw(
        &*state.store,
        &settings.scopes,
        &login.sub,
        &client_id,
        "page",
        now,
    )
    .await
    {
        Ok(_) => {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("withdrawn", &client_id)
                .finish();
            Redirect::to(&format!("/account?{query}")).into_response()
        }
        Err(e) => store_failed(e),
    }
}

/// The signed-in user's consent records, oldest first, as a JSON download.
async fn export(State(state): State<AppState>, session: Session) -> Response {
    let login = match signed_in_user(&state, &session).await {
        Ok(l) => l,
        Err(page) => return page,
    };
    let Some(login) = login else {
        return error_page(
            StatusCode::UNAUTHORIZED,
            "You are not signed in",
            "Sign in to your consent center to download your consent records.",
            Some(back_to_center()),
        );
    };
    let records = match state.store.consent_records(&login.sub).await {
        Ok(r) => r,
        Err(e) => return store_failed(e),
    };
    let settings = state.settings();
    let body = json!({
        "sub": login.sub,
        "exported_at": rfc3339_utc(state.now()),
        "records": records
            .iter()
            .map(|r| crate::consent::export_record(r, &app_name(&settings, &r.client_id)))
            .collect::<Vec<_>>(),
    });
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"herald-consent-records.json\"",
            ),
        ],
        axum::Json(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(readable_utc(1_741_010_700), "3 March 2025, 14:05 UTC");
        assert_eq!(rfc3339_utc(1_741_010_700), "2025-03-03T14:05:00Z");
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn no_configured_client_may_take_the_consent_centers_client_id() {
        let toml = format!(
            r#"
            issuer = "http://127.0.0.1:8080"
            listen = "127.0.0.1:8080"
            database_url = "sqlite::memory:"
            [[upstreams]]
            id = "dev"
            kind = "dev"
            [[clients]]
            client_id = "{ACCOUNT_CLIENT_ID}"
            redirect_uris = ["http://127.0.0.1:9000/cb"]
            scopes = ["openid"]
            "#
        );
        let err = crate::config::from_toml(&toml).unwrap_err().to_string();
        assert!(err.contains("clients[0].client_id"), "{err}");
        assert!(err.contains("reserved"), "{err}");
    }
}
