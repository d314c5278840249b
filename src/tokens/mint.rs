//! The claims of the tokens Herald mints: ID tokens (OIDC Core §2, §3.1.3.6) and JWT access
//! tokens (RFC 9068 §2.2). Released user claims come in as a map; the registered claims set
//! here always win (configuration refuses mappings that would write them).

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::keys::Alg;

/// What an ID token says about one authentication.
#[derive(Debug)]
pub struct IdToken<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub sub: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: Option<i64>,
    pub amr: Option<&'a [String]>,
    pub acr: Option<&'a str>,
    /// The access token issued alongside, for `at_hash`.
    pub access_token: Option<&'a str>,
    /// The login's session id (Back-Channel Logout 1.0 §2.1), from [`session_id`].
    pub sid: Option<&'a str>,
    pub alg: Alg,
    pub now: i64,
    pub ttl_secs: i64,
    pub released: Map<String, Value>,
}

impl IdToken<'_> {
    pub fn claims(self) -> Map<String, Value> {
        let mut c = self.released;
        c.insert("iss".into(), json!(self.issuer));
        c.insert("sub".into(), json!(self.sub));
        c.insert("aud".into(), json!(self.client_id));
        // azp is only meaningful with several audiences; one audience keeps tokens small.
        c.insert("iat".into(), json!(self.now));
        c.insert("exp".into(), json!(self.now + self.ttl_secs));
        if let Some(t) = self.auth_time {
            c.insert("auth_time".into(), json!(t));
        }
        if let Some(n) = self.nonce {
            c.insert("nonce".into(), json!(n));
        }
        if let Some(amr) = self.amr {
            c.insert("amr".into(), json!(amr));
        }
        if let Some(acr) = self.acr {
            c.insert("acr".into(), json!(acr));
        }
        if let Some(at) = self.access_token {
            c.insert("at_hash".into(), json!(at_hash(self.alg, at)));
        }
        if let Some(sid) = self.sid {
            c.insert("sid".into(), json!(sid));
        }
        c
    }
}

/// The `sid` of a login (OpenID Connect Back-Channel Logout 1.0 §2.1): the same for every app
/// the login reaches, derived from the stored login's id so it needs no storage and does not
/// reveal the id.
pub fn session_id(context_id: &str) -> String {
    let d = digest::digest(
        &digest::SHA256,
        format!("herald sid\0{context_id}").as_bytes(),
    );
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..18])
}

/// The event a logout token carries (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is good for: long enough for the app to take it, no longer.
pub const LOGOUT_TOKEN_TTL_SECS: i64 = 120;

/// A logout token's claims (Back-Channel Logout 1.0 §2.4): `iss`, `aud`, `iat`, `exp`, `jti`,
/// `events`, `sub` and `sid`, and never a `nonce`.
pub fn logout_token(
    issuer: &str,
    client_id: &str,
    sub: &str,
    sid: &str,
    jti: &str,
    now: i64,
) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("iss".into(), json!(issuer));
    c.insert("aud".into(), json!(client_id));
    c.insert("iat".into(), json!(now));
    c.insert("exp".into(), json!(now + LOGOUT_TOKEN_TTL_SECS));
    c.insert("jti".into(), json!(jti));
    c.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
    c.insert("sub".into(), json!(sub));
    c.insert("sid".into(), json!(sid));
    c
}

/// A JWT access token's content (RFC 9068 §2.2).
#[derive(Debug)]
pub struct AccessToken<'a> {
    pub issuer: &'a str,
    /// Herald's issuer, or the APIs the token is for (RFC 8707): a string or an array.
    pub audience: &'a Value,
    /// The user, or the client itself for client_credentials.
    pub sub: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub jti: &'a str,
    pub auth_time: Option<i64>,
    /// The thumbprint of the DPoP key the token is bound to (RFC 9449 §6.1).
    pub jkt: Option<&'a str>,
    pub now: i64,
    pub ttl_secs: i64,
    pub released: Map<String, Value>,
}

impl AccessToken<'_> {
    pub fn claims(self) -> Map<String, Value> {
        let mut c = self.released;
        c.insert("iss".into(), json!(self.issuer));
        c.insert("sub".into(), json!(self.sub));
        c.insert("aud".into(), json!(self.audience));
        c.insert("client_id".into(), json!(self.client_id));
        c.insert("scope".into(), json!(self.scope));
        c.insert("jti".into(), json!(self.jti));
        c.insert("iat".into(), json!(self.now));
        c.insert("exp".into(), json!(self.now + self.ttl_secs));
        if let Some(t) = self.auth_time {
            c.insert("auth_time".into(), json!(t));
        }
        if let Some(jkt) = self.jkt {
            c.insert("cnf".into(), json!({ "jkt": jkt }));
        }
        c
    }
}

/// OIDC Core §3.1.3.6: the left half of the hash of the access token, with the hash function of
/// the signing algorithm (SHA-512 for Ed25519).
pub fn at_hash(alg: Alg, access_token: &str) -> String {
    let algorithm = match alg {
        Alg::RS256 | Alg::ES256 => &digest::SHA256,
        Alg::EdDSA => &digest::SHA512,
    };
    let d = digest::digest(algorithm, access_token.as_bytes());
    let bytes = d.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

/// The S256 code challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_sha256_base64url() {
        // Expected value computed independently with Python:
        // base64.urlsafe_b64encode(hashlib.sha256(token).digest()[:16]).rstrip(b"=")
        assert_eq!(
            at_hash(Alg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNIUbR3ewYn4oX4sQrTs"),
            "84WTNztESTCmkFYxTwV8pQ"
        );
        assert_eq!(at_hash(Alg::EdDSA, "x").len(), 43);
    }

    #[test]
    fn registered_claims_override_released_ones() {
        let mut released = Map::new();
        released.insert("sub".into(), json!("attacker"));
        released.insert("groups".into(), json!(["a"]));
        let c = IdToken {
            issuer: "http://127.0.0.1:1",
            client_id: "app",
            sub: "real",
            nonce: Some("n"),
            auth_time: Some(5),
            amr: None,
            acr: None,
            access_token: None,
            sid: None,
            alg: Alg::RS256,
            now: 10,
            ttl_secs: 60,
            released,
        }
        .claims();
        assert_eq!(c["sub"], "real");
        assert_eq!(c["groups"], json!(["a"]));
        assert_eq!(c["exp"], 70);
        assert_eq!(c["nonce"], "n");
        assert_eq!(c["auth_time"], 5);
    }
}
