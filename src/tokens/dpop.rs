//! DPoP proofs (RFC 9449): checking a proof JWT a client sent, the thumbprint of its key that
//! tokens are bound to (`cnf.jkt`, RFC 9449 §6), and the nonces Herald hands out (§8).
//!
//! [`check`] does every rule of §4.3 that needs no storage: one compact JWS with `typ`
//! `dpop+jwt`, an asymmetric algorithm Herald accepts, a public key (no private members) in
//! the header that verifies the signature, `htm` and `htu` of this request, `iat` within the
//! window, `ath` of the access token presented with it, and Herald's nonce when one is
//! required. That a `jti` is used once (across replicas) is the store's part, keyed by what
//! [`Proof`] returns.

use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde_json::Value;

/// The algorithms Herald verifies proofs with, for `dpop_signing_alg_values_supported`.
pub const ALGORITHMS: &[&str] = &["ES256", "ES384", "EdDSA", "RS256", "PS256"];

/// How old a proof's `iat` may be, and how far ahead of Herald's clock.
pub const MAX_AGE_SECS: i64 = 300;
pub const MAX_AHEAD_SECS: i64 = 60;
/// Nonces name a window of this many seconds; one is accepted for [`NONCE_WINDOWS`] of them.
pub const NONCE_WINDOW_SECS: i64 = 60;
pub const NONCE_WINDOWS: i64 = 5;
/// Bounds on untrusted input before any parsing.
const MAX_PROOF_LEN: usize = 8 * 1024;
const MAX_JTI_LEN: usize = 256;

/// What a request must match.
pub struct Expect<'a> {
    /// The request's method (`POST`).
    pub htm: &'a str,
    /// The endpoint's URL, without query or fragment.
    pub htu: &'a str,
    /// The access token sent with the proof (at a protected resource), for `ath`.
    pub access_token: Option<&'a str>,
    pub now: i64,
    /// `Some`: a nonce of Herald's must be in the proof.
    pub nonces: Option<&'a Nonces>,
}

/// A proof that passed [`check`].
#[derive(Debug, Clone, PartialEq)]
pub struct Proof {
    /// The JWK SHA-256 thumbprint of the proof's key (RFC 7638), what tokens are bound to.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DpopError {
    /// `invalid_dpop_proof`.
    #[error("{0}")]
    Invalid(String),
    /// `use_dpop_nonce`: the proof lacks Herald's nonce or has an old one.
    #[error("{0}")]
    UseNonce(String),
}

fn invalid(why: impl Into<String>) -> DpopError {
    DpopError::Invalid(why.into())
}

