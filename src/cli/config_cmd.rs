//! `herald check-config`, `herald config diff` and `herald config apply`: the configuration file against the version in
//! effect in the database, and the file stored as the next version (validated like
//! `check-config`, audited, with the diff printed). `check-config` and `serve` say when the two
//! differ ([`file_against_database`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use similar::{ChangeTag, TextDiff};

use crate::config::{self, LiveConfig, ManagedConfig};
use crate::store::{AuditEntry, ConfigVersion, Removal, Store};

/// Who `config apply` names in the configuration version and the audit log.
const AUTHOR: &str = "cli:config-apply";

/// The file's managed part (upstreams, clients, scopes, tokens) against the latest stored
/// version.
pub struct Comparison {
    /// The latest stored version, if the database holds one, and its document parsed.
    pub latest: Option<(ConfigVersion, ManagedConfig)>,
    /// The file's managed part, as it would be stored.
    pub file: ManagedConfig,
    pub live: LiveConfig,
}

impl Comparison {
    pub async fn of(
        text: &str,
        file: &config::Settings,
        store: &dyn Store,
    ) -> anyhow::Result<Self> {
        let (live, mut seed) = LiveConfig::from_file(text, file)?;
        let live = live.with_kek(
            crate::tokens::kek::KeyEncryption::from_env()
                .map_err(anyhow::Error::msg)?
                .unwrap_or_else(crate::tokens::kek::KeyEncryption::none),
        );
        let latest = match store.latest_config().await? {
            Some(l) => {
                let stored = ManagedConfig::parse(&l.document)?;
                seed.adopt_hashes(&stored, text);
                Some((l, stored))
            }
            None => None,
        };
        Ok(Self {
            latest,
            file: seed,
            live,
        })
    }

    pub fn differs(&self) -> bool {
        self.latest
            .as_ref()
            .is_some_and(|(_, stored)| *stored != self.file)
    }

    /// A unified diff from the stored version to the file (`-` stored, `+` file); empty when
    /// they are the same.
    pub fn diff(&self) -> String {
        let stored = self
            .latest
            .as_ref()
            .map_or("", |(l, _)| l.document.as_str());
        let file = self.file.to_toml();
        let diff = TextDiff::from_lines(stored, &file);
        let mut out = String::new();
        for group in diff.grouped_ops(2) {
            for op in group {
                for change in diff.iter_changes(&op) {
                    let sign = match change.tag() {
                        ChangeTag::Delete => '-',
                        ChangeTag::Insert => '+',
                        ChangeTag::Equal => ' ',
                    };
                    out.push(sign);
                    out.push_str(change.value());
                    if change.missing_newline() {
                        out.push('\n');
                    }
                }
            }
            out.push_str("@@\n");
        }
        out
    }

    /// One line for `check-config` and `config diff`: whether the database's version is the file's.
    pub fn summary(&self, path: &Path) -> String {
        match &self.latest {
            None => format!(
                "the database holds no configuration yet; {} is stored as version 1 on the first start",
                path.display()
            ),
            Some((l, _)) if self.differs() => format!(
                "the database's configuration version {} (by {}, {}) is in effect and DIFFERS \
                 from the upstreams, clients, scopes or tokens in {}: `herald config diff` \
                 shows how, `herald config apply` stores the file's",
                l.version,
                l.author,
                crate::clock::rfc3339_utc(l.created_at),
                path.display()
            ),
            Some((l, _)) => format!(
                "the database's configuration version {} matches {}",
                l.version,
                path.display()
            ),
        }
    }
}

/// `herald config diff`: prints the diff; exit 0 whether or not they differ.
pub async fn diff(path: &Path, text: &str, file: config::Settings) -> anyhow::Result<()> {
    let store = crate::store::connect_existing(&file.database_url)
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the database does not exist yet; {} is what a first start stores",
                path.display()
            )
        })?;
    let c = Comparison::of(text, &file, &*store).await?;
    eprintln!("herald: {}", c.summary(path));
    print!("{}", c.diff());
    Ok(())
}

