//! Who may use the admin API (RFC 6750 bearer tokens), and in which role.
//!
//! Two credentials work. `HERALD_ADMIN_TOKEN`, when set, is for the first setup and for scripts
//! (compared in constant time over SHA-256 digests, so neither content nor length leaks); it
//! holds every permission. And a Herald access token that Herald issued by client_credentials
//! with a role scope: `herald:admin` (admin), `herald:edit` (editor) or `herald:read` (auditor),
//! whose permissions [`crate::config::Role`] lists. The token must verify (signature, `typ`,
//! `iss`, `exp`), must not be revoked, must be a client's own (`sub` = `client_id`, a client
//! registered for client_credentials), and both the token and the client's current
//! registration must carry the scope — so removing the scope from the client cuts its tokens
//! off at once. Each handler names the permission it needs by its extractor ([`ConfigReader`],
//! [`ConfigEditor`], [`UserReader`], [`Admin`]); a role without it is refused with 403
//! `insufficient_scope`, naming the roles and scopes that would do. An end user's token is
//! refused with 403 whatever its scope. No credentials, or bad ones: 401 with
//! `WWW-Authenticate: Bearer`.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::config::GrantType;
use crate::config::{ACCOUNT_LINK_SCOPE, Permission, Role, RoleSet};
use crate::state::AppState;
use crate::tokens::hashing::digest;
use crate::tokens::jwt::{audience_includes, verify_access_token};

/// Who made an admin request, as the audit log names them, and the roles they act in.
#[derive(Debug, Clone)]
pub struct Admin {
    /// `bootstrap-token`, `client:{client_id}` or, from the pages, `user:{sub}`.
    pub actor: String,
    /// What they may do; the change service refuses what only an admin may change to anyone
    /// else, whichever way the change came.
    pub roles: RoleSet,
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
    #[serde(default)]
    aud: serde_json::Value,
    /// A DPoP key confirmation (RFC 9449 §6.1): such a token is refused here.
    cnf: Option<serde_json::Value>,
}

/// Extractors for each [`Permission`]: a handler names what it needs by the type it takes, and
/// a caller whose role lacks it is refused (403, naming the roles and scopes that would do)
/// before the handler runs.
macro_rules! needs {
    ($(#[$doc:meta] $name:ident => $permission:expr;)*) => {$(
        #[$doc]
        pub struct $name(pub Admin);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                authenticate(parts, state, $permission, None).await.map($name)
            }
        }
    )*};
}

needs! {
    /// Reads the configuration, the lineage and the audit log: any role.
    ConfigReader => Permission::ReadConfig;
    /// Changes upstreams, mappings, scopes and clients: admin or editor.
    ConfigEditor => Permission::EditConfig;
    /// Reads users, their consents and event deliveries: admin or auditor.
    UserReader => Permission::ReadUsers;
}

/// Acts on users and their data: the admin role only.
impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, Permission::ManageUsers, None).await
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
        let admin = authenticate(
            parts,
            state,
            Permission::ManageUsers,
            Some(ACCOUNT_LINK_SCOPE),
        )
        .await?;
        Ok(AccountLinker { actor: admin.actor })
    }
}

/// The bootstrap token (every permission), or a client_credentials token of a client whose role
/// scope (in the token and in its current registration) gives `need`, or that holds `also` the
/// same way.
async fn authenticate(
    parts: &mut Parts,
    state: &AppState,
    need: Permission,
    also: Option<&str>,
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
                roles: RoleSet::new([Role::Admin]),
            });
        }
        let settings = state.settings();
        let claims: TokenClaims =
            verify_access_token(&state.keys(), &settings.issuer, token, state.now())
                .map_err(|_| ApiError::invalid_token("the token is invalid or has expired"))?;
        // A token for an API (RFC 8707) is not one for the admin API.
        if !audience_includes(&claims.aud, &settings.issuer) {
            return Err(ApiError::invalid_token(
                "the token is for another audience (an API), not for Herald's admin API",
            ));
        }
        // The admin API takes bearer tokens only: a DPoP-bound token (RFC 9449) would need a
        // proof of its key, so presented as a bearer token it is refused (§7.1), never taken.
        if claims.cnf.is_some() {
            return Err(ApiError::invalid_token(
                "the token is DPoP-bound; the admin API takes tokens issued without a DPoP proof",
            ));
        }
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
            return Err(ApiError::insufficient_scope_for(
                "only a client acting for itself (client_credentials) with a role scope \
                 (herald:admin, herald:edit or herald:read) may administer Herald; a user's \
                 token never can",
                need.scope(),
            ));
        }
        // A scope counts when both the token and the client's registration carry it.
        let held = |wanted: &str| {
            claims.scope.split(' ').any(|s| s == wanted)
                && client.is_some_and(|c| c.scopes.iter().any(|s| s == wanted))
        };
        let roles = RoleSet::new(Role::ALL.into_iter().filter(|r| held(r.scope())));
        let allowed = roles.may(need) || also.is_some_and(held);
        if !allowed {
            let mut scopes = need.scopes();
            if let Some(extra) = also {
                scopes = format!("{scopes} or {extra}");
            }
            let has = if roles.is_empty() {
                "the token carries no admin role".to_string()
            } else {
                format!("the token carries the {} role", roles.names())
            };
            return Err(ApiError::insufficient_scope_for(
                format!("this needs the {} role (scope {scopes}); {has}", need.who()),
                also.unwrap_or(need.scope()),
            ));
        }
        Ok(Admin {
            actor: format!("client:{}", claims.client_id),
            roles,
        })
    }
}