/// Checks a DPoP proof JWT against `expect` (RFC 9449 §4.3, all but the `jti` record).
pub fn check(proof: &str, expect: &Expect<'_>) -> Result<Proof, DpopError> {
    if proof.len() > MAX_PROOF_LEN || proof.split('.').count() != 3 {
        return Err(invalid("the DPoP proof is not a compact JWS"));
    }
    let header = raw_header(proof)?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(invalid("the DPoP proof's typ must be dpop+jwt"));
    }
    let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let alg = algorithm(alg_name).ok_or_else(|| {
        invalid(format!(
            "the DPoP proof's alg {alg_name:?} is not one of {}",
            ALGORITHMS.join(", ")
        ))
    })?;
    let raw_jwk = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("the DPoP proof's header has no jwk"))?;
    // RFC 9449 §4.3 step 7: a public key only.
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|m| raw_jwk.contains_key(*m))
    {
        return Err(invalid("the DPoP proof's jwk holds a private key"));
    }
    // RFC 8725 §3.1: the key must be one for the algorithm (jsonwebtoken builds an EC key from
    // x and y whatever crv says, which would give one key several thumbprints).
    if !key_fits(alg_name, raw_jwk) {
        return Err(invalid(format!(
            "the DPoP proof's jwk is not a key for {alg_name}"
        )));
    }
    let jwk: Jwk = serde_json::from_value(Value::Object(raw_jwk.clone()))
        .map_err(|_| invalid("the DPoP proof's jwk is not a usable public key"))?;
    let key = DecodingKey::from_jwk(&jwk)
        .map_err(|_| invalid("the DPoP proof's jwk is not a usable public key"))?;
    let mut v = Validation::new(alg);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_aud = false;
    let claims = decode::<serde_json::Map<String, Value>>(proof, &key, &v)
        .map_err(|e| invalid(format!("the DPoP proof's signature does not verify: {e}")))?
        .claims;
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| invalid("the DPoP proof's jwk has no thumbprint"))?;

    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or_else(|| invalid("the DPoP proof needs a jti"))?;
    if text("htm") != Some(expect.htm) {
        return Err(invalid(format!(
            "the DPoP proof's htm must be {}",
            expect.htm
        )));
    }
    let htu = text("htu").ok_or_else(|| invalid("the DPoP proof needs an htu"))?;
    if !same_uri(htu, expect.htu) {
        return Err(invalid(format!(
            "the DPoP proof's htu must be {}",
            expect.htu
        )));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("the DPoP proof needs a numeric iat"))?;
    if iat < expect.now - MAX_AGE_SECS || iat > expect.now + MAX_AHEAD_SECS {
        return Err(invalid(format!(
            "the DPoP proof's iat is outside the accepted window (at most {MAX_AGE_SECS} s old \
             and {MAX_AHEAD_SECS} s ahead)"
        )));
    }
    match (expect.access_token, text("ath")) {
        (Some(token), Some(ath)) if ath == access_token_hash(token) => {}
        (Some(_), Some(_)) => {
            return Err(invalid(
                "the DPoP proof's ath is not the hash of the access token",
            ));
        }
        (Some(_), None) => return Err(invalid("the DPoP proof needs ath with an access token")),
        (None, _) => {}
    }
    if let Some(nonces) = expect.nonces {
        match text("nonce") {
            None => {
                return Err(DpopError::UseNonce(
                    "a DPoP nonce is required; use the one in the DPoP-Nonce header".into(),
                ));
            }
            Some(n) if !nonces.accepts(n, expect.now) => {
                return Err(DpopError::UseNonce(
                    "the DPoP nonce is unknown or too old; use the one in the DPoP-Nonce header"
                        .into(),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(Proof {
        jkt,
        jti: jti.to_string(),
        iat,
    })
}

/// `ath`: base64url of the SHA-256 of the access token (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

fn raw_header(proof: &str) -> Result<serde_json::Map<String, Value>, DpopError> {
    let part = proof.split('.').next().unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| invalid("the DPoP proof's header is not base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| invalid("the DPoP proof's header is not JSON"))
}

fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        "RS256" => Algorithm::RS256,
        "PS256" => Algorithm::PS256,
        _ => return None,
    })
}

/// Whether a public JWK is a key of the kind `alg` needs: its `kty` and `crv`, coordinates of
/// the curve's size, and no `alg` member naming another algorithm.
fn key_fits(alg: &str, jwk: &serde_json::Map<String, Value>) -> bool {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    let bytes = |name: &str| {
        member(name)
            .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
            .map(|b| b.len())
    };
    if jwk.get("alg").is_some_and(|a| a.as_str() != Some(alg)) {
        return false;
    }
    match alg {
        "ES256" | "ES384" => {
            let (crv, size) = if alg == "ES256" {
                ("P-256", 32)
            } else {
                ("P-384", 48)
            };
            member("kty") == Some("EC")
                && member("crv") == Some(crv)
                && bytes("x") == Some(size)
                && bytes("y") == Some(size)
        }
        "EdDSA" => {
            member("kty") == Some("OKP")
                && member("crv") == Some("Ed25519")
                && bytes("x") == Some(32)
        }
        "RS256" | "PS256" => member("kty") == Some("RSA"),
        _ => false,
    }
}

/// `htu` compared after the normalisation RFC 9449 §4.3 step 9 allows (RFC 3986 §6.2.2 and
/// §6.2.3: scheme and host case, default port), ignoring query and fragment.
fn same_uri(given: &str, expected: &str) -> bool {
    let norm = |s: &str| {
        url::Url::parse(s).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        })
    };
    matches!((norm(given), norm(expected)), (Some(a), Some(b)) if a == b)
}

/// Herald's DPoP nonces (RFC 9449 §8): the number of a [`NONCE_WINDOW_SECS`]-long time window
/// and a MAC over it. They need no storage and every replica accepts another's: the MAC key is
/// derived from the signing keys, which every replica shares.
pub struct Nonces {
    keys: Vec<hmac::Key>,
}

