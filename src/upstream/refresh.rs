//! Refreshing a login at the upstream with its refresh token (RFC 6749 §6, OIDC Core §12):
//! new claims for a login Herald keeps current (`refresh_upstream`).
//!
//! An ID token in the answer is checked like the login's (signature, `iss`, `aud`, `exp`,
//! `iat`), without a nonce (§12.2); with none, userinfo gives the claims. Only the upstream's
//! `invalid_grant` is a refusal (the user was blocked there, or the grant revoked): every other
//! failure, an outage included, is one the caller may wait out.

use openidconnect::core::CoreErrorResponseType;
use openidconnect::{Nonce, OAuth2TokenResponse, RefreshToken, RequestTokenError};

use super::claims_json::jwt_payload;
use super::client::{Finished, UpstreamClients};
use super::error::{UpstreamError, chain};
use super::http::Guarded;
use crate::config::Upstream;
use crate::secret::Secret;

impl UpstreamClients {
    /// New claims for a login at `up`, with its refresh token. `UpstreamError::Invalid` means
    /// the upstream refused the token (or answered with an ID token that fails a check).
    pub async fn refresh(
        &self,
        up: &Upstream,
        redirect_uri: &str,
        refresh_token: &str,
        wants_access_token_claims: bool,
    ) -> Result<Finished, UpstreamError> {
        let d = self.discover(up, false).await?;
        let client = self.client(up, &d, redirect_uri)?;
        let presented = RefreshToken::new(refresh_token.to_string());
        let token = client
            .exchange_refresh_token(&presented)
            .map_err(|e| UpstreamError::Misconfigured(e.to_string()))?
            .request_async(&Guarded::new(&self.http, up))
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(err)
                    if *err.error() == CoreErrorResponseType::InvalidGrant =>
                {
                    UpstreamError::Invalid(format!(
                        "{}: the identity provider refused the refresh token: {err}",
                        up.id
                    ))
                }
                RequestTokenError::ServerResponse(err) => UpstreamError::Misconfigured(format!(
                    "{}: the identity provider refused the refresh: {err}",
                    up.id
                )),
                other => UpstreamError::Unavailable(format!(
                    "{}: the refresh failed: {}",
                    up.id,
                    chain(&other)
                )),
            })?;
        let (d, id_claims) = match token.extra_fields().id_token() {
            Some(id_token) => {
                // §12.2: no nonce in a refreshed ID token.
                let no_nonce = |n: Option<&Nonce>| match n {
                    None => Ok(()),
                    Some(_) => Err("a refreshed ID token carries a nonce".to_string()),
                };
                let d = self
                    .checked_id_token(up, redirect_uri, d, id_token, no_nonce)
                    .await?;
                let claims = jwt_payload(&id_token.to_string()).ok_or_else(|| {
                    UpstreamError::Invalid("ID token payload is not a JSON object".into())
                })?;
                (d, Some(claims))
            }
            None => (d, None),
        };
        let rotated = token
            .refresh_token()
            .map(|r| Secret::new(r.secret().clone()));
        self.with_claims(
            up,
            &d,
            id_claims,
            token.access_token().secret(),
            wants_access_token_claims,
            rotated,
        )
        .await
    }
}
