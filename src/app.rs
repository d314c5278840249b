//! Startup: building the application from settings, binding, serving, shutting down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::clock::{Clock, SystemClock};
use crate::config::{LiveConfig, ManagedConfig, Settings, managed};
use crate::dev_upstream::DevProvider;
use crate::secret::Secret;
use crate::site::MetricsEndpoint;
use crate::state::{AppState, StateParts};
use crate::store::{self, ConfigVersion, DynStore, SqliteStore};
use crate::telemetry::metrics;
use crate::tokens;
use crate::tokens::keys::KeyEncryption;
use crate::web::binding::binding_cookie;
use crate::web::sessions::{RedisSessions, Sessions, StoreSessions};
use crate::{routes, server};

/// A built application: bound to its port (and to the admin port, when `[admin] listen` sets
/// one), ready to serve.
pub struct App {
    listener: TcpListener,
    router: Router,
    /// The admin surface on a listener of its own (checklist F74), when configured.
    admin: Option<(TcpListener, Router)>,
    pub state: AppState,
}

/// Options that tests and the CLI set beyond the configuration file.
pub struct BuildOptions {
    pub clock: Arc<dyn Clock>,
    /// Overrides `listen` (tests bind port 0).
    pub listen: Option<SocketAddr>,
    /// The key-encryption key; `None` reads `HERALD_KEY_ENCRYPTION_KEY`.
    pub kek: Option<KeyEncryption>,
    /// A listener bound beforehand (tests bind port 0, then put the port in the issuer).
    pub listener: Option<TcpListener>,
    /// The admin listener bound beforehand, for `[admin] listen` (tests bind port 0 and write
    /// the port into the file, so the admin pages know where they are).
    pub admin_listener: Option<TcpListener>,
    /// The configuration file's text. With it the store holds the managed configuration (seeded
    /// from this text on the first start) and every replica follows its changes; without it
    /// the settings given are used as they are.
    pub config_text: Option<String>,
    /// The admin API's bootstrap token; `None` reads `HERALD_ADMIN_TOKEN` (unset: no token).
    pub admin_token: Option<String>,
    /// The bearer token that may read `/metrics` from anywhere; `None` reads
    /// `HERALD_METRICS_TOKEN` (unset: loopback clients only).
    pub metrics_token: Option<String>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            listen: None,
            kek: None,
            listener: None,
            admin_listener: None,
            config_text: None,
            admin_token: None,
            metrics_token: None,
        }
    }
}

impl App {
    /// Builds Herald: binds its listeners, reaches the session store, opens (and migrates) the
    /// database, loads the configuration in effect and the signing keys. A start that fails
    /// leaves nothing behind: the listeners and the session store are tried before the
    /// database is touched, and an SQLite database this start created is removed.
    pub async fn build(settings: Settings, opts: BuildOptions) -> anyhow::Result<App> {
        let url = settings.database_url.clone();
        let fresh_sqlite = url.starts_with("sqlite:") && !SqliteStore::exists(&url);
        let built = Self::build_inner(settings, opts).await;
        if built.is_err() && fresh_sqlite && SqliteStore::exists(&url) {
            match SqliteStore::remove_files(&url) {
                Ok(()) => tracing::info!("removed the database this failed start created"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not remove the database this failed start created")
                }
            }
        }
        built
    }

