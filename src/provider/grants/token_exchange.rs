//! The token-exchange grant (RFC 8693), for the broker case: a client trades a token for a
//! Herald access token for the same user (impersonation semantics; delegation with
//! `actor_token` is not supported).
//!
//! - An upstream's ID token or JWT access token (`subject_token_type` `…:id_token` or
//!   `…:access_token`, `iss` a configured upstream), issued to Herald's client there, is
//!   verified against the upstream's JWKS and the upstream's mappings are applied. The user must have signed in through Herald before, must
//!   not be blocked, and must have allowed the app the scopes (unless it is trusted); the app's
//!   access policy applies.
//! - One of Herald's own access tokens, issued to this same client, is exchanged for one for
//!   another audience (`resource` or `audience`, each a registered API), never widening its
//!   scopes, never outliving it, and bound to the same DPoP key if it is bound.
//!
//! A refused exchange is `invalid_request` (the subject_token is not acceptable, §2.2.2),
//! `invalid_grant` (its user cannot get a token), `invalid_scope` or `invalid_target`.

use serde_json::{Value, json};

use super::{Issue, live_login, parsed, scope_list, sign};
use crate::claims::{self, AuthContext};
use crate::config::Client;
use crate::config::policy::Verdict;
use crate::login::upstream_login::plausible_auth_time;
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::provider::resource;
use crate::state::AppState;
use crate::store::{AccessTokenRecord, StoredContext};
use crate::tokens::random_token;
use crate::tokens::verify_access_token;
use crate::upstream::UpstreamError;
use crate::upstream::exchange::{Presented, unverified_issuer};

/// RFC 8693 §3 token type identifiers.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// Whose token is exchanged: the user, the login it is issued from, the scopes it may carry.
struct Subject {
    sub: String,
    context: StoredContext,
    scopes: Vec<String>,
    /// When the subject_token expires, for one of Herald's own: the new one expires by then.
    expires_by: Option<i64>,
    /// The DPoP key one of Herald's own is bound to: the new one needs a proof by it.
    jkt: Option<String>,
}

pub async fn exchange(
    state: &AppState,
    client: &Client,
    p: &Params,
    jkt: Option<&str>,
) -> Result<Value, OAuthError> {
    // A token is no credential of its own: only a client that proves itself may trade one.
    if client.is_public() {
        return Err(OAuthError::unauthorized_client(
            "token exchange needs a confidential client",
        ));
    }
    if p.get("actor_token").is_some() || p.get("actor_token_type").is_some() {
        return Err(OAuthError::invalid_request(
            "delegation (actor_token) is not supported: the issued token acts as the subject",
        ));
    }
    if let Some(t) = p.get("requested_token_type")
        && t != ACCESS_TOKEN_TYPE
    {
        return Err(OAuthError::invalid_request(format!(
            "requested_token_type: only {ACCESS_TOKEN_TYPE} is issued"
        )));
    }
    let token = p
        .get("subject_token")
        .ok_or_else(|| OAuthError::invalid_request("subject_token is required"))?;
    let kind = match p.get("subject_token_type") {
        Some(ACCESS_TOKEN_TYPE) => Presented::AccessToken,
        Some(ID_TOKEN_TYPE) => Presented::IdToken,
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "subject_token_type {other} is not supported; use {ACCESS_TOKEN_TYPE} or \
                 {ID_TOKEN_TYPE}"
            )));
        }
        None => {
            return Err(OAuthError::invalid_request(
                "subject_token_type is required",
            ));
        }
    };
    let settings = state.settings();
    let issuer = unverified_issuer(token);
    let subject = if kind == Presented::AccessToken && issuer.as_deref() == Some(&settings.issuer) {
        own_token(state, client, token).await?
    } else {
        upstream_token(state, client, token, kind, issuer.as_deref()).await?
    };

    if let Some(bound) = &subject.jkt
        && jkt != Some(bound.as_str())
    {
        return Err(OAuthError::invalid_request(
            "the subject_token is DPoP-bound: send a DPoP proof made with its key",
        ));
    }
    // The scopes asked for may only narrow what the subject allows (RFC 8693 §2.1).
    let scopes = match p.get("scope") {
        None => subject.scopes.clone(),
        Some(asked) => {
            let asked = scope_list(asked);
            if let Some(wider) = asked.iter().find(|s| !subject.scopes.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {wider} is not available for this subject_token"
                )));
            }
            asked
        }
    };
    // `resource` and `audience` both name registered APIs here (§2.1).
    let asked: Vec<&str> = [p.get("resource"), p.get("audience")]
        .into_iter()
        .flatten()
        .collect();
    let asked = (!asked.is_empty()).then(|| asked.join(" "));
    let target = resource::any_registered(&settings, asked.as_deref(), &scopes)?;
    let context: AuthContext = parsed(&subject.context)?;
    let now = state.now();
    let signed = sign(
        state,
        Issue {
            client_id: &client.client_id,
            sub: &subject.sub,
            scopes: &scopes,
            auth_time: Some(subject.context.auth_time),
            context: Some(&context),
            id_token: None,
            alg: client.signing_alg,
            jkt,
            target: target.as_ref(),
            sid: None,
            expires_by: subject.expires_by,
            now,
        },
    )
    .await?;
    state
        .store
        .insert_access_token(&AccessTokenRecord {
            jti: signed.jti,
            client_id: client.client_id.clone(),
            sub: subject.sub.clone(),
            scope: signed.scope.clone(),
            auth_context_id: subject.context.id.clone(),
            code_hash: None,
            issued_at: now,
            expires_at: now + signed.access_ttl,
            revoked_at: None,
            family_id: None,
        })
        .await?;
    Ok(json!({
        "access_token": signed.access_token,
        "issued_token_type": ACCESS_TOKEN_TYPE,
        "token_type": signed.token_type,
        "expires_in": signed.access_ttl,
        "scope": signed.scope,
    }))
}

