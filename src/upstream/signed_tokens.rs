//! Tokens an upstream signs for Herald beyond its ID tokens, checked against its JWKS: the
//! logout token of OpenID Connect Back-Channel Logout 1.0 (§2.4, checked per §2.6), and the
//! claims of a JWT access token.
//!
//! The key is the JWKS entry the token's `kid` names (the only one, when it names none), and
//! the algorithm comes from that key, never from the token's header (RFC 8725 §3.1); only
//! asymmetric keys are used. A `kid` the cached JWKS lacks refetches discovery once, as for ID
//! tokens.

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::client::{Discovered, UpstreamClients};
use super::error::UpstreamError;
use crate::claims::AccessTokenClaims;
use crate::config::Upstream;

/// The event a logout token must carry (§2.4): the one Herald's own logout tokens carry.
pub use crate::tokens::mint::BACKCHANNEL_LOGOUT_EVENT;

/// How far Herald's clock and the upstream's may differ (`iat` ahead, `exp` behind).
const IAT_LEEWAY_SECONDS: i64 = 60;

/// What a verified logout token says: whose session at the upstream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    /// The user's subject at the upstream.
    pub sub: Option<String>,
    /// The upstream's session id.
    pub sid: Option<String>,
    pub jti: String,
    pub exp: i64,
}

/// The decoding key and algorithm for a token with header `kid`, from `jwks`.
fn key_for(jwks: &JwkSet, kid: Option<&str>) -> Option<(DecodingKey, Algorithm)> {
    let jwk = match kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }?;
    let alg = jwk
        .common
        .key_algorithm
        .and_then(|a| a.to_string().parse::<Algorithm>().ok())
        .or(match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
            AlgorithmParameters::EllipticCurve(_) => Some(Algorithm::ES256),
            AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
            _ => None,
        })
        .filter(|a| !matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))?;
    Some((DecodingKey::from_jwk(jwk).ok()?, alg))
}

fn jwks_of(d: &Discovered) -> Option<JwkSet> {
    serde_json::to_value(d.metadata.jwks())
        .and_then(serde_json::from_value)
        .ok()
}

/// The claims of `token` signed by a key of `d`'s JWKS and valid under `v`.
pub(super) fn verify(
    d: &Discovered,
    token: &str,
    v: impl Fn(Algorithm) -> Validation,
) -> Result<Map<String, Value>, VerifyError> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|e| VerifyError::Invalid(format!("not a signed JWT: {e}")))?;
    let jwks = jwks_of(d).ok_or(VerifyError::NoKey)?;
    let (key, alg) = key_for(&jwks, header.kid.as_deref()).ok_or(VerifyError::NoKey)?;
    jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v(alg))
        .map(|data| data.claims)
        .map_err(|e| VerifyError::Invalid(e.to_string()))
}

/// Why a token was not verified.
#[derive(Debug)]
pub(super) enum VerifyError {
    /// The JWKS has no usable key the token names.
    NoKey,
    Invalid(String),
}

impl UpstreamClients {
    /// Claims of a JWT access token, verified against the upstream's JWKS; an opaque token, or
    /// one that fails verification, yields none.
    pub(super) fn access_token_claims(
        &self,
        up: &Upstream,
        d: &Discovered,
        token: &str,
    ) -> AccessTokenClaims {
        if token.split('.').count() != 3 {
            return AccessTokenClaims::Opaque;
        }
        let validation = |alg| {
            let mut v = jsonwebtoken::Validation::new(alg);
            v.set_issuer(&[up.endpoint.issuer.as_str()]);
            match up.extra_authorize_params.get("audience") {
                Some(aud) => v.set_audience(&[aud]),
                None => v.validate_aud = false,
            }
            v
        };
        match verify(d, token, validation) {
            Ok(claims) => AccessTokenClaims::Jwt(claims),
            Err(VerifyError::NoKey) => AccessTokenClaims::Opaque,
            Err(VerifyError::Invalid(e)) => {
                tracing::warn!(upstream = %up.id, error = %e, "upstream access token not verified; its claims are ignored");
                AccessTokenClaims::Opaque
            }
        }
    }

