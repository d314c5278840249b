//! The grants of the token endpoint, one file each: [`authorization_code`] (RFC 6749 §4.1.3,
//! RFC 7636 §4.6), [`refresh_token`] (RFC 6749 §6, OIDC Core §12), [`client_credentials`]
//! (RFC 6749 §4.4) and [`token_exchange`] (RFC 8693). What they share lives here: signing a
//! token response off the async workers, reading the stored login a token is issued from, and
//! scope arithmetic.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;
pub mod token_exchange;

use serde_json::{Map, Value};

use crate::claims::{self, AuthContext, TokenKind};
use crate::config::Client;
use crate::login::Stale;
use crate::oauth::error::OAuthError;
use crate::provider::resource::Target;
use crate::state::AppState;
use crate::store::{RefreshTokenRecord, StoredContext};
use crate::tokens::hashing::{digest_hex, random_token};
use crate::tokens::jwt::{self, ACCESS_TOKEN_TYP};
use crate::tokens::keys::Alg;
use crate::tokens::mint::{AccessToken, IdToken};

/// What one token response says about whom, before signing.
pub(crate) struct Issue<'a> {
    pub client_id: &'a str,
    /// The user, or the client itself for client_credentials.
    pub sub: &'a str,
    /// The scopes granted: the ID token's, and the access token's unless it has a target.
    pub scopes: &'a [String],
    pub auth_time: Option<i64>,
    /// The login claims are released from; `None` for a machine client.
    pub context: Option<&'a AuthContext>,
    /// `Some` to mint an ID token too, with this nonce (if any).
    pub id_token: Option<Option<&'a str>>,
    /// The client's `id_token_signed_response_alg`; its access token uses the same unless its
    /// target's API names its own.
    pub alg: Alg,
    /// The DPoP key the access token is bound to (RFC 9449 §6).
    pub jkt: Option<&'a str>,
    /// The APIs the access token is for (RFC 8707); `None`: for Herald (userinfo).
    pub target: Option<&'a Target>,
    /// The login's `sid` for the ID token (Back-Channel Logout 1.0 §2.1).
    pub sid: Option<&'a str>,
    /// The access token expires by then at the latest (an exchanged token, its subject's).
    pub expires_by: Option<i64>,
    pub now: i64,
}

/// Signed tokens and what the store needs to know about the access token.
pub(crate) struct Signed {
    pub access_token: String,
    pub id_token: Option<String>,
    pub jti: String,
    pub access_ttl: i64,
    /// The access token's scopes, space-separated: those of its APIs when it has a target.
    pub scope: String,
    /// `DPoP` for a bound access token (RFC 9449 §5), else `Bearer`.
    pub token_type: &'static str,
}

