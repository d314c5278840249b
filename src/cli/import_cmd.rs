//! `herald import --upstream ID FILE` (JSON lines, one user's upstream-shaped claims each) and
//! `herald import --upstream ID --from-upstream` (an Auth0 tenant's users, through its
//! Management API): each user through the upstream's attributes and mappings with their merge
//! strategies (see [`crate::profiles`]). The report goes to stdout as JSON, the counts and a
//! progress bar to stderr; the exit status is 1 when any line failed.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use super::common::{block_on, load, settings_in_effect};
use crate::clock::Clock;
use crate::config::{Settings, Upstream};
use crate::profiles::management_api::{ManagementApi, PER_PAGE};
use crate::profiles::{self, ImportOptions, ImportReport, LineOutcome};
use crate::store::Store;

/// What `herald import` was asked to do.
pub struct ImportArgs {
    pub config: PathBuf,
    pub upstream: String,
    pub file: Option<PathBuf>,
    pub from_upstream: bool,
    pub options: ImportOptions,
}

pub fn import(args: ImportArgs) -> ExitCode {
    if args.file.is_some() == args.from_upstream {
        eprintln!("herald: give a JSON-lines FILE or --from-upstream (one of them)");
        return ExitCode::FAILURE;
    }
    let Some((file, _)) = load(&args.config) else {
        return ExitCode::FAILURE;
    };
    let outcome = block_on(async {
        let store = crate::store::connect(&file.database_url).await?;
        let (settings, source) = settings_in_effect(&args.config, file, Some(&*store)).await?;
        eprintln!("herald: {source}");
        let Some(up) = settings.upstream(&args.upstream) else {
            let ids: Vec<&str> = settings.upstreams.iter().map(|u| u.id.as_str()).collect();
            anyhow::bail!(
                "no upstream `{}` in the configuration in effect; its upstreams: {}",
                args.upstream,
                ids.join(", ")
            );
        };
        match &args.file {
            Some(path) => from_file(&*store, &settings, up, path, args.options).await,
            None => from_management_api(&*store, &settings, up, args.options).await,
        }
    });
    match outcome {
        Some(Ok(report)) => {
            eprintln!("herald: {}", report.summary());
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some(Err(e)) => {
            eprintln!("herald: import failed: {e:#}");
            ExitCode::FAILURE
        }
        None => ExitCode::FAILURE,
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
struct Progress {
    total: usize,
    shown: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        Self {
            total,
            shown: std::io::stderr().is_terminal(),
        }
    }

    fn at(&self, done: usize) {
        if !self.shown || self.total == 0 {
            return;
        }
        let width = 30;
        let filled = (done * width / self.total).min(width);
        eprint!(
            "\r[{}{}] {done}/{}",
            "#".repeat(filled),
            " ".repeat(width - filled),
            self.total
        );
        let _ = std::io::stderr().flush();
        if done >= self.total {
            eprintln!();
        }
    }
}

async fn one(
    store: &dyn Store,
    settings: &Settings,
    up: &Upstream,
    value: Result<Value, String>,
    options: ImportOptions,
) -> anyhow::Result<LineOutcome> {
    let now = crate::clock::SystemClock.now();
    Ok(match value {
        Ok(line) => profiles::import_line(store, settings, up, &line, options, now).await?,
        Err(why) => LineOutcome::Failed(why),
    })
}

async fn from_file(
    store: &dyn Store,
    settings: &Settings,
    up: &Upstream,
    path: &Path,
    options: ImportOptions,
) -> anyhow::Result<ImportReport> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l))
        .collect();
    let progress = Progress::new(lines.len());
    let mut report = ImportReport {
        dry_run: options.dry_run,
        ..ImportReport::default()
    };
    for (done, (number, line)) in lines.into_iter().enumerate() {
        let value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"));
        report.record(number, one(store, settings, up, value, options).await?);
        progress.at(done + 1);
    }
    Ok(report)
}

async fn from_management_api(
    store: &dyn Store,
    settings: &Settings,
    up: &Upstream,
    options: ImportOptions,
) -> anyhow::Result<ImportReport> {
    let api = ManagementApi::for_upstream(up).map_err(anyhow::Error::msg)?;
    let token = api.token().await.map_err(anyhow::Error::msg)?;
    let mut report = ImportReport {
        dry_run: options.dry_run,
        ..ImportReport::default()
    };
    let mut number = 0;
    let mut progress = None;
    for page in 0.. {
        let users = api.users(&token, page).await.map_err(anyhow::Error::msg)?;
        let progress =
            progress.get_or_insert_with(|| Progress::new(users.total.unwrap_or(0) as usize));
        let last = users.users.len() < PER_PAGE as usize;
        for user in users.users {
            number += 1;
            report.record(
                number,
                one(store, settings, up, Ok(Value::Object(user)), options).await?,
            );
            progress.at(number);
        }
        if last || users.total.is_some_and(|t| number as u64 >= t) {
            break;
        }
    }
    Ok(report)
}
