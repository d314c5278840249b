//! A finished upstream login becomes Herald's: the user (linked on first sight of this
//! upstream identity), the authentication context mapped from the upstream's claims, and the
//! pending request signed in. All three are one store transaction: either the login happened or
//! nothing of it did.

use axum::http::StatusCode;
use serde_json::Value;

use super::pending::{login_failed, refused, return_link, store_failure};
use super::session::LoginSession;
use crate::claims::{self, AuthContext};
use crate::config::{Hook, Upstream};
use crate::profiles::{email_of, profile_of};
use crate::state::AppState;
use crate::store::{
    AuthRequest, FinishedLogin, LoginEvent, LoginResult, StoredContext, User, UserProfile,
};
use crate::telemetry::metrics;
use crate::tokens::hashing::random_token;
use crate::upstream::client::Finished;
use crate::web::PageError;

/// Records the login `claims` tell of, at `upstream`, for the pending request `req`; returns the
/// browser's login and the request, now signed in. A mapping that refuses the claims (a
/// required claim missing or of the wrong type) ends on a page with a link back to the app.
#[tracing::instrument(skip_all, fields(upstream = %upstream.id, request = %req.id))]
pub async fn record_login(
    state: &AppState,
    upstream: &Upstream,
    finished: &Finished,
    req: AuthRequest,
    state_hash: &str,
    ip: Option<String>,
) -> Result<(LoginSession, AuthRequest), PageError> {
    let claims = &finished.claims;
    let subject = claims
        .id_token
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let now = state.now();
    // The previous login's context, for `on_missing = "keep"` and the merge strategies.
    let known = state
        .store
        .user_by_identity(&upstream.id, subject)
        .await
        .map_err(store_failure)?;
    let had_user = known.is_some();
    let email = email_of(claims);
    let profile = profile_of(claims, email, ip);
    // An identity seen for the first time may join a user who exists already.
    let (known, link_to) = match known {
        Some(user) => (Some(user), None),
        None => match joined_user(state, upstream, &profile).await? {
            Some(user) => {
                let sub = user.sub.clone();
                (Some(user), Some(sub))
            }
            None if !upstream.allow_signup => return Err(no_signup(state, upstream, &req)),
            None => (None, None),
        },
    };
    if let Some(user) = known.as_ref().filter(|u| u.blocked) {
        return Err(blocked(state, upstream, &req, user));
    }
    // The context of this identity's previous login; a user it has just joined logged in
    // elsewhere, through other mappings, so theirs is not carried over.
    let previous: Option<AuthContext> = known
        .as_ref()
        .filter(|_| link_to.is_none())
        .and_then(|u| u.last_context.as_deref())
        .and_then(|c| serde_json::from_str(c).ok());
    let built = claims::build_context(&upstream.id, &upstream.mapping, claims, previous.as_ref())
        .map_err(|e| {
        tracing::warn!(error = %e, "claim mapping refused the login");
        login_failed(
            state,
            &upstream.id,
            &req.client_id,
            "access_denied",
            &e.to_string(),
        );
        PageError::new(StatusCode::FORBIDDEN, "Sign-in refused", e.to_string()).with_back(
            return_link(
                state,
                &req,
                "access_denied",
                "a required claim is missing or invalid",
            ),
        )
    })?;
    metrics::mapping_warnings(&upstream.id, built.warnings.len());
    let context = serde_json::to_string(&built.context).map_err(|e| {
        tracing::error!(error = %e, "serialising the authentication context failed");
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Herald could not record this sign-in. Please try again.",
        )
    })?;
    let settings = state.settings();
    if email.is_none()
        && settings.outbox.hooks.iter().any(
            |Hook::OneTrust {
                 skip_if_no_email, ..
             }| !skip_if_no_email,
        )
    {
        let why = "the identity provider gave no email, which the consent collection point \
                   needs (hooks: skip_if_no_email = false)";
        login_failed(state, &upstream.id, &req.client_id, "access_denied", why);
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            "Your identity provider did not share your email address, which this service \
             needs to record your consent. Allow it to share your email, or ask the app's \
             administrator.",
        )
        .with_back(return_link(
            state,
            &req,
            "access_denied",
            "no email for the consent collection point",
        )));
    }
    if email.is_none() && !settings.outbox.hooks.is_empty() {
        tracing::info!(upstream = %upstream.id, "no email in this login: the consent collection point is skipped");
    }
    let new_sub = random_token();
    let event_sub = known.as_ref().map_or(new_sub.as_str(), |u| u.sub.as_str());
    let outbox = crate::outbox::login_rows(
        &settings.outbox,
        event_sub,
        &req.client_id,
        &upstream.id,
        email,
        now,
    );
    let auth_time = upstream_auth_time(claims, now);
    let context_id = random_token();
    let upstream_refresh = upstream_refresh(state, upstream, &context_id, finished);
    let ctx = StoredContext {
        id: context_id,
        // The store files it under the user's final sub (a concurrent first login may win).
        sub: known.map_or_else(|| new_sub.clone(), |u| u.sub),
        upstream_id: upstream.id.clone(),
        context,
        auth_time,
        created_at: now,
        expires_at: upstream.auth_context_ttl.map(|t| now + t.as_secs() as i64),
        revoked_at: None,
        // The upstream session, which a back-channel logout from it may name.
        upstream_sid: claims
            .id_token
            .get("sid")
            .and_then(Value::as_str)
            .map(str::to_string),
        upstream_refresh,
        upstream_subject: Some(subject.to_string()),
    };
    let user = state
        .store
        .finish_upstream_login(&FinishedLogin {
            upstream_id: upstream.id.clone(),
            subject: subject.to_string(),
            new_sub,
            context: ctx.clone(),
            auth_request_id: req.id.clone(),
            upstream_state_hash: Some(state_hash.to_string()),
            now,
            outbox,
            profile,
            client_id: req.client_id.clone(),
            link_to,
            known: had_user,
        })
        .await
        .map_err(store_failure)?
        .ok_or_else(state_spent)?;
    let login = LoginSession {
        sub: user.sub.clone(),
        upstream_id: upstream.id.clone(),
        auth_time,
        context_id: ctx.id.clone(),
        context_expires_at: ctx.expires_at,
        name: built.context.display_name().map(str::to_string),
        earlier: Vec::new(),
    };
    let req = AuthRequest {
        sub: Some(user.sub),
        auth_context_id: Some(ctx.id),
        auth_time: Some(auth_time),
        ..req
    };
    Ok((login, req))
}

