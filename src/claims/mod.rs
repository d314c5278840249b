//! The claims engine: from an upstream IdP's claims to the claims in the tokens Herald mints.
//!
//! Herald reads claims from an upstream's ID token, userinfo response and (JWT) access token, checks them
//! against admin-declared *attributes*, copies them along *mappings* into an [`AuthContext`], and releases
//! context values as token claims per granted scope (OIDC Core §5.1 standard claims, §5.4 scopes).
//! Nothing here knows HTTP or the database: the upstream client hands in verified claims, the store keeps
//! the context, token minting asks [`release`](fn@release) what to put in.
//!
//! # Layout
//! - [`path`]: [`ClaimPath`], the one parser for claim paths (`https://example\.com/groups`, `a["b"].c`).
//! - [`config`]: the admin's [`Attribute`]s, [`Mapping`]s and AMR override, as read from TOML.
//! - [`validate`]: config-time checks ([`validate_upstream`]) and the reserved claims.
//! - [`context`]: [`AuthContext`] and its [`Origin`]s, the login's input and error types.
//! - [`mapping`]: [`build_context`], run once per login, and [`build_onto`] for an imported
//!   profile.
//! - [`release`](mod@release): the [`ScopeCatalog`] and [`release`](fn@release), run per token.
//! - [`purposes`]: what scopes' data is used for, and the wording shown in each locale.
//! - [`lineage`](mod@lineage): where each releasable claim comes from, and a dry-run [`preview`] of a login.

pub mod config;
pub mod context;
pub mod declared;
pub mod expr;
pub mod json;
pub mod lineage;
pub mod mapping;
pub mod path;
pub mod purposes;
pub mod release;
pub mod transform;
pub mod validate;

pub use config::{AttrType, Attribute, Mapping, Merge, OnMissing, Source, UpstreamMapping};
pub use context::{
    AccessTokenClaims, AuthContext, Built, MappingError, Origin, OriginText, Step, UpstreamClaims,
    Warning,
};
pub use declared::ContextDecl;
pub use expr::{ExprError, Expression, Scope};
pub use lineage::{LineageOrigin, LineageRow, Preview, lineage, preview, render_lineage_table};
pub use mapping::{STANDARD_CLAIMS, build_context, build_onto, build_traced};
pub use path::{ClaimPath, PathError, PathErrorKind, escape_segment};
pub use purposes::{LegalBasis, PurposeDef};
pub use release::{
    CONSENTS_SCOPE, ReleaseEntry, ScopeCatalog, ScopeDef, TokenKind, builtin_scopes, release,
};
pub use transform::Transform;
pub use validate::{ConfigError, RESERVED_CLAIMS, validate_upstream};
