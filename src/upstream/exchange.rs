//! Upstream tokens presented for exchange (RFC 8693, the broker case): an ID token or an access
//! token the upstream issued, checked as Herald would check them in a login, so the upstream's
//! mappings can be applied to them. A JWT is verified against the upstream's JWKS (`iss`, `aud`,
//! `exp` against Herald's clock), and must have been issued to Herald's client there.

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
    /// The claims of `token`, a `kind` token `up` issued for Herald, verified; with the user's
    /// subject at the upstream in `id_token.sub`, as a login's claims have it.
    ///
    /// An ID token's `aud` must name Herald's client there. An access token must be a JWT for
    /// Herald's client too: its `azp` (or `client_id`) is Herald's client id, or, without one,
    /// its `aud` names it; and its `aud` names the upstream's `audience` when one is configured.
    /// An opaque access token is refused: nothing says whom it was issued to (any app's token
    /// would be taken as proof of a login), and it would be sent to the upstream to find out.
    pub async fn exchanged_claims(
        &self,
        up: &Upstream,
        token: &str,
        kind: Presented,
        now: i64,
    ) -> Result<UpstreamClaims, UpstreamError> {
        if token.split('.').count() != 3 {
            return Err(UpstreamError::Invalid(
                "the subject_token is not a JWT; an opaque token says not whom it was issued                  to, so it is not exchanged (exchange the ID token instead)"
                    .into(),
            ));
        }
        match kind {
            Presented::IdToken => {
                let claims = self.checked(up, token, &[&up.client_id], now).await?;
                Ok(UpstreamClaims {
                    id_token: claims,
                    userinfo: None,
                    access_token: AccessTokenClaims::Absent,
                })
            }
            Presented::AccessToken => {
                let claims = match up.extra_authorize_params.get("audience") {
                    Some(api) => self.checked(up, token, &[api], now).await?,
                    None => self.checked(up, token, &[&up.client_id], now).await?,
                };
                let issued_to = ["azp", "client_id"]
                    .iter()
                    .find_map(|k| claims.get(*k).and_then(Value::as_str));
                let for_herald = match issued_to {
                    Some(client) => client == up.client_id,
                    None => claims.get("aud").is_some_and(|aud| match aud {
                        Value::String(a) => *a == up.client_id,
                        Value::Array(all) => all.iter().any(|a| a.as_str() == Some(&up.client_id)),
                        _ => false,
                    }),
                };
                if !for_herald {
                    return Err(UpstreamError::Invalid(
                        "the subject_token was issued to another application than this server's                          client at the upstream"
                            .into(),
                    ));
                }
                let mut id_token = Map::new();
                for k in ["sub", "auth_time", "iat"] {
                    if let Some(v) = claims.get(k) {
                        id_token.insert(k.to_string(), v.clone());
                    }
                }
                Ok(UpstreamClaims {
                    id_token,
                    userinfo: None,
                    access_token: AccessTokenClaims::Jwt(claims),
                })
            }
        }
    }

    /// A JWT `up` signed, checked: signature, `iss`, an `aud` naming one of `audiences`, a
    /// `sub`, and `exp` against `now`.
    async fn checked(
        &self,
        up: &Upstream,
        token: &str,
        audiences: &[&str],
        now: i64,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let validation = |alg| {
            let mut v = Validation::new(alg);
            v.set_issuer(&[up.endpoint.issuer.as_str()]);
            v.set_audience(audiences);
            v.set_required_spec_claims(&["iss", "aud", "exp", "sub"]);
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
