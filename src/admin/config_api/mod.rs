//! The managed configuration through the API: upstreams with their attributes and mappings,
//! clients, custom scopes; and the read-only views of it, preview and lineage.
//!
//! Reads answer from the settings in effect on this replica. Every write is one operation of
//! the change service ([`crate::admin::changes::Changes`]), which the admin pages use too: it
//! edits the latest stored document, validates the result like `herald check-config`, stores it
//! as the next version with its audit entry in one transaction, and puts it into effect here.
//!
//! # Layout
//! - [`upstreams`]: the upstreams, with each one's attributes and mappings
//!   (`/admin/api/upstreams`);
//! - [`clients`]: the clients (`/admin/api/clients`);
//! - [`scopes`]: the scopes, preview and lineage (`/admin/api/scopes`, `/admin/api/preview`,
//!   `/admin/api/lineage`).
//!
//! The extractors every handler shares (`Body`, `Path`) and the error answers are in
//! [`crate::admin::error`]; the credential and role checks are [`crate::admin::auth`]'s extractors.

pub mod clients;
pub mod scopes;
pub mod upstreams;
