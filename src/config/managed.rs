//! Live configuration: the part of the configuration admins change at run time, kept in the
//! store as versioned TOML documents.
//!
//! The file splits in two. *Bootstrap* keys ([`BOOTSTRAP_KEYS`]: where to listen, which database,
//! who Herald is, who administers it, its rate limits, how it serves connections) are needed before the store can be read and stay in the file. Everything else
//! (upstreams with their attributes and mappings, clients, scopes, token lifetimes) is *managed*:
//! the file seeds it into the store on the first start, and from then on the store is the truth.
//! An admin change writes a new version; every replica polls the latest version and swaps its
//! settings (see `AppState::reload_config`).
//!
//! A managed document is validated exactly like the file, by merging it with the bootstrap keys
//! and running [`super::from_toml`], so an invalid change is refused with the messages
//! `herald check-config` prints. The document is kept as generic TOML, so keys added to the file
//! model later pass through without changes here.
//!
//! No plaintext secret enters the store: a client's inline `client_secret` becomes
//! `client_secret_hash` (the argon2 hash the file's validation computed); `client_secret_env`
//! stays a reference. An upstream's inline `client_secret` (it must be sent upstream, so it
//! cannot be hashed) is held back as a bootstrap credential: it is read from the file on every
//! start and filled into the managed document in memory only, and only while that upstream still
//! points where the file pointed it (same `kind`, `issuer` and `domain`): a change that sends the
//! upstream elsewhere must not send the file's secret along. A secret typed into the admin pages
//! is stored sealed with the key-encryption key instead (see [`super::upstream_secret`]).

use std::collections::HashMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::{ClientFile, ConfigError, Settings, UpstreamFile};
use crate::tokens::kek::KeyEncryption;

/// Top-level keys that stay in the file; every other key is managed.
pub const BOOTSTRAP_KEYS: [&str; 7] = [
    "issuer",
    "listen",
    "database_url",
    "session_store",
    "admin",
    "limits",
    "server",
];

/// Who authored the first version, taken from the file.
pub const SEED_AUTHOR: &str = "seed";

/// The managed part of a configuration: a TOML table without the bootstrap keys.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedConfig {
    table: Table,
}

impl ManagedConfig {
    /// Reads a stored document.
    pub fn parse(document: &str) -> Result<Self, ConfigError> {
        let table: Table = toml::from_str(document).map_err(|e| {
            ConfigError::single(format!("the stored configuration is not valid TOML: {e}"))
        })?;
        if let Some(k) = BOOTSTRAP_KEYS.iter().find(|k| table.contains_key(**k)) {
            return Err(ConfigError::single(format!(
                "{k}: stays in the configuration file and cannot be changed at run time"
            )));
        }
        Ok(Self { table })
    }

