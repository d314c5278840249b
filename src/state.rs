//! The state every handler shares ([`AppState`]): the settings in effect, the store, the
//! signing keys, the upstream clients, the caches and the clock; and how a replica keeps its
//! settings and keys in step with the store. It imports no handler: handlers import it.

use crate::web::sessions::RedisSessions;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use arc_swap::ArcSwap;

use crate::clock::Clock;
use crate::config::{LiveConfig, ManagedConfig, Settings};
use crate::outbox::deliver::Deliverer;
use crate::secret::Secret;
use crate::store::{DynStore, LoginEvent};
use crate::tokens;
use crate::tokens::keys::{KeyEncryption, KeyRing};
use crate::tokens::secret_cache::SecretCache;
use crate::upstream::UpstreamClients;

/// What [`AppState::new`] is built from (see `App::build`).
pub struct StateParts {
    pub settings: Settings,
    pub store: DynStore,
    pub keys: KeyRing,
    pub clock: Arc<dyn Clock>,
    pub kek: KeyEncryption,
    pub live: Option<Arc<LiveConfig>>,
    pub config_version: i64,
    pub admin_token: Option<Arc<Secret>>,
    /// The Redis session store, when sessions live there (erasure deletes a user's sessions).
    pub redis_sessions: Option<RedisSessions>,
}

/// Shared by every handler; cheap to clone: one reference count, since axum clones it for
/// every extractor and layer of every request. Its parts are [`Shared`]'s, read through it.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What an [`AppState`] holds.
pub struct Shared {
    settings: ArcSwap<Settings>,
    pub store: DynStore,
    keys: ArcSwap<KeyRing>,
    pub upstreams: UpstreamClients,
    pub secret_cache: SecretCache,
    pub clock: Arc<dyn Clock>,
    kek: KeyEncryption,
    /// How managed documents from the store become settings; `None`: the file is the truth
    /// (tests that build settings by hand).
    live: Option<Arc<LiveConfig>>,
    /// The configuration version in effect here (0 without live configuration).
    config_version: AtomicI64,
    /// Held while a version and its settings are put into effect together, so an admin write
    /// and the poller racing on this replica cannot leave one version's number with another's
    /// settings.
    applying: std::sync::Mutex<()>,
    /// `HERALD_ADMIN_TOKEN`: the bootstrap credential of the admin API, if set.
    pub admin_token: Option<Arc<Secret>>,
    /// Set once shutdown begins: `/readyz` then answers 503.
    draining: AtomicBool,
    /// Browser sessions kept in Redis, if they are (those in the database go with the user).
    pub redis_sessions: Option<RedisSessions>,
    /// One permit per core this process may run on: RSA signatures in flight at once.
    pub rsa_signers: tokio::sync::Semaphore,
}