/// One of Herald's access tokens, issued to this client, live, from a live login.
async fn own_token(state: &AppState, client: &Client, token: &str) -> Result<Subject, OAuthError> {
    #[derive(serde::Deserialize)]
    struct Claims {
        jti: String,
        exp: i64,
        cnf: Option<Value>,
    }
    let settings = state.settings();
    let claims: Claims = verify_access_token(&state.keys(), &settings.issuer, token, state.now())
        .map_err(|e| {
        OAuthError::invalid_request(format!("the subject_token is not acceptable: {e}"))
    })?;
    let record = state
        .store
        .access_token(&claims.jti)
        .await?
        .filter(|r| r.revoked_at.is_none())
        .ok_or_else(|| {
            OAuthError::invalid_request(
                "the subject_token is revoked, or is not a user's token (a client's own token \
                 is not exchanged)",
            )
        })?;
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_request(
            "the subject_token was issued to another client",
        ));
    }
    let context = live_login(state, &record.auth_context_id).await?;
    Ok(Subject {
        sub: record.sub,
        context,
        scopes: scope_list(&record.scope),
        expires_by: Some(claims.exp),
        jkt: claims
            .cnf
            .and_then(|c| c["jkt"].as_str().map(str::to_string)),
    })
}

/// An upstream's token: verified, its user known to Herald and allowed this app.
async fn upstream_token(
    state: &AppState,
    client: &Client,
    token: &str,
    kind: Presented,
    issuer: Option<&str>,
) -> Result<Subject, OAuthError> {
    let settings = state.settings();
    let Some(iss) = issuer else {
        return Err(OAuthError::invalid_request(
            "the subject_token is not a JWT naming its issuer; an opaque token says not whom it \
             was issued to, so it is not exchanged",
        ));
    };
    let mut named = settings
        .upstreams
        .iter()
        .filter(|u| u.endpoint.issuer == iss);
    let upstream = match (named.next(), named.next()) {
        (Some(only), None) => only,
        (None, _) => {
            return Err(OAuthError::invalid_request(format!(
                "the subject_token was issued by {iss}, which is not a configured upstream"
            )));
        }
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(format!(
                "several upstreams have the issuer {iss}, so which one's mappings apply is \
                 unclear; tokens from it are not exchanged"
            )));
        }
    };
    let now = state.now();
    let claims = state
        .upstreams
        .exchanged_claims(upstream, token, kind, now)
        .await
        .map_err(|e| match e {
            UpstreamError::Unavailable(why) => OAuthError::temporarily_unavailable(why),
            other => {
                OAuthError::invalid_request(format!("the subject_token is not acceptable: {other}"))
            }
        })?;
    let subject = claims
        .id_token
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let user = state
        .store
        .user_by_identity(&upstream.id, &subject)
        .await?
        .ok_or_else(|| {
            OAuthError::invalid_grant(
                "this user has not signed in through this server yet; sign in through the app once",
            )
        })?;
    if user.blocked {
        return Err(OAuthError::invalid_grant("this user is blocked"));
    }
    let scopes: Vec<String> = if client.trusted {
        client.scopes.clone()
    } else {
        let grant = state
            .store
            .grant(&user.sub, &client.client_id)
            .await?
            .ok_or_else(|| {
                OAuthError::invalid_grant(
                    "the user has not allowed this app; sign in through the app once",
                )
            })?;
        client
            .scopes
            .iter()
            .filter(|s| grant.scopes.contains(s.as_str()))
            .cloned()
            .collect()
    };
    let previous: Option<AuthContext> = user
        .last_context
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok());
    let built = claims::build_context(&upstream.id, &upstream.mapping, &claims, previous.as_ref())
        .map_err(|e| {
            OAuthError::invalid_grant(format!("the upstream's claims are refused: {e}"))
        })?;
    if let Some(policy) = &client.access_policy
        && let Verdict::Refused(why) =
            policy.evaluate(&built.context.attributes, &built.context.upstream)
    {
        return Err(OAuthError::invalid_grant(format!(
            "the app's access policy does not let this user in ({why})"
        )));
    }
    let context = StoredContext {
        id: random_token(),
        sub: user.sub.clone(),
        upstream_id: upstream.id.clone(),
        context: serde_json::to_string(&built.context)
            .map_err(|_| OAuthError::server_error("the login could not be recorded"))?,
        // When the user authenticated: the token's auth_time, else when it was issued.
        auth_time: plausible_auth_time(
            ["auth_time", "iat"]
                .iter()
                .find_map(|k| claims.id_token.get(*k).and_then(Value::as_i64)),
            now,
        ),
        created_at: now,
        // Lives as long as the token issued from it; nothing refreshes it.
        expires_at: Some(now + settings.tokens.access_token_ttl.as_secs() as i64),
        revoked_at: None,
        upstream_sid: None,
        upstream_refresh: None,
        upstream_subject: Some(subject),
    };
    state.store.insert_context(&context).await?;
    Ok(Subject {
        sub: user.sub,
        context,
        scopes,
        expires_by: None,
        jkt: None,
    })
}
