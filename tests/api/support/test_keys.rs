//! Keys made by OpenSSL (`keys/generate.sh`; DER files, since jsonwebtoken is built without PEM) with their public JWKs worked out from OpenSSL's
//! printout, and tokens signed with the `jsonwebtoken` crate: the test upstream and the
//! `private_key_jwt` clients prove things to Herald with nothing Herald's own code made, so a bug
//! shared by Herald's signer and its verifier has nowhere to hide.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::Value;

pub struct TestKey {
    pub name: &'static str,
    der: &'static [u8],
    jwk: &'static str,
    pub alg: Algorithm,
}

/// The test upstream's RSA keys: it signs with one and rotates through them.
pub const UPSTREAM: [TestKey; 3] = [
    TestKey {
        name: "upstream-1",
        der: include_bytes!("keys/upstream-1.der"),
        jwk: include_str!("keys/upstream-1.jwk.json"),
        alg: Algorithm::RS256,
    },
    TestKey {
        name: "upstream-2",
        der: include_bytes!("keys/upstream-2.der"),
        jwk: include_str!("keys/upstream-2.jwk.json"),
        alg: Algorithm::RS256,
    },
    TestKey {
        name: "upstream-3",
        der: include_bytes!("keys/upstream-3.der"),
        jwk: include_str!("keys/upstream-3.jwk.json"),
        alg: Algorithm::RS256,
    },
];

/// A `private_key_jwt` client's EC P-256 key.
pub const CLIENT: TestKey = TestKey {
    name: "client",
    der: include_bytes!("keys/client.der"),
    jwk: include_str!("keys/client.jwk.json"),
    alg: Algorithm::ES256,
};

/// An EC P-256 key nobody registered.
pub const STRANGER: TestKey = TestKey {
    name: "stranger",
    der: include_bytes!("keys/stranger.der"),
    jwk: include_str!("keys/stranger.jwk.json"),
    alg: Algorithm::ES256,
};

impl TestKey {
    /// The public JWK (with `kid`, `use` and `alg`).
    pub fn jwk(&self) -> Value {
        serde_json::from_str(self.jwk).unwrap()
    }

    pub fn kid(&self) -> String {
        self.jwk()["kid"].as_str().unwrap().to_string()
    }

    fn encoding_key(&self) -> EncodingKey {
        match self.alg {
            Algorithm::RS256 => EncodingKey::from_rsa_der(self.der),
            _ => EncodingKey::from_ec_der(self.der),
        }
    }

    /// A compact JWS of `claims` with `typ: JWT` and this key's kid.
    pub fn sign(&self, claims: &impl Serialize) -> String {
        self.sign_with_kid(claims, Some(&self.kid()))
    }

    /// The base64url signature of `input` (a JWS signing input a test assembled itself).
    pub fn signature(&self, input: &[u8]) -> String {
        jsonwebtoken::crypto::sign(input, &self.encoding_key(), self.alg).unwrap()
    }

    /// A DPoP proof (RFC 9449 §4.2) of `claims`: `typ: dpop+jwt` and this key's public JWK in
    /// the header.
    pub fn dpop_proof(&self, claims: &impl Serialize) -> String {
        let mut header = Header::new(self.alg);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(serde_json::from_value(self.jwk()).unwrap());
        jsonwebtoken::encode(&header, claims, &self.encoding_key()).unwrap()
    }

    /// The RFC 7638 SHA-256 thumbprint of this EC key, worked out here from the JWK's members.
    pub fn thumbprint(&self) -> String {
        use base64::Engine;
        let jwk = self.jwk();
        let canonical = format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    /// A compact JWS of `claims` whose header names `kid` (none when `None`).
    pub fn sign_with_kid(&self, claims: &impl Serialize, kid: Option<&str>) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &self.encoding_key()).unwrap()
    }
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 §4.2), computed here rather than with
/// Herald's own function, so the test clients and the test upstream check Herald independently.
pub fn s256(verifier: &str) -> String {
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    /// The fixtures agree with themselves: each key's signature verifies against its JWK
    /// (with jsonwebtoken), not against another's.
    #[test]
    fn each_key_verifies_against_its_own_jwk_only() {
        let keys = [&UPSTREAM[0], &UPSTREAM[1], &UPSTREAM[2], &CLIENT, &STRANGER];
        for key in keys {
            let token = key.sign(&serde_json::json!({"sub": "s"}));
            for other in keys {
                let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(other.jwk()).unwrap();
                let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
                let mut validation = jsonwebtoken::Validation::new(key.alg);
                validation.required_spec_claims.clear();
                validation.validate_exp = false;
                let ok = other.alg == key.alg
                    && jsonwebtoken::decode::<Value>(&token, &decoding, &validation).is_ok();
                assert_eq!(
                    ok,
                    key.name == other.name,
                    "{} against {}",
                    key.name,
                    other.name
                );
            }
        }
    }
}
