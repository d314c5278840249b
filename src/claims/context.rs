//! The authentication context: what Herald knows about a user after one upstream login, and where each
//! piece came from.
//!
//! A context is built once per login by [`build_context`](super::build_context), stored with the session
//! and handed back on the next login so attributes with `on_missing = "keep"` can reuse earlier values.
//! Tokens never carry it whole: [`release`](fn@super::release) picks claims out of it per granted scope.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Bound, Deref};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{Merge, Source};

/// What Herald knows about the user after one login through one upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuthContext {
    /// The upstream's id in Herald's config.
    pub upstream: String,
    /// The upstream's `sub` from its ID token (Herald mints its own `sub` for clients).
    pub subject: String,
    /// Mapped values, nested along their context paths.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    /// For each canonical context path written, the upstream claims it came from.
    #[serde(default)]
    pub origins: BTreeMap<String, Vec<Origin>>,
    /// Authentication methods (OIDC Core §2 `amr`): the upstream's configured override, else its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The upstream's authentication context class (`acr`), when it sent a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

impl AuthContext {
    /// How pages name the user: `preferred_username`, else `name`, else `email`, when the
    /// mappings put one of them in the context.
    pub fn display_name(&self) -> Option<&str> {
        ["preferred_username", "name", "email"]
            .iter()
            .find_map(|k| self.attributes.get(*k).and_then(Value::as_str))
            .filter(|n| !n.trim().is_empty())
    }
}

/// Where one value in the context came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Origin {
    /// The upstream's id.
    #[schema(value_type = String)]
    pub upstream: OriginText,
    /// The artefact the claim was read from.
    pub source: Source,
    /// The upstream claim, as a canonical path.
    #[schema(value_type = String)]
    pub claim: OriginText,
    /// `standard` for the built-in OIDC mapping, else the mapping as `from → to`.
    #[schema(value_type = String)]
    pub mapping: OriginText,
    /// The merge strategy that wrote the value.
    pub merge: Merge,
    /// The upstream did not send the claim this time; the value was kept from the previous login.
    #[serde(default, skip_serializing_if = "is_false")]
    pub kept: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Drops the origins of `key` and of everything nested under it (`key.x`, `key[…]`): a write at
/// `key` replaced what they described.
pub fn forget_origins(origins: &mut BTreeMap<String, Vec<Origin>>, key: &str) {
    let nested = |k: &str| {
        k.strip_prefix(key)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    };
    // Keys starting with `key` sort contiguously from `key` on, so the scan stops at the first
    // other key.
    let stale: Vec<String> = origins
        .range::<str, _>((Bound::Included(key), Bound::Unbounded))
        .take_while(|(k, _)| k.starts_with(key))
        .filter(|(k, _)| nested(k))
        .map(|(k, _)| k.clone())
        .collect();
    for k in stale {
        origins.remove(&k);
    }
}

/// A string in an [`Origin`]: one login writes the same upstream id, claim and mapping name into many
/// origins, so they share one allocation instead of each holding a copy. Reads and serializes as a string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OriginText(Arc<str>);

impl OriginText {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for OriginText {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for OriginText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<Arc<str>> for OriginText {
    fn from(s: Arc<str>) -> Self {
        OriginText(s)
    }
}

impl From<&str> for OriginText {
    fn from(s: &str) -> Self {
        OriginText(s.into())
    }
}

impl From<String> for OriginText {
    fn from(s: String) -> Self {
        OriginText(s.into())
    }
}

impl PartialEq<str> for OriginText {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for OriginText {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for OriginText {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl fmt::Debug for OriginText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for OriginText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for OriginText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OriginText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(OriginText::from)
    }
}

/// The claims an upstream login produced, as verified by the upstream client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpstreamClaims {
    /// The ID token's payload.
    pub id_token: Map<String, Value>,
    /// The userinfo response, when Herald fetched it.
    pub userinfo: Option<Map<String, Value>>,
    /// The access token's claims, when it is a JWT.
    pub access_token: AccessTokenClaims,
}

/// What Herald could read from the upstream's access token.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AccessTokenClaims {
    /// A JWT access token's payload.
    Jwt(Map<String, Value>),
    /// An opaque token: it yields no claims.
    Opaque,
    /// The upstream returned no access token.
    #[default]
    Absent,
}

/// Something that went wrong with one claim without failing the login; also logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Warning {
    /// The claim or context path concerned.
    pub path: String,
    /// What happened, for admins.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A built context and the warnings raised while building it.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// The new context.
    pub context: AuthContext,
    /// Claims dropped or skipped, in the order they were met.
    pub warnings: Vec<Warning>,
    /// What each condition, expression and transform made of its input, in order; recorded
    /// only for a preview ([`build_traced`](super::mapping::build_traced)).
    pub steps: Vec<Step>,
}

/// One step of a mapping, as a preview shows it: a `when` condition, an `expr` or a transform,
/// with what it was given and what it gave.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Step {
    /// The mapping, as `from → to`.
    pub mapping: String,
    /// `when …`, `expr`, or the transform, e.g. `prefix "team:"`.
    pub step: String,
    /// What the step was given (`null` for a condition or an expression, which read the claims).
    #[schema(value_type = Object)]
    pub input: Value,
    /// What it gave; an error's text when it failed.
    #[schema(value_type = Object)]
    pub output: Value,
}

/// Why a login cannot go on. Shown to the user on an error page, so each says what an administrator must fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The ID token has no string `sub`.
    #[error(
        "The sign-in provider `{upstream}` sent an ID token without a subject (`sub`) claim. \
         An administrator must fix the upstream's configuration."
    )]
    MissingSubject {
        /// The upstream's id.
        upstream: String,
    },
    /// A required claim, or one with `on_missing = "fail"`, was not sent.
    #[error(
        "The sign-in provider `{upstream}` did not send the claim `{claim}` in its {location}, which is \
         needed to sign you in. An administrator must fix the upstream so that it sends this claim, or \
         change the attribute's `required` / `on_missing` setting.",
        location = .location.describe()
    )]
    MissingClaim {
        /// The upstream's id.
        upstream: String,
        /// Where the claim was expected.
        location: Source,
        /// The claim's canonical path.
        claim: String,
    },
    /// A required claim was sent with a value that does not fit its attribute's type.
    #[error(
        "The sign-in provider `{upstream}` sent the claim `{claim}` in its {location} as {found}, but {expected} \
         is needed to sign you in. An administrator must fix the upstream or the attribute's `type`.",
        location = .location.describe(),
        expected = .expected.describe()
    )]
    WrongType {
        /// The upstream's id.
        upstream: String,
        /// Where the claim was read.
        location: Source,
        /// The claim's canonical path.
        claim: String,
        /// The attribute's type.
        expected: super::AttrType,
        /// What the value was, e.g. "a string".
        found: &'static str,
    },
    /// A computed mapping with `on_missing = "fail"` could not compute its value.
    #[error(
        "Signing in through `{upstream}` needs a value computed by the mapping `{mapping}`, and it could \
         not be computed: {reason}. An administrator must fix the mapping or its `on_missing`."
    )]
    Computed {
        upstream: String,
        mapping: String,
        reason: String,
    },
    /// A required claim must come from an access token that is opaque.
    #[error(
        "The sign-in provider `{upstream}` issued an opaque access token, so the claim `{claim}`, which is \
         needed to sign you in, could not be read from it. An administrator must make the upstream issue JWT \
         access tokens (Auth0 does so only when an `audience` is requested) or read the claim from another source."
    )]
    OpaqueAccessToken {
        /// The upstream's id.
        upstream: String,
        /// The claim's canonical path.
        claim: String,
    },
}
