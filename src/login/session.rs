//! The browser's side of a login: its *binding* (only the browser that started a request may
//! continue it; a cookie of its own, [`crate::web::binding`]) and the login Herald remembers in
//! the session, checked against the store on every use so a revoked login counts at once.

use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::state::AppState;
use crate::store::{AuthRequest, StoreError, StoredContext};
use crate::tokens::hashing::{constant_time_eq, digest_hex};
use crate::web::PageError;
use crate::web::binding::BrowserBinding;

/// A browser as the login steps see it: its session and its binding.
pub type Browser<'a> = (&'a Session, &'a BrowserBinding);

/// Where sessions from before the binding had a cookie of its own kept it.
const SESSION_BINDING_KEY: &str = "binding";
const LOGIN_KEY: &str = "login";

/// The browser's login at Herald, kept in its session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginSession {
    pub sub: String,
    pub upstream_id: String,
    pub auth_time: i64,
    pub context_id: String,
    /// From `auth_context_ttl`: after this, a fresh upstream login is needed.
    pub context_expires_at: Option<i64>,
    /// How the consent page names who is signed in ([`crate::claims::AuthContext::display_name`]); absent in
    /// sessions from before it was kept, and for a context that carries no name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The logins this browser had before this one (newest last, at most
    /// [`EARLIER_LOGINS`]): a logout here tells their apps too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<String>,
}

/// How many earlier logins a browser session remembers for its logout.
pub const EARLIER_LOGINS: usize = 16;

/// The digest a new request records of this browser's binding (made on first use).
pub fn binding_digest(binding: &BrowserBinding) -> String {
    digest_hex(binding.get_or_make())
}

/// The binding this browser started `req` with, if it did: its cookie's or, for a request
/// started when the binding was kept in the session, its session's.
pub async fn binding_of(
    binding: &BrowserBinding,
    session: &Session,
    req: &AuthRequest,
) -> Option<String> {
    let started = |b: &str| constant_time_eq(&digest_hex(b), &req.browser_binding);
    if let Some(b) = binding.current().filter(|b| started(b)) {
        return Some(b.to_string());
    }
    session
        .get::<String>(SESSION_BINDING_KEY)
        .await
        .ok()
        .flatten()
        .filter(|b| started(b))
}

pub async fn current_login(session: &Session) -> Option<LoginSession> {
    session.get::<LoginSession>(LOGIN_KEY).await.ok().flatten()
}

/// True when nothing may be served from a stored login any more: it was revoked (its upstream
/// was removed, on any replica) or its upstream is not configured here. The second catches a
/// login that a replica still running the previous configuration finished after the revocation.
pub fn login_has_ended(state: &AppState, ctx: &StoredContext) -> bool {
    ctx.revoked_at.is_some() || state.settings().upstream(&ctx.upstream_id).is_none()
}

/// The browser's login if it may be reused: not past its `auth_context_ttl`, and its stored
/// context not ended ([`login_has_ended`]). The context is read from the store, not the
/// session, so a revocation counts here at once.
pub async fn live_login(
    state: &AppState,
    session: &Session,
) -> Result<Option<LoginSession>, StoreError> {
    Ok(live_login_context(state, session)
        .await?
        .map(|(login, _)| login))
}

/// [`live_login`] with the stored context it was checked against, for callers that read the
/// context too (the admin pages read the role from it).
pub async fn live_login_context(
    state: &AppState,
    session: &Session,
) -> Result<Option<(LoginSession, StoredContext)>, StoreError> {
    let now = state.now();
    let Some(login) = current_login(session)
        .await
        .filter(|l| l.context_expires_at.is_none_or(|t| t > now))
    else {
        return Ok(None);
    };
    Ok(state
        .store
        .context(&login.context_id)
        .await?
        .filter(|ctx| !login_has_ended(state, ctx))
        .map(|ctx| (login, ctx)))
}

/// Records a fresh login, with a new session id (no fixation: the id changes on login, and a
/// browser without a session gets its first id when the session is saved).
pub async fn set_login(session: &Session, login: &LoginSession) -> Result<(), PageError> {
    let mut login = login.clone();
    if let Some(previous) = current_login(session).await {
        if previous.sub != login.sub {
            tracing::info!("a different user logged in on this browser; the previous login ends");
        }
        let mut earlier = previous.earlier;
        if previous.context_id != login.context_id {
            earlier.push(previous.context_id);
        }
        let from = earlier.len().saturating_sub(EARLIER_LOGINS);
        login.earlier = earlier.split_off(from);
    }
    // A session stored before gets a new id; a browser without one gets its first at the save,
    // so there is no old id to retire (and no store call to retire it).
    if session.id().is_some() {
        session.cycle_id().await?;
    }
    session.insert(LOGIN_KEY, &login).await?;
    Ok(())
}
