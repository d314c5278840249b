//! Signing keys: generated once, kept in the store, parsed once into aws-lc-rs key pairs.
//!
//! Parsing a private key is far slower than signing with it (an RSA key is validated on load),
//! so a [`KeyRing`] holds ready key pairs and a pre-rendered JWKS document; the token endpoint
//! only signs. Keys are identified by their RFC 7638 thumbprint. Private keys are encrypted at
//! rest with AES-256-GCM under the key-encryption key from `HERALD_KEY_ENCRYPTION_KEY`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::kek::SealError;
pub use super::kek::{ENC_AES256GCM, ENC_NONE, KeyEncryption};

/// JWS algorithms Herald signs with (RFC 7518 §3; RFC 8037 for EdDSA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    RS256,
    ES256,
    EdDSA,
}

impl Alg {
    /// RSA: slow enough to sign off the async workers.
    pub fn is_rsa(self) -> bool {
        self == Alg::RS256
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "RS256" => Some(Alg::RS256),
            "ES256" => Some(Alg::ES256),
            "EdDSA" => Some(Alg::EdDSA),
            _ => None,
        }
    }

    pub(crate) fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Alg::RS256 => jsonwebtoken::Algorithm::RS256,
            Alg::ES256 => jsonwebtoken::Algorithm::ES256,
            Alg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

/// The store keeps its own spelling of the algorithm (it stands below `tokens`); the two
/// convert both ways, checked by the compiler: a new variant must be added to both.
impl From<Alg> for crate::store::KeyAlg {
    fn from(alg: Alg) -> Self {
        match alg {
            Alg::RS256 => Self::RS256,
            Alg::ES256 => Self::ES256,
            Alg::EdDSA => Self::EdDSA,
        }
    }
}

impl From<crate::store::KeyAlg> for Alg {
    fn from(alg: crate::store::KeyAlg) -> Self {
        use crate::store::KeyAlg;
        match alg {
            KeyAlg::RS256 => Alg::RS256,
            KeyAlg::ES256 => Alg::ES256,
            KeyAlg::EdDSA => Alg::EdDSA,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error("stored key `{0}` cannot be parsed: {1}")]
    Parse(String, String),
    #[error("stored key `{0}` cannot be decrypted: wrong HERALD_KEY_ENCRYPTION_KEY?")]
    Decrypt(String),
    #[error(
        "stored key `{0}` is encrypted, but HERALD_KEY_ENCRYPTION_KEY is not set; set it to the \
         key it was encrypted with"
    )]
    NoKek(String),
    #[error("signing failed")]
    Sign,
}

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A parsed private key with its identifier.
pub struct SigningKey {
    pub kid: String,
    pub alg: Alg,
    pair: Pair,
    jwk: Value,
    /// A secret derived from the private key (domain-separated SHA-256 of its PKCS#8 form):
    /// the MAC key of DPoP nonces, the same on every replica that holds the key.
    nonce_secret: [u8; 32],
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey({} {}, private part redacted)",
            self.alg.as_str(),
            self.kid
        )
    }
}

