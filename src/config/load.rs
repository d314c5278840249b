//! Reading a configuration: the file or its text, parsed with unknown keys refused, then
//! validated into [`Settings`].

use std::path::Path;

use super::error::ConfigError;
use super::file::ConfigFile;
use super::settings::Settings;
use super::validate;

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
