//! The `herald` command line: `serve`, `check-config`, `config diff|apply`, `export`, `lineage`,
//! `preview`, `keys`.

mod common;
mod config_cmd;
mod import_cmd;
mod upstream_cmd;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{App, BuildOptions, shutdown_signal};
use crate::clock::Clock;
use crate::config;
use crate::telemetry::traces::Traces;
use crate::tokens::keys::KeyEncryption;
use common::{block_on, load, load_in_effect, settings_in_effect};

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "An OpenID Connect identity-broker gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Herald.
    Serve {
        #[arg(long, env = "HERALD_CONFIG", default_value = "config/herald.toml")]
        config: PathBuf,
    },
    /// Validate the configuration and print the effective setup.
    CheckConfig {
        #[arg(long, env = "HERALD_CONFIG", default_value = "config/herald.toml")]
        config: PathBuf,
    },
    /// Check an upstream for real: its discovery document, its JWKS, and Herald's client
    /// credentials (a token request for a made-up code must be refused as invalid_grant, not
    /// invalid_client). Uses the configuration in effect, like `lineage`.
    CheckUpstream {
        /// The upstream's id.
        id: String,
        #[arg(long, env = "HERALD_CONFIG", default_value = "config/herald.toml")]
        config: PathBuf,
    },
    /// Print where every token claim comes from: upstream, source, claim, type, mapping, scope.
    /// Uses the configuration in effect: the database's once Herald has stored one, else the
    /// file's (stderr says which).
    Lineage {
        #[arg(long, env = "HERALD_CONFIG", default_value = "config/herald.toml")]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Map sample upstream claims and show the context and each token's claims, with warnings.
    /// Uses the configuration in effect, like `lineage`.
    Preview {
        #[arg(long, env = "HERALD_CONFIG", default_value = "config/herald.toml")]
        config: PathBuf,
        /// The upstream whose attributes and mappings apply; default: the first.
        #[arg(long)]
        upstream: Option<String>,
        /// A JSON file with sample ID-token claims.
        #[arg(long)]
        id_token: PathBuf,
        /// A JSON file with sample userinfo claims.
        #[arg(long)]
        userinfo: Option<PathBuf>,
        /// A JSON file with sample (JWT) access-token claims.
        #[arg(long)]
        access_token: Option<PathBuf>,
        /// Granted scopes, space separated; default: every scope.
        #[arg(long)]
        scopes: Option<String>,
    },
    /// Print the configuration in effect as TOML: the file's bootstrap keys and the managed
    /// part (upstreams, clients, scopes, tokens) from the database, which is the truth for it
    /// once Herald has started.
    Export {
        #[arg(long, env = "HERALD_CONFIG", default_value = "config/herald.toml")]
        config: PathBuf,
    },
    /// The configuration file against the version in effect in the database.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Import users' profiles through an upstream's attributes and mappings (with their merge
    /// strategies): from a JSON-lines FILE (one user's upstream-shaped claims per line), or
    /// with --from-upstream from an Auth0 tenant's Management API. Users are matched by
    /// identity, then by verified email when the upstream links by it.
    Import {
        #[arg(long, env = "HERALD_CONFIG", default_value = "config/herald.toml")]
        config: PathBuf,
        /// The upstream whose mappings apply (and, with --from-upstream, whose users).
        #[arg(long)]
        upstream: String,
        /// A JSON-lines file.
        file: Option<PathBuf>,
        /// Read the users from the upstream's Auth0 Management API.
        #[arg(long)]
        from_upstream: bool,
        /// Create users that match nobody.
        #[arg(long)]
        allow_create: bool,
        /// Report what would change; store nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Signing-key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print how the file's upstreams, clients, scopes and tokens differ from the version in
    /// effect (`-` the database's, `+` the file's).
    Diff {
        #[arg(long, env = "HERALD_CONFIG", default_value = "config/herald.toml")]
        config: PathBuf,
    },
    /// Store the file's upstreams, clients, scopes and tokens as the next configuration version
    /// (validated like check-config, audited, the diff printed); running replicas take it.
    Apply {
        #[arg(long, env = "HERALD_CONFIG", default_value = "config/herald.toml")]
        config: PathBuf,
        /// Print the diff and store nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new key-encryption key for HERALD_KEY_ENCRYPTION_KEY.
    GenKek,
    /// Publish a new signing key now; it signs after --activate-in, and the current key stays
    /// published until every token it signed has expired (token lifetimes from the configuration
    /// in effect, like `lineage`). Running replicas pick it up within seconds.
    Rotate {
        #[arg(long, env = "HERALD_CONFIG", default_value = "config/herald.toml")]
        config: PathBuf,
        /// RS256, ES256 or EdDSA.
        #[arg(long, default_value = "RS256")]
        alg: String,
        /// Seconds between publishing the new key and signing with it (at least the JWKS
        /// cache lifetime, 120 s, plus the reload interval).
        #[arg(long, default_value_t = crate::tokens::keys::DEFAULT_ACTIVATION_DELAY_SECS)]
        activate_in: i64,
    },
}

/// Whether logs are JSON: `HERALD_LOG_FORMAT`, else the `log_format` key of the file `serve`
/// runs with (read before the rest of the file, so its problems are logged in its format),
/// else text.
fn json_logs(cli: &Cli) -> bool {
    if let Ok(format) = std::env::var("HERALD_LOG_FORMAT")
        && !format.is_empty()
    {
        return format == "json";
    }
    let Command::Serve { config } = &cli.command else {
        return false;
    };
    std::fs::read_to_string(config)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|t| Some(t.get("log_format")?.as_str()? == "json"))
        .unwrap_or(false)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let traces = start_traces(&cli);
    init_logs(&cli, traces.as_ref());
    let code = run(cli);
    if let Some(t) = &traces {
        t.flush();
    }
    code
}

/// Logs to stderr as text or JSON, and to the OTLP collector as spans when traces are on.
fn init_logs(cli: &Cli, traces: Option<&Traces>) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "herald=info,tower_http=warn".into());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = if json_logs(cli) {
        // One JSON object per line: timestamp, level, target, the event's fields (message
        // among them) and the spans it is in, the request's first (request_id, route, method).
        fmt.json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .boxed()
    } else {
        fmt.with_ansi(std::io::stderr().is_terminal()).boxed()
    };
    tracing_subscriber::registry()
        .with(fmt)
        .with(traces.map(|t| t.layer()))
        .with(filter)
        .init();
}

