//! Who may use the admin API (RFC 6750 bearer tokens).
//!
//! Two credentials work. `HERALD_ADMIN_TOKEN`, when set, is for the first setup and for scripts
//! (compared in constant time over SHA-256 digests, so neither content nor length leaks). And a
//! Herald access token that Herald issued by client_credentials with the `herald:admin` scope:
//! the token must verify (signature, `typ`, `iss`, `exp`), must not be revoked, must be a
//! client's own (`sub` = `client_id`, a client registered for client_credentials), and both the
//! token and the client's current registration must carry `herald:admin` — so removing the scope
//! from the client cuts its tokens off at once. An end user's token is refused with 403 whatever
//! its scope. No credentials, or bad ones: 401 with `WWW-Authenticate: Bearer`.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::GrantType;
use crate::config::{ACCOUNT_LINK_SCOPE, ADMIN_SCOPE};
use crate::state::AppState;
use crate::tokens::hashing::digest;
use crate::tokens::jwt::verify_access_token;

/// Who made an admin request, as the audit log names them.
#[derive(Debug, Clone)]
pub struct Admin {
    /// `bootstrap-token` or `client:{client_id}`.
    pub actor: String,
}

#[derive(Deserialize)]
struct TokenClaims {
    sub: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    jti: String,
    #[serde(default)]
    iat: i64,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, &[ADMIN_SCOPE]).await
    }
}

/// Who may make an account link: an admin, or a client holding `herald:account-link` (a
/// consent-management platform that emails users a link to their consent center).
#[derive(Debug, Clone)]
pub struct AccountLinker {
    pub actor: String,
}

impl FromRequestParts<AppState> for AccountLinker {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let admin = authenticate(parts, state, &[ADMIN_SCOPE, ACCOUNT_LINK_SCOPE]).await?;
        Ok(AccountLinker { actor: admin.actor })
    }
}

/// The bootstrap token, or a client_credentials token of a client holding one of `scopes`
/// (in the token and in its current registration).
async fn authenticate(
    parts: &mut Parts,
    state: &AppState,
    scopes: &[&str],
) -> Result<Admin, ApiError> {
    {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::no_credentials());
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::invalid_token("use `Authorization: Bearer TOKEN`"))?;
        if let Some(bootstrap) = &state.admin_token
            && bool::from(digest(token).ct_eq(&digest(bootstrap.expose())))
        {
            return Ok(Admin {
                actor: "bootstrap-token".into(),
            });
        }
        let settings = state.settings();
        let claims: TokenClaims =
            verify_access_token(&state.keys(), &settings.issuer, token, state.now())
                .map_err(|_| ApiError::invalid_token("the token is invalid or has expired"))?;
        if let Some(rec) = state.store.access_token(&claims.jti).await?
            && rec.revoked_at.is_some()
        {
            return Err(ApiError::invalid_token("the token has been revoked"));
        }
        let client = settings.client(&claims.client_id);
        // Issued to this registration of the client, not to an earlier one of the same id
        // (client_credentials tokens have no row that a deletion could revoke).
        if client.is_some_and(|c| c.predates_registration(claims.iat)) {
            return Err(ApiError::invalid_token(
                "the token was issued to an earlier client of this id",
            ));
        }
        let machine = claims.sub == claims.client_id
            && client.is_some_and(|c| c.allows(GrantType::ClientCredentials));
        if !machine {
            return Err(ApiError::insufficient_scope(
                "only a client acting for itself (client_credentials) with the herald:admin \
                 scope may administer Herald; a user's token never can",
            ));
        }
        let scoped = scopes.iter().any(|wanted| {
            claims.scope.split(' ').any(|s| s == *wanted)
                && client.is_some_and(|c| c.scopes.iter().any(|s| s == *wanted))
        });
        if !scoped {
            return Err(ApiError::insufficient_scope_for(
                format!("the token lacks the {} scope", scopes.join(" or ")),
                &scopes.join(" "),
            ));
        }
        Ok(Admin {
            actor: format!("client:{}", claims.client_id),
        })
    }
}
