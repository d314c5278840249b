//! Upstream tokens presented for exchange (RFC 8693, the broker case): an ID token or an access
//! token the upstream issued, checked as Herald would check them in a login, so the upstream's
//! mappings can be applied to them. A JWT is verified against the upstream's JWKS (`iss`, `aud`,
//! `exp` against Herald's clock); an opaque access token is sent to the upstream's userinfo
//! endpoint, whose answer is the claims.

use jsonwebtoken::Validation;
use serde_json::{Map, Value};

use super::client::UpstreamClients;
use super::error::UpstreamError;
use crate::claims::{AccessTokenClaims, UpstreamClaims};
use crate::config::Upstream;

/// How far Herald's clock and the upstream's may differ.
const LEEWAY_SECONDS: i64 = 60;

/// Which kind of upstream token is presented (RFC 8693 §3 token type identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    IdToken,
    AccessToken,
}

/// The `iss` of a JWT, read without verifying it (to pick the upstream whose keys verify it);
/// `None` for anything that is not a JWT with a string `iss`.
pub fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    if token.len() > 16 * 1024 || token.split('.').count() != 3 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

impl UpstreamClients {
    /// The claims of `token`, a `kind` token `up` issued, verified; with the user's subject at
    /// the upstream in `id_token.sub`, as a login's claims have it.
    pub async fn exchanged_claims(
        &self,
        up: &Upstream,
        token: &str,
        kind: Presented,
        now: i64,
    ) -> Result<UpstreamClaims, UpstreamError> {
        let d = self.discover(up, false).await?;
        let is_jwt = token.split('.').count() == 3;
        match (kind, is_jwt) {
            (Presented::IdToken, false) => Err(UpstreamError::Invalid(
                "the subject_token is not a JWT, so not an ID token".into(),
            )),
            (Presented::IdToken, true) => {
                let claims = self.checked(up, token, Some(&up.client_id), now).await?;
                Ok(UpstreamClaims {
                    id_token: claims,
                    userinfo: None,
                    access_token: AccessTokenClaims::Absent,
                })
            }
            (Presented::AccessToken, true) => {
                let audience = up.extra_authorize_params.get("audience");
                let claims = self
                    .checked(up, token, audience.map(String::as_str), now)
                    .await?;
                let sub = claims.get("sub").cloned();
                Ok(UpstreamClaims {
                    id_token: sub
                        .map(|s| Map::from_iter([("sub".to_string(), s)]))
                        .unwrap_or_default(),
                    userinfo: None,
                    access_token: AccessTokenClaims::Jwt(claims),
                })
            }
            (Presented::AccessToken, false) => {
                // Opaque: only the upstream can say whose it is.
                let endpoint = d
                    .metadata
                    .userinfo_endpoint()
                    .ok_or_else(|| {
                        UpstreamError::Misconfigured(
                            "an opaque access token can only be checked at the provider's \
                             userinfo endpoint, and its discovery has none"
                                .into(),
                        )
                    })?
                    .url()
                    .clone();
                let info = self.userinfo(up, endpoint.as_str(), token).await?;
                let sub = info.get("sub").cloned().ok_or_else(|| {
                    UpstreamError::Invalid("the provider's userinfo answer has no sub".into())
                })?;
                Ok(UpstreamClaims {
                    id_token: Map::from_iter([("sub".to_string(), sub)]),
                    userinfo: Some(info),
                    access_token: AccessTokenClaims::Opaque,
                })
            }
        }
    }

    /// A JWT `up` signed, checked: signature, `iss`, `aud` when `audience` is given, a `sub`,
    /// and `exp` against `now`.
    async fn checked(
        &self,
        up: &Upstream,
        token: &str,
        audience: Option<&str>,
        now: i64,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let validation = |alg| {
            let mut v = Validation::new(alg);
            v.set_issuer(&[up.endpoint.issuer.as_str()]);
            match audience {
                Some(aud) => v.set_audience(&[aud]),
                None => v.validate_aud = false,
            }
            v.set_required_spec_claims(&["iss", "exp", "sub"]);
            // Expiry is checked below, against Herald's clock.
            v.validate_exp = false;
            v
        };
        let claims = self
            .verified(up, "the subject_token", token, validation)
            .await?;
        match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) if exp + LEEWAY_SECONDS >= now => Ok(claims),
            _ => Err(UpstreamError::Invalid(
                "the subject_token has expired".into(),
            )),
        }
    }
}