    async fn build_inner(mut settings: Settings, opts: BuildOptions) -> anyhow::Result<App> {
        let kek = match opts.kek {
            Some(k) => k,
            None => key_encryption(&settings)?,
        };
        let listener = match opts.listener {
            Some(l) => l,
            None => {
                let listen = opts.listen.unwrap_or(settings.listen);
                TcpListener::bind(listen)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?
            }
        };
        let admin_listener =
            match (opts.admin_listener, settings.admin.listen) {
                (Some(l), _) => Some(l),
                (None, Some(listen)) => Some(TcpListener::bind(listen).await.map_err(|e| {
                    anyhow::anyhow!("cannot listen on {listen} ([admin] listen): {e}")
                })?),
                (None, None) => None,
            };
        let redis = match &settings.session_store {
            Some(url) => Some(RedisSessions::connect(url).await?),
            None => None,
        };
        let store = store::connect(&settings.database_url).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot open database {}: {e}",
                store::redact_url(&settings.database_url)
            )
        })?;
        let mut live = None;
        let mut config_version = 0;
        if let Some(text) = &opts.config_text {
            let (l, version, s) =
                live_settings(&*store, text, &settings, &kek, opts.clock.now()).await?;
            live = Some(Arc::new(l));
            config_version = version;
            settings = s;
        }
        let admin_token = opts
            .admin_token
            .or_else(|| std::env::var("HERALD_ADMIN_TOKEN").ok())
            .filter(|t| !t.is_empty())
            .map(|t| Arc::new(Secret::new(t)));
        let ring =
            tokens::keys::load_or_create(&*store, &kek, &settings.signing_algs(), opts.clock.now())
                .await?;
        let sessions = match redis.clone() {
            Some(redis) => Sessions::Redis(redis),
            None => Sessions::Store(StoreSessions::new(store.clone())),
        };

        let secure_cookies = settings.issuer.starts_with("https://");
        let session_ttl = settings.tokens.session_ttl;
        let state = AppState::new(StateParts {
            settings,
            store: store.clone(),
            keys: ring,
            clock: opts.clock,
            kek,
            live,
            config_version,
            admin_token,
            redis_sessions: redis,
        });
        let session_layer = SessionManagerLayer::new(sessions)
            .with_name("herald_session")
            .with_secure(secure_cookies)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
                session_ttl.as_secs() as i64,
            )));
        // The browser's binding, a cookie beside the session's ([`web::binding`]).
        let binding_layer = axum::middleware::from_fn_with_state(secure_cookies, binding_cookie);
        let metrics_token = opts
            .metrics_token
            .or_else(|| std::env::var("HERALD_METRICS_TOKEN").ok())
            .filter(|t| !t.is_empty())
            .map(|t| Arc::new(Secret::new(t)));
        let installed = metrics::install();
        metrics::initialise(state.settings().upstreams.iter().map(|u| u.id.as_str()));
        let metrics = MetricsEndpoint::new(
            installed,
            metrics_token,
            state.settings().limits.client_ip_header.clone(),
        );
        let separate_admin = admin_listener.is_some();
        let in_flight = routes::InFlight::new(state.settings().server.max_in_flight.get() as usize);
        let router = routes::public_router(
            state.clone(),
            Arc::new(DevProvider::new()?),
            !separate_admin,
            in_flight.clone(),
            metrics.clone(),
        )
        .layer(session_layer.clone())
        .layer(binding_layer.clone());
        let admin = admin_listener.map(|l| {
            let router = routes::admin_router(state.clone(), in_flight, metrics)
                .layer(session_layer)
                .layer(binding_layer);
            (l, router)
        });
        spawn_purger(store);
        state.spawn_reloaders();
        Ok(App {
            listener,
            router,
            admin,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The admin listener's address, when the admin surface has one of its own.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
            .as_ref()
            .map(|(l, _)| l.local_addr().expect("a bound listener has an address"))
    }

    /// Serves until `shutdown` completes, then shuts down within `[server] shutdown_timeout`
    /// (on both listeners when the admin surface has its own): not ready at once, accepting for
    /// `drain_delay`, then finishing in-flight requests ([`server`]).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let server_settings = self.state.settings().server.clone();
        let state = self.state.clone();
        let drain_delay = server_settings.drain_delay;
        tokio::spawn(async move {
            shutdown.await;
            state.begin_draining();
            tracing::info!(?drain_delay, "shutting down: /readyz now answers 503");
            tokio::time::sleep(drain_delay).await;
            let _ = stop.send(true);
        });
        let public = server::serve(
            self.listener,
            self.router,
            server_settings.clone(),
            stopped.clone(),
        );
        match self.admin {
            None => public.await,
            Some((listener, router)) => {
                let admin = server::serve(listener, router, server_settings, stopped);
                tokio::join!(public, admin);
            }
        }
    }
}

pub fn key_encryption(settings: &Settings) -> anyhow::Result<KeyEncryption> {
    match KeyEncryption::from_env().map_err(anyhow::Error::msg)? {
        Some(kek) => Ok(kek),
        None if settings.is_development_issuer() => {
            tracing::warn!(
                "HERALD_KEY_ENCRYPTION_KEY is not set: signing keys are stored UNENCRYPTED. \
                 This is allowed only because the issuer is a loopback http:// URL; create a key \
                 with `herald keys gen-kek`."
            );
            Ok(KeyEncryption::none())
        }
        None => anyhow::bail!(
            "HERALD_KEY_ENCRYPTION_KEY is not set. Private signing keys are encrypted at rest \
             with it; create one with `herald keys gen-kek` and export it."
        ),
    }
}

/// Removes expired rows every minute; failures are logged and retried on the next tick.
fn spawn_purger(store: DynStore) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            match store.purge_expired(SystemClock.now()).await {
                Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired rows"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
            }
        }
    });
}

/// Seeds the store from the file on the first start, then reads the latest configuration
/// version: from then on the store, not the file, says what the managed configuration is.
async fn live_settings(
    store: &dyn store::Store,
    text: &str,
    file_settings: &Settings,
    kek: &KeyEncryption,
    now: i64,
) -> anyhow::Result<(LiveConfig, i64, Settings)> {
    let (live, seed) = LiveConfig::from_file(text, file_settings)?;
    let live = live.with_kek(kek.clone());
    let first = ConfigVersion {
        version: 1,
        document: seed.to_toml(),
        created_at: now,
        author: managed::SEED_AUTHOR.into(),
    };
    if store.seed_config(&first).await? {
        tracing::info!(
            "stored the configuration file's upstreams, clients, scopes and tokens as \
             configuration version 1; from now on the database is the truth for them"
        );
    }
    let latest = store
        .latest_config()
        .await?
        .ok_or_else(|| anyhow::anyhow!("the stored configuration vanished"))?;
    let stored = ManagedConfig::parse(&latest.document)?;
    let mut mine = seed;
    mine.adopt_hashes(&stored, text);
    let same = mine == stored;
    let from_file = latest.version == 1 && same;
    if !same {
        tracing::warn!(
            version = latest.version,
            "configuration version {} from the database is in effect and differs from the \
             upstreams, clients, scopes or tokens in the configuration file: `herald config diff` \
             shows how, `herald config apply` stores the file's",
            latest.version
        );
    } else if !from_file {
        tracing::info!(
            version = latest.version,
            "configuration version {} from the database is in effect; it matches the file",
            latest.version
        );
    }
    let managed = stored;
    let (settings, warnings) = live.settings(&managed).map_err(|e| {
        anyhow::anyhow!(
            "the stored configuration version {} is not valid: {e}",
            latest.version
        )
    })?;
    // The file's own warnings were printed when it was loaded.
    if !from_file {
        for w in warnings {
            tracing::warn!("{w}");
        }
    }
    Ok((live, latest.version, settings))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