/// Traces over OTLP when the file `serve` runs with sets `[telemetry] otlp_endpoint`.
fn start_traces(cli: &Cli) -> Option<Traces> {
    let Command::Serve { config } = &cli.command else {
        return None;
    };
    let file: toml::Table = std::fs::read_to_string(config).ok()?.parse().ok()?;
    let telemetry = file.get("telemetry")?;
    let endpoint = telemetry.get("otlp_endpoint")?.as_str()?;
    let service = telemetry
        .get("service_name")
        .and_then(|v| v.as_str())
        .unwrap_or("herald");
    match Traces::start(endpoint, service) {
        Ok(t) => Some(t),
        Err(e) => {
            eprintln!("herald: traces are off: {e}");
            None
        }
    }
}

fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::CheckConfig { config } => config_cmd::check_config(config),
        Command::Lineage { config, json } => lineage(config, json),
        Command::Preview {
            config,
            upstream,
            id_token,
            userinfo,
            access_token,
            scopes,
        } => preview(config, upstream, id_token, userinfo, access_token, scopes),
        Command::Export { config } => export(config),
        Command::CheckUpstream { id, config } => upstream_cmd::check_upstream(config, &id),
        Command::Config {
            command: ConfigCommand::Diff { config },
        } => config_command(&config, |path, text, file| async move {
            config_cmd::diff(&path, &text, file).await
        }),
        Command::Config {
            command: ConfigCommand::Apply { config, dry_run },
        } => config_command(&config, move |path, text, file| async move {
            let now = crate::clock::SystemClock.now();
            config_cmd::apply(&path, &text, file, now, dry_run).await
        }),
        Command::Import {
            config,
            upstream,
            file,
            from_upstream,
            allow_create,
            dry_run,
        } => import_cmd::import(import_cmd::ImportArgs {
            config,
            upstream,
            file,
            from_upstream,
            options: crate::profiles::ImportOptions {
                allow_create,
                dry_run,
            },
        }),
        Command::Keys {
            command: KeysCommand::GenKek,
        } => {
            println!("{}", KeyEncryption::generate_base64());
            ExitCode::SUCCESS
        }
        Command::Keys {
            command:
                KeysCommand::Rotate {
                    config,
                    alg,
                    activate_in,
                },
        } => rotate_keys(config, &alg, activate_in),
    }
}

/// Runs a `config` subcommand: the file loaded and validated, then `run` on a runtime.
fn config_command<F, Fut>(path: &Path, run: F) -> ExitCode
where
    F: FnOnce(PathBuf, String, config::Settings) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let Some((file, _)) = load(path) else {
        return ExitCode::FAILURE;
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("herald: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    match block_on(run(path.to_path_buf(), text, file)) {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("herald: {e:#}");
            ExitCode::FAILURE
        }
        None => ExitCode::FAILURE,
    }
}

fn lineage(path: PathBuf, json: bool) -> ExitCode {
    let Some(s) = load_in_effect(&path) else {
        return ExitCode::FAILURE;
    };
    let rows = s.lineage();
    if json {
        match serde_json::to_string_pretty(&rows) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("herald: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", crate::claims::render_lineage_table(&rows));
    }
    ExitCode::SUCCESS
}

fn read_claims(
    path: &std::path::Path,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a JSON object of claims: {e}", path.display()))
}

