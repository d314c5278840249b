//! The consent center at `/account`: a signed-in user sees every app they allowed, withdraws
//! consent, and downloads their consent records as JSON.
//!
//! # How a user signs in here
//!
//! The account pages use the browser's login at Herald ([`crate::login::live_login`]), the same
//! login that lets a second app skip the upstream. Without one, they start an ordinary
//! authorization request for the built-in client [`crate::config::ACCOUNT_CLIENT_ID`] with
//! [`crate::login::start_sign_in`], so the user meets the same upstream chooser, upstream login
//! and session binding as for any app, and comes back here signed in.
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
//! consent record (method `consent_center`, decision `withdrawn`) and revokes what the grant allowed
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

use crate::clock::{readable_utc, rfc3339_utc};
use crate::login::{self, LoginSession, start_sign_in};
use crate::state::AppState;
use crate::store::StoreError;
use crate::tokens::hashing::{constant_time_eq, random_token};
use crate::web::binding::BrowserBinding;
use crate::web::pages::{AccountApp, AccountPage, AccountScope};
use crate::web::{PageError, ReturnLink, error_page, render};

const CSRF_KEY: &str = "account_csrf";

pub mod link;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(show).post(withdraw))
        .route("/account/consents.json", get(export))
        .route("/account/data.json", get(export_all))
        .merge(link::router())
}

/// Whose consent center this browser shows: the user an account link opened it for (while
/// that lasts), else the signed-in user.
struct Viewer {
    sub: String,
    /// Opened by an account link, until this (readable): grants only, no downloads.
    link_until: Option<String>,
}

async fn viewer(state: &AppState, session: &Session) -> Result<Option<Viewer>, PageError> {
    if let Some(l) = link::link_session(session, state.now()).await {
        return Ok(Some(Viewer {
            link_until: Some(readable_utc(l.until)),
            sub: l.sub,
        }));
    }
    Ok(signed_in_user(state, session).await?.map(|login| Viewer {
        sub: login.sub,
        link_until: None,
    }))
}

/// The browser's login, unless absent, past its `auth_context_ttl` or ended (its upstream was
/// removed); a store failure is the page to show.
pub async fn signed_in_user(
    state: &AppState,
    session: &Session,
) -> Result<Option<LoginSession>, PageError> {
    login::live_login(state, session)
        .await
        .map_err(store_failed)
}

/// The session's CSRF token for this user; a new one when absent or issued to another user.
#[derive(Serialize, Deserialize)]
struct AccountCsrf {
    sub: String,
    token: String,
}

async fn csrf_token(session: &Session, sub: &str) -> Result<String, PageError> {
    if let Ok(Some(c)) = session.get::<AccountCsrf>(CSRF_KEY).await
        && c.sub == sub
    {
        return Ok(c.token);
    }
    let fresh = AccountCsrf {
        sub: sub.to_string(),
        token: random_token(),
    };
    session.insert(CSRF_KEY, &fresh).await?;
    Ok(fresh.token)
}

async fn csrf_matches(session: &Session, sub: &str, presented: &str) -> bool {
    match session.get::<AccountCsrf>(CSRF_KEY).await {
        Ok(Some(c)) => c.sub == sub && constant_time_eq(&c.token, presented),
        _ => false,
    }
}

fn refused(message: &str) -> PageError {
    PageError::new(StatusCode::FORBIDDEN, "Request refused", message).with_back(back_to_center())
}

fn back_to_center() -> ReturnLink {
    ReturnLink {
        url: "/account".into(),
        app_name: "your consent center".into(),
    }
}

