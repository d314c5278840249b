//! Configuration: the TOML file Herald boots from, and its validation into [`Settings`].
//!
//! The file is parsed with unknown keys refused (`deny_unknown_fields`), then every value is
//! checked ([`validate`]) and turned into the runtime model in [`settings`]. Each problem is
//! reported with the key it concerns, what is wrong and how to fix it, so `herald check-config`
//! can print them all at once instead of failing on the first.
//!
//! # Layout
//! - [`file`]: the file's shape; its upstream and client entries are also the managed
//!   document's, written with serde.
//! - [`managed`]: the managed part kept in the store as versioned documents, with typed access
//!   to its entries.
//! - [`validate`]: every check, for the top-level keys, each upstream and each client.
//! - [`settings`]: the validated runtime model.
//! - [`reserved`]: names Herald keeps for itself (`herald-account`, `herald:admin`).
//! - [`load`]: reading a file or its text into settings; [`error`]: what is wrong with one.

mod error;
mod file;
mod load;
pub mod managed;
pub mod policy;
mod reserved;
mod roles;
mod settings;
pub mod upstream_secret;
mod validate;

pub use error::ConfigError;
pub use file::{
    AdminFile, ClientFile, ConfigFile, LimitsFile, OneOrMany, TokenFile, UpstreamFile, UpstreamKind,
};
pub use load::{from_toml, load};
pub use managed::{LiveConfig, ManagedConfig};
pub use reserved::{ACCOUNT_CLIENT_ID, ACCOUNT_LINK_SCOPE};
pub use roles::{ADMIN_SCOPE, AdminRoles, EDIT_SCOPE, Permission, READ_SCOPE, Role, RoleSet};
pub use settings::{
    AdminSettings, Client, ClientAuth, ClientLinks, EVENT_TYPES, GrantType, Hook, LimitSettings,
    OutboxSettings, PostLogin, PreviousSecret, Resource, SecretSource, ServerSettings, Settings,
    TokenSettings, Upstream, UpstreamEndpoint, Webhook, WhenUnavailable, is_loopback_host,
};
