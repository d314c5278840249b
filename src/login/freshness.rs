//! Claims that stay current: a login older than its upstream's `auth_context_ttl` is refreshed
//! at the upstream when a refresh or `/userinfo` uses it (`refresh_upstream = true`).
//!
//! The upstream's refresh token is stored with the login's context, sealed with the
//! key-encryption key for that context only. A stale login is refreshed there (token, and
//! userinfo when the upstream has it on), the new claims go through the upstream's mappings
//! with their merge strategies against the previous context, and the context is replaced: the
//! next tokens carry the new values. The upstream's refusal (the user was blocked there, the
//! grant revoked) is [`Stale::Refused`]: the caller ends what the login gave. An upstream that
//! cannot be reached is [`Stale::Unavailable`], unless `on_upstream_unavailable =
//! "serve_stale"` lets the stored claims serve for up to `max_stale` past the TTL.
//!
//! Without `refresh_upstream`, `auth_context_ttl` limits only how long a browser's sign-in is
//! reused; refresh and `/userinfo` serve the login's claims as they were.

use serde_json::Value;

use crate::claims::{self, AuthContext, Source};
use crate::config::{Upstream, WhenUnavailable};
use crate::secret::Secret;
use crate::state::AppState;
use crate::store::{EndLogins, StoredContext};
use crate::telemetry::metrics;
use crate::upstream::{RefreshFailure, UpstreamError};

/// Why a stale login could not be made current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stale {
    /// The upstream no longer accepts the login: it must end.
    Refused(String),
    /// The upstream (or the database) cannot be reached now: retry later.
    Unavailable(String),
}

/// The database could not be read or written: a refresh to retry.
impl From<crate::store::StoreError> for Stale {
    fn from(e: crate::store::StoreError) -> Self {
        Stale::Unavailable(e.to_string())
    }
}

/// The associated data a context's upstream refresh token is sealed with: it opens for that
/// context only.
fn aad(context_id: &str) -> String {
    format!("upstream-refresh:{context_id}")
}

/// The upstream refresh `token`, sealed for context `context_id`; `None` (logged) on a server
/// without a key-encryption key, which stores no such token in the clear.
pub fn seal_refresh_token(state: &AppState, context_id: &str, token: &Secret) -> Option<String> {
    match state.kek().seal_text(token.expose(), &aad(context_id)) {
        Ok(sealed) => Some(sealed),
        Err(e) => {
            tracing::warn!(error = %e, "the upstream's refresh token is not kept: Herald stores it \
                only encrypted with HERALD_KEY_ENCRYPTION_KEY; this login ends at auth_context_ttl");
            None
        }
    }
}

/// `stored`, made current at its upstream when it is past its TTL and the upstream keeps
/// logins fresh; otherwise as it is.
pub async fn current_context(
    state: &AppState,
    stored: StoredContext,
) -> Result<StoredContext, Stale> {
    let now = state.now();
    let settings = state.settings();
    let Some(up) = settings.upstream(&stored.upstream_id) else {
        return Ok(stored);
    };
    let Some(ttl) = up.auth_context_ttl.filter(|_| up.refresh_upstream) else {
        return Ok(stored);
    };
    let Some(stale_since) = stored.expires_at.filter(|t| *t <= now) else {
        return Ok(stored);
    };
    let outcome = leased_refresh(state, up, &stored, Some(ttl.as_secs() as i64)).await;
    match outcome {
        Ok(fresh) => Ok(fresh),
        Err(Stale::Unavailable(why)) => match up.when_unavailable {
            WhenUnavailable::ServeStale(max) if stale_since + max.as_secs() as i64 >= now => {
                tracing::warn!(upstream = %up.id, error = %why,
                    "the login could not be refreshed; its stored claims are served (serve_stale)");
                Ok(stored)
            }
            _ => Err(Stale::Unavailable(why)),
        },
        Err(refused) => Err(refused),
    }
}

/// Re-reads `stored` at its upstream now, whatever its age (an admin's "this profile
/// changed"); the upstream's refusal ends the login as at a stale refresh.
pub async fn refresh_now(state: &AppState, stored: StoredContext) -> Result<StoredContext, Stale> {
    let settings = state.settings();
    let Some(up) = settings.upstream(&stored.upstream_id) else {
        return Err(Stale::Refused(
            "its upstream is no longer configured".into(),
        ));
    };
    let ttl = up.auth_context_ttl.map(|t| t.as_secs() as i64);
    leased_refresh(state, up, &stored, ttl).await
}

/// Refreshes `stored` at `up` holding the context's refresh lease, so that no two requests (on
/// any replica) spend the same upstream refresh token: a request that finds the lease taken
/// waits for the holder's result instead. The lease is taken only while the token this request
/// read is still the stored one, so a request that read the login before another refreshed it
/// never spends the old token. Only the lease holder's refusal ends the login.
async fn leased_refresh(
    state: &AppState,
    up: &Upstream,
    stored: &StoredContext,
    ttl: Option<i64>,
) -> Result<StoredContext, Stale> {
    // Long enough for the token request, a JWKS refetch and userinfo.
    let lease = 3 * up.timeout.as_secs() as i64 + 5;
    let now = state.now();
    if !state
        .store
        .claim_refresh(
            &stored.id,
            stored.upstream_refresh.as_deref(),
            now,
            now + lease,
        )
        .await?
    {
        return wait_for_refresh(state, stored, lease).await;
    }
    let outcome = refresh_at_upstream(state, up, stored, ttl).await;
    count(&up.id, &outcome);
    match &outcome {
        Ok(_) => {}
        Err(Stale::Refused(_)) => end(state, stored).await,
        Err(Stale::Unavailable(_)) => {
            if let Err(e) = state.store.release_refresh(&stored.id).await {
                tracing::warn!(error = %e, "a refresh lease could not be given back; it expires");
            }
        }
    }
    outcome
}