impl SigningKey {
    /// Generates a key pair; returns it with its PKCS#8 encoding for storage.
    pub fn generate(alg: Alg) -> Result<(SigningKey, Vec<u8>), KeyError> {
        let der = match alg {
            Alg::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| KeyError::Generate)?
                .as_der()
                .map_err(|_| KeyError::Generate)?
                .as_ref()
                .to_vec(),
            Alg::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                    .map_err(|_| KeyError::Generate)?
                    .as_ref()
                    .to_vec()
            }
            Alg::EdDSA => Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| KeyError::Generate)?
                .as_ref()
                .to_vec(),
        };
        let key = SigningKey::from_pkcs8(alg, &der)?;
        Ok((key, der))
    }

    /// Parses a PKCS#8 private key; the `kid` is its RFC 7638 thumbprint.
    pub fn from_pkcs8(alg: Alg, der: &[u8]) -> Result<SigningKey, KeyError> {
        let bad = |e: String| KeyError::Parse(alg.as_str().into(), e);
        let (pair, mut jwk) = match alg {
            Alg::RS256 => {
                let kp = RsaKeyPair::from_pkcs8(der).map_err(|e| bad(e.to_string()))?;
                let public = kp.public_key();
                let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
                let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
                (Pair::Rsa(kp), json!({"kty": "RSA", "n": n, "e": e}))
            }
            Alg::ES256 => {
                let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|e| bad(e.to_string()))?;
                // Uncompressed point: 0x04 || x || y.
                let point = kp.public_key().as_ref().to_vec();
                if point.len() != 65 {
                    return Err(bad("unexpected EC public key length".into()));
                }
                let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
                let y = URL_SAFE_NO_PAD.encode(&point[33..]);
                (
                    Pair::Ec(kp),
                    json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
                )
            }
            Alg::EdDSA => {
                let kp = Ed25519KeyPair::from_pkcs8(der).map_err(|e| bad(e.to_string()))?;
                let x = URL_SAFE_NO_PAD.encode(kp.public_key().as_ref());
                (
                    Pair::Ed(kp),
                    json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
                )
            }
        };
        let kid = thumbprint(&jwk);
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk["alg"] = json!(alg.as_str());
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(b"herald dpop nonce key\0");
        ctx.update(der);
        let mut nonce_secret = [0u8; 32];
        nonce_secret.copy_from_slice(ctx.finish().as_ref());
        Ok(SigningKey {
            kid,
            alg,
            pair,
            jwk,
            nonce_secret,
        })
    }

    /// The public JWK (RFC 7517 §4): public members only.
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// Signs `message` (the JWS signing input).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
                    .map_err(|_| KeyError::Sign)?;
                Ok(sig)
            }
            Pair::Ec(kp) => kp
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Sign),
            Pair::Ed(kp) => Ok(kp.sign(message).as_ref().to_vec()),
        }
    }

    /// A verification key for jsonwebtoken, built from the public JWK.
    pub fn decoding_key(&self) -> Result<DecodingKey, KeyError> {
        let s = |k: &str| self.jwk[k].as_str().unwrap_or_default().to_string();
        let r = match self.alg {
            Alg::RS256 => DecodingKey::from_rsa_components(&s("n"), &s("e")),
            Alg::ES256 => DecodingKey::from_ec_components(&s("x"), &s("y")),
            Alg::EdDSA => DecodingKey::from_ed_components(&s("x")),
        };
        r.map_err(|e| KeyError::Parse(self.kid.clone(), e.to_string()))
    }
}

/// RFC 7638 JWK thumbprint: SHA-256 over the required members in lexicographic order.
fn thumbprint(jwk: &Value) -> String {
    let members: &[&str] = match jwk["kty"].as_str() {
        Some("RSA") => &["e", "kty", "n"],
        Some("EC") => &["crv", "kty", "x", "y"],
        _ => &["crv", "kty", "x"],
    };
    let mut canonical = String::from("{");
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        canonical.push_str(&format!("\"{m}\":{}", jwk[*m]));
    }
    canonical.push('}');
    URL_SAFE_NO_PAD.encode(super::hashing::digest(&canonical))
}

/// Decrypts a stored private key, naming the key in what goes wrong.
fn open_key(
    kek: &KeyEncryption,
    scheme: &str,
    stored: &[u8],
    kid: &str,
) -> Result<Vec<u8>, KeyError> {
    kek.open(scheme, stored, kid).map_err(|e| match e {
        SealError::NoKek => KeyError::NoKek(kid.into()),
        SealError::Scheme(s) => KeyError::Parse(kid.into(), format!("unknown scheme {s}")),
        SealError::Decrypt | SealError::Seal => KeyError::Decrypt(kid.into()),
    })
}