/// Signs the access token (and the ID token, when asked) with the active key of the client's
/// algorithm.
pub(crate) async fn sign(state: &AppState, issue: Issue<'_>) -> Result<Signed, OAuthError> {
    let settings = state.settings();
    // An access token for APIs carries their scopes only; the ID token is the login's.
    let access_scopes = issue.target.map_or(issue.scopes, |t| &t.scopes[..]);
    let scope = access_scopes.join(" ");
    let jti = random_token();
    let access_ttl = issue
        .target
        .and_then(|t| t.ttl_secs)
        .unwrap_or(settings.tokens.access_token_ttl.as_secs() as i64)
        .min(issue.expires_by.map_or(i64::MAX, |by| by - issue.now))
        .max(1);
    let audience = issue.target.map_or_else(
        || Value::from(settings.issuer.as_str()),
        |t| t.audience.clone(),
    );
    let id_ttl = settings.tokens.id_token_ttl.as_secs() as i64;
    // The `consents` scope releases the user's decision per purpose (from the store, not the
    // login's context) into the ID token, as userinfo does.
    let purposes = match issue.context {
        Some(_) if issue.scopes.iter().any(|s| s == claims::CONSENTS_SCOPE) => Some(
            crate::consent::current_purposes(&*state.store, &settings.scopes, issue.sub).await?,
        ),
        _ => None,
    };
    let released = |kind| {
        let scopes = if kind == TokenKind::AccessToken {
            access_scopes
        } else {
            issue.scopes
        };
        let mut out = match issue.context {
            Some(ctx) => claims::release(ctx, &settings.scopes, scopes, kind),
            None => Map::new(),
        };
        if let Some(p) = &purposes
            && kind == TokenKind::IdToken
        {
            out.insert("purposes".into(), Value::Object(p.clone()));
        }
        out
    };
    let access_claims = AccessToken {
        issuer: &settings.issuer,
        audience: &audience,
        sub: issue.sub,
        client_id: issue.client_id,
        scope: &scope,
        jti: &jti,
        auth_time: issue.auth_time,
        jkt: issue.jkt,
        now: issue.now,
        ttl_secs: access_ttl,
        released: released(TokenKind::AccessToken),
    }
    .claims();
    let id_token = issue.id_token.map(|nonce| {
        let ctx = issue.context;
        OwnedIdToken {
            issuer: settings.issuer.clone(),
            client_id: issue.client_id.to_string(),
            sub: issue.sub.to_string(),
            nonce: nonce.map(str::to_string),
            auth_time: issue.auth_time,
            amr: ctx.and_then(|c| c.amr.clone()),
            acr: ctx.and_then(|c| c.acr.clone()),
            sid: issue.sid.map(str::to_string),
            now: issue.now,
            ttl_secs: id_ttl,
            released: released(TokenKind::IdToken),
        }
    });
    let token_type = if issue.jkt.is_some() {
        "DPoP"
    } else {
        "Bearer"
    };
    let keys = state.keys();
    let alg = issue.alg;
    // An API may want its tokens signed with its own algorithm.
    let access_alg = issue.target.and_then(|t| t.alg).unwrap_or(alg);
    let sign_both = move || {
        let active = |alg| {
            keys.signing_key(alg)
                .ok_or_else(|| OAuthError::server_error("no signing key is active"))
        };
        let access = jwt::sign(active(access_alg)?, ACCESS_TOKEN_TYP, &access_claims)
            .map_err(|_| OAuthError::server_error("signing failed"))?;
        let key = active(alg)?;
        let id = match id_token {
            None => None,
            Some(t) => {
                let claims = IdToken {
                    issuer: &t.issuer,
                    client_id: &t.client_id,
                    sub: &t.sub,
                    nonce: t.nonce.as_deref(),
                    auth_time: t.auth_time,
                    amr: t.amr.as_deref(),
                    acr: t.acr.as_deref(),
                    access_token: Some(&access),
                    sid: t.sid.as_deref(),
                    alg: key.alg,
                    now: t.now,
                    ttl_secs: t.ttl_secs,
                    released: t.released,
                }
                .claims();
                Some(
                    jwt::sign(key, "JWT", &claims)
                        .map_err(|_| OAuthError::server_error("signing failed"))?,
                )
            }
        };
        Ok::<_, OAuthError>((access, id))
    };
    // An RSA signature takes about a quarter of a millisecond: RS256 signs off the async
    // workers. ES256 and EdDSA sign in 10 to 15 µs, less than the hop to the blocking pool and
    // back costs (which made their /token twice as slow), so they sign here.
    let (access_token, id_token) = if alg.is_rsa() || access_alg.is_rsa() {
        // At most one RSA signer per core: more would only share the cores with the async
        // workers and make every other request wait behind their time slices.
        let _permit = state
            .rsa_signers
            .acquire()
            .await
            .map_err(|_| OAuthError::server_error("signing failed"))?;
        tokio::task::spawn_blocking(sign_both)
            .await
            .map_err(|_| OAuthError::server_error("signing failed"))??
    } else {
        sign_both()?
    };
    Ok(Signed {
        access_token,
        id_token,
        jti,
        access_ttl,
        scope,
        token_type,
    })
}

/// An ID token's inputs, owned so they can move to the blocking pool.
struct OwnedIdToken {
    issuer: String,
    client_id: String,
    sub: String,
    nonce: Option<String>,
    auth_time: Option<i64>,
    amr: Option<Vec<String>>,
    acr: Option<String>,
    sid: Option<String>,
    now: i64,
    ttl_secs: i64,
    released: Map<String, Value>,
}

/// The stored login behind a code, read with it (`None`: gone); gone or ended (its upstream was
/// removed) means the grant is gone.
pub(crate) fn live_context(
    state: &AppState,
    stored: Option<StoredContext>,
) -> Result<AuthContext, OAuthError> {
    parsed(&still_live(state, stored)?)
}

