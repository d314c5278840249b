//! Compact JWS: signing with a parsed key pair, and verification of Herald's own JWTs.
//!
//! Signing builds `base64url(header).base64url(payload)` and signs it with the ready key pair
//! (`jsonwebtoken::encode` would re-parse the private key on every call). Verification uses
//! jsonwebtoken with the algorithm taken from Herald's own key for the `kid`, never from the
//! token header (RFC 8725 §2.1, §3.1), and checks `typ` (RFC 8725 §3.11, RFC 9068 §4).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Validation, decode, decode_header};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys::{KeyError, KeyRing, SigningKey};

/// Media type of JWT access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Signs `claims` as a compact JWS with `typ` in the header.
pub fn sign(key: &SigningKey, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
    let header = serde_json::json!({ "alg": key.alg.as_str(), "kid": key.kid, "typ": typ });
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
    out.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let sig = key.sign(out.as_bytes())?;
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    Ok(out)
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JwtError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not an access token (typ must be at+jwt)")]
    WrongType,
    #[error("the token was not signed by a key of this issuer")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

/// Leeway for `exp`, for replicas whose clocks differ a little.
pub const EXP_LEEWAY_SECS: i64 = 60;

/// The key of Herald's that signed `token`, with its algorithm: the token is of a bounded size
/// and has three parts, its `typ` is what `typ_ok` accepts, its `kid` names one of Herald's
/// keys, and its `alg` is that key's (never taken from the token, RFC 8725 §3.1).
fn own_key<'r>(
    ring: &'r KeyRing,
    token: &str,
    typ_ok: impl Fn(Option<&str>) -> Result<(), JwtError>,
) -> Result<(super::keys::Alg, &'r jsonwebtoken::DecodingKey), JwtError> {
    // Bound the work done on untrusted input before any parsing.
    if token.len() > 16 * 1024 || token.split('.').count() != 3 {
        return Err(JwtError::Malformed);
    }
    let header = decode_header(token).map_err(|_| JwtError::Malformed)?;
    typ_ok(header.typ.as_deref())?;
    let kid = header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
    let (alg, key) = ring.verification_key(kid).ok_or(JwtError::UnknownKey)?;
    if header.alg != alg.jsonwebtoken() {
        return Err(JwtError::Invalid("algorithm does not match the key".into()));
    }
    Ok((*alg, key))
}

/// Verifies a JWT access token issued by Herald: signature with the key named by `kid` and that
/// key's algorithm, `typ: at+jwt`, `iss`, `exp` against `now` (Herald's injected clock, with
/// [`EXP_LEEWAY_SECS`]), and the presence of `sub`, `aud` and `jti`.
pub fn verify_access_token<T: DeserializeOwned>(
    ring: &KeyRing,
    issuer: &str,
    token: &str,
    now: i64,
) -> Result<T, JwtError> {
    let (alg, key) = own_key(ring, token, |typ| {
        let at = typ.is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if at { Ok(()) } else { Err(JwtError::WrongType) }
    })?;
    let mut v = Validation::new(alg.jsonwebtoken());
    v.set_issuer(&[issuer]);
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    // Audience is checked by the resource (userinfo: Herald's issuer).
    v.validate_aud = false;
    // jsonwebtoken would read the system clock; expiry is checked below against `now`.
    v.validate_exp = false;
    let claims = decode::<serde_json::Value>(token, key, &v)
        .map(|d| d.claims)
        .map_err(|e| JwtError::Invalid(e.to_string()))?;
    match claims.get("exp").and_then(serde_json::Value::as_i64) {
        Some(exp) if exp.saturating_add(EXP_LEEWAY_SECS) >= now => {}
        Some(_) => return Err(JwtError::Invalid("the token has expired".into())),
        None => return Err(JwtError::Invalid("exp is not a number".into())),
    }
    serde_json::from_value(claims).map_err(|e| JwtError::Invalid(e.to_string()))
}

/// Whether a token's `aud` (a string or an array) names `audience`: an access token Herald
/// issued for an API (RFC 8707) is not one for Herald's own endpoints.
pub fn audience_includes(aud: &serde_json::Value, audience: &str) -> bool {
    match aud {
        serde_json::Value::String(a) => a == audience,
        serde_json::Value::Array(all) => all.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    }
}

