//! The authorization_code grant (RFC 6749 §4.1.3; RFC 7636 §4.5–§4.6; OIDC Core §3.1.3).
//!
//! The code is checked (client, redirect URI, expiry, PKCE) before anything is signed; the code
//! is then consumed and the tokens recorded in one transaction. A replayed code revokes what its
//! first use issued, refresh tokens included (RFC 6749 §4.1.2). A refresh token is issued only
//! when the client registered the `refresh_token` grant and `offline_access` was granted
//! (OIDC Core §11).

use serde_json::json;

use super::{Family, Issue, live_context, next_refresh_token, scope_list, sign};
use crate::config::{Client, GrantType};
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::provider::resource;
use crate::state::AppState;
use crate::store::{AccessTokenRecord, Redemption};
use crate::telemetry::events;
use crate::tokens::hashing::{constant_time_eq, digest_hex, random_token};
use crate::tokens::mint::pkce_s256;
use crate::tokens::mint::session_id;

pub async fn exchange(
    state: &AppState,
    client: &Client,
    p: &Params,
    jkt: Option<&str>,
) -> Result<serde_json::Value, OAuthError> {
    let code = p
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = p
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    let code_hash = digest_hex(code);
    let now = state.now();
    let (record, context) = state
        .store
        .code(&code_hash)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the code is invalid"))?;
    // Same answer for another client's code as for an unknown one.
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code is invalid"));
    }
    if record.consumed_at.is_some() {
        let revoked = state.store.revoke_tokens_of_code(&code_hash, now).await?;
        events::code_replayed(&client.client_id, revoked);
        return Err(OAuthError::invalid_grant("the code was already used"));
    }
    if record.expires_at <= now {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    if record.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    // RFC 9449 §10: a code bound to a DPoP key is redeemed with a proof by that key only.
    if let Some(bound) = &record.dpop_jkt
        && jkt != Some(bound.as_str())
    {
        return Err(OAuthError::invalid_grant(
            "the code is bound to a DPoP key (dpop_jkt): send a DPoP proof made with that key",
        ));
    }
    match (&record.code_challenge, p.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            if !(43..=128).contains(&verifier.len())
                || !constant_time_eq(&pkce_s256(verifier), challenge)
            {
                state.store.burn_code(&code_hash, now).await?;
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => {
            state.store.burn_code(&code_hash, now).await?;
            return Err(OAuthError::invalid_grant("code_verifier is required"));
        }
        // A verifier for a code issued without a challenge: a downgrade attempt (RFC 9700 §4.8.2).
        (None, Some(_)) => {
            state.store.burn_code(&code_hash, now).await?;
            return Err(OAuthError::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ));
        }
        (None, None) => {}
    }

    let context = live_context(state, context)?;
    let scopes = scope_list(&record.scope);
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
            id_token: wants_id_token.then_some(record.nonce.as_deref()),
            alg: client.signing_alg,
            jkt,
            target: target.as_ref(),
            sid: Some(&session_id(&record.auth_context_id)),
            expires_by: None,
            now,
        },
    )
    .await?;

    let offline =
        client.allows(GrantType::RefreshToken) && scopes.iter().any(|s| s == "offline_access");
    let family_id = random_token();
    let refresh = offline.then(|| {
        next_refresh_token(
            client,
            Family {
                family_id: &family_id,
                sub: &record.sub,
                scope: &record.scope,
                auth_context_id: &record.auth_context_id,
                auth_time: record.auth_time,
                code_hash: Some(&code_hash),
                family_expires_at: now
                    .saturating_add(client.refresh_token_absolute_ttl.as_secs() as i64),
                // A public client's refresh tokens are bound to its DPoP key (RFC 9449 §5); a
                // confidential client's are bound to its credentials already.
                dpop_jkt: jkt.filter(|_| client.is_public()),
                resources: record.resources.as_deref(),
            },
            now,
        )
    });
    let token_record = AccessTokenRecord {
        jti: signed.jti,
        client_id: client.client_id.clone(),
        sub: record.sub.clone(),
        scope: signed.scope.clone(),
        auth_context_id: record.auth_context_id.clone(),
        code_hash: Some(code_hash.clone()),
        issued_at: now,
        expires_at: now + signed.access_ttl,
        revoked_at: None,
        family_id: refresh.as_ref().map(|_| family_id.clone()),
    };
    match state
        .store
        .redeem_code(
            &code_hash,
            now,
            &token_record,
            refresh.as_ref().map(|r| &r.record),
        )
        .await?
    {
        Redemption::Redeemed => {}
        Redemption::AlreadyUsed => {
            // Lost a race with a parallel redemption: the same as a replay.
            state.store.revoke_tokens_of_code(&code_hash, now).await?;
            return Err(OAuthError::invalid_grant("the code was already used"));
        }
    }
    let mut body = json!({
        "access_token": signed.access_token,
        "token_type": signed.token_type,
        "expires_in": signed.access_ttl,
        "scope": signed.scope,
    });
    if let Some(id) = signed.id_token {
        body["id_token"] = json!(id);
    }
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r.value);
    }
    Ok(body)
}
