//! The client secrets verified so far: a confidential client's argon2 hash is checked once per
//! secret, then the SHA-256 digest of the secret it accepted is compared in constant time, so
//! the token endpoint pays no slow hash per request.

use std::collections::HashMap;
use std::sync::RwLock;

use subtle::ConstantTimeEq;

/// Client id -> (the stored hash it was verified against, the digest of the accepted secret).
/// A changed stored hash (a new secret) misses, so a rotated secret is verified afresh.
#[derive(Debug, Default)]
pub struct SecretCache {
    verified: RwLock<HashMap<String, (String, [u8; 32])>>,
}

impl SecretCache {
    pub fn hit(&self, client_id: &str, stored: &str, presented: &[u8; 32]) -> bool {
        self.verified
            .read()
            .ok()
            .and_then(|m| {
                m.get(client_id)
                    .map(|(s, d)| s == stored && bool::from(d.ct_eq(presented)))
            })
            .unwrap_or(false)
    }

    pub fn remember(&self, client_id: &str, stored: String, presented: [u8; 32]) {
        if let Ok(mut m) = self.verified.write() {
            m.insert(client_id.to_string(), (stored, presented));
        }
    }
}