/// The stored login `id`, unless it is gone or has ended.
async fn live_login(state: &AppState, id: &str) -> Result<StoredContext, OAuthError> {
    still_live(state, state.store.context(id).await?)
}

/// The login a grant was read with (`None`: gone), unless it is gone or has ended.
fn still_live(
    state: &AppState,
    stored: Option<StoredContext>,
) -> Result<StoredContext, OAuthError> {
    let stored =
        stored.ok_or_else(|| OAuthError::invalid_grant("the login behind this grant is gone"))?;
    if crate::login::login_has_ended(state, &stored) {
        return Err(OAuthError::invalid_grant(
            "the login behind this grant has ended; the user must log in again",
        ));
    }
    Ok(stored)
}

fn parsed(stored: &StoredContext) -> Result<AuthContext, OAuthError> {
    serde_json::from_str(&stored.context)
        .map_err(|_| OAuthError::server_error("stored login data is unreadable"))
}

/// The login behind a refresh token of family `family_id`, made current at its upstream when
/// it is stale (see [`crate::login::freshness`]). The upstream's refusal ends the login and
/// every token issued from it: the app gets `invalid_grant` and the user must log in again.
pub(crate) async fn current_context(
    state: &AppState,
    id: &str,
    family_id: &str,
) -> Result<AuthContext, OAuthError> {
    let stored = live_login(state, id).await?;
    let stored = match crate::login::current_context(state, stored).await {
        Ok(stored) => stored,
        Err(Stale::Refused(why)) => {
            // The login has ended, and with it this family (see `freshness`).
            tracing::info!(family = %family_id, reason = %why, "the upstream refused a stale login");
            return Err(OAuthError::invalid_grant(format!(
                "the identity provider no longer accepts this login ({why}); the user must log in again"
            )));
        }
        Err(Stale::Unavailable(why)) => {
            return Err(OAuthError::temporarily_unavailable(format!(
                "this login's claims are older than its identity provider allows, and the \
                 provider could not refresh them now ({why}); try again later"
            )));
        }
    };
    parsed(&stored)
}

/// Splits a space-separated scope string, dropping empty parts and duplicates.
pub(crate) fn scope_list(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

/// A new refresh token: its value for the client, and its row.
pub(crate) struct NewRefreshToken {
    pub value: String,
    pub record: RefreshTokenRecord,
}

/// Fields a refresh token takes over from its family (or, for the first, from the code).
pub(crate) struct Family<'a> {
    pub family_id: &'a str,
    pub sub: &'a str,
    pub scope: &'a str,
    pub auth_context_id: &'a str,
    pub auth_time: i64,
    pub code_hash: Option<&'a str>,
    pub family_expires_at: i64,
    /// The DPoP key a public client's family is bound to (RFC 9449 §5).
    pub dpop_jkt: Option<&'a str>,
    /// The APIs the family's access tokens may be for (RFC 8707), space-separated.
    pub resources: Option<&'a str>,
}

/// Mints the next refresh token of a family: idle expiry from now, never past the family's
/// absolute expiry.
pub(crate) fn next_refresh_token(client: &Client, family: Family<'_>, now: i64) -> NewRefreshToken {
    let value = random_token();
    let idle = client.refresh_token_idle_ttl.as_secs() as i64;
    NewRefreshToken {
        record: RefreshTokenRecord {
            token_hash: digest_hex(&value),
            family_id: family.family_id.to_string(),
            client_id: client.client_id.clone(),
            sub: family.sub.to_string(),
            scope: family.scope.to_string(),
            auth_context_id: family.auth_context_id.to_string(),
            auth_time: family.auth_time,
            code_hash: family.code_hash.map(str::to_string),
            issued_at: now,
            expires_at: now.saturating_add(idle).min(family.family_expires_at),
            family_expires_at: family.family_expires_at,
            rotated_at: None,
            revoked_at: None,
            grace_used_at: None,
            dpop_jkt: family.dpop_jkt.map(str::to_string),
            resources: family.resources.map(str::to_string),
        },
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_lists_drop_empty_parts_and_duplicates() {
        assert_eq!(
            scope_list(" openid  email openid "),
            vec!["openid", "email"]
        );
        assert!(scope_list("").is_empty());
    }
}
