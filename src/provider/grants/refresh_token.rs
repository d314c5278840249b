//! The refresh_token grant (RFC 6749 §6; OIDC Core §12; RFC 9700 §4.14.2).
//!
//! Refresh tokens are opaque, stored as digests, and rotated on every use: the presented token
//! is retired and a successor issued in one transaction. Presenting a retired token again means
//! it leaked (or a client raced itself): the whole family, and every access token issued with
//! it, is revoked — unless the client has a `refresh_token_grace_period` and the token was
//! rotated within it, which allows one more use (a retry that lost the answer, two tabs at
//! once; Hydra's rotation grace period, Dex's reuse interval); that use issues another successor
//! and leaves the family alone. Each token expires after the client's idle lifetime, the family after its
//! absolute lifetime. Claims are released again from the stored login, and the scopes asked for
//! may only narrow the original grant.

use serde_json::json;

use super::{Family, Issue, current_context, next_refresh_token, scope_list, sign};
use crate::config::Client;
use crate::config::policy::Verdict;
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::provider::resource;
use crate::state::AppState;
use crate::store::{AccessTokenRecord, Rotation};
use crate::telemetry::events;
use crate::tokens::hashing::digest_hex;
use crate::tokens::mint::session_id;

pub async fn refresh(
    state: &AppState,
    client: &Client,
    p: &Params,
    jkt: Option<&str>,
) -> Result<serde_json::Value, OAuthError> {
    let presented = p
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let token_hash = digest_hex(presented);
    let now = state.now();
    let record = state
        .store
        .refresh_token(&token_hash)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
    // Another client's token: the same answer as an unknown one, and no side effects.
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the refresh token is invalid"));
    }
    if record.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the refresh token was revoked"));
    }
    // RFC 9449 §5: a bound refresh token is used only with a proof by its key.
    if let Some(bound) = &record.dpop_jkt
        && jkt != Some(bound.as_str())
    {
        return Err(OAuthError::invalid_grant(
            "the refresh token is bound to a DPoP key: send a DPoP proof made with that key",
        ));
    }
    // The client's grace period: a token rotated at or after this may be used once more.
    let grace = client.refresh_token_grace_period.as_secs() as i64;
    let grace_since = (grace > 0).then(|| now - grace);
    if let Some(rotated_at) = record.rotated_at {
        let within_grace =
            grace_since.is_some_and(|since| rotated_at >= since) && record.grace_used_at.is_none();
        if !within_grace {
            return Err(reuse(state, client, &record.family_id, now).await?);
        }
    }
    if record.expires_at <= now || record.family_expires_at <= now {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }

    // RFC 6749 §6: the scope asked for may only narrow the original grant. Scopes the client's
    // configuration no longer allows are dropped silently.
    let granted = scope_list(&record.scope);
    let scopes: Vec<String> = match p.get("scope") {
        None => granted,
        Some(asked) => {
            let asked = scope_list(asked);
            if let Some(wider) = asked.iter().find(|s| !granted.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {wider} was not granted to this refresh token"
                )));
            }
            asked
        }
    };
    let scopes: Vec<String> = scopes
        .into_iter()
        .filter(|s| client.scopes.contains(s))
        .collect();
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope("no scope left to grant"));
    }

    let context = current_context(state, &record.auth_context_id, &record.family_id).await?;
    // The app's access policy, again: a user it no longer lets in loses the family.
    if let Some(policy) = &client.access_policy
        && let Verdict::Refused(why) = policy.evaluate(&context.attributes, &context.upstream)
    {
        let revoked = state
            .store
            .revoke_refresh_family(&record.family_id, now)
            .await?;
        tracing::info!(client = %client.client_id, revoked, reason = %why,
            "the access policy refused a refresh: its family is revoked");
        return Err(OAuthError::invalid_grant(format!(
            "the app's access policy does not let this user in ({why}); the user must log in again"
        )));
    }
    // OIDC Core §12.2: same iss, sub, aud and auth_time, a new iat; no nonce, which belongs to
    // the original authentication request.
    let wants_id_token = scopes.iter().any(|s| s == "openid");
    let settings = state.settings();
    let target = resource::target(
        &settings,
        &resource::granted(&settings, record.resources.as_deref())?,
        p.get("resource"),
        &scopes,
    )?;
    let signed = sign(
        state,
        Issue {
            client_id: &client.client_id,
            sub: &record.sub,
            scopes: &scopes,
            auth_time: Some(record.auth_time),
            context: Some(&context),
            id_token: wants_id_token.then_some(None),
            alg: client.signing_alg,
            jkt,
            target: target.as_ref(),
            sid: Some(&session_id(&record.auth_context_id)),
            expires_by: None,
            now,
        },
    )
    .await?;
    let successor = next_refresh_token(
        client,
        Family {
            family_id: &record.family_id,
            sub: &record.sub,
            scope: &record.scope,
            auth_context_id: &record.auth_context_id,
            auth_time: record.auth_time,
            code_hash: record.code_hash.as_deref(),
            family_expires_at: record.family_expires_at,
            // A public client's family is bound from its first proof on (RFC 9449 §5).
            dpop_jkt: record
                .dpop_jkt
                .as_deref()
                .or(jkt.filter(|_| client.is_public())),
            resources: record.resources.as_deref(),
        },
        now,
    );
    let scope = signed.scope.clone();
    let access = AccessTokenRecord {
        jti: signed.jti,
        client_id: client.client_id.clone(),
        sub: record.sub.clone(),
        scope: scope.clone(),
        auth_context_id: record.auth_context_id.clone(),
        code_hash: record.code_hash.clone(),
        issued_at: now,
        expires_at: now + signed.access_ttl,
        revoked_at: None,
        family_id: Some(record.family_id.clone()),
    };
    match state
        .store
        .rotate_refresh_token(&token_hash, now, grace_since, &successor.record, &access)
        .await?
    {
        Rotation::Rotated => {}
        // Someone rotated it between our read and our write: a reuse all the same.
        Rotation::NotCurrent => return Err(reuse(state, client, &record.family_id, now).await?),
    }
    let mut body = json!({
        "access_token": signed.access_token,
        "token_type": signed.token_type,
        "expires_in": signed.access_ttl,
        "scope": scope,
        "refresh_token": successor.value,
    });
    if let Some(id) = signed.id_token {
        body["id_token"] = json!(id);
    }
    Ok(body)
}

/// A retired token came back: revoke its family (RFC 9700 §4.14.2) and answer invalid_grant.
async fn reuse(
    state: &AppState,
    client: &Client,
    family_id: &str,
    now: i64,
) -> Result<OAuthError, OAuthError> {
    let revoked = state.store.revoke_refresh_family(family_id, now).await?;
    events::refresh_reused(&client.client_id, revoked);
    Ok(OAuthError::invalid_grant(
        "the refresh token was already used",
    ))
}