/// `herald config apply`: stores the file's managed part as the next version, with the diff
/// printed and an audit entry; what the file removed (clients, upstreams) is ended as the admin
/// API would. `dry_run` prints the diff only.
pub async fn apply(
    path: &Path,
    text: &str,
    file: config::Settings,
    now: i64,
    dry_run: bool,
) -> anyhow::Result<()> {
    let store = crate::store::connect(&file.database_url).await?;
    let c = Comparison::of(text, &file, &*store).await?;
    // Valid as a whole, exactly as a replica will read it.
    c.live
        .settings(&c.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let Some((latest, stored)) = &c.latest else {
        if dry_run {
            println!("dry run: the database holds no configuration; the file would be version 1");
            return Ok(());
        }
        let first = ConfigVersion {
            version: 1,
            document: c.file.to_toml(),
            created_at: now,
            author: AUTHOR.into(),
        };
        store.seed_config(&first).await?;
        println!("stored {} as configuration version 1", path.display());
        return Ok(());
    };
    if !c.differs() {
        println!(
            "nothing to apply: {} matches configuration version {}",
            path.display(),
            latest.version
        );
        return Ok(());
    }
    print!("{}", c.diff());
    if dry_run {
        println!("dry run: nothing stored");
        return Ok(());
    }
    let removals = removals(stored, &c.file, &file, now);
    let version = latest.version + 1;
    store
        .save_config(
            &ConfigVersion {
                version,
                document: c.file.to_toml(),
                created_at: now,
                author: AUTHOR.into(),
            },
            &AuditEntry {
                id: 0,
                at: now,
                actor: AUTHOR.into(),
                action: "config.apply".into(),
                target: "configuration".into(),
                before: Some(serde_json::json!({ "version": latest.version }).to_string()),
                after: Some(serde_json::json!({ "version": version, "file": path.display().to_string() }).to_string()),
                config_version: Some(version),
            },
            &removals,
        )
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => anyhow::anyhow!(
                "another change stored version {version} meanwhile; run `herald config diff` and apply again"
            ),
            e => e.into(),
        })?;
    println!(
        "stored {} as configuration version {version}; running replicas take it within their config_poll_interval",
        path.display()
    );
    Ok(())
}

/// The clients and upstreams in `stored` that `file` no longer has.
fn removals(
    stored: &ManagedConfig,
    file: &ManagedConfig,
    settings: &config::Settings,
    now: i64,
) -> Vec<Removal> {
    let ids = |m: &ManagedConfig, array: &str, key: &str| -> Vec<String> {
        m.table()
            .get(array)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.get(key)?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let gone = |array: &str, key: &str| -> Vec<String> {
        let kept = ids(file, array, key);
        ids(stored, array, key)
            .into_iter()
            .filter(|id| !kept.contains(id))
            .collect()
    };
    let mut out: Vec<Removal> = gone("clients", "client_id")
        .into_iter()
        .map(|client_id| Removal::Client {
            client_id,
            withdrawal: crate::consent::client_removal(settings, now),
        })
        .collect();
    out.extend(
        gone("upstreams", "id")
            .into_iter()
            .map(|upstream_id| Removal::Upstream {
                upstream_id,
                logouts: crate::outbox::backchannel::logouts(settings, now),
            }),
    );
    out
}

pub fn check_config(path: PathBuf) -> ExitCode {
    let Some((s, warnings)) = super::common::load(&path) else {
        return ExitCode::FAILURE;
    };
    println!("{}: OK", path.display());
    println!("issuer:       {}", s.issuer);
    println!("listen:       {}", s.listen);
    println!(
        "database:     {}",
        crate::store::redact_url(&s.database_url)
    );
    println!("upstreams:");
    for u in &s.upstreams {
        println!(
            "  - {} ({:?}) issuer {} callback {} userinfo={} attributes={} mappings={}",
            u.id,
            u.kind,
            u.endpoint.issuer,
            s.callback_url(&u.id),
            u.userinfo,
            u.mapping.attributes.len(),
            u.mapping.mappings.len()
        );
    }
    println!("clients:");
    let mut clients: Vec<_> = s.clients.values().collect();
    clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    for c in clients {
        println!(
            "  - {} ({}) {} trusted={} scopes=[{}] redirect_uris=[{}]",
            c.client_id,
            c.client_name,
            if c.is_public() {
                "public, PKCE required"
            } else {
                "confidential"
            },
            c.trusted,
            c.scopes.join(" "),
            c.redirect_uris.join(" ")
        );
    }
    println!(
        "scopes:       {}",
        s.scopes.names().cloned().collect::<Vec<_>>().join(" ")
    );
    for w in warnings {
        println!("warning: {w}");
    }
    println!(
        "configuration in the database: {}",
        database_note(&path, &s)
    );
    ExitCode::SUCCESS
}

/// Whether the database holds a configuration version that differs from the file; a database
/// that cannot be read is reported, not fatal (the file itself is valid).
fn database_note(path: &Path, s: &config::Settings) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let note = super::common::block_on(async {
        let Some(store) = crate::store::connect_existing(&s.database_url).await? else {
            return Ok::<_, anyhow::Error>("none yet (the database does not exist)".to_string());
        };
        let c = Comparison::of(&text, s, &*store).await?;
        Ok(c.summary(path))
    });
    match note {
        Some(Ok(n)) => n,
        Some(Err(e)) => format!("not checked: the database cannot be read ({e})"),
        None => "not checked".into(),
    }
}
