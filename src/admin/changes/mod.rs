//! The one way the managed configuration changes: typed operations on upstreams, their claim
//! rules, clients and scopes, called alike by the admin API ([`super::config_api`]) and the
//! admin pages ([`super::pages`]).
//!
//! Every operation runs the same steps ([`Changes::apply`]): it edits the latest stored
//! document through its typed entries ([`ManagedConfig::get`], [`ManagedConfig::put`], written
//! with serde), validates the whole result exactly as `herald check-config` validates a file (an
//! invalid change is refused with its messages and changes nothing), stores it as the next
//! version with its audit entry in one transaction, and puts it into effect on this replica
//! (the others follow within `[server] config_poll_interval`).
//!
//! # Layout
//! - [`service`]: [`Changes`] and its steps, scopes;
//! - [`upstreams`]: [`UpstreamSettings`], upstreams and their attributes and mappings;
//! - [`clients`]: [`ClientSettings`], registering, changing and removing clients.
//! - [`guard`]: what only an admin may change (clients with Herald's own scopes, mappings to
//!   the role claim), checked by [`Changes::apply`] for everyone else.

pub mod clients;
pub mod guard;
pub mod scopes;
pub mod service;
pub mod upstreams;

pub use clients::{ClientSettings, Registered, Rotated, secret_grace};
pub use service::Changes;
pub(crate) use service::to_json;
pub use upstreams::{ClaimRules, Refused, UPSTREAM_SECRET_PREFIX, UpstreamSettings};
