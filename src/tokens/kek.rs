//! The key-encryption key (`HERALD_KEY_ENCRYPTION_KEY`): AES-256-GCM over what Herald keeps
//! secret at rest (private signing keys, upstream client secrets typed into the admin pages).
//! Each ciphertext is bound, as associated data, to what it belongs to (a key's kid, an
//! upstream's id and provider), so a stored value cannot be moved to another row.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Why a value cannot be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("HERALD_KEY_ENCRYPTION_KEY is not set")]
    NoKek,
    #[error(
        "it cannot be decrypted with this HERALD_KEY_ENCRYPTION_KEY (not the key that encrypted \
         it, or encrypted for something else)"
    )]
    Decrypt,
    #[error("unknown encryption scheme `{0}`")]
    Scheme(String),
    #[error("encryption failed")]
    Seal,
}

/// The key-encryption key for what Herald keeps secret at rest.
#[derive(Clone)]
pub struct KeyEncryption {
    key: Option<Arc<RandomizedNonceKey>>,
}

impl fmt::Debug for KeyEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.key.is_some() {
            "KeyEncryption(aes-256-gcm, [redacted])"
        } else {
            "KeyEncryption(none)"
        })
    }
}

/// How a stored private key is protected; kept next to it in the store.
pub const ENC_NONE: &str = "none";
pub const ENC_AES256GCM: &str = "aes256gcm";

impl KeyEncryption {
    /// Reads a standard-base64 32-byte key, as printed by `herald keys gen-kek`.
    pub fn from_base64(b64: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(b64.trim())
            .map_err(|_| "HERALD_KEY_ENCRYPTION_KEY is not standard base64".to_string())?;
        if bytes.len() != 32 {
            return Err(format!(
                "HERALD_KEY_ENCRYPTION_KEY must be 32 bytes, this one is {}; create one with \
                 `herald keys gen-kek`",
                bytes.len()
            ));
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| "HERALD_KEY_ENCRYPTION_KEY cannot be used as an AES key".to_string())?;
        Ok(Self {
            key: Some(Arc::new(key)),
        })
    }

    /// The key in `HERALD_KEY_ENCRYPTION_KEY`; `None` when it is unset or empty.
    pub fn from_env() -> Result<Option<Self>, String> {
        match std::env::var("HERALD_KEY_ENCRYPTION_KEY") {
            Ok(v) if !v.is_empty() => Self::from_base64(&v).map(Some),
            _ => Ok(None),
        }
    }

    /// No encryption: allowed only for loopback development issuers.
    pub fn none() -> Self {
        Self { key: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.key.is_some()
    }

    /// A fresh key-encryption key, standard base64.
    pub fn generate_base64() -> String {
        let mut buf = [0u8; 32];
        aws_lc_rs::rand::fill(&mut buf).expect("the system random generator is available");
        STANDARD.encode(buf)
    }

    /// Encrypts `plain` for `context`; returns the scheme name and the stored bytes
    /// (nonce || ciphertext). Without a key-encryption key it is stored as it is (`none`).
    pub fn seal(&self, plain: &[u8], context: &str) -> Result<(&'static str, Vec<u8>), SealError> {
        let Some(key) = &self.key else {
            return Ok((ENC_NONE, plain.to_vec()));
        };
        let mut data = plain.to_vec();
        // The context is bound as associated data, so a ciphertext cannot be swapped between
        // rows or moved to another upstream.
        let nonce = key
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| SealError::Seal)?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&data);
        Ok((ENC_AES256GCM, out))
    }

    /// Decrypts what [`seal`](Self::seal) stored for the same `context`.
    pub fn open(&self, scheme: &str, stored: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        match scheme {
            ENC_NONE => Ok(stored.to_vec()),
            ENC_AES256GCM => {
                let Some(key) = &self.key else {
                    return Err(SealError::NoKek);
                };
                if stored.len() < 12 {
                    return Err(SealError::Decrypt);
                }
                let (nonce, ct) = stored.split_at(12);
                let nonce =
                    Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Decrypt)?;
                let mut buf = ct.to_vec();
                let plain = key
                    .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
                    .map_err(|_| SealError::Decrypt)?;
                Ok(plain.to_vec())
            }
            other => Err(SealError::Scheme(other.into())),
        }
    }

    /// Encrypts a secret kept as text (an upstream's client secret): `aes256gcm:` and the
    /// standard base64 of nonce and ciphertext. Unlike [`seal`](Self::seal) it refuses to
    /// store anything without a key-encryption key.
    pub fn seal_text(&self, plain: &str, context: &str) -> Result<String, SealError> {
        if self.key.is_none() {
            return Err(SealError::NoKek);
        }
        let (scheme, bytes) = self.seal(plain.as_bytes(), context)?;
        Ok(format!("{scheme}:{}", STANDARD.encode(bytes)))
    }

    /// Decrypts what [`seal_text`](Self::seal_text) made for the same `context`.
    pub fn open_text(&self, stored: &str, context: &str) -> Result<String, SealError> {
        let (scheme, b64) = stored
            .split_once(':')
            .ok_or_else(|| SealError::Scheme(stored.chars().take(12).collect()))?;
        if scheme != ENC_AES256GCM {
            return Err(SealError::Scheme(scheme.into()));
        }
        let bytes = STANDARD.decode(b64).map_err(|_| SealError::Decrypt)?;
        let plain = self.open(scheme, &bytes, context)?;
        String::from_utf8(plain).map_err(|_| SealError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> KeyEncryption {
        KeyEncryption::from_base64(&KeyEncryption::generate_base64()).unwrap()
    }

    #[test]
    fn text_opens_only_with_its_key_and_context() {
        let kek = kek();
        let sealed = kek.seal_text("upstream-secret", "upstream:a").unwrap();
        assert!(sealed.starts_with("aes256gcm:"), "{sealed}");
        assert!(!sealed.contains("upstream-secret"));
        assert_eq!(
            kek.open_text(&sealed, "upstream:a").unwrap(),
            "upstream-secret"
        );
        assert_eq!(
            kek.open_text(&sealed, "upstream:b"),
            Err(SealError::Decrypt)
        );
        assert_eq!(
            self::kek().open_text(&sealed, "upstream:a"),
            Err(SealError::Decrypt)
        );
        assert_eq!(
            KeyEncryption::none().open_text(&sealed, "upstream:a"),
            Err(SealError::NoKek)
        );
        assert_eq!(
            kek.open_text("none:dXBzdHJlYW0tc2VjcmV0", "upstream:a"),
            Err(SealError::Scheme("none".into()))
        );
        assert_eq!(
            kek.open_text("aes256gcm:!!", "upstream:a"),
            Err(SealError::Decrypt)
        );
        // Two seals of one secret differ (a fresh nonce each time).
        assert_ne!(
            sealed,
            kek.seal_text("upstream-secret", "upstream:a").unwrap()
        );
    }

    #[test]
    fn text_is_never_stored_without_a_key() {
        assert_eq!(
            KeyEncryption::none().seal_text("s", "upstream:a"),
            Err(SealError::NoKek)
        );
    }
}
