//! Account links: `POST /admin/api/users/{sub}/account-link` makes a single-use link to one
//! user's consent center; `/account/link` spends it.
//!
//! GET shows a button and spends nothing, so a mail scanner that fetches the link does not use
//! it up; the POST (with a CSRF token from this browser's session) spends it atomically and
//! opens the consent center for that user for [`LINK_SESSION_SECS`], in a fresh session (a login
//! held in this browser before ends). The browser is not logged in at Herald by it: it can list and withdraw that user's grants and nothing else. A second
//! use, an expired link and an unknown one each get a page that says which.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::state::AppState;
use crate::tokens::hashing::{constant_time_eq, digest_hex, random_token};
use crate::web::binding::BrowserBinding;
use crate::web::pages::AccountLinkPage;
use crate::web::{PageError, ReturnLink, render};

/// How long a spent link keeps the consent center open in that browser.
pub const LINK_SESSION_SECS: i64 = 15 * 60;

const LINK_KEY: &str = "account_link";
const LINK_CSRF_KEY: &str = "account_link_csrf";

pub fn router() -> Router<AppState> {
    Router::new().route("/account/link", get(show).post(open))
}

/// The user a spent link opened the consent center for, in this browser, until when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkSession {
    pub sub: String,
    pub until: i64,
}

/// The link session of this browser, while it lasts.
pub async fn link_session(session: &Session, now: i64) -> Option<LinkSession> {
    match session.get::<LinkSession>(LINK_KEY).await {
        Ok(Some(l)) if l.until > now => Some(l),
        _ => None,
    }
}

#[derive(Deserialize)]
struct LinkQuery {
    token: Option<String>,
}

fn gone(title: &str, message: &str) -> PageError {
    PageError::new(StatusCode::GONE, title, message).with_back(ReturnLink {
        url: "/account".into(),
        app_name: "your consent center".into(),
    })
}

fn not_valid() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "This link is not valid",
        "This link to your consents is not one Herald made, or it was copied incompletely. \
         Ask for a new link.",
    )
}

async fn show(
    session: Session,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let token = query
        .ok()
        .and_then(|q| q.0.token)
        .filter(|t| !t.is_empty() && t.len() <= 128)
        .ok_or_else(not_valid)?;
    let csrf = random_token();
    session.insert(LINK_CSRF_KEY, &csrf).await?;
    Ok(render(StatusCode::OK, &AccountLinkPage { token, csrf }))
}

async fn open(
    State(state): State<AppState>,
    session: Session,
    binding: BrowserBinding,
    body: Bytes,
) -> Result<Response, PageError> {
    let mut token = None;
    let mut csrf = None;
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "token" => token = Some(v.into_owned()),
            "csrf" => csrf = Some(v.into_owned()),
            _ => {}
        }
    }
    let expected: Option<String> = session.get(LINK_CSRF_KEY).await.ok().flatten();
    let csrf_ok = match (csrf, expected) {
        (Some(c), Some(e)) => constant_time_eq(&c, &e),
        _ => false,
    };
    if !csrf_ok {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form's security token is missing or from another browser. Open the link \
             again.",
        ));
    }
    let token = token.filter(|t| !t.is_empty()).ok_or_else(not_valid)?;
    let now = state.now();
    let link = state
        .store
        .use_account_link(&digest_hex(&token), now)
        .await
        .map_err(|e| {
            PageError::store(
                e,
                "opening an account link",
                "Herald could not check this link. Nothing was used up; please try again.",
                None,
            )
        })?
        .ok_or_else(not_valid)?;
    if link.used_at.is_some() {
        return Err(gone(
            "This link was already used",
            "Each link to your consents works once. Ask for a new link, or sign in to your \
             consent center.",
        ));
    }
    if link.expires_at <= now {
        return Err(gone(
            "This link has expired",
            "Links to your consents work for a short time only. Ask for a new link, or sign in \
             to your consent center.",
        ));
    }
    // A fresh session holding only the link: a login held here before ends, so this browser
    // never mixes two people (one's consents listed, another's data downloadable).
    session.flush().await?;
    binding.forget();
    session
        .insert(
            LINK_KEY,
            &LinkSession {
                sub: link.sub,
                until: now + LINK_SESSION_SECS,
            },
        )
        .await?;
    Ok(Redirect::to("/account").into_response())
}
