//! The client_credentials grant (RFC 6749 §4.4): a confidential client acting for itself.
//!
//! The access token's `sub` is the client_id; there is no ID token and no refresh token
//! (RFC 6749 §4.4.3). Scopes are the client's own minus the OpenID ones, which describe a user.
//! Nothing is written to the store, so the endpoint stays bound by signing alone; such a token
//! gets a row only if it is revoked (see `revocation`).

use serde_json::json;

use super::{Issue, scope_list, sign};
use crate::config::Client;
use crate::oauth::error::OAuthError;
use crate::oauth::params::Params;
use crate::provider::resource;
use crate::state::AppState;

/// Scopes that speak about a user, never granted to a client acting for itself.
const USER_SCOPES: [&str; 2] = ["openid", "offline_access"];

pub async fn issue(
    state: &AppState,
    client: &Client,
    p: &Params,
    jkt: Option<&str>,
) -> Result<serde_json::Value, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::unauthorized_client(
            "client_credentials needs a confidential client",
        ));
    }
    let scopes = machine_scopes(client, p.get("scope"))?;
    let now = state.now();
    let target = resource::any_registered(&state.settings(), p.get("resource"), &scopes)?;
    let signed = sign(
        state,
        Issue {
            client_id: &client.client_id,
            sub: &client.client_id,
            scopes: &scopes,
            auth_time: None,
            context: None,
            id_token: None,
            alg: client.signing_alg,
            jkt,
            target: target.as_ref(),
            sid: None,
            expires_by: None,
            now,
        },
    )
    .await?;
    Ok(json!({
        "access_token": signed.access_token,
        "token_type": signed.token_type,
        "expires_in": signed.access_ttl,
        "scope": signed.scope,
    }))
}

/// The scopes asked for, each one the client's and none a user scope; by default all of them.
fn machine_scopes(client: &Client, asked: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let allowed: Vec<String> = client
        .scopes
        .iter()
        .filter(|s| !USER_SCOPES.contains(&s.as_str()))
        .cloned()
        .collect();
    let Some(asked) = asked else {
        return Ok(allowed);
    };
    let asked = scope_list(asked);
    match asked.iter().find(|s| !allowed.contains(s)) {
        Some(s) => Err(OAuthError::invalid_scope(format!(
            "scope {s} is not available to this client with client_credentials"
        ))),
        None => Ok(asked),
    }
}