fn preview(
    path: PathBuf,
    upstream: Option<String>,
    id_token: PathBuf,
    userinfo: Option<PathBuf>,
    access_token: Option<PathBuf>,
    scopes: Option<String>,
) -> ExitCode {
    let Some(s) = load_in_effect(&path) else {
        return ExitCode::FAILURE;
    };
    let up = match upstream.as_deref() {
        Some(id) => s.upstream(id),
        None => s.upstreams.first(),
    };
    let Some(up) = up else {
        eprintln!(
            "herald: no upstream `{}` in the configuration in effect",
            upstream.unwrap_or_default()
        );
        return ExitCode::FAILURE;
    };
    let claims = (|| -> Result<crate::claims::UpstreamClaims, String> {
        Ok(crate::claims::UpstreamClaims {
            id_token: read_claims(&id_token)?,
            userinfo: userinfo.as_deref().map(read_claims).transpose()?,
            access_token: match access_token.as_deref() {
                Some(p) => crate::claims::AccessTokenClaims::Jwt(read_claims(p)?),
                None => crate::claims::AccessTokenClaims::Absent,
            },
        })
    })();
    let claims = match claims {
        Ok(c) => c,
        Err(e) => {
            eprintln!("herald: {e}");
            return ExitCode::FAILURE;
        }
    };
    let scopes: Vec<String> = match scopes {
        Some(list) => list.split_whitespace().map(str::to_string).collect(),
        None => s.scopes.names().cloned().collect(),
    };
    let result = crate::claims::preview(&up.id, &up.mapping, &s.scopes, &claims, None, &scopes);
    match serde_json::to_string_pretty(&result) {
        Ok(j) => println!("{j}"),
        Err(e) => {
            eprintln!("herald: {e}");
            return ExitCode::FAILURE;
        }
    }
    if result.error.is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn rotate_keys(path: PathBuf, alg: &str, activate_in: i64) -> ExitCode {
    let Some((file, _)) = load(&path) else {
        return ExitCode::FAILURE;
    };
    let Some(alg) = crate::tokens::Alg::parse(alg) else {
        eprintln!("herald: --alg must be RS256, ES256 or EdDSA");
        return ExitCode::FAILURE;
    };
    let outcome = block_on(async {
        let result = async {
            let kek = crate::app::key_encryption(&file)?;
            let store = crate::store::connect(&file.database_url).await?;
            // The token lifetimes below are managed: the database's, once it has them.
            let (settings, source) = settings_in_effect(&path, file, Some(&*store)).await?;
            eprintln!("herald: {source}");
            let now = crate::clock::SystemClock.now();
            let keep_for = settings.tokens.retired_key_lifetime();
            crate::tokens::keys::rotate(&*store, &kek, alg, now, activate_in, keep_for).await
        }
        .await;
        match result {
            Ok(r) => {
                println!(
                    "published {} key {}; it signs from {} (unix time, in {} s)",
                    alg.as_str(),
                    r.new_kid,
                    r.activates_at,
                    activate_in
                );
                for (kid, until) in r.retired {
                    println!("key {kid} stops signing then and leaves the JWKS at {until}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("herald: key rotation failed: {e:#}");
                ExitCode::FAILURE
            }
        }
    });
    outcome.unwrap_or(ExitCode::FAILURE)
}

fn export(path: PathBuf) -> ExitCode {
    let Some((settings, _)) = load(&path) else {
        return ExitCode::FAILURE;
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("herald: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let result = async {
            let (live, _) = config::LiveConfig::from_file(&text, &settings)?;
            let store = crate::store::connect(&settings.database_url).await?;
            let Some(latest) = store.latest_config().await? else {
                anyhow::bail!(
                    "the database holds no configuration yet; Herald stores the file's on its \
                     first start, until then {} is the truth",
                    path.display()
                );
            };
            let managed = config::ManagedConfig::parse(&latest.document)?;
            Ok((live, latest, managed))
        }
        .await;
        match result {
            Ok((live, latest, managed)) => {
                println!(
                    "# Herald configuration version {}, by {}, exported from the database.",
                    latest.version, latest.author
                );
                println!("# Client secrets appear only as client_secret_hash.");
                for id in live.held_back_upstream_secrets() {
                    println!(
                        "# The client_secret of upstream `{id}` stays in {} and is not shown.",
                        path.display()
                    );
                }
                print!("{}", live.merged(&managed, false));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("herald: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}

fn serve(path: PathBuf) -> ExitCode {
    let Some((settings, warnings)) = load(&path) else {
        return ExitCode::FAILURE;
    };
    for w in warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let issuer = settings.issuer.clone();
        let config_text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("herald: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        };
        let opts = BuildOptions {
            config_text: Some(config_text),
            ..BuildOptions::default()
        };
        let app = match App::build(settings, opts).await {
            Ok(a) => a,
            Err(e) => {
                eprintln!("herald: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(addr = %app.local_addr(), %issuer, "Herald is listening; open {issuer}/ in a browser");
        if let Some(admin) = app.admin_addr() {
            tracing::info!(addr = %admin, "the admin API and pages listen only on {admin}");
        }
        app.run(shutdown_signal()).await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    });
    // Connections still open after `shutdown_timeout` are abandoned with their tasks; only a
    // blocking task already running (one password hash) is waited for, briefly.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