impl Nonces {
    /// `secrets`: one per published signing key; the first makes new nonces.
    pub fn new(secrets: &[[u8; 32]]) -> Nonces {
        Nonces {
            keys: secrets
                .iter()
                .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s))
                .collect(),
        }
    }

    /// The nonce to hand out at `now`.
    pub fn current(&self, now: i64) -> Option<String> {
        let key = self.keys.first()?;
        Some(nonce(key, now.div_euclid(NONCE_WINDOW_SECS)))
    }

    /// Whether `given` is a nonce of one of the last [`NONCE_WINDOWS`] windows.
    pub fn accepts(&self, given: &str, now: i64) -> bool {
        let Some((window, _)) = given.split_once('.') else {
            return false;
        };
        let Ok(window) = window.parse::<i64>() else {
            return false;
        };
        let current = now.div_euclid(NONCE_WINDOW_SECS);
        if window > current || window <= current - NONCE_WINDOWS {
            return false;
        }
        self.keys.iter().any(|k| {
            let expected = nonce(k, window);
            subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.as_bytes()).into()
        })
    }
}

fn nonce(key: &hmac::Key, window: i64) -> String {
    let tag = hmac::sign(key, &window.to_be_bytes());
    format!("{window}.{}", URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::keys::{Alg, SigningKey};
    use serde_json::json;

    const HTU: &str = "http://127.0.0.1:8080/token";
    const NOW: i64 = 1_800_000_000;

    /// A proof signed by `key` with `claims`, its public JWK in the header.
    fn proof(key: &SigningKey, typ: &str, claims: Value) -> String {
        let header = json!({"typ": typ, "alg": key.alg.as_str(), "jwk": key.public_jwk()});
        let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = key.sign(out.as_bytes()).unwrap();
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig));
        out
    }

    fn expect(now: i64) -> Expect<'static> {
        Expect {
            htm: "POST",
            htu: HTU,
            access_token: None,
            now,
            nonces: None,
        }
    }

    fn claims() -> Value {
        json!({"jti": "j1", "htm": "POST", "htu": HTU, "iat": NOW})
    }

    #[test]
    fn a_good_proof_gives_the_keys_rfc_7638_thumbprint() {
        for alg in [Alg::ES256, Alg::EdDSA, Alg::RS256] {
            let (key, _) = SigningKey::generate(alg).unwrap();
            let p = check(&proof(&key, "dpop+jwt", claims()), &expect(NOW)).unwrap();
            assert_eq!(p.jti, "j1");
            assert_eq!(p.iat, NOW);
            // Herald's own thumbprint code (the kid of its keys) agrees with jsonwebtoken's.
            assert_eq!(p.jkt, key.kid, "{alg:?}");
        }
    }

    #[test]
    fn each_rule_of_section_4_3_refuses_its_proof() {
        let (key, _) = SigningKey::generate(Alg::ES256).unwrap();
        let (other, _) = SigningKey::generate(Alg::ES256).unwrap();
        let with = |k: &str, v: Value| {
            let mut c = claims();
            c[k] = v;
            c
        };
        let cases = [
            ("typ", proof(&key, "JWT", claims())),
            ("htm", proof(&key, "dpop+jwt", with("htm", json!("GET")))),
            (
                "htu",
                proof(
                    &key,
                    "dpop+jwt",
                    with("htu", json!("http://127.0.0.1:8080/userinfo")),
                ),
            ),
            (
                "iat",
                proof(&key, "dpop+jwt", with("iat", json!(NOW - MAX_AGE_SECS - 1))),
            ),
            (
                "iat",
                proof(
                    &key,
                    "dpop+jwt",
                    with("iat", json!(NOW + MAX_AHEAD_SECS + 1)),
                ),
            ),
            ("jti", proof(&key, "dpop+jwt", with("jti", json!("")))),
        ];
        for (rule, p) in cases {
            let e = check(&p, &expect(NOW)).unwrap_err();
            assert!(
                matches!(&e, DpopError::Invalid(why) if why.contains(rule)),
                "{rule}: {e:?}"
            );
        }
        // A signature by another key than the header's.
        let good = proof(&key, "dpop+jwt", claims());
        let forged = proof(&other, "dpop+jwt", claims());
        let mixed = format!(
            "{}.{}",
            good.rsplit_once('.').unwrap().0,
            forged.rsplit_once('.').unwrap().1
        );
        assert!(matches!(
            check(&mixed, &expect(NOW)),
            Err(DpopError::Invalid(_))
        ));
        // alg none, and a symmetric algorithm.
        for alg in ["none", "HS256"] {
            let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": key.public_jwk()});
            let p = format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims().to_string())
            );
            let e = check(&p, &expect(NOW)).unwrap_err();
            assert!(format!("{e}").contains("alg"), "{alg}: {e}");
        }
    }

    #[test]
    fn a_key_that_is_not_one_for_the_algorithm_is_refused() {
        let (key, _) = SigningKey::generate(Alg::ES256).unwrap();
        // The same P-256 point labelled as another curve, or with an alg member of another
        // algorithm: it would verify, under another thumbprint.
        for (member, value) in [("crv", json!("P-384")), ("alg", json!("ES384"))] {
            let mut jwk = key.public_jwk().clone();
            jwk[member] = value;
            let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
            let mut p = URL_SAFE_NO_PAD.encode(header.to_string());
            p.push('.');
            p.push_str(&URL_SAFE_NO_PAD.encode(claims().to_string()));
            let sig = key.sign(p.as_bytes()).unwrap();
            p = format!("{p}.{}", URL_SAFE_NO_PAD.encode(sig));
            let e = check(&p, &expect(NOW)).unwrap_err();
            assert!(
                format!("{e}").contains("not a key for ES256"),
                "{member}: {e}"
            );
        }
    }

    #[test]
    fn a_private_key_in_the_header_is_refused() {
        let (key, _) = SigningKey::generate(Alg::ES256).unwrap();
        let mut jwk = key.public_jwk().clone();
        jwk["d"] = json!("AAAA");
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        let mut p = URL_SAFE_NO_PAD.encode(header.to_string());
        p.push('.');
        p.push_str(&URL_SAFE_NO_PAD.encode(claims().to_string()));
        let sig = key.sign(p.as_bytes()).unwrap();
        p = format!("{p}.{}", URL_SAFE_NO_PAD.encode(sig));
        let e = check(&p, &expect(NOW)).unwrap_err();
        assert!(format!("{e}").contains("private"), "{e}");
    }

    #[test]
    fn htu_is_compared_after_normalisation_and_without_query() {
        assert!(same_uri("HTTP://127.0.0.1:8080/token?x=1#f", HTU));
        assert!(same_uri(
            "https://Example.com:443/token",
            "https://example.com/token"
        ));
        assert!(!same_uri("http://127.0.0.1:8080/token/", HTU));
        assert!(!same_uri("not a url", HTU));
    }

    #[test]
    fn ath_must_be_the_hash_of_the_presented_token() {
        let (key, _) = SigningKey::generate(Alg::EdDSA).unwrap();
        let mut e = expect(NOW);
        e.access_token = Some("the-token");
        let mut c = claims();
        assert!(check(&proof(&key, "dpop+jwt", c.clone()), &e).is_err());
        c["ath"] = json!(access_token_hash("another-token"));
        assert!(check(&proof(&key, "dpop+jwt", c.clone()), &e).is_err());
        c["ath"] = json!(access_token_hash("the-token"));
        assert!(check(&proof(&key, "dpop+jwt", c), &e).is_ok());
        // Checked with: printf '%s' 'the-token' | openssl dgst -sha256 -binary | basenc --base64url
        assert_eq!(
            access_token_hash("the-token"),
            "wqc_z2HfvcrceaELozCy7162b8Cmc17Wm3lrs8l7l64"
        );
    }

    #[test]
    fn nonces_are_accepted_for_a_few_windows_from_any_published_key() {
        let a = Nonces::new(&[[1u8; 32], [2u8; 32]]);
        let b = Nonces::new(&[[2u8; 32]]);
        let n = a.current(NOW).unwrap();
        assert!(a.accepts(&n, NOW));
        assert!(a.accepts(&n, NOW + NONCE_WINDOW_SECS * (NONCE_WINDOWS - 1)));
        assert!(!a.accepts(&n, NOW + NONCE_WINDOW_SECS * NONCE_WINDOWS));
        assert!(
            !a.accepts(&n, NOW - NONCE_WINDOW_SECS),
            "not before its window"
        );
        // A replica whose newest key is another still accepts nonces made with a shared one.
        assert!(a.accepts(&b.current(NOW).unwrap(), NOW));
        assert!(!b.accepts(&n, NOW));
        assert!(!a.accepts("garbage", NOW));

        let (key, _) = SigningKey::generate(Alg::ES256).unwrap();
        let mut e = expect(NOW);
        e.nonces = Some(&a);
        let p = check(&proof(&key, "dpop+jwt", claims()), &e);
        assert!(matches!(p, Err(DpopError::UseNonce(_))));
        let mut c = claims();
        c["nonce"] = json!(n);
        assert!(check(&proof(&key, "dpop+jwt", c), &e).is_ok());
    }
}