/// Verifies a short-lived JWT Herald signed for itself (a login's continue token): signature
/// with Herald's key for the `kid` and that key's algorithm, `typ`, `iss`, `aud` and `exp`
/// against `now` without leeway (Herald's own clock made it).
pub fn verify_own(
    ring: &KeyRing,
    issuer: &str,
    audience: &str,
    typ: &str,
    token: &str,
    now: i64,
) -> Result<serde_json::Map<String, serde_json::Value>, JwtError> {
    let (alg, key) = own_key(ring, token, |t| {
        if t == Some(typ) {
            Ok(())
        } else {
            Err(JwtError::Invalid(format!("the token's typ is not {typ}")))
        }
    })?;
    let mut v = Validation::new(alg.jsonwebtoken());
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    v.validate_exp = false;
    let claims = decode::<serde_json::Map<String, serde_json::Value>>(token, key, &v)
        .map(|d| d.claims)
        .map_err(|e| JwtError::Invalid(e.to_string()))?;
    match claims.get("exp").and_then(serde_json::Value::as_i64) {
        Some(exp) if exp >= now => Ok(claims),
        Some(_) => Err(JwtError::Invalid("the token has expired".into())),
        None => Err(JwtError::Invalid("exp is not a number".into())),
    }
}

/// Verifies a JWT a client signed with a key of its registered JWKS (a `private_key_jwt`
/// assertion, a post-login application's context): the algorithm from the registered key,
/// never from the token (RFC 8725 §3.1), `iss` = `client_id`, `aud` one of `audiences`, and
/// `exp` against `now` with [`EXP_LEEWAY_SECS`], at most `max_lifetime` ahead.
pub fn verify_client_signed(
    what: &str,
    jwks: &jsonwebtoken::jwk::JwkSet,
    client_id: &str,
    audiences: &[&str],
    token: &str,
    now: i64,
    max_lifetime: i64,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    if token.len() > 16 * 1024 {
        return Err(format!("the {what} is too large"));
    }
    let header = decode_header(token).map_err(|_| format!("malformed {what}"))?;
    let jwk = match header.kid.as_deref() {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or_else(|| format!("the {what}'s key is not in the client's JWKS"))?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|_| "unusable key in the JWKS")?;
    let alg = match &jwk.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => jsonwebtoken::Algorithm::RS256,
        jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => jsonwebtoken::Algorithm::ES256,
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => jsonwebtoken::Algorithm::EdDSA,
        _ => return Err("unsupported key type in the JWKS".into()),
    };
    let mut v = Validation::new(alg);
    v.set_issuer(&[client_id]);
    v.set_audience(audiences);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    // Expiry is checked below against Herald's clock.
    v.validate_exp = false;
    let claims = decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &v)
        .map_err(|e| format!("{what} rejected: {e}"))?
        .claims;
    let exp = claims
        .get("exp")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| format!("the {what}'s exp is not a number"))?;
    if exp + EXP_LEEWAY_SECS < now {
        return Err(format!("the {what} has expired"));
    }
    if exp - now > max_lifetime {
        return Err(format!(
            "the {what} lives too long; use exp within {} minutes",
            max_lifetime / 60
        ));
    }
    Ok(claims)
}

