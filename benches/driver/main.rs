//! `bench-driver`: the load driver for flows that need state, used by `scripts/bench.sh`.
//!
//! wrk drives the stateless loads (discovery, client_credentials). What wrk cannot do lives here:
//! authorization codes are single use, so `mint-codes` stores fresh ones through Herald's public
//! store API and `exchange` spends one per `/token` request; `logins` runs whole brokered logins
//! (authorize, development upstream, callback, consent, code, token) with one cookie jar each;
//! `soak` repeats logins, refreshes, userinfo, revocations and logouts and checks every answer;
//! `seed` fills the store with a million rows of grants and tokens in bulk SQL.
//! Every command is bounded in time and prints one JSON line of results.

mod exchange;
mod logins;
mod seed;
mod soak;
mod stats;

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Herald benchmark load driver (see BENCHMARKS.md)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The client the load runs as (a confidential client in the benchmark configuration).
#[derive(Args, Clone)]
pub struct ClientArgs {
    /// Herald's issuer URL.
    #[arg(long)]
    pub base: String,
    #[arg(long, default_value = "bench")]
    pub client_id: String,
    #[arg(long, default_value = "bench-secret")]
    pub client_secret: String,
    #[arg(long, default_value = "http://127.0.0.1:9/cb")]
    pub redirect_uri: String,
    /// The authorization endpoint's path (oidc-provider: `/auth`).
    #[arg(long, default_value = "/authorize")]
    pub authorize_path: String,
}

#[derive(Args)]
pub struct LoadArgs {
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Also stop after this many completed operations.
    #[arg(long)]
    pub max: Option<u64>,
    /// Operations done one at a time before the timed run (first-use costs: the client secret's
    /// argon2 check, upstream discovery and JWKS), not counted.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// A path GET 100 times a second during the run (e.g. the discovery document), whose
    /// latency is reported separately.
    #[arg(long)]
    pub probe: Option<String>,
}

impl LoadArgs {
    pub fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_secs_f64(self.duration)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Stores N authorization codes (and one login context) for the client; writes the codes,
    /// one per line, to --out.
    MintCodes {
        #[arg(long)]
        database_url: String,
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        n: usize,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Redeems the codes of --codes at /token, one per request.
    Exchange {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        load: LoadArgs,
        #[arg(long)]
        codes: std::path::PathBuf,
    },
    /// Full brokered logins through the development upstream, each as a new user.
    Logins {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        load: LoadArgs,
        /// User names are `{prefix}{n}`; a new user always sees the consent page.
        #[arg(long, default_value = "bench-user-")]
        prefix: String,
        #[arg(long, default_value = "openid profile email groups")]
        scope: String,
    },
    /// Users log in, refresh, read userinfo, revoke and log out until --duration; counts 5xx
    /// answers and tokens refused that should have worked (scripts/soak.sh).
    Soak {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        load: LoadArgs,
        /// Refreshes (each followed by a userinfo call) per login.
        #[arg(long, default_value_t = 5)]
        refreshes: u32,
    },
    /// Inserts N rows each of users, grants, consumed codes and access tokens (bulk SQL).
    Seed {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        rows: u64,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let summary = match Cli::parse().command {
        Command::MintCodes {
            database_url,
            client,
            n,
            out,
        } => seed::mint_codes(&database_url, &client, n, &out).await?,
        Command::Exchange {
            client,
            load,
            codes,
        } => exchange::run(&client, &load, &codes).await?,
        Command::Logins {
            client,
            load,
            prefix,
            scope,
        } => logins::run(&client, &load, &prefix, &scope).await?,
        Command::Soak {
            client,
            load,
            refreshes,
        } => soak::run(&client, &load, refreshes).await?,
        Command::Seed { database_url, rows } => seed::seed(&database_url, rows).await?,
    };
    println!("{summary}");
    Ok(())
}

/// One HTTP client for the whole run: keep-alive, no redirects followed, no cookie store
/// (logins carry their own jar).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1024)
        // Below Node's 5 s keep-alive timeout (oidc-provider): a connection the server is
        // closing is not picked for the next request (seen as "connection reset by peer").
        .pool_idle_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a plain HTTP client builds")
}

/// GETs `url` every 10 ms until `deadline` or `stop`; the latencies of those requests.
pub async fn probe(
    http: reqwest::Client,
    url: String,
    deadline: tokio::time::Instant,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> stats::Samples {
    let mut samples = stats::Samples::default();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while tokio::time::Instant::now() < deadline && !stop.load(std::sync::atomic::Ordering::Relaxed)
    {
        tick.tick().await;
        let start = std::time::Instant::now();
        let ok = match http.get(&url).send().await {
            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        if ok {
            samples.record(start.elapsed());
        } else {
            samples.errors += 1;
        }
    }
    samples
}
