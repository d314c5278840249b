//! Tokens and keys: what Herald signs, how it hashes secrets, and the claims it mints.
//!
//! - [`hashing`]: client-secret hashes (argon2 for chosen secrets, SHA-256 for generated
//!   256-bit ones), digests for codes and refresh tokens, random token generation.
//! - [`keys`]: signing key pairs, parsed once into aws-lc-rs objects, their JWKS form and their
//!   encryption at rest.
//! - [`kek`]: the key-encryption key, which seals private keys and upstream secrets at rest.
//! - [`jwt`]: compact JWS signing with those key pairs and verification of Herald's own JWTs
//!   (RFC 7515, RFC 8725).
//! - [`dpop`]: DPoP proofs (RFC 9449), the key thumbprints tokens are bound to, and nonces.
//! - [`mint`]: ID tokens (OIDC Core §2) and JWT access tokens (RFC 9068).
//! - [`secret_cache`]: the client secrets already verified, so `/token` pays argon2 once.

pub mod dpop;
pub mod hashing;
pub mod jwt;
pub mod kek;
pub mod keys;
pub mod mint;
pub mod secret_cache;

pub use hashing::{SecretHash, digest, random_token};
pub use jwt::{JwtError, verify_access_token};
pub use keys::{Alg, KeyRing, SigningKey};