    /// Keeps `stored`'s client secret hashes where they verify the file's inline secrets
    /// (`text`): hashing salts each time, so the same file would otherwise never match what was
    /// stored from it. Each check is an argon2 verification, paid only when the two differ (a
    /// start right after seeding compares the seed with itself and pays nothing).
    ///
    /// Likewise an upstream secret typed into the admin pages (sealed, so never in the file)
    /// is kept for an upstream the file gives no secret of its own, as long as the upstream
    /// still has the stored one's `kind`, `issuer` and `domain`: applying the file must not
    /// silently drop it.
    pub fn adopt_hashes(&mut self, stored: &ManagedConfig, text: &str) {
        if self == stored {
            return;
        }
        let Ok(file) = toml::from_str::<Table>(text) else {
            return;
        };
        self.adopt_sealed_secrets(stored, &file);
        let inline: HashMap<&str, &str> = file
            .get("clients")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some((
                    c.get("client_id")?.as_str()?,
                    c.get("client_secret")?.as_str()?,
                ))
            })
            .collect();
        for c in self
            .array_mut("clients")
            .iter_mut()
            .filter_map(Value::as_table_mut)
        {
            let Some(id) = c.get("client_id").and_then(Value::as_str) else {
                continue;
            };
            let Some(secret) = inline.get(id) else {
                continue;
            };
            let kept = stored
                .entry("clients", "client_id", id)
                .and_then(|t| t.get("client_secret_hash")?.as_str())
                .filter(|h| {
                    crate::tokens::SecretHash::from_stored(h).is_some_and(|h| h.verify(secret))
                })
                .map(str::to_string);
            if let Some(hash) = kept {
                c.insert("client_secret_hash".into(), Value::String(hash));
            }
        }
    }

    fn adopt_sealed_secrets(&mut self, stored: &ManagedConfig, file: &Table) {
        let file_has_secret = |id: &str| {
            file.get("upstreams")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_table)
                .any(|u| {
                    u.get("id").and_then(Value::as_str) == Some(id)
                        && u.contains_key("client_secret")
                })
        };
        for u in self
            .array_mut("upstreams")
            .iter_mut()
            .filter_map(Value::as_table_mut)
        {
            let Some(id) = u.get("id").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            if u.contains_key("client_secret_env")
                || u.contains_key(super::upstream_secret::SEALED)
                || file_has_secret(&id)
            {
                continue;
            }
            let Some(old) = stored.entry("upstreams", "id", &id) else {
                continue;
            };
            if let Some(sealed) = old.get(super::upstream_secret::SEALED)
                && UpstreamEndpointKeys::of(old) == UpstreamEndpointKeys::of(u)
            {
                u.insert(super::upstream_secret::SEALED.into(), sealed.clone());
            }
        }
    }

    /// The document as stored and exported.
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.table).expect("a TOML table serializes")
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    pub fn table_mut(&mut self) -> &mut Table {
        &mut self.table
    }

    /// The `[[NAME]]` array of tables (upstreams, clients), created empty when absent.
    pub fn array_mut(&mut self, name: &str) -> &mut Vec<Value> {
        let v = self
            .table
            .entry(name.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if !v.is_array() {
            *v = Value::Array(Vec::new());
        }
        v.as_array_mut().expect("just made an array")
    }

    /// The entry of `[[array]]` whose `key` equals `value`.
    pub fn entry_mut(&mut self, array: &str, key: &str, value: &str) -> Option<&mut Table> {
        self.array_mut(array)
            .iter_mut()
            .filter_map(Value::as_table_mut)
            .find(|t| t.get(key).and_then(Value::as_str) == Some(value))
    }

    pub fn entry(&self, array: &str, key: &str, value: &str) -> Option<&Table> {
        self.entries(array)
            .find(|t| t.get(key).and_then(Value::as_str) == Some(value))
    }

    /// The entries of `[[array]]` (none when it is absent).
    pub fn entries<'a>(&'a self, array: &str) -> impl Iterator<Item = &'a Table> + 'a {
        self.table
            .get(array)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_table)
    }

    /// Where the entry named `id` stands in its array: check-config's messages name entries by
    /// it (`upstreams[2]`).
    pub fn position<T: Entry>(&self, id: &str) -> Option<usize> {
        self.table.get(T::ARRAY)?.as_array()?.iter().position(|e| {
            e.as_table()
                .and_then(|t| t.get(T::KEY))
                .and_then(Value::as_str)
                == Some(id)
        })
    }

    /// The entry named `id`, typed; an error when the stored entry does not parse as one.
    pub fn get<T: Entry>(&self, id: &str) -> Result<Option<T>, ConfigError> {
        let Some(at) = self.position::<T>(id) else {
            return Ok(None);
        };
        let entry = self.table[T::ARRAY].as_array().expect("found in it")[at].clone();
        T::deserialize(entry)
            .map(Some)
            .map_err(|e| ConfigError::single(format!("{}[{at}]: {e}", T::ARRAY)))
    }

    /// Writes `entry` in place of the one with the same id, or after the others. Returns the
    /// table written.
    pub fn put<T: Entry>(&mut self, entry: &T) -> Result<Table, toml::ser::Error> {
        let table = Table::try_from(entry)?;
        let at = self.position::<T>(entry.id());
        let list = self.array_mut(T::ARRAY);
        match at {
            Some(at) => list[at] = Value::Table(table.clone()),
            None => list.push(Value::Table(table.clone())),
        }
        Ok(table)
    }

    /// Removes the entry named `id`; returns it as it was stored.
    pub fn remove<T: Entry>(&mut self, id: &str) -> Option<Table> {
        let at = self.position::<T>(id)?;
        match self.array_mut(T::ARRAY).remove(at) {
            Value::Table(t) => Some(t),
            _ => None,
        }
    }
}

