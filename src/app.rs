//! Startup: building the application from settings, binding, serving, shutting down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use tokio::net::TcpListener;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::config::Settings;
use crate::store::{self, DynStore};
use crate::tokens::keys::{KeyEncryption, KeyRing};
use crate::upstream::UpstreamClients;
use crate::upstream::dev::DevProvider;
use crate::web::sessions::{RedisSessions, Sessions, StoreSessions};
use crate::{provider, tokens};

/// Where time comes from, so expiry is tested without sleeping.
pub trait Clock: Send + Sync + 'static {
    /// Unix seconds, UTC.
    fn now(&self) -> i64;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}

/// A clock tests move by hand: real time plus an offset.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: AtomicI64,
}

impl OffsetClock {
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> i64 {
        SystemClock.now() + self.offset.load(Ordering::SeqCst)
    }
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    settings: Arc<ArcSwap<Settings>>,
    pub store: DynStore,
    keys: Arc<ArcSwap<KeyRing>>,
    pub upstreams: Arc<UpstreamClients>,
    pub dev: Arc<DevProvider>,
    pub secret_cache: Arc<provider::client_auth::SecretCache>,
    pub clock: Arc<dyn Clock>,
    kek: Arc<KeyEncryption>,
}

impl AppState {
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Swaps in new settings; requests already running keep the ones they loaded.
    pub fn replace_settings(&self, settings: Settings) {
        self.settings.store(Arc::new(settings));
    }

    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys.load_full()
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Re-reads the signing keys from the store, so a rotation done by any replica (or by
    /// `herald keys rotate`) is published and used here too. Runs every
    /// [`KEY_RELOAD_SECS`](tokens::keys::KEY_RELOAD_SECS); tests call it directly.
    pub async fn reload_keys(&self) -> anyhow::Result<()> {
        // Creates a key for an algorithm a client newly asks for (a configuration change).
        let algs = self.settings().signing_algs();
        let ring = tokens::keys::load_or_create(&*self.store, &self.kek, &algs, self.now()).await?;
        self.keys.store(Arc::new(ring));
        Ok(())
    }
}

/// A built application: bound to its port, ready to serve.
pub struct App {
    listener: TcpListener,
    router: Router,
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
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            listen: None,
            kek: None,
            listener: None,
        }
    }
}

impl App {
    pub async fn build(settings: Settings, opts: BuildOptions) -> anyhow::Result<App> {
        let kek = match opts.kek {
            Some(k) => k,
            None => key_encryption(&settings)?,
        };
        let store = store::connect(&settings.database_url).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot open database {}: {e}",
                store::redact_url(&settings.database_url)
            )
        })?;
        let ring =
            tokens::keys::load_or_create(&*store, &kek, &settings.signing_algs(), opts.clock.now())
                .await?;
        let sessions = match &settings.session_store {
            Some(url) => Sessions::Redis(RedisSessions::connect(url).await?),
            None => Sessions::Store(StoreSessions::new(store.clone())),
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

        let secure_cookies = settings.issuer.starts_with("https://");
        let session_ttl = settings.tokens.session_ttl;
        let state = AppState {
            settings: Arc::new(ArcSwap::from_pointee(settings)),
            store: store.clone(),
            keys: Arc::new(ArcSwap::from_pointee(ring)),
            upstreams: Arc::new(UpstreamClients::new()),
            dev: Arc::new(DevProvider::new()?),
            secret_cache: Arc::new(Default::default()),
            clock: opts.clock,
            kek: Arc::new(kek),
        };
        let session_layer = SessionManagerLayer::new(sessions)
            .with_name("herald_session")
            .with_secure(secure_cookies)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_expiry(Expiry::OnInactivity(time::Duration::seconds(
                session_ttl.as_secs() as i64,
            )));
        let router = crate::web::router(state.clone()).layer(session_layer);
        spawn_purger(store);
        spawn_key_reloader(state.clone());
        Ok(App {
            listener,
            router,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then drains in-flight requests.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}

pub fn key_encryption(settings: &Settings) -> anyhow::Result<KeyEncryption> {
    match std::env::var("HERALD_KEY_ENCRYPTION_KEY") {
        Ok(v) if !v.is_empty() => KeyEncryption::from_base64(&v).map_err(anyhow::Error::msg),
        _ if settings.is_development_issuer() => {
            tracing::warn!(
                "HERALD_KEY_ENCRYPTION_KEY is not set: signing keys are stored UNENCRYPTED. \
                 This is allowed only because the issuer is a loopback http:// URL; create a key \
                 with `herald keys gen-kek`."
            );
            Ok(KeyEncryption::none())
        }
        _ => anyhow::bail!(
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

/// Keeps this replica's keys in step with the store; failures are logged and retried.
fn spawn_key_reloader(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(tokens::keys::KEY_RELOAD_SECS));
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = state.reload_keys().await {
                tracing::warn!(error = %e, "reloading signing keys failed; keeping the current ones");
            }
        }
    });
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
    tracing::info!("shutting down: draining in-flight requests");
}
