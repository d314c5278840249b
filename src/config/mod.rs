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

mod file;
pub mod managed;
mod reserved;
mod settings;
mod validate;

pub use file::{
    AdminFile, ClientFile, ConfigFile, LimitsFile, OneOrMany, TokenFile, UpstreamFile, UpstreamKind,
};
pub use managed::{LiveConfig, ManagedConfig};
pub use reserved::{ACCOUNT_CLIENT_ID, ADMIN_SCOPE};
pub use settings::{
    AdminRole, AdminSettings, Client, ClientAuth, GrantType, LimitSettings, Settings,
    TokenSettings, Upstream, UpstreamEndpoint, is_loopback_host,
};

use std::path::Path;

/// Everything wrong with a configuration, one line per problem.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    pub fn single(problem: impl Into<String>) -> Self {
        Self {
            problems: vec![problem.into()],
        }
    }
}

/// Reads, parses and validates a configuration file.
///
/// Returns the settings together with the warnings worth printing (for example a development
/// upstream, or an attribute that needs JWT access tokens).
pub fn load(path: &Path) -> Result<(Settings, Vec<String>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::single(format!(
            "{}: cannot read the configuration file: {e}. Pass another file with --config PATH \
             or HERALD_CONFIG.",
            path.display()
        ))
    })?;
    from_toml(&text).map_err(|mut e| {
        for p in &mut e.problems {
            *p = format!("{}: {p}", path.display());
        }
        e
    })
}

/// Parses and validates configuration text. Relative SQLite paths are relative to the working
/// directory, like every other relative path a command is given.
pub fn from_toml(text: &str) -> Result<(Settings, Vec<String>), ConfigError> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::single(toml_error(&e)))?;
    validate::validate(file, &|name| std::env::var(name).ok())
}

fn toml_error(e: &toml::de::Error) -> String {
    // toml's own rendering names the line and column, quotes the line and says which keys are
    // allowed when one is unknown: exactly what a person fixing the file needs.
    e.to_string().trim_end().to_string()
}