/// An entry of an array of tables in the managed document: `[[upstreams]]` or `[[clients]]`,
/// written and read with serde.
pub trait Entry: Serialize + DeserializeOwned {
    /// The array it is an entry of.
    const ARRAY: &'static str;
    /// The key whose value names it.
    const KEY: &'static str;
    fn id(&self) -> &str;
}

impl Entry for UpstreamFile {
    const ARRAY: &'static str = "upstreams";
    const KEY: &'static str = "id";
    fn id(&self) -> &str {
        &self.id
    }
}

impl Entry for ClientFile {
    const ARRAY: &'static str = "clients";
    const KEY: &'static str = "client_id";
    fn id(&self) -> &str {
        &self.client_id
    }
}

/// What a replica keeps from its file to turn managed documents into [`Settings`]: the bootstrap
/// keys and the upstream secrets written inline.
#[derive(Clone)]
pub struct LiveConfig {
    bootstrap: Table,
    upstream_secrets: HashMap<String, HeldBackSecret>,
    /// Opens the upstream secrets the admin pages sealed into the managed document.
    kek: KeyEncryption,
}

/// An upstream's inline secret from the file, and where the file sent it.
#[derive(Clone)]
struct HeldBackSecret {
    secret: String,
    endpoint: UpstreamEndpointKeys,
}

/// The keys that say which provider an upstream table talks to.
#[derive(Clone, PartialEq)]
struct UpstreamEndpointKeys([Option<Value>; 3]);

impl UpstreamEndpointKeys {
    fn of(upstream: &Table) -> Self {
        Self(["kind", "issuer", "domain"].map(|k| upstream.get(k).cloned()))
    }
}

impl std::fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConfig")
            .field("bootstrap", &self.bootstrap.keys().collect::<Vec<_>>())
            .field("upstream_secrets", &"[redacted]")
            .finish()
    }
}

impl LiveConfig {
    /// Splits the file's text; `settings` are the file's validated settings, whose client
    /// secret hashes replace the inline secrets in the seed document.
    pub fn from_file(
        text: &str,
        settings: &Settings,
    ) -> Result<(Self, ManagedConfig), ConfigError> {
        let mut table: Table =
            toml::from_str(text).map_err(|e| ConfigError::single(e.to_string()))?;
        let mut bootstrap = Table::new();
        for k in BOOTSTRAP_KEYS {
            if let Some(v) = table.remove(k) {
                bootstrap.insert(k.to_string(), v);
            }
        }
        let mut managed = ManagedConfig { table };
        let mut upstream_secrets = HashMap::new();
        for u in managed
            .array_mut("upstreams")
            .iter_mut()
            .filter_map(Value::as_table_mut)
        {
            let id = u.get("id").and_then(Value::as_str).map(str::to_string);
            if let (Some(id), Some(Value::String(secret))) = (id, u.remove("client_secret")) {
                let endpoint = UpstreamEndpointKeys::of(u);
                upstream_secrets.insert(id, HeldBackSecret { secret, endpoint });
            }
        }
        for c in managed
            .array_mut("clients")
            .iter_mut()
            .filter_map(Value::as_table_mut)
        {
            if c.remove("client_secret").is_none() {
                continue;
            }
            let id = c
                .get("client_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let Some(super::ClientAuth::Secret(h)) = settings.client(id).map(|c| &c.auth) {
                c.insert("client_secret_hash".into(), Value::String(h.to_stored()));
            }
        }
        Ok((
            Self {
                bootstrap,
                upstream_secrets,
                kek: KeyEncryption::none(),
            },
            managed,
        ))
    }

    /// Opens sealed upstream secrets with `kek` (without one they stay sealed, and the
    /// settings refuse the upstreams that have one).
    pub fn with_kek(mut self, kek: KeyEncryption) -> Self {
        self.kek = kek;
        self
    }

    /// The key-encryption key that seals upstream secrets typed into the admin pages.
    pub fn kek(&self) -> &KeyEncryption {
        &self.kek
    }

    /// Validates a managed document together with the bootstrap keys, exactly as
    /// `herald check-config` validates a file.
    pub fn settings(
        &self,
        managed: &ManagedConfig,
    ) -> Result<(Settings, Vec<String>), ConfigError> {
        super::from_toml(&self.merged(managed, true))
    }

