//! What the commands share: loading the file, a runtime to block on, and the configuration in
//! effect (the database's once Herald has stored one).

use std::path::Path;

use crate::config;
use crate::store::Store;

pub fn load(path: &std::path::Path) -> Option<(config::Settings, Vec<String>)> {
    match config::load(path) {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("configuration error:");
            for p in &e.problems {
                eprintln!("  - {p}");
            }
            None
        }
    }
}

/// Runs `f` to completion on a runtime of its own; `None` (after saying why) when none starts.
pub fn block_on<T>(f: impl Future<Output = T>) -> Option<T> {
    match tokio::runtime::Runtime::new() {
        Ok(r) => Some(r.block_on(f)),
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            None
        }
    }
}

/// The settings a command works from, and a line saying where they came from.
///
/// From Herald's first start on, the database is the truth for upstreams, clients, scopes and
/// tokens: with a stored configuration, its latest version is used together with the file's
/// bootstrap keys (and the upstream secrets the file holds back), validated as Herald would.
/// The file alone is used only while `store` is `None` (no database yet) or holds no
/// configuration. A database that cannot be read is an error, never a quiet fall back to a file
/// that may no longer be in effect.
pub async fn settings_in_effect(
    path: &Path,
    file: config::Settings,
    store: Option<&dyn Store>,
) -> anyhow::Result<(config::Settings, String)> {
    let from_file = |why: &str| format!("using {} ({why})", path.display());
    let Some(store) = store else {
        return Ok((file, from_file("its database does not exist yet")));
    };
    let Some(latest) = store.latest_config().await? else {
        return Ok((file, from_file("the database holds no configuration yet")));
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let (live, _) = config::LiveConfig::from_file(&text, &file)?;
    let live = live.with_kek(
        crate::tokens::kek::KeyEncryption::from_env()
            .map_err(anyhow::Error::msg)?
            .unwrap_or_else(crate::tokens::kek::KeyEncryption::none),
    );
    let managed = config::ManagedConfig::parse(&latest.document)?;
    let (settings, _) = live.settings(&managed).map_err(|e| {
        anyhow::anyhow!(
            "the stored configuration version {} is not valid here: {e}",
            latest.version
        )
    })?;
    let source = format!(
        "using configuration version {} from the database (by {}, {}); its upstreams, clients, \
         scopes and tokens are in effect, not those in {}",
        latest.version,
        latest.author,
        crate::clock::rfc3339_utc(latest.created_at),
        path.display()
    );
    Ok((settings, source))
}

/// The file's settings, replaced by the database's configuration when it has one
/// ([`settings_in_effect`]); where they came from goes to stderr, so stdout stays data.
pub fn load_in_effect(path: &Path) -> Option<config::Settings> {
    let (file, _) = load(path)?;
    let found = block_on(async {
        let store = crate::store::connect_existing(&file.database_url)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the database {}: {e}",
                    crate::store::redact_url(&file.database_url)
                )
            })?;
        settings_in_effect(path, file, store.as_deref()).await
    })?;
    match found {
        Ok((settings, source)) => {
            eprintln!("herald: {source}");
            Some(settings)
        }
        Err(e) => {
            eprintln!("herald: {e:#}");
            None
        }
    }
}