/// A store failure in the consent center (`.map_err(store_failed)?`).
fn store_failed(e: StoreError) -> PageError {
    PageError::store(
        e,
        "in the consent center",
        "Herald could not load or change your consents. Nothing was changed; please try again.",
        Some(back_to_center()),
    )
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
    binding: BrowserBinding,
    query: Result<Query<ShowQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let query = query.ok().map(|q| q.0);
    let Some(login) = viewer(&state, &session).await? else {
        if query.as_ref().is_some_and(|q| q.error.is_some()) {
            // The login was cancelled or failed: say so instead of starting another at once.
            return Ok(error_page(
                StatusCode::OK,
                "You are not signed in",
                "Signing in to your consent center did not complete. You can try again.",
                Some(back_to_center()),
            ));
        }
        return start_sign_in(&state, &session, &binding, "/account", None).await;
    };
    let csrf = csrf_token(&session, &login.sub).await?;
    let grants = state.store.grants(&login.sub).await.map_err(store_failed)?;
    let settings = state.settings();
    let apps = grants
        .into_iter()
        .map(|g| AccountApp {
            name: settings.app_name(&g.client_id),
            scopes: g
                .scopes
                .iter()
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
            settings.app_name(&id)
        )
    });
    Ok(render(
        StatusCode::OK,
        &AccountPage {
            csrf,
            apps,
            notice,
            link_until: login.link_until,
        },
    ))
}

async fn withdraw(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Result<Response, PageError> {
    let login = viewer(&state, &session).await?.ok_or_else(|| {
        refused(
            "You are not signed in to your consent center in this browser, so nothing was \
             changed. Open your consent center and sign in first.",
        )
    })?;
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
        return Err(refused(
            "This form's security token is missing, wrong or from another session, so nothing \
             was changed. Open your consent center again and retry.",
        ));
    }
    let client_id = client_id.filter(|c| !c.is_empty()).ok_or_else(|| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "Choose the app whose consent you want to withdraw.",
        )
        .with_back(back_to_center())
    })?;
    let settings = state.settings();
    crate::consent::withdraw(
        &*state.store,
        &settings,
        &login.sub,
        &client_id,
        crate::store::ConsentMethod::ConsentCenter,
        state.now(),
    )
    .await
    .map_err(store_failed)?;
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("withdrawn", &client_id)
        .finish();
    Ok(Redirect::to(&format!("/account?{query}")).into_response())
}

/// The signed-in user, for a download: an account link does not open one.
async fn downloading_user(
    state: &AppState,
    session: &Session,
    what: &str,
) -> Result<LoginSession, PageError> {
    signed_in_user(state, session).await?.ok_or_else(|| {
        PageError::new(
            StatusCode::UNAUTHORIZED,
            "You are not signed in",
            format!("Sign in to your consent center to download {what}."),
        )
        .with_back(back_to_center())
    })
}

/// `body` as a JSON file named `filename`, never cached.
fn download(filename: &str, body: serde_json::Value) -> Response {
    let disposition = format!("attachment; filename=\"{filename}\"");
    (
        [
            (header::CACHE_CONTROL, "no-store".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        axum::Json(body),
    )
        .into_response()
}

/// Everything Herald holds about the signed-in user, as a JSON download (see
/// [`crate::consent::export`]).
async fn export_all(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, PageError> {
    let login = downloading_user(&state, &session, "your data").await?;
    let settings = state.settings();
    let doc =
        crate::consent::export::user_export(&*state.store, &settings, &login.sub, state.now())
            .await
            .map_err(store_failed)?
            .unwrap_or_else(
                || json!({ "sub": login.sub, "note": "Herald holds no profile for you" }),
            );
    Ok(download("herald-my-data.json", doc))
}

/// The signed-in user's consent records, oldest first, as a JSON download.
async fn export(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    let login = downloading_user(&state, &session, "your consent records").await?;
    let records = state
        .store
        .consent_records(&login.sub)
        .await
        .map_err(store_failed)?;
    let settings = state.settings();
    let body = json!({
        "sub": login.sub,
        "exported_at": rfc3339_utc(state.now()),
        "records": records
            .iter()
            .map(|r| crate::consent::export_record(r, &settings.app_name(&r.client_id)))
            .collect::<Vec<_>>(),
    });
    Ok(download("herald-consent-records.json", body))
}