    /// Verifies a logout token from `up` (§2.6): signature, `iss`, `aud` (Herald's client id
    /// there), `iat` and `exp`, the back-channel logout event, `sub` or `sid`, a `jti`, and no
    /// `nonce`. `now` is Herald's clock. Whether its `jti` was seen before is the caller's
    /// check.
    pub async fn verify_logout_token(
        &self,
        up: &Upstream,
        token: &str,
        now: i64,
    ) -> Result<LogoutClaims, UpstreamError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            UpstreamError::Invalid(format!("the logout token is not a signed JWT: {e}"))
        })?;
        // Explicit typing (§2.4): a token typed as anything else (an ID or access token) is
        // not a logout token.
        if let Some(typ) = header.typ.as_deref()
            && !typ.eq_ignore_ascii_case("logout+jwt")
            && !typ.eq_ignore_ascii_case("JWT")
        {
            return Err(UpstreamError::Invalid(format!(
                "the token's typ is `{typ}`, not logout+jwt"
            )));
        }
        let validation = |alg| {
            let mut v = Validation::new(alg);
            v.set_issuer(&[up.endpoint.issuer.as_str()]);
            v.set_audience(&[up.client_id.as_str()]);
            v.set_required_spec_claims(&["iss", "aud", "exp", "iat"]);
            // Times are checked against Herald's clock, below.
            v.validate_exp = false;
            v
        };
        let claims = self
            .verified(up, "the logout token", token, validation)
            .await?;
        logout_claims(&claims, now)
    }

    /// The claims of `token` (named `what` in errors), signed by a key `up` publishes and
    /// valid under `v`; a token naming a key the cached JWKS lacks refetches it once (the
    /// upstream may have rotated its keys).
    pub(super) async fn verified(
        &self,
        up: &Upstream,
        what: &str,
        token: &str,
        v: impl Fn(Algorithm) -> Validation + Copy,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let d = self.discover(up, false).await?;
        match verify(&d, token, v) {
            Err(VerifyError::NoKey) => {
                let fresh = self.discover(up, true).await?;
                verify(&fresh, token, v)
            }
            other => other,
        }
        .map_err(|e| match e {
            VerifyError::NoKey => UpstreamError::Invalid(format!(
                "{what} names no signing key the upstream publishes"
            )),
            VerifyError::Invalid(why) => {
                UpstreamError::Invalid(format!("{what} was rejected: {why}"))
            }
        })
    }
}

/// The checks of §2.6 beyond the signature and the registered claims.
fn logout_claims(claims: &Map<String, Value>, now: i64) -> Result<LogoutClaims, UpstreamError> {
    let refuse = |why: &str| Err(UpstreamError::Invalid(format!("the logout token {why}")));
    let iat = claims.get("iat").and_then(Value::as_i64).unwrap_or(0);
    if iat > now + IAT_LEEWAY_SECONDS {
        return refuse("was issued in the future (iat)");
    }
    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT));
    if !matches!(event, Some(Value::Object(_))) {
        return refuse(&format!("has no `{BACKCHANNEL_LOGOUT_EVENT}` event"));
    }
    if claims.contains_key("nonce") {
        return refuse("carries a nonce, as an ID token does");
    }
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let (sub, sid) = (text("sub"), text("sid"));
    if sub.is_none() && sid.is_none() {
        return refuse("names neither sub nor sid");
    }
    let Some(jti) = text("jti") else {
        return refuse("has no jti");
    };
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    if exp + IAT_LEEWAY_SECONDS < now {
        return refuse("has expired (exp)");
    }
    Ok(LogoutClaims { sub, sid, jti, exp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn good() -> Value {
        json!({
            "iss": "https://up", "aud": "herald", "iat": 1000, "exp": 1120, "jti": "j1",
            "sub": "auth0|ada", "sid": "s1",
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} }
        })
    }

    #[test]
    fn a_logout_token_names_its_session() {
        let c = logout_claims(&claims(good()), 1000).unwrap();
        assert_eq!(c.sub.as_deref(), Some("auth0|ada"));
        assert_eq!(c.sid.as_deref(), Some("s1"));
        assert_eq!((c.jti.as_str(), c.exp), ("j1", 1120));
    }

    #[test]
    fn each_rule_of_section_2_6_refuses_its_token() {
        type Spoil = fn(&mut Map<String, Value>);
        let cases: [(&str, Spoil); 7] = [
            ("expired", |c| {
                c.insert("exp".into(), json!(900));
            }),
            ("no event", |c| {
                c.insert("events".into(), json!({}));
            }),
            ("event not an object", |c| {
                c.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: "yes" }));
            }),
            ("a nonce", |c| {
                c.insert("nonce".into(), json!("n"));
            }),
            ("neither sub nor sid", |c| {
                c.remove("sub");
                c.remove("sid");
            }),
            ("no jti", |c| {
                c.remove("jti");
            }),
            ("iat ahead", |c| {
                c.insert("iat".into(), json!(5000));
            }),
        ];
        for (what, spoil) in cases {
            let mut c = claims(good());
            spoil(&mut c);
            assert!(logout_claims(&c, 1000).is_err(), "{what} was accepted");
        }
        // sid alone, or sub alone, is enough.
        let mut c = claims(good());
        c.remove("sub");
        assert!(logout_claims(&c, 1000).is_ok());
    }
}
