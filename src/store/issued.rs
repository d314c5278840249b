//! What the token endpoint issues, as the store keeps it: codes, access tokens and refresh
//! tokens, and the outcomes of spending a code or rotating a refresh token.

use super::records::IntFlag;

/// An authorization code, keyed by its digest.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CodeRecord {
    pub code_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub sub: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_context_id: String,
    pub auth_time: i64,
    /// Whether the ID token must carry `auth_time` (max_age was sent). Stored as 0/1.
    #[sqlx(try_from = "IntFlag")]
    pub auth_time_required: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    /// The APIs the access tokens are for (RFC 8707), space-separated, as the request asked.
    pub resources: Option<String>,
    /// The thumbprint of the DPoP key the code must be redeemed with (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
}

/// An issued access token, so it can be revoked (code replay, withdrawal) and used at userinfo.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AccessTokenRecord {
    pub jti: String,
    pub client_id: String,
    pub sub: String,
    pub scope: String,
    pub auth_context_id: String,
    /// The code it was issued from, to revoke it if that code is replayed.
    pub code_hash: Option<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The refresh-token family it belongs to, to revoke it with the family.
    pub family_id: Option<String>,
}

/// A refresh token (RFC 6749 §1.5, §6), keyed by the digest of its value. Tokens rotated from
/// one another share a `family_id`; reusing a rotated one revokes the family (RFC 9700 §4.14.2).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RefreshTokenRecord {
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub sub: String,
    /// The scopes originally granted; a refresh may narrow what it asks for, never widen this.
    pub scope: String,
    pub auth_context_id: String,
    /// When the user authenticated, kept for `auth_time` in refreshed ID tokens (OIDC §12.2).
    pub auth_time: i64,
    /// The authorization code the family came from.
    pub code_hash: Option<String>,
    pub issued_at: i64,
    /// Idle expiry of this token, never past `family_expires_at`.
    pub expires_at: i64,
    /// Absolute expiry of the whole family.
    pub family_expires_at: i64,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When the one use allowed within the client's grace period after rotation happened.
    pub grace_used_at: Option<i64>,
    /// The thumbprint of the DPoP key a public client's family is bound to (RFC 9449 §5).
    pub dpop_jkt: Option<String>,
    /// The APIs the family's access tokens may be for (RFC 8707), space-separated.
    pub resources: Option<String>,
}

/// Outcome of rotating a refresh token.
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// This call retired the token and stored its successor and access token.
    Rotated,
    /// It was already rotated or revoked (a reuse, or a lost race): nothing was stored.
    NotCurrent,
}

/// Outcome of redeeming a code.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    /// This call consumed the code and stored the access token in the same transaction.
    Redeemed,
    /// Someone consumed it before: a replay.
    AlreadyUsed,
}