/// The context once another request's refresh of it is done (polled for up to `lease` s).
async fn wait_for_refresh(
    state: &AppState,
    stored: &StoredContext,
    lease: i64,
) -> Result<StoredContext, Stale> {
    let started = std::time::Instant::now();
    while started.elapsed().as_secs() < lease as u64 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let again = state.store.context(&stored.id).await?;
        match again {
            Some(c) if c.revoked_at.is_some() => {
                return Err(Stale::Refused("the login has ended".into()));
            }
            Some(c) if c.expires_at != stored.expires_at || c.context != stored.context => {
                return Ok(c);
            }
            Some(_) => {}
            None => return Err(Stale::Refused("the login is gone".into())),
        }
    }
    Err(Stale::Unavailable(
        "another request is refreshing this login at its upstream; try again".into(),
    ))
}

fn count(upstream: &str, outcome: &Result<StoredContext, Stale>) {
    metrics::upstream_refresh(
        upstream,
        match outcome {
            Ok(_) => "refreshed",
            Err(Stale::Refused(_)) => "refused",
            Err(Stale::Unavailable(_)) => "unavailable",
        },
    );
}

/// Ends a login its upstream refused, and everything issued from it.
async fn end(state: &AppState, stored: &StoredContext) {
    let which = EndLogins {
        context_id: Some(&stored.id),
        ..EndLogins::default()
    };
    if let Err(e) = super::ending::end_logins(state, &which).await {
        tracing::warn!(error = %e, "a refused login could not be ended now");
    }
}

async fn refresh_at_upstream(
    state: &AppState,
    up: &Upstream,
    stored: &StoredContext,
    ttl: Option<i64>,
) -> Result<StoredContext, Stale> {
    let sealed = stored.upstream_refresh.as_deref().ok_or_else(|| {
        Stale::Refused(
            "Herald holds no refresh token from the identity provider for this login".into(),
        )
    })?;
    let token = state
        .kek()
        .open_text(sealed, &aad(&stored.id))
        // Never to open again (the key-encryption key changed): the login must be redone.
        .map_err(|e| {
            Stale::Refused(format!(
                "the stored upstream refresh token cannot be opened: {e}"
            ))
        })?;
    let wants_access_token = up
        .mapping
        .attributes
        .iter()
        .any(|a| a.source == Source::AccessToken);
    let settings = state.settings();
    let finished = state
        .upstreams
        .refresh(
            up,
            &settings.callback_url(&up.id),
            &token,
            wants_access_token,
        )
        .await;
    let finished = match finished {
        Ok(f) => f,
        Err(RefreshFailure { error, rotated }) => {
            // The upstream took the old token and gave a new one before the failure: keep it,
            // or the next attempt would present a spent token and be refused.
            if let Some(new) = rotated
                && let Some(sealed) = seal_refresh_token(state, &stored.id, &new)
                && let Err(e) = state.store.keep_upstream_refresh(&stored.id, &sealed).await
            {
                tracing::warn!(error = %e, "the upstream's new refresh token could not be kept");
            }
            return Err(match error {
                UpstreamError::Invalid(why) => Stale::Refused(why),
                other => Stale::Unavailable(other.to_string()),
            });
        }
    };
    // The answer must be about the same person, who is not blocked here.
    let subject = finished
        .claims
        .id_token
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let holder = state.store.user_by_identity(&up.id, subject).await?;
    match holder {
        Some(user) if user.sub == stored.sub && !user.blocked => {}
        Some(user) if user.sub == stored.sub => {
            return Err(Stale::Refused("the user is blocked".into()));
        }
        _ => {
            return Err(Stale::Refused(
                "the identity provider answered for another account".into(),
            ));
        }
    }
    let previous: Option<AuthContext> = serde_json::from_str(&stored.context).ok();
    let mut built = claims::build_context(&up.id, &up.mapping, &finished.claims, previous.as_ref())
        .map_err(|e| Stale::Refused(format!("the mappings refused the refreshed claims: {e}")))?;
    // What a post-login application added is not the upstream's to refresh: it stays.
    if let Some(previous) = &previous {
        crate::login::post_login::carry_over(previous, &mut built.context);
    }
    let context = serde_json::to_string(&built.context)
        .map_err(|e| Stale::Unavailable(format!("the refreshed context: {e}")))?;
    let now = state.now();
    let fresh = StoredContext {
        context,
        expires_at: ttl.map(|t| now + t),
        // A rotated refresh token replaces the one spent.
        upstream_refresh: match &finished.refresh_token {
            Some(t) => seal_refresh_token(state, &stored.id, t),
            None => stored.upstream_refresh.clone(),
        },
        ..stored.clone()
    };
    if !state.store.refresh_context(&fresh).await? {
        return Err(Stale::Refused("the login has ended".into()));
    }
    tracing::info!(upstream = %up.id, "a stale login was refreshed at the upstream");
    Ok(fresh)
}