impl AppState {
    pub fn new(parts: StateParts) -> AppState {
        AppState(Arc::new(Shared {
            settings: ArcSwap::from_pointee(parts.settings),
            store: parts.store,
            keys: ArcSwap::from_pointee(parts.keys),
            upstreams: UpstreamClients::new(),
            secret_cache: SecretCache::default(),
            clock: parts.clock,
            kek: parts.kek,
            live: parts.live,
            config_version: AtomicI64::new(parts.config_version),
            applying: std::sync::Mutex::new(()),
            admin_token: parts.admin_token,
            draining: AtomicBool::new(false),
            redis_sessions: parts.redis_sessions,
            rsa_signers: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            ),
        }))
    }

    /// Marks this replica as shutting down: from now on it is not ready.
    pub fn begin_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Starts the loops that keep this replica's keys and settings in step with the store.
    pub fn spawn_reloaders(&self) {
        spawn_key_reloader(self.clone());
        spawn_config_reloader(self.clone());
        spawn_outbox(self.clone());
    }

    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Swaps in new settings; requests already running keep the ones they loaded.
    pub fn replace_settings(&self, settings: Settings) {
        self.settings.store(Arc::new(settings));
    }

    /// Records a login or refusal off the request's path: the page or redirect does not wait
    /// for it, and a store that fails is logged, never the user's problem. (A successful login
    /// is recorded in its own transaction instead.)
    pub fn record_login_event(&self, event: LoginEvent) {
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.record_login_event(&event).await {
                tracing::warn!(error = %e, result = %event.result, "recording a login event failed");
            }
        });
    }

    /// The key-encryption key: private keys and typed upstream secrets are sealed with it.
    pub fn kek(&self) -> &KeyEncryption {
        &self.kek
    }

    /// The live configuration, when the store holds the managed configuration.
    pub fn live_config(&self) -> Option<&LiveConfig> {
        self.live.as_deref()
    }

    /// The configuration version these settings came from.
    pub fn config_version(&self) -> i64 {
        self.config_version.load(Ordering::SeqCst)
    }

    /// Puts a newer configuration version into effect here (never an older one: a poll that
    /// raced an admin write on this replica must not undo it).
    pub fn apply_config(&self, version: i64, settings: Settings) {
        let _applying = self
            .applying
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.config_version.load(Ordering::SeqCst);
        if version <= current {
            return;
        }
        self.replace_settings(settings);
        self.config_version.store(version, Ordering::SeqCst);
        // An upstream's issuer may have changed: discover again.
        self.upstreams.forget_discovery();
        tracing::info!(version, "configuration version {version} is in effect");
    }

    /// Reads the latest configuration version and puts it into effect when it is newer. Runs
    /// every `[server] config_poll_interval`; tests call it directly. A stored version this replica cannot
    /// validate (say, an environment variable it lacks) is logged and skipped.
    pub async fn reload_config(&self) -> anyhow::Result<()> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        let Some(latest) = self.store.latest_config_version().await? else {
            return Ok(());
        };
        if latest <= self.config_version() {
            return Ok(());
        }
        let Some(doc) = self.store.latest_config().await? else {
            return Ok(());
        };
        let managed = ManagedConfig::parse(&doc.document)?;
        let (settings, _) = live.settings(&managed).map_err(|e| {
            anyhow::anyhow!(
                "configuration version {} is not valid here: {e}",
                doc.version
            )
        })?;
        self.apply_config(doc.version, settings);
        Ok(())
    }

    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys.load_full()
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Publishes a new signing key of `alg` that signs `delay` seconds from now (the keys it
    /// replaces stop then and stay published while tokens they signed live), and publishes it
    /// on this replica at once; the others reload it within `key_reload_interval`.
    pub async fn rotate_keys(
        &self,
        alg: tokens::Alg,
        delay: i64,
    ) -> anyhow::Result<tokens::keys::Rotation> {
        let keep_for = self.settings().tokens.retired_key_lifetime();
        let now = self.now();
        let rotation =
            tokens::keys::rotate(&*self.store, &self.kek, alg, now, delay, keep_for).await?;
        if let Err(e) = self.reload_keys().await {
            tracing::warn!(error = %e, "reloading keys after a rotation failed; the reloader will retry");
        }
        Ok(rotation)
    }

    /// Re-reads the signing keys from the store, so a rotation done by any replica (or by
    /// `herald keys rotate`) is published and used here too. Runs every
    /// `[server] key_reload_interval`; tests call it directly.
    pub async fn reload_keys(&self) -> anyhow::Result<()> {
        // Creates a key for an algorithm a client newly asks for (a configuration change).
        let algs = self.settings().signing_algs();
        let ring = tokens::keys::load_or_create(&*self.store, &self.kek, &algs, self.now()).await?;
        self.keys.store(Arc::new(ring));
        Ok(())
    }
}

/// Keeps this replica's settings in step with the stored configuration.
fn spawn_config_reloader(state: AppState) {
    if state.live.is_none() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.settings().server.config_poll_interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = state.reload_config().await {
                tracing::warn!(error = %e, "reloading the configuration failed; keeping the current one");
            }
        }
    });
}

/// Delivers the outbox while this replica holds its lease, until the replica drains. Idle
/// while no webhook, hook or app's back-channel logout URI is configured.
fn spawn_outbox(state: AppState) {
    let deliverer = Deliverer::new(state.store.clone(), state.clock.clone());
    tokio::spawn(async move {
        while !state.is_draining() {
            let settings = state.settings();
            tokio::time::sleep(settings.outbox.poll_interval).await;
            let apps_listen = settings
                .clients
                .values()
                .any(|c| c.backchannel_logout_uri.is_some());
            if settings.outbox.webhooks.is_empty()
                && settings.outbox.hooks.is_empty()
                && !apps_listen
            {
                continue;
            }
            if let Err(e) = deliverer.tick(&settings, &state.keys()).await {
                tracing::warn!(error = %e, "delivering the outbox failed; trying again");
            }
        }
        deliverer.stop().await;
    });
}

/// Keeps this replica's keys in step with the store; failures are logged and retried.
fn spawn_key_reloader(state: AppState) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.settings().server.key_reload_interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = state.reload_keys().await {
                tracing::warn!(error = %e, "reloading signing keys failed; keeping the current ones");
            }
        }
    });
}