    /// The whole configuration as one TOML file: the bootstrap keys, then the managed document.
    /// With `with_secrets`, upstream secrets held back from the store are filled in, each only
    /// into its upstream as long as that still has the file's `kind`, `issuer` and `domain`.
    pub fn merged(&self, managed: &ManagedConfig, with_secrets: bool) -> String {
        let mut full = self.bootstrap.clone();
        let mut managed = managed.clone();
        if with_secrets {
            for u in managed
                .array_mut("upstreams")
                .iter_mut()
                .filter_map(Value::as_table_mut)
            {
                super::upstream_secret::open(&self.kek, u);
                let id = u.get("id").and_then(Value::as_str).unwrap_or_default();
                if u.contains_key("client_secret")
                    || u.contains_key("client_secret_env")
                    || u.contains_key(super::upstream_secret::SEALED)
                {
                    continue;
                }
                if let Some(held) = self.upstream_secrets.get(id)
                    && held.endpoint == UpstreamEndpointKeys::of(u)
                {
                    u.insert("client_secret".into(), Value::String(held.secret.clone()));
                }
            }
        }
        full.extend(managed.table);
        toml::to_string(&full).expect("a TOML table serializes")
    }

    /// Upstreams whose secret is held back in the file, for `herald export` to mention.
    pub fn held_back_upstream_secrets(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.upstream_secrets.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
issuer = "http://127.0.0.1:8080"
listen = "127.0.0.1:8080"
database_url = "sqlite::memory:"

[[upstreams]]
id = "test"
kind = "oidc"
issuer = "https://idp.example.com"
client_id = "herald"
client_secret = "upstream-secret"

[[clients]]
client_id = "app"
client_secret = "a-long-enough-secret"
redirect_uris = ["https://app.example.com/cb"]
scopes = ["openid"]
"#;

    fn split() -> (LiveConfig, ManagedConfig) {
        let (settings, _) = super::super::from_toml(FILE).unwrap();
        LiveConfig::from_file(FILE, &settings).unwrap()
    }

    #[test]
    fn seed_document_holds_no_plaintext_secret_and_no_bootstrap_key() {
        let (_, managed) = split();
        let doc = managed.to_toml();
        assert!(!doc.contains("upstream-secret"), "{doc}");
        assert!(!doc.contains("a-long-enough-secret"), "{doc}");
        assert!(doc.contains("client_secret_hash = \"$argon2id$"), "{doc}");
        assert!(!doc.contains("database_url"), "{doc}");
        assert_eq!(ManagedConfig::parse(&doc).unwrap(), managed);
    }

    #[test]
    fn stored_document_yields_the_same_settings_with_the_secret_still_working() {
        let (live, managed) = split();
        let reparsed = ManagedConfig::parse(&managed.to_toml()).unwrap();
        let (s, _) = live.settings(&reparsed).unwrap();
        let app = s.client("app").unwrap();
        match &app.auth {
            super::super::ClientAuth::Secret(h) => assert!(h.verify("a-long-enough-secret")),
            other => panic!("app must stay confidential, not {other:?}"),
        }
        let up = s.upstream("test").unwrap();
        assert_eq!(
            up.client_secret.as_ref().unwrap().expose(),
            "upstream-secret"
        );
        assert!(!live.merged(&reparsed, false).contains("upstream-secret"));
        assert!(format!("{live:?}").contains("[redacted]"));
    }

    #[test]
    fn a_held_back_upstream_secret_follows_its_upstream_only_to_the_files_issuer() {
        let (live, mut managed) = split();
        let up = managed.entry_mut("upstreams", "id", "test").unwrap();
        up.insert("display_name".into(), Value::String("Renamed".into()));
        let (s, _) = live.settings(&managed).unwrap();
        let secret = s.upstream("test").unwrap().client_secret.as_ref().unwrap();
        assert_eq!(secret.expose(), "upstream-secret");

        let up = managed.entry_mut("upstreams", "id", "test").unwrap();
        up.insert(
            "issuer".into(),
            Value::String("https://elsewhere.example.com".into()),
        );
        let (s, _) = live.settings(&managed).unwrap();
        assert!(s.upstream("test").unwrap().client_secret.is_none());
        assert!(!live.merged(&managed, true).contains("upstream-secret"));
    }

    #[test]
    fn a_sealed_upstream_secret_opens_with_the_kek_and_survives_applying_the_file() {
        let kek = KeyEncryption::from_base64(&KeyEncryption::generate_base64()).unwrap();
        let file = FILE.replace(
            "client_secret = \"upstream-secret\"\n\n[[clients]]",
            "\n[[clients]]",
        );
        let (settings, _) = super::super::from_toml(&file).unwrap();
        let (live, seed) = LiveConfig::from_file(&file, &settings).unwrap();
        let mut stored = seed.clone();
        let up = stored.entry_mut("upstreams", "id", "test").unwrap();
        super::super::upstream_secret::seal(&kek, up, "typed-secret").unwrap();
        assert!(!stored.to_toml().contains("typed-secret"));

        let (s, _) = live.clone().with_kek(kek).settings(&stored).unwrap();
        let up = s.upstream("test").unwrap();
        assert_eq!(up.client_secret.as_ref().unwrap().expose(), "typed-secret");
        assert!(up.client_secret_sealed);
        // A replica without the key refuses it by name, rather than sending no secret.
        let err = live.settings(&stored).unwrap_err().to_string();
        assert!(err.contains("upstreams[0].client_secret_sealed"), "{err}");

        // Applying the file (which has no secret for it) keeps the stored one...
        let mut mine = seed.clone();
        mine.adopt_hashes(&stored, &file);
        assert_eq!(mine, stored);
        // ...unless the file points the upstream elsewhere.
        let moved = file.replace("https://idp.example.com", "https://elsewhere.example.com");
        let (settings, _) = super::super::from_toml(&moved).unwrap();
        let (_, mut mine) = LiveConfig::from_file(&moved, &settings).unwrap();
        mine.adopt_hashes(&stored, &moved);
        let up = mine.entry("upstreams", "id", "test").unwrap();
        assert!(!up.contains_key(super::super::upstream_secret::SEALED));
    }

    #[test]
    fn admin_and_limits_stay_in_the_file_and_follow_it() {
        let file = format!(
            "{FILE}\n[admin]\nrole_claim = \"groups\"\nrole_value = \"ops\"\n\
             [limits]\nper_ip_per_second = 7\nclient_ip_header = \"X-Forwarded-For\"\n"
        );
        let (settings, _) = super::super::from_toml(&file).unwrap();
        let (live, managed) = LiveConfig::from_file(&file, &settings).unwrap();
        let doc = managed.to_toml();
        assert!(
            !doc.contains("[admin]") && !doc.contains("[limits]"),
            "{doc}"
        );
        // The stored document with the file's bootstrap keys: the file's values are in effect.
        let (s, _) = live.settings(&managed).unwrap();
        assert_eq!(s.limits.per_ip_per_second.map(|n| n.get()), Some(7));
        assert!(s.limits.client_ip_header.is_some());
        assert_eq!(
            s.admin.roles.unwrap().values,
            [(crate::config::Role::Admin, "ops".into())]
        );
        for key in [
            "[limits]\nper_ip_per_second = 0",
            "[admin]\nrole_value = \"x\"",
        ] {
            assert!(ManagedConfig::parse(key).is_err(), "{key}");
        }
    }

    /// Every key of an upstream and of a client, set to something other than its default.
    const EVERY_KEY: &str = r#"
[[upstreams]]
id = "full"
kind = "oidc"
display_name = "Full"
domain = "not-used.example.com"
issuer = "https://idp.example.com"
client_id = "herald"
client_secret = "upstream-secret"
client_secret_env = "HERALD_UPSTREAM_FULL"
scopes = ["openid", "email"]
userinfo = true
logout = true
extra_authorize_params = { audience = "api", prompt = "login" }
amr = ["pwd", "mfa"]
auth_context_ttl = "10m"
attributes = [
  { claim = "groups", source = "userinfo", type = "string_array", display_name = "Groups", required = true, on_missing = "keep" },
  { claim = "email", source = "id_token" },
]
mappings = [{ from = "groups", to = "roles", merge = "add" }]

[[upstreams]]
id = "one-amr"
kind = "dev"
amr = "pwd"

[[clients]]
client_id = "full"
client_name = "Full"
client_secret = "a-long-enough-secret"
client_secret_env = "APP_SECRET"
client_secret_hash = "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
redirect_uris = ["https://app.example.com/cb"]
scopes = ["openid", "offline_access"]
trusted = true
grant_types = ["authorization_code", "refresh_token"]
refresh_token_idle_ttl = "1d"
refresh_token_absolute_ttl = "30d"
refresh_token_grace_period = "3s"
id_token_signed_response_alg = "ES256"
jwks = { keys = [{ kty = "EC", crv = "P-256", x = "x", y = "y" }] }
post_logout_redirect_uris = ["https://app.example.com/"]
registered_at = 1700000000

[[clients]]
client_id = "bare"
scopes = []
"#;

    #[test]
    fn every_upstream_and_client_setting_survives_writing_and_reading_back() {
        let file: super::super::ConfigFile = toml::from_str(&format!(
            "issuer = \"x\"\nlisten = \"x\"\ndatabase_url = \"x\"\n{EVERY_KEY}"
        ))
        .unwrap();
        let mut written = ManagedConfig::parse("").unwrap();
        for u in &file.upstreams {
            written.put(u).unwrap();
        }
        for c in &file.clients {
            written.put(c).unwrap();
        }
        let reread = ManagedConfig::parse(&written.to_toml()).unwrap();
        for u in &file.upstreams {
            assert_eq!(reread.get::<UpstreamFile>(&u.id).unwrap().as_ref(), Some(u));
        }
        for c in &file.clients {
            assert_eq!(
                reread.get::<ClientFile>(&c.client_id).unwrap().as_ref(),
                Some(c)
            );
        }
    }

    #[test]
    fn putting_an_entry_replaces_the_one_of_its_id_in_place() {
        let (_, mut managed) = split();
        let mut app: ClientFile = managed.get("app").unwrap().unwrap();
        app.client_name = Some("Renamed".into());
        managed.put(&app).unwrap();
        assert_eq!(managed.position::<ClientFile>("app"), Some(0));
        assert_eq!(
            managed
                .get::<ClientFile>("app")
                .unwrap()
                .unwrap()
                .client_name
                .as_deref(),
            Some("Renamed")
        );
        assert!(managed.remove::<ClientFile>("app").is_some());
        assert!(managed.get::<ClientFile>("app").unwrap().is_none());
        assert!(managed.remove::<ClientFile>("app").is_none());
    }

    #[test]
    fn bootstrap_keys_cannot_be_smuggled_into_a_stored_document() {
        let err = ManagedConfig::parse("issuer = \"https://evil.example\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("issuer: stays in the configuration file")
        );
    }

    #[test]
    fn invalid_documents_are_refused_with_check_config_messages() {
        let (live, mut managed) = split();
        let app = managed.entry_mut("clients", "client_id", "app").unwrap();
        app.insert(
            "redirect_uris".into(),
            Value::Array(vec![Value::String("https://app.example.com/cb#x".into())]),
        );
        let err = live.settings(&managed).unwrap_err();
        assert!(
            err.to_string().contains("clients[0].redirect_uris[0]"),
            "{err}"
        );
    }

    #[test]
    fn a_hash_in_the_file_is_accepted_and_must_be_well_formed() {
        let with_hash = FILE.replace(
            "client_secret = \"a-long-enough-secret\"",
            "client_secret_hash = \"sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"",
        );
        let (s, _) = super::super::from_toml(&with_hash).unwrap();
        assert!(!s.client("app").unwrap().is_public());
        let bad = FILE.replace(
            "client_secret = \"a-long-enough-secret\"",
            "client_secret_hash = \"plain\"",
        );
        let err = super::super::from_toml(&bad).unwrap_err();
        assert!(
            err.to_string().contains("clients[0].client_secret_hash"),
            "{err}"
        );
        let both = FILE.replace(
            "client_secret = \"a-long-enough-secret\"",
            "client_secret = \"a-long-enough-secret\"\nclient_secret_hash = \"sha256:x\"",
        );
        assert!(super::super::from_toml(&both).is_err());
    }

    #[test]
    fn the_admin_scope_is_built_in_but_only_for_machine_clients() {
        let machine = FILE.replace(
            "redirect_uris = [\"https://app.example.com/cb\"]\nscopes = [\"openid\"]",
            "redirect_uris = []\nscopes = [\"herald:admin\"]\ngrant_types = [\"client_credentials\"]",
        );
        assert!(super::super::from_toml(&machine).is_ok());
        let user_facing = FILE.replace(
            "scopes = [\"openid\"]",
            "scopes = [\"openid\", \"herald:admin\"]",
        );
        let err = super::super::from_toml(&user_facing).unwrap_err();
        assert!(
            err.to_string()
                .contains("clients[0].scopes: `herald:admin`"),
            "{err}"
        );
    }
}
