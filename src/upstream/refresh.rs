//! Refreshing a login at the upstream with its refresh token (RFC 6749 §6, OIDC Core §12):
//! new claims for a login Herald keeps current (`refresh_upstream`).
//!
//! An ID token in the answer is checked like the login's (signature, `iss`, `aud`, `exp`,
//! `iat`; its nonce is not, §12.2); with none, userinfo gives the claims. Only the token
//! endpoint's `invalid_grant` is a refusal (`UpstreamError::Invalid`: the user was blocked
//! there, or the grant revoked): every other failure, an outage, a rate limit or an answer that
//! fails a check included, is one the caller may wait out.

use openidconnect::core::CoreErrorResponseType;
use openidconnect::{Nonce, OAuth2TokenResponse, RefreshToken, RequestTokenError};

use super::claims_json::jwt_payload;
use super::client::{Finished, UpstreamClients};
use super::error::{UpstreamError, chain};
use super::http::Guarded;
use crate::config::Upstream;
use crate::secret::Secret;

/// A refresh that failed: why, and the refresh token the upstream rotated to when it accepted
/// the old one before the failure (the caller must keep it: the old one is spent).
#[derive(Debug)]
pub struct RefreshFailure {
    pub error: UpstreamError,
    pub rotated: Option<Secret>,
}

impl From<UpstreamError> for RefreshFailure {
    fn from(error: UpstreamError) -> Self {
        Self {
            error,
            rotated: None,
        }
    }
}

impl UpstreamClients {
    /// New claims for a login at `up`, with its refresh token. An error of
    /// `UpstreamError::Invalid` means the upstream refused the token.
    pub async fn refresh(
        &self,
        up: &Upstream,
        redirect_uri: &str,
        refresh_token: &str,
        wants_access_token_claims: bool,
    ) -> Result<Finished, RefreshFailure> {
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
        let rotated = token
            .refresh_token()
            .map(|r| Secret::new(r.secret().clone()));
        // From here on the old token is spent: a failure hands back the new one.
        let failed = |e: UpstreamError| RefreshFailure {
            error: not_a_refusal(up, e),
            rotated: rotated.as_ref().map(|r| Secret::new(r.expose())),
        };
        let (d, id_claims) = match token.extra_fields().id_token() {
            Some(id_token) => {
                // §12.2 says a refreshed ID token SHOULD NOT carry a nonce, and some providers
                // (Keycloak) repeat the login's: it is not checked.
                let any_nonce = |_: Option<&Nonce>| Ok(());
                let d = self
                    .checked_id_token(up, redirect_uri, d, id_token, any_nonce)
                    .await
                    .map_err(failed)?;
                let claims = jwt_payload(&id_token.to_string()).ok_or_else(|| {
                    failed(UpstreamError::Invalid(
                        "ID token payload is not a JSON object".into(),
                    ))
                })?;
                (d, Some(claims))
            }
            None => (d, None),
        };
        let handed_on = rotated.as_ref().map(|r| Secret::new(r.expose()));
        self.with_claims(
            up,
            &d,
            id_claims,
            token.access_token().secret(),
            wants_access_token_claims,
            handed_on,
        )
        .await
        .map_err(failed)
    }
}

/// A failure after the upstream accepted the refresh token (an ID token that fails a check,
/// userinfo refused or rate-limited) says nothing about whether the login still stands: it is
/// one to wait out, never a refusal that ends the login.
fn not_a_refusal(up: &Upstream, e: UpstreamError) -> UpstreamError {
    match e {
        UpstreamError::Invalid(why) => UpstreamError::Unavailable(format!(
            "{}: the refreshed answer could not be used: {why}",
            up.id
        )),
        other => other,
    }
}