/// When the user authenticated: the upstream's `auth_time` (OIDC Core §2) when it sends a
/// plausible one (not after now, with a minute's leeway for clocks), else now.
pub(super) fn upstream_auth_time(claims: &claims::UpstreamClaims, now: i64) -> i64 {
    plausible_auth_time(
        claims.id_token.get("auth_time").and_then(Value::as_i64),
        now,
    )
}

/// A time an upstream claims the user authenticated at, if plausible (after 1970, not after now
/// with a minute's leeway for clocks, and then no later than now); else now.
pub fn plausible_auth_time(claimed: Option<i64>, now: i64) -> i64 {
    claimed
        .filter(|t| *t > 0 && *t <= now + 60)
        .map_or(now, |t| t.min(now))
}

/// The upstream's refresh token, sealed for the context `context_id`, when the upstream keeps
/// logins fresh (`refresh_upstream`) and gave one.
fn upstream_refresh(
    state: &AppState,
    upstream: &Upstream,
    context_id: &str,
    finished: &Finished,
) -> Option<String> {
    if !upstream.refresh_upstream {
        return None;
    }
    let Some(token) = &finished.refresh_token else {
        tracing::warn!(upstream = %upstream.id, "refresh_upstream is on, but the upstream gave no \
            refresh token (does it allow offline_access for Herald's application?): this login \
            cannot be refreshed and ends at auth_context_ttl");
        return None;
    };
    crate::login::freshness::seal_refresh_token(state, context_id, token)
}

/// The refusal of an answer whose `state` is unknown: expired, or spent by an earlier answer.
pub fn state_spent() -> PageError {
    PageError::new(
        StatusCode::BAD_REQUEST,
        "Sign-in failed",
        "This sign-in link has expired or was already used. Start again from the app.",
    )
}

/// The refusal of a blocked user: the app gets `access_denied`, the user a page that says so,
/// and the admin pages a login event. Nothing of the login is stored.
fn blocked(state: &AppState, upstream: &Upstream, req: &AuthRequest, user: &User) -> PageError {
    let reason = "the user is blocked";
    let event = LoginEvent {
        id: 0,
        at: state.now(),
        result: LoginResult::Blocked,
        sub: Some(user.sub.clone()),
        upstream_id: Some(upstream.id.clone()),
        client_id: req.client_id.clone(),
        reason: Some(reason.into()),
    };
    refused(state, "access_denied", reason, event);
    PageError::new(
        StatusCode::FORBIDDEN,
        "Your account is blocked",
        "An administrator has blocked your account here, so you cannot sign in to this app. \
         Ask the app's administrator if you think this is a mistake.",
    )
    .with_back(return_link(state, req, "access_denied", reason))
}

/// The user an identity seen for the first time joins, when its upstream links by verified
/// email or admits only users that exist: the one user whose email is this login's, verified
/// on both sides. Without `link_by_verified_email` only a user with no identity yet (created by
/// an admin with their email, or imported) is joined. An unverified email never joins anyone;
/// two users with the email join neither (logged, for an admin to link by hand).
async fn joined_user(
    state: &AppState,
    upstream: &Upstream,
    profile: &UserProfile,
) -> Result<Option<User>, PageError> {
    if upstream.allow_signup && !upstream.link_by_verified_email {
        return Ok(None);
    }
    let Some(user) = crate::profiles::user_with_verified_email(&*state.store, profile)
        .await
        .map_err(store_failure)?
    else {
        return Ok(None);
    };
    // An invitation (a user created with their email and no identity) is claimed by the first
    // verified login; with linking on, a user whose email only trusted upstreams asserted.
    let identities = state
        .store
        .identities(&user.sub)
        .await
        .map_err(store_failure)?;
    let invited = identities.is_empty();
    let linkable = upstream.link_by_verified_email
        && crate::profiles::email_trusted(&state.settings(), &identities);
    Ok((invited || linkable).then_some(user))
}

/// The refusal of a login that would create a user at an upstream that admits only users who
/// exist already: the app gets `access_denied`, the user a page that says so.
fn no_signup(state: &AppState, upstream: &Upstream, req: &AuthRequest) -> PageError {
    let reason = "sign-up is closed: no user has this identity or its verified email";
    login_failed(state, &upstream.id, &req.client_id, "access_denied", reason);
    PageError::new(
        StatusCode::FORBIDDEN,
        "No account here",
        format!(
            "{} does not let new users sign up through {}, and no account here matches yours \
             (or your email is not verified). Ask the app's administrator to create your \
             account.",
            state.settings().app_name(&req.client_id),
            upstream.display_name
        ),
    )
    .with_back(return_link(state, req, "access_denied", reason))
}