/// The keys in use: one active signing key per algorithm, every published key for verification,
/// and the JWKS document rendered once.
pub struct KeyRing {
    active: HashMap<Alg, Arc<SigningKey>>,
    verify: HashMap<String, (Alg, DecodingKey)>,
    jwks: Arc<str>,
    nonces: super::dpop::Nonces,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field(
                "active",
                &self.active.values().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .field("published", &self.verify.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// `published` are all keys in JWKS (including ones not yet or no longer signing);
    /// `active` names, per algorithm, the kid that signs.
    pub fn new(published: Vec<Arc<SigningKey>>, active: &[String]) -> Result<Self, KeyError> {
        let mut verify = HashMap::new();
        let mut keys = Vec::new();
        let mut active_map = HashMap::new();
        for k in &published {
            verify.insert(k.kid.clone(), (k.alg, k.decoding_key()?));
            keys.push(k.public_jwk().clone());
            if active.contains(&k.kid) {
                active_map.insert(k.alg, k.clone());
            }
        }
        let jwks: Arc<str> = json!({ "keys": keys }).to_string().into();
        // Every replica orders the shared keys alike, so they make the same nonces.
        let mut by_kid: Vec<&Arc<SigningKey>> = published.iter().collect();
        by_kid.sort_by(|a, b| a.kid.cmp(&b.kid));
        let secrets: Vec<[u8; 32]> = by_kid.iter().map(|k| k.nonce_secret).collect();
        Ok(Self {
            active: active_map,
            verify,
            jwks,
            nonces: super::dpop::Nonces::new(&secrets),
        })
    }

    pub fn signing_key(&self, alg: Alg) -> Option<&Arc<SigningKey>> {
        self.active.get(&alg)
    }

    pub fn verification_key(&self, kid: &str) -> Option<&(Alg, DecodingKey)> {
        self.verify.get(kid)
    }

    /// DPoP nonces (RFC 9449 §8), keyed by these keys.
    pub fn dpop_nonces(&self) -> &super::dpop::Nonces {
        &self.nonces
    }

    /// The JWKS document (RFC 7517 §5), public keys only.
    pub fn jwks_json(&self) -> Arc<str> {
        self.jwks.clone()
    }
}

/// How long a rotated-in key is published before it signs: replicas reload keys every
/// [`KEY_RELOAD_SECS`] and relying parties may cache the JWKS for [`JWKS_MAX_AGE_SECS`].
pub const DEFAULT_ACTIVATION_DELAY_SECS: i64 = 300;
/// How often each replica re-reads the keys from the store by default (`[server]
/// key_reload_interval`, at most 60 s, so a key published for the activation delay has reached
/// every replica before it signs).
pub const KEY_RELOAD_SECS: u64 = 10;
/// `Cache-Control: max-age` of the JWKS document.
pub const JWKS_MAX_AGE_SECS: i64 = 120;

fn signs_at(r: &crate::store::KeyRecord, now: i64) -> bool {
    r.activates_at <= now && r.retires_at.is_none_or(|t| t > now)
}

fn seal_record(
    kek: &KeyEncryption,
    alg: Alg,
    now: i64,
    activates_at: i64,
) -> Result<crate::store::KeyRecord, KeyError> {
    let (key, der) = SigningKey::generate(alg)?;
    let (scheme, sealed) = kek.seal(&der, &key.kid).map_err(|_| KeyError::Generate)?;
    Ok(crate::store::KeyRecord {
        kid: key.kid,
        alg: alg.into(),
        encryption: scheme.into(),
        private_key: sealed,
        created_at: now,
        activates_at,
        retires_at: None,
        expires_at: None,
    })
}

/// Loads the published keys, first creating a signing key for every algorithm in `algs` that
/// has none (a fresh database, or a client newly asking for ES256 or EdDSA).
pub async fn load_or_create(
    store: &dyn crate::store::KeyStore,
    kek: &KeyEncryption,
    algs: &[Alg],
    now: i64,
) -> anyhow::Result<KeyRing> {
    let records = store.signing_keys().await?;
    let mut created = reseal_plaintext(store, kek, &records).await?;
    for alg in algs {
        if !records
            .iter()
            .any(|r| Alg::from(r.alg) == *alg && signs_at(r, now))
        {
            let record = seal_record(kek, *alg, now, now)?;
            tracing::info!(kid = %record.kid, alg = alg.as_str(), "generated a signing key");
            store.insert_signing_key(&record).await?;
            created = true;
        }
    }
    let records = if created {
        store.signing_keys().await?
    } else {
        records
    };
    Ok(ring_from(&records, kek, now)?)
}

/// With a key-encryption key set, keys stored in plaintext (made while none was set) are sealed
/// under it now, so no private key stays readable in the database (hole 7 of the hardening
/// issue). Returns whether any was.
async fn reseal_plaintext(
    store: &dyn crate::store::KeyStore,
    kek: &KeyEncryption,
    records: &[crate::store::KeyRecord],
) -> anyhow::Result<bool> {
    if !kek.is_enabled() {
        return Ok(false);
    }
    let mut resealed = false;
    for r in records.iter().filter(|r| r.encryption == ENC_NONE) {
        let (scheme, sealed) = kek
            .seal(&r.private_key, &r.kid)
            .map_err(|_| KeyError::Generate)?;
        if store
            .reseal_signing_key(&r.kid, ENC_NONE, scheme, &sealed)
            .await?
        {
            tracing::warn!(
                kid = %r.kid,
                "signing key {} was stored unencrypted; it is now sealed with \
                 HERALD_KEY_ENCRYPTION_KEY (it was readable in the database until now: rotate it \
                 with `herald keys rotate` if the database may have been read)",
                r.kid
            );
            resealed = true;
        }
    }
    Ok(resealed)
}

/// A key signs once `activates_at` has passed and until `retires_at`; it stays published until
/// `expires_at`. When several keys of one algorithm could sign (two replicas created one at the
/// same moment), the newest wins everywhere, so all replicas agree.
fn ring_from(
    records: &[crate::store::KeyRecord],
    kek: &KeyEncryption,
    now: i64,
) -> Result<KeyRing, KeyError> {
    let mut published = Vec::new();
    let mut active: HashMap<Alg, (i64, String)> = HashMap::new();
    for r in records
        .iter()
        .filter(|r| r.expires_at.is_none_or(|t| t > now))
    {
        let alg = Alg::from(r.alg);
        let der = open_key(kek, &r.encryption, &r.private_key, &r.kid)?;
        let key = SigningKey::from_pkcs8(alg, &der)?;
        if signs_at(r, now) && active.get(&alg).is_none_or(|(at, _)| r.activates_at >= *at) {
            active.insert(alg, (r.activates_at, key.kid.clone()));
        }
        published.push(Arc::new(key));
    }
    let active: Vec<String> = active.into_values().map(|(_, kid)| kid).collect();
    KeyRing::new(published, &active)
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    pub new_kid: String,
    pub activates_at: i64,
    /// The keys that stop signing when the new one starts, and when they leave the JWKS.
    pub retired: Vec<(String, i64)>,
}

/// Rotates the signing key of `alg`: the new key is published now and signs from
/// `now + activation_delay`; the current keys stop signing then and stay published for
/// `keep_for` more seconds, the longest lifetime of a token they signed (plus leeway).
pub async fn rotate(
    store: &dyn crate::store::KeyStore,
    kek: &KeyEncryption,
    alg: Alg,
    now: i64,
    activation_delay: i64,
    keep_for: i64,
) -> anyhow::Result<Rotation> {
    let activates_at = now + activation_delay.max(0);
    let current: Vec<crate::store::KeyRecord> = store
        .signing_keys()
        .await?
        .into_iter()
        .filter(|r| Alg::from(r.alg) == alg && r.retires_at.is_none())
        .collect();
    let record = seal_record(kek, alg, now, activates_at)?;
    store.insert_signing_key(&record).await?;
    let mut retired = Vec::new();
    for r in current {
        let expires_at = activates_at + keep_for;
        store
            .retire_signing_key(&r.kid, activates_at, expires_at)
            .await?;
        retired.push((r.kid, expires_at));
    }
    Ok(Rotation {
        new_kid: record.kid,
        activates_at,
        retired,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_a_key_that_reloads_with_the_same_kid() {
        for alg in [Alg::RS256, Alg::ES256, Alg::EdDSA] {
            let (k, der) = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8(alg, &der).unwrap();
            assert_eq!(k.kid, again.kid);
            assert_eq!(k.public_jwk(), again.public_jwk());
            assert!(k.decoding_key().is_ok());
        }
    }

    #[test]
    fn public_jwk_has_no_private_members() {
        let (k, _) = SigningKey::generate(Alg::RS256).unwrap();
        let jwk = k.public_jwk().as_object().unwrap();
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(!jwk.contains_key(private), "{private} leaked");
        }
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "RS256");
    }

    #[test]
    fn sealed_keys_open_only_with_the_same_kek_and_kid() {
        let kek = KeyEncryption::from_base64(&KeyEncryption::generate_base64()).unwrap();
        let (scheme, sealed) = kek.seal(b"private", "kid1").unwrap();
        assert_eq!(scheme, ENC_AES256GCM);
        assert_eq!(kek.open(scheme, &sealed, "kid1").unwrap(), b"private");
        assert!(kek.open(scheme, &sealed, "kid2").is_err());
        let other = KeyEncryption::from_base64(&KeyEncryption::generate_base64()).unwrap();
        assert!(other.open(scheme, &sealed, "kid1").is_err());
        assert!(matches!(
            KeyEncryption::none().open(scheme, &sealed, "kid1"),
            Err(SealError::NoKek)
        ));
        assert!(matches!(
            open_key(&KeyEncryption::none(), scheme, &sealed, "kid1"),
            Err(KeyError::NoKek(_))
        ));
    }

    #[test]
    fn a_kek_of_the_wrong_length_is_refused_with_advice() {
        use base64::engine::general_purpose::STANDARD;
        let err = KeyEncryption::from_base64(&STANDARD.encode([0u8; 16])).unwrap_err();
        assert!(err.contains("32 bytes"), "{err}");
    }
}