/// Verifies an ID token Herald issued, given back as `id_token_hint` (OIDC Core §3.1.2.1):
/// signature with Herald's key for the `kid` and that key's algorithm, `iss`, and that `aud`
/// names `client_id`. An expired token is still a valid hint. Returns its `sub`.
pub fn verify_id_token_hint(
    ring: &KeyRing,
    issuer: &str,
    client_id: &str,
    token: &str,
) -> Result<String, JwtError> {
    let (alg, key) = own_key(ring, token, |_| Ok(()))?;
    let mut v = Validation::new(alg.jsonwebtoken());
    v.set_issuer(&[issuer]);
    v.set_audience(&[client_id]);
    v.set_required_spec_claims(&["iss", "sub", "aud"]);
    v.validate_exp = false;
    #[derive(serde::Deserialize)]
    struct Hint {
        sub: String,
    }
    decode::<Hint>(token, key, &v)
        .map(|d| d.claims.sub)
        .map_err(|e| JwtError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::tokens::keys::Alg;

    fn ring(alg: Alg) -> (KeyRing, Arc<SigningKey>) {
        let (k, _) = SigningKey::generate(alg).unwrap();
        let k = Arc::new(k);
        (
            KeyRing::new(vec![k.clone()], std::slice::from_ref(&k.kid)).unwrap(),
            k,
        )
    }

    fn now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    fn claims(exp_offset: i64) -> Value {
        let now = now();
        json!({"iss": "http://127.0.0.1:1", "sub": "u1", "aud": "x", "jti": "j",
               "iat": now, "exp": now + exp_offset})
    }

    #[test]
    fn herald_signed_access_tokens_verify_for_every_algorithm() {
        for alg in [Alg::RS256, Alg::ES256, Alg::EdDSA] {
            let (ring, key) = ring(alg);
            let t = sign(&key, ACCESS_TOKEN_TYP, &claims(60)).unwrap();
            let c: Value = verify_access_token(&ring, "http://127.0.0.1:1", &t, now()).unwrap();
            assert_eq!(c["sub"], "u1");
        }
    }

    #[test]
    fn id_token_typed_jwt_is_not_an_access_token() {
        let (ring, key) = ring(Alg::RS256);
        let t = sign(&key, "JWT", &claims(60)).unwrap();
        assert_eq!(
            verify_access_token::<Value>(&ring, "http://127.0.0.1:1", &t, now()),
            Err(JwtError::WrongType)
        );
    }

    #[test]
    fn tampered_payload_expired_token_and_alg_none_are_rejected() {
        let (ring, key) = ring(Alg::RS256);
        let t = sign(&key, ACCESS_TOKEN_TYP, &claims(60)).unwrap();
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(claims(6000).to_string());
        assert!(
            verify_access_token::<Value>(&ring, "http://127.0.0.1:1", &parts.join("."), now())
                .is_err()
        );

        let expired = sign(&key, ACCESS_TOKEN_TYP, &claims(-600)).unwrap();
        assert!(
            verify_access_token::<Value>(&ring, "http://127.0.0.1:1", &expired, now()).is_err()
        );
        // Expiry follows the clock passed in, not the system's.
        let fresh = sign(&key, ACCESS_TOKEN_TYP, &claims(30)).unwrap();
        let at = |t: i64| verify_access_token::<Value>(&ring, "http://127.0.0.1:1", &fresh, t);
        assert!(at(now() + 30 + EXP_LEEWAY_SECS).is_ok());
        assert!(at(now() + 31 + EXP_LEEWAY_SECS + 5).is_err());

        let none_header = URL_SAFE_NO_PAD
            .encode(json!({"alg": "none", "typ": "at+jwt", "kid": key.kid}).to_string());
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert!(
            verify_access_token::<Value>(&ring, "http://127.0.0.1:1", &unsigned, now()).is_err()
        );
    }

    #[test]
    fn an_expired_id_token_is_still_a_valid_hint_for_its_audience_only() {
        let (ring, key) = ring(Alg::RS256);
        let mut c = claims(-7200);
        c["aud"] = json!("app");
        let t = sign(&key, "JWT", &c).unwrap();
        assert_eq!(
            verify_id_token_hint(&ring, "http://127.0.0.1:1", "app", &t).unwrap(),
            "u1"
        );
        assert!(verify_id_token_hint(&ring, "http://127.0.0.1:1", "other", &t).is_err());
        let (other_ring, _) = super::tests::ring(Alg::RS256);
        assert!(verify_id_token_hint(&other_ring, "http://127.0.0.1:1", "app", &t).is_err());
    }

    #[test]
    fn wrong_issuer_and_unknown_kid_are_rejected() {
        let (ring, key) = ring(Alg::ES256);
        let t = sign(&key, ACCESS_TOKEN_TYP, &claims(60)).unwrap();
        assert!(verify_access_token::<Value>(&ring, "http://127.0.0.1:1/", &t, now()).is_err());
        let (other_ring, _) = super::tests::ring(Alg::ES256);
        assert_eq!(
            verify_access_token::<Value>(&other_ring, "http://127.0.0.1:1", &t, now()),
            Err(JwtError::UnknownKey)
        );
    }
}
