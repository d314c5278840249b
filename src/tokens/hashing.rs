//! Hashing of secrets, and random values for codes and tokens.
//!
//! Secrets people chose (client secrets written in the configuration) are stored as argon2id
//! hashes. Values Herald generates itself carry 256 bits of entropy, so a plain SHA-256 digest is
//! as strong as a slow hash for them and costs nothing at the token endpoint (RFC 6819
//! §5.1.4.1.3).

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use aws_lc_rs::digest as lc_digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// A stored client secret.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretHash {
    /// A PHC string (`$argon2id$...`).
    Argon2(String),
    /// SHA-256 of a generated high-entropy secret.
    Sha256([u8; 32]),
}

impl SecretHash {
    pub fn argon2(secret: &str) -> Result<Self, argon2::password_hash::Error> {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let phc = Argon2::default().hash_password(secret.as_bytes(), &salt)?;
        Ok(SecretHash::Argon2(phc.to_string()))
    }

    pub fn sha256(secret: &str) -> Self {
        SecretHash::Sha256(digest(secret))
    }

    /// Checks a presented secret. Argon2 verification is slow by design (tens of
    /// milliseconds): callers on a hot path cache successful verifications.
    pub fn verify(&self, presented: &str) -> bool {
        match self {
            SecretHash::Argon2(phc) => PasswordHash::new(phc)
                .map(|h| {
                    Argon2::default()
                        .verify_password(presented.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false),
            SecretHash::Sha256(d) => digest(presented).ct_eq(d).into(),
        }
    }

    /// The form kept in the store: the PHC string, or `sha256:` and the base64url digest.
    pub fn to_stored(&self) -> String {
        match self {
            SecretHash::Argon2(phc) => phc.clone(),
            SecretHash::Sha256(d) => format!("sha256:{}", URL_SAFE_NO_PAD.encode(d)),
        }
    }

    pub fn from_stored(s: &str) -> Option<Self> {
        if let Some(b64) = s.strip_prefix("sha256:") {
            let bytes = URL_SAFE_NO_PAD.decode(b64).ok()?;
            return Some(SecretHash::Sha256(bytes.try_into().ok()?));
        }
        PasswordHash::new(s).ok()?;
        Some(SecretHash::Argon2(s.to_string()))
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretHash::Argon2(_) => f.write_str("SecretHash::Argon2([redacted])"),
            SecretHash::Sha256(_) => f.write_str("SecretHash::Sha256([redacted])"),
        }
    }
}

/// SHA-256 of a value; how codes, refresh tokens and session-bound secrets are stored.
pub fn digest(value: &str) -> [u8; 32] {
    let d = lc_digest::digest(&lc_digest::SHA256, value.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The digest as text, for use as a database key.
pub fn digest_hex(value: &str) -> String {
    digest(value).iter().map(|b| format!("{b:02x}")).collect()
}

/// 256 random bits, base64url without padding (43 characters).
pub fn random_token() -> String {
    let mut buf = [0u8; 32];
    aws_lc_rs::rand::fill(&mut buf).expect("the system random generator is available");
    URL_SAFE_NO_PAD.encode(buf)
}

/// HMAC-SHA256 of `message` under `key`, base64url without padding: a token derived from a
/// secret only the server holds (such as a browser session's binding value), so it needs no
/// storage of its own.
pub fn mac_token(key: &str, message: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.as_bytes());
    URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&key, message.as_bytes()).as_ref())
}

/// Constant-time comparison of two strings (CSRF tokens, state values).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mac_token_depends_on_the_key_and_every_byte_of_the_message() {
        let t = mac_token("k", "consent\nreq\nen");
        assert_eq!(t.len(), 43);
        assert_eq!(t, mac_token("k", "consent\nreq\nen"));
        assert_ne!(t, mac_token("k2", "consent\nreq\nen"));
        assert_ne!(t, mac_token("k", "consent\nreq\nfr"));
        // RFC 4231 test case 2, as a check that this is HMAC-SHA256.
        let tc2 = mac_token("Jefe", "what do ya want for nothing?");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(tc2).unwrap(),
            [
                0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95,
                0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9,
                0x64, 0xec, 0x38, 0x43
            ]
        );
    }

    #[test]
    fn argon2_hash_verifies_only_the_right_secret_and_round_trips_through_storage() {
        let h = SecretHash::argon2("correct horse").unwrap();
        let stored = h.to_stored();
        assert!(stored.starts_with("$argon2id$"));
        let back = SecretHash::from_stored(&stored).unwrap();
        assert!(back.verify("correct horse"));
        assert!(!back.verify("correct horsf"));
    }

    #[test]
    fn sha256_hash_round_trips_and_rejects_other_values() {
        let secret = random_token();
        let h = SecretHash::sha256(&secret);
        let back = SecretHash::from_stored(&h.to_stored()).unwrap();
        assert!(back.verify(&secret));
        assert!(!back.verify("nope"));
    }

    #[test]
    fn random_tokens_carry_256_bits_and_differ() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn garbage_is_not_a_stored_hash() {
        assert!(SecretHash::from_stored("plain-text").is_none());
        assert!(SecretHash::from_stored("sha256:tooshort").is_none());
    }
}
