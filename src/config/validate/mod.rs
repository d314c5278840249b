//! Turns the parsed file ([`ConfigFile`]) into [`Settings`], collecting every problem with the
//! key it concerns, what is wrong and how to fix it, so `herald check-config` prints them all.
//!
//! This module checks the top-level keys, `[tokens]`, `[admin]` and `[limits]`, and puts the
//! parts together; [`upstream`] checks each `[[upstreams]]` and [`client`] each `[[clients]]`.

mod client;
mod outbox;
mod resources;
mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::ConfigError;
use super::file::{AdminFile, ConfigFile, LimitsFile, ServerFile, TokenFile, UpstreamKind};
use super::roles::{AdminRoles, Role};
use super::settings::{
    AdminSettings, DEFAULT_ADMIN_AUTH_AGE, LimitSettings, ServerSettings, Settings, TokenSettings,
    Upstream, is_loopback_host,
};
use crate::claims::{ClaimPath, ScopeCatalog};
use crate::secret::Secret;

/// The bootstrap keys an environment variable overrides, so one file serves every
/// environment and a database password never has to be written in it.
pub const ENV_OVERRIDES: [(&str, &str); 5] = [
    ("issuer", "HERALD_ISSUER"),
    ("listen", "HERALD_LISTEN"),
    ("database_url", "HERALD_DATABASE_URL"),
    ("session_store", "HERALD_SESSION_STORE"),
    ("log_format", "HERALD_LOG_FORMAT"),
];

/// Puts the set (non-empty) override variables into `file`; returns the keys they replaced,
/// each with its variable.
fn apply_env(
    file: &mut ConfigFile,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<(&'static str, &'static str)> {
    let mut applied = Vec::new();
    for (key, var) in ENV_OVERRIDES {
        let Some(value) = env(var).filter(|v| !v.is_empty()) else {
            continue;
        };
        let slot = match key {
            "issuer" => &mut file.issuer,
            "listen" => &mut file.listen,
            "database_url" => &mut file.database_url,
            "session_store" => &mut file.session_store,
            _ => &mut file.log_format,
        };
        *slot = Some(value);
        applied.push((key, var));
    }
    applied
}

/// Turns the parsed file into [`Settings`], collecting every problem. `env` reads an environment
/// variable (injected so tests need not touch the process environment).
pub(super) fn validate(
    file: ConfigFile,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Settings, Vec<String>), ConfigError> {
    let mut v = Validator::default();
    let mut file = file;
    let overridden = apply_env(&mut file, env);
    let start = v.problems.len();

    let issuer = v.required("issuer", file.issuer.as_deref(), Validator::issuer);
    let listen = v.required("listen", file.listen.as_deref(), |v, raw| match raw
        .parse::<SocketAddr>()
    {
        Ok(a) => Some(a),
        Err(_) => {
            v.problem(format!(
                "listen: `{raw}` is not an address and port; write it like \"127.0.0.1:8080\""
            ));
            None
        }
    });
    let database_url = v.required("database_url", file.database_url.as_deref(), |v, raw| {
        if raw.starts_with("sqlite:")
            || raw.starts_with("postgres://")
            || raw.starts_with("postgresql://")
        {
            Some(raw.to_string())
        } else {
            v.problem(
                "database_url: must start with sqlite:// (for example \"sqlite://data/herald.db\") \
                 or postgres://",
            );
            None
        }
    });
    if let Some(format) = &file.log_format
        && !matches!(format.as_str(), "text" | "json")
    {
        v.problem(format!(
            "log_format: `{format}` is neither \"text\" nor \"json\""
        ));
    }
    if let Some(store) = &file.session_store
        && !(store.starts_with("redis://") || store.starts_with("rediss://"))
    {
        v.problem(
            "session_store: only \"redis://host:port\" (or rediss://) is supported; remove the \
             key to keep browser sessions in the main database",
        );
    }
    // A problem with a value the environment gave names the variable it came from.
    for p in &mut v.problems[start..] {
        if let Some((key, var)) = overridden
            .iter()
            .find(|(key, _)| p.starts_with(&format!("{key}:")))
        {
            *p = format!("{key} (from {var}){}", &p[key.len()..]);
        }
    }
    let tokens = v.tokens(&file.tokens);
    let admin = v.admin(&file.admin);
    let limits = v.limits(&file.limits);
    let server = v.server(&file.server);
    v.telemetry(&file.telemetry);
    let outbox = v.outbox(
        &file.webhooks,
        &file.hooks,
        &file.outbox,
        issuer.as_deref(),
        env,
    );

    let scopes = match ScopeCatalog::with_purposes(file.scopes, file.purposes) {
        Ok(c) => Some(c),
        Err(e) => {
            v.problem(format!("scopes: {e}"));
            None
        }
    };

    let mut upstreams = Vec::new();
    if file.upstreams.is_empty() {
        v.problem(
            "upstreams: at least one [[upstreams]] is needed; for local development add \
             `[[upstreams]] id = \"dev\" kind = \"dev\"`",
        );
    }
    let context = v.declared_context(std::mem::take(&mut file.context));
    for (i, u) in file.upstreams.into_iter().enumerate() {
        if let Some(u) = v.upstream(i, u, issuer.as_deref(), env) {
            v.declared_targets(&context, file.strict_context, i, &u);
            if upstreams.iter().any(|o: &Upstream| o.id == u.id) {
                v.problem(format!("upstreams[{i}].id: `{}` is used twice", u.id));
            }
            upstreams.push(u);
        }
    }

    let mut clients = HashMap::new();
    for (i, c) in file.clients.into_iter().enumerate() {
        if let Some(c) = v.client(i, c, scopes.as_ref(), issuer.as_deref(), env) {
            if clients.contains_key(&c.client_id) {
                v.problem(format!(
                    "clients[{i}].client_id: `{}` is used twice",
                    c.client_id
                ));
            } else {
                clients.insert(c.client_id.clone(), Arc::new(c));
            }
        }
    }

    v.post_login_clients(&upstreams, &clients);
    let resources = v.resources(
        std::mem::take(&mut file.resources),
        scopes.as_ref(),
        issuer.as_deref(),
    );
    let dev_issuer = issuer.as_deref().is_some_and(|iss| {
        Url::parse(iss)
            .is_ok_and(|u| u.scheme() == "http" && u.host_str().is_some_and(is_loopback_host))
    });
    // Hole 6 of the hardening issue: a loopback issuer is not enough when a listener is
    // public, since anyone who reaches it could sign in as anyone, admins included.
    let loopback_listeners = listen.is_some_and(|l| l.ip().is_loopback())
        && admin.listen.is_none_or(|l| l.ip().is_loopback());
    for u in &upstreams {
        if u.kind == UpstreamKind::Dev {
            if dev_issuer && !loopback_listeners {
                v.problem(format!(
                    "upstreams: `{}` is the development upstream (kind = \"dev\"), which logs \
                     anyone in under any name; it is allowed only when `listen` (and \
                     `[admin] listen`) are loopback addresses such as 127.0.0.1",
                    u.id
                ));
            } else if !dev_issuer {
                v.problem(format!(
                    "upstreams: `{}` is the development upstream (kind = \"dev\"), which logs \
                     anyone in under any name; it is allowed only with a loopback http:// issuer",
                    u.id
                ));
            } else {
                v.warnings.push(format!(
                    "upstream `{}` is the built-in development upstream: anyone can log in under \
                     any name. Never use it in production.",
                    u.id
                ));
            }
        }
    }

    match (
        issuer,
        listen,
        database_url,
        tokens,
        scopes,
        v.problems.is_empty(),
    ) {
        (Some(issuer), Some(listen), Some(database_url), Some(tokens), Some(scopes), true) => Ok((
            Settings {
                issuer,
                listen,
                database_url,
                session_store: file.session_store,
                tokens,
                upstreams: upstreams.into_iter().map(Arc::new).collect(),
                clients,
                scopes,
                admin,
                limits,
                server,
                outbox,
                context,
                require_pushed_authorization_requests: file.require_pushed_authorization_requests,
                require_dpop_nonce: file.require_dpop_nonce,
                resources,
            },
            v.warnings,
        )),
        _ => Err(ConfigError {
            problems: v.problems,
        }),
    }
}

/// What a validation found so far: problems (the configuration is refused) and warnings.
#[derive(Default)]
struct Validator {
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl Validator {
    /// `role_claim` with `role_value` (the admin role) and/or `roles`; `role_claim` defaults to
    /// `groups` when `roles` is given.
    fn admin_roles(&mut self, file: &AdminFile) -> Option<AdminRoles> {
        let given = file.roles.as_ref();
        if file.role_value.is_some() && given.is_some_and(|r| r.admin.is_some()) {
            self.problem(
                "admin.role_value: the admin role is given twice; keep roles.admin and remove \
                 role_value",
            );
            return None;
        }
        let admin = file
            .role_value
            .clone()
            .or_else(|| given.and_then(|r| r.admin.clone()));
        let values: Vec<(Role, String)> = [
            (Role::Admin, admin),
            (Role::Editor, given.and_then(|r| r.editor.clone())),
            (Role::Auditor, given.and_then(|r| r.auditor.clone())),
        ]
        .into_iter()
        .filter_map(|(role, v)| Some((role, v?)))
        .collect();
        if let Some((role, _)) = values.iter().find(|(_, v)| v.trim().is_empty()) {
            self.problem(if file.role_value.is_some() && *role == Role::Admin {
                "admin.role_value: must not be empty".to_string()
            } else {
                format!("admin.roles.{role}: must not be empty")
            });
            return None;
        }
        let claim = match (&file.role_claim, given) {
            (Some(claim), _) => claim.as_str(),
            (None, Some(_)) => "groups",
            (None, None) if file.role_value.is_some() => {
                self.problem(
                    "admin.role_claim: needed with role_value; write the context claim that \
                     carries it, e.g. role_claim = \"groups\"",
                );
                return None;
            }
            (None, None) => return None,
        };
        if values.is_empty() {
            self.problem(if given.is_some() {
                "admin.roles: names no role; write for example roles = { admin = \
                 \"herald-admins\", editor = \"herald-editors\", auditor = \
                 \"herald-auditors\" }"
            } else {
                "admin.role_value: needed with role_claim; write the value the claim must \
                 hold, e.g. role_value = \"herald-admins\""
            });
            return None;
        }
        match ClaimPath::parse(claim) {
            Ok(claim) => Some(AdminRoles { claim, values }),
            Err(e) => {
                self.problem(format!("admin.role_claim: {e}"));
                None
            }
        }
    }

    fn admin(&mut self, file: &AdminFile) -> AdminSettings {
        let roles = self.admin_roles(file);
        let listen = file
            .listen
            .as_ref()
            .and_then(|l| match l.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.problem(format!(
                        "admin.listen: `{l}` is not an address and port; write it like \
                     \"127.0.0.1:9090\""
                    ));
                    None
                }
            });
        let max_auth_age = self
            .duration(
                "admin.max_auth_age",
                file.max_auth_age.as_deref(),
                DEFAULT_ADMIN_AUTH_AGE,
            )
            .unwrap_or(DEFAULT_ADMIN_AUTH_AGE);
        AdminSettings {
            roles,
            listen,
            max_auth_age,
        }
    }

    fn limits(&mut self, file: &LimitsFile) -> LimitSettings {
        let default = LimitSettings::default();
        let per_ip_per_second = match file.per_ip_per_second {
            None => default.per_ip_per_second,
            Some(n) => std::num::NonZeroU32::new(n),
        };
        let per_ip_burst = match file.per_ip_burst.map(std::num::NonZeroU32::new) {
            None => default.per_ip_burst,
            Some(Some(n)) => n,
            Some(None) => {
                self.problem(
                    "limits.per_ip_burst: must be at least 1; to turn the limit off set \
                     per_ip_per_second = 0",
                );
                default.per_ip_burst
            }
        };
        let client_ip_header = file.client_ip_header.as_ref().and_then(|h| {
            match axum::http::HeaderName::from_bytes(h.as_bytes()) {
                Ok(name) => Some(name),
                Err(_) => {
                    self.problem(format!(
                        "limits.client_ip_header: `{h}` is not a header name; write it like \
                         \"X-Forwarded-For\""
                    ));
                    None
                }
            }
        });
        LimitSettings {
            per_ip_per_second,
            per_ip_burst,
            client_ip_header,
        }
    }

    fn problem(&mut self, p: impl Into<String>) {
        self.problems.push(p.into());
    }

    /// A bootstrap key the file or its environment variable must give, checked by `check`.
    fn required<T>(
        &mut self,
        key: &str,
        raw: Option<&str>,
        check: impl FnOnce(&mut Self, &str) -> Option<T>,
    ) -> Option<T> {
        match raw {
            Some(raw) => check(self, raw),
            None => {
                let var = ENV_OVERRIDES
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or("", |(_, var)| var);
                self.problem(format!("{key}: missing; set it in the file or with {var}"));
                None
            }
        }
    }

    fn issuer(&mut self, raw: &str) -> Option<String> {
        let Ok(url) = Url::parse(raw) else {
            self.problem(format!(
                "issuer: `{raw}` is not a URL; write it like \"https://login.example.com\""
            ));
            return None;
        };
        let host_ok = url.host_str().is_some();
        let scheme_ok = match url.scheme() {
            "https" => true,
            "http" => url.host_str().is_some_and(is_loopback_host),
            _ => false,
        };
        if !host_ok || !scheme_ok {
            self.problem(format!(
                "issuer: `{raw}` must be an https:// URL (http:// only for 127.0.0.1, [::1] or \
                 localhost)"
            ));
            return None;
        }
        if url.query().is_some() || url.fragment().is_some() {
            self.problem("issuer: must not have a query or fragment (OpenID Discovery §3)");
            return None;
        }
        Some(raw.trim_end_matches('/').to_string())
    }

    fn server(&mut self, file: &ServerFile) -> ServerSettings {
        let d = ServerSettings::default();
        let mut duration = |key: &str, raw: &Option<String>, default: Duration| {
            self.duration(&format!("server.{key}"), raw.as_deref(), default)
                .unwrap_or(default)
        };
        let header_read_timeout = duration(
            "header_read_timeout",
            &file.header_read_timeout,
            d.header_read_timeout,
        );
        let request_timeout = duration("request_timeout", &file.request_timeout, d.request_timeout);
        let shutdown_timeout = duration(
            "shutdown_timeout",
            &file.shutdown_timeout,
            d.shutdown_timeout,
        );
        let drain_delay = match file.drain_delay.as_deref() {
            None | Some("0s" | "0") => Duration::ZERO,
            Some(_) => duration("drain_delay", &file.drain_delay, d.drain_delay),
        };
        let mut interval = |key: &str, raw: &Option<String>, default: Duration| {
            let d = self
                .duration(&format!("server.{key}"), raw.as_deref(), default)
                .unwrap_or(default);
            if d > Duration::from_secs(60) {
                // The key activation delay counts on the reload interval being short.
                self.problem(format!("server.{key}: at most 60s"));
                return default;
            }
            d
        };
        let key_reload_interval = interval(
            "key_reload_interval",
            &file.key_reload_interval,
            d.key_reload_interval,
        );
        let config_poll_interval = interval(
            "config_poll_interval",
            &file.config_poll_interval,
            d.config_poll_interval,
        );
        let max_in_flight = match file.max_in_flight.map(std::num::NonZeroU32::new) {
            None => d.max_in_flight,
            Some(Some(n)) => n,
            Some(None) => {
                self.problem("server.max_in_flight: must be at least 1");
                d.max_in_flight
            }
        };
        ServerSettings {
            header_read_timeout,
            request_timeout,
            max_connections_per_ip: match file.max_connections_per_ip {
                None => d.max_connections_per_ip,
                Some(n) => std::num::NonZeroU32::new(n),
            },
            max_in_flight,
            drain_delay,
            shutdown_timeout,
            key_reload_interval,
            config_poll_interval,
        }
    }

    fn duration(&mut self, key: &str, raw: Option<&str>, default: Duration) -> Option<Duration> {
        match raw {
            None => Some(default),
            Some(s) => match humantime::parse_duration(s) {
                Ok(d) if !d.is_zero() => Some(d),
                _ => {
                    self.problem(format!(
                        "{key}: `{s}` is not a duration; write it like \"60s\", \"10m\" or \"1h\""
                    ));
                    None
                }
            },
        }
    }

    fn tokens(&mut self, t: &TokenFile) -> Option<TokenSettings> {
        let code = self.duration(
            "tokens.authorization_code_ttl",
            t.authorization_code_ttl.as_deref(),
            Duration::from_secs(60),
        );
        if code.is_some_and(|c| c > Duration::from_secs(600)) {
            self.problem(
                "tokens.authorization_code_ttl: at most 10m (RFC 6749 §4.1.2); 60s is usual",
            );
        }
        Some(TokenSettings {
            authorization_code_ttl: code?,
            id_token_ttl: self.duration(
                "tokens.id_token_ttl",
                t.id_token_ttl.as_deref(),
                Duration::from_secs(3600),
            )?,
            access_token_ttl: self.duration(
                "tokens.access_token_ttl",
                t.access_token_ttl.as_deref(),
                Duration::from_secs(3600),
            )?,
            session_ttl: self.duration(
                "tokens.session_ttl",
                t.session_ttl.as_deref(),
                Duration::from_secs(24 * 3600),
            )?,
            login_ttl: self.duration(
                "tokens.login_ttl",
                t.login_ttl.as_deref(),
                Duration::from_secs(600),
            )?,
        })
    }

    fn secret(
        &mut self,
        key: &str,
        inline: Option<String>,
        env_name: Option<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Secret> {
        match (inline, env_name) {
            (Some(_), Some(_)) => {
                self.problem(format!(
                    "{key}: set either client_secret or client_secret_env, not both"
                ));
                None
            }
            (Some(s), None) => Some(Secret::new(s)),
            (None, Some(name)) => match env(&name) {
                Some(s) if !s.is_empty() => Some(Secret::new(s)),
                _ => {
                    self.problem(format!(
                        "{key}: client_secret_env names `{name}`, but that environment variable \
                         is not set (or empty); export it before starting Herald"
                    ));
                    None
                }
            },
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client::check_redirect_uri;
    use super::*;
    use crate::config::{ClientAuth, GrantType, Role};

    fn parse(toml_text: &str) -> Result<(Settings, Vec<String>), ConfigError> {
        let file: ConfigFile =
            toml::from_str(toml_text).map_err(|e| ConfigError::single(e.to_string()))?;
        validate(file, &|name| {
            (name == "SECRET_FROM_ENV").then(|| "s3cret-from-env".to_string())
        })
    }

    const BASE: &str = r#"
        issuer = "http://127.0.0.1:8080"
        listen = "127.0.0.1:8080"
        database_url = "sqlite::memory:"
    "#;

    fn with(extra: &str) -> String {
        format!("{BASE}\n{extra}")
    }

    const DEV: &str = "[[upstreams]]\nid = \"dev\"\nkind = \"dev\"\n";

    #[test]
    fn the_replica_loops_intervals_are_settings_of_at_most_a_minute() {
        let (s, _) = parse(&with(DEV)).unwrap();
        assert_eq!(s.server.key_reload_interval, Duration::from_secs(10));
        assert_eq!(s.server.config_poll_interval, Duration::from_secs(2));
        let short = "[server]\nkey_reload_interval = \"300ms\"\nconfig_poll_interval = \"200ms\"\n";
        let (s, _) = parse(&with(&format!("{short}{DEV}"))).unwrap();
        assert_eq!(s.server.key_reload_interval, Duration::from_millis(300));
        assert_eq!(s.server.config_poll_interval, Duration::from_millis(200));
        let long = "[server]\nkey_reload_interval = \"5m\"\nconfig_poll_interval = \"soon\"\n";
        let err = parse(&with(&format!("{long}{DEV}")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.key_reload_interval: at most 60s"),
            "{err}"
        );
        assert!(
            err.contains("server.config_poll_interval: `soon` is not a duration"),
            "{err}"
        );
    }

    #[test]
    fn environment_variables_override_the_bootstrap_keys() {
        let vars = |name: &str| match name {
            "HERALD_ISSUER" => Some("http://localhost:9999".to_string()),
            "HERALD_LISTEN" => Some("127.0.0.1:9999".to_string()),
            "HERALD_DATABASE_URL" => Some("postgres://herald:pw@db/herald".to_string()),
            "HERALD_SESSION_STORE" => Some("redis://cache:6379".to_string()),
            "HERALD_LOG_FORMAT" => Some("json".to_string()),
            _ => None,
        };
        let file: ConfigFile = toml::from_str(&with(DEV)).unwrap();
        let (s, _) = validate(file, &vars).unwrap();
        assert_eq!(s.issuer, "http://localhost:9999");
        assert_eq!(s.listen.port(), 9999);
        assert_eq!(s.database_url, "postgres://herald:pw@db/herald");
        assert_eq!(s.session_store.as_deref(), Some("redis://cache:6379"));
        // A file without the keys is complete with the variables, and says what is missing
        // without them, naming the variable.
        let file: ConfigFile = toml::from_str(DEV).unwrap();
        assert!(validate(file, &vars).is_ok());
        let err = parse(DEV).unwrap_err().to_string();
        assert!(
            err.contains("issuer: missing; set it in the file or with HERALD_ISSUER"),
            "{err}"
        );
        assert!(
            err.contains("database_url: missing; set it in the file or with HERALD_DATABASE_URL"),
            "{err}"
        );
        // A bad value from a variable names the variable, not the file.
        let bad = |name: &str| (name == "HERALD_LISTEN").then(|| "nowhere".to_string());
        let file: ConfigFile = toml::from_str(&with(DEV)).unwrap();
        let err = validate(file, &bad).unwrap_err().to_string();
        assert!(
            err.contains("listen (from HERALD_LISTEN): `nowhere` is not an address"),
            "{err}"
        );
        let bad = |name: &str| (name == "HERALD_LOG_FORMAT").then(|| "xml".to_string());
        let file: ConfigFile = toml::from_str(&with(DEV)).unwrap();
        let err = validate(file, &bad).unwrap_err().to_string();
        assert!(
            err.contains("log_format (from HERALD_LOG_FORMAT): `xml`"),
            "{err}"
        );
        // An empty variable is no override.
        let empty = |name: &str| (name == "HERALD_ISSUER").then(String::new);
        let file: ConfigFile = toml::from_str(&with(DEV)).unwrap();
        assert_eq!(
            validate(file, &empty).unwrap().0.issuer,
            "http://127.0.0.1:8080"
        );
    }

    /// Hole 5 of the hardening issue: a plain-http upstream only beside a loopback http://
    /// Herald, and never an upstream on a link-local or metadata address.
    #[test]
    fn an_http_upstream_needs_a_loopback_http_herald_and_metadata_hosts_never_pass() {
        let upstream = |issuer: &str, extra: &str| {
            format!(
                "[[upstreams]]\nid = \"u\"\nkind = \"oidc\"\nissuer = \"{issuer}\"\n\
                 client_id = \"c\"\n{extra}"
            )
        };
        let local = upstream("http://127.0.0.1:9000", "");
        assert!(parse(&with(&local)).is_ok());
        let https_herald = format!(
            "issuer = \"https://login.example.com\"\nlisten = \"127.0.0.1:8080\"\n\
             database_url = \"sqlite::memory:\"\n{local}"
        );
        let err = parse(&https_herald).unwrap_err().to_string();
        assert!(
            err.contains("Herald's issuer is a loopback http:// URL too"),
            "{err}"
        );
        for (bad, words) in [
            (upstream("https://169.254.169.254/", ""), "cloud-metadata"),
            (upstream("https://[fe80::1]/", ""), "cloud-metadata"),
            (
                upstream(
                    "https://idp.example.com",
                    "allowed_endpoint_hosts = [\"169.254.169.254\"]",
                ),
                "cloud-metadata",
            ),
            (
                upstream(
                    "https://idp.example.com",
                    "allowed_endpoint_hosts = [\"keys.example.com:8443\"]",
                ),
                "without protocol, port or path",
            ),
        ] {
            let err = parse(&with(&bad)).unwrap_err().to_string();
            assert!(err.contains(words), "{bad}: {err}");
        }
        let listed = upstream(
            "https://idp.example.com",
            "allowed_endpoint_hosts = [\"keys.example.com\"]",
        );
        let (settings, _) = parse(&with(&listed)).unwrap();
        assert_eq!(
            settings.upstreams[0].endpoint.allowed_endpoint_hosts,
            ["keys.example.com"]
        );
    }

    /// Hole 6 of the hardening issue: with a loopback issuer but a public listener, anyone who
    /// reached the port could sign in through the development upstream as anyone.
    #[test]
    fn the_dev_upstream_needs_loopback_listeners_too() {
        let public = format!(
            "issuer = \"http://127.0.0.1:8080\"\nlisten = \"0.0.0.0:8080\"\n\
             database_url = \"sqlite::memory:\"\n{DEV}"
        );
        let err = parse(&public).unwrap_err().to_string();
        assert!(err.contains("loopback addresses"), "{err}");
        let public_admin = with(&format!("{DEV}\n[admin]\nlisten = \"0.0.0.0:9090\""));
        let err = parse(&public_admin).unwrap_err().to_string();
        assert!(err.contains("`[admin] listen`"), "{err}");
        let loopback_admin = with(&format!("{DEV}\n[admin]\nlisten = \"127.0.0.1:9090\""));
        assert!(parse(&loopback_admin).is_ok());
        let v6 = with(DEV).replace(
            "127.0.0.1:8080\"\n        database",
            "[::1]:8080\"\n        database",
        );
        assert!(parse(&v6).is_ok());
    }

    #[test]
    fn the_admin_role_is_a_context_claim_holding_a_value() {
        let (s, _) = parse(&with(&format!(
            "{DEV}\n[admin]\nrole_claim = 'https://example\\.com/roles'\nrole_value = \"ops\""
        )))
        .unwrap();
        let roles = s.admin.roles.unwrap();
        let holds = |ctx: &serde_json::Map<String, serde_json::Value>| roles.of(ctx).is_admin();
        let ctx = |v: serde_json::Value| {
            serde_json::json!({ "https://example.com/roles": v })
                .as_object()
                .unwrap()
                .clone()
        };
        assert!(holds(&ctx(serde_json::json!(["staff", "ops"]))));
        assert!(holds(&ctx(serde_json::json!("ops"))));
        assert!(!holds(&ctx(serde_json::json!(["staff", "ops-team"]))));
        assert!(!holds(&ctx(serde_json::json!(true))));
        assert!(!holds(&serde_json::Map::new()));
        // Nested, not dotted: `https://example` → `com/roles` is another claim.
        let nested = serde_json::json!({"https://example": {"com/roles": ["ops"]}});
        assert!(!holds(nested.as_object().unwrap()));
        assert!(s.admin.listen.is_none());
    }

    #[test]
    fn roles_default_to_the_groups_claim_and_role_value_is_the_admin_role() {
        let (s, _) = parse(&with(&format!(
            "{DEV}\n[admin]\nroles = {{ admin = \"a\", editor = \"e\", auditor = \"r\" }}"
        )))
        .unwrap();
        let roles = s.admin.roles.unwrap();
        assert_eq!(roles.claim.canonical(), "groups");
        assert_eq!(
            roles.values,
            [
                (Role::Admin, "a".to_string()),
                (Role::Editor, "e".to_string()),
                (Role::Auditor, "r".to_string())
            ]
        );
        let (s, _) = parse(&with(&format!(
            "{DEV}\n[admin]\nrole_claim = \"roles\"\nrole_value = \"a\"\nroles = {{ auditor = \"r\" }}"
        )))
        .unwrap();
        let roles = s.admin.roles.unwrap();
        assert_eq!(roles.claim.canonical(), "roles");
        assert_eq!(
            roles.values,
            [
                (Role::Admin, "a".to_string()),
                (Role::Auditor, "r".to_string())
            ]
        );
    }

    #[test]
    fn admin_settings_problems_name_their_key() {
        for (admin, key) in [
            ("role_claim = \"groups\"", "admin.role_value"),
            ("role_value = \"x\"", "admin.role_claim"),
            (
                "role_claim = \"a..b\"\nrole_value = \"x\"",
                "admin.role_claim",
            ),
            (
                "role_claim = \"groups\"\nrole_value = \"\"",
                "admin.role_value",
            ),
            ("listen = \"nowhere\"", "admin.listen"),
            ("roles = {}", "admin.roles"),
            ("roles = { editor = \"\" }", "admin.roles.editor"),
            ("roles = { owner = \"x\" }", "owner"),
            (
                "role_value = \"a\"\nrole_claim = \"groups\"\nroles = { admin = \"b\" }",
                "given twice",
            ),
            ("max_auth_age = \"soon\"", "admin.max_auth_age"),
        ] {
            let err = parse(&with(&format!("{DEV}\n[admin]\n{admin}")))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{admin}: {err}");
        }
        let err = parse(&with(&format!("{DEV}\n[admin]\nrole = \"x\""))).unwrap_err();
        assert!(err.to_string().contains("role"), "{err}");
    }

    #[test]
    fn limits_default_on_turn_off_with_zero_and_name_bad_keys() {
        let (s, _) = parse(&with(DEV)).unwrap();
        assert_eq!(s.limits.per_ip_per_second.map(|n| n.get()), Some(50));
        assert_eq!(s.limits.per_ip_burst.get(), 100);
        let (s, _) = parse(&with(&format!("{DEV}\n[limits]\nper_ip_per_second = 0"))).unwrap();
        assert!(s.limits.per_ip_per_second.is_none());
        for (limits, key) in [
            ("per_ip_burst = 0", "limits.per_ip_burst"),
            (
                "client_ip_header = \"not a header\"",
                "limits.client_ip_header",
            ),
        ] {
            let err = parse(&with(&format!("{DEV}\n[limits]\n{limits}")))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{limits}: {err}");
        }
    }

    #[test]
    fn auth0_domain_becomes_issuer_with_trailing_slash() {
        let (s, _) = parse(&with(
            r#"[[upstreams]]
            id = "auth0"
            kind = "auth0"
            domain = "example.eu.auth0.com"
            client_id = "abc"
            client_secret_env = "SECRET_FROM_ENV""#,
        ))
        .unwrap();
        let u = s.upstream("auth0").unwrap();
        assert_eq!(u.endpoint.issuer, "https://example.eu.auth0.com/");
        assert_eq!(
            u.client_secret.as_ref().unwrap().expose(),
            "s3cret-from-env"
        );
    }

    #[test]
    fn auth0_domain_with_protocol_is_refused_with_a_fix() {
        let err = parse(&with(
            "[[upstreams]]\nid = \"a\"\nkind = \"auth0\"\ndomain = \"https://x.auth0.com\"\nclient_id = \"c\"",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("upstreams[0].domain"), "{err}");
        assert!(err.to_string().contains("without protocol"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = parse(&with(&format!("{DEV}colour = \"blue\""))).unwrap_err();
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn http_issuer_is_refused_for_public_hosts() {
        let err = parse(&format!(
            "issuer = \"http://login.example.com\"\nlisten = \"127.0.0.1:1\"\ndatabase_url = \"sqlite::memory:\"\n{DEV}"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("issuer:"), "{err}");
    }

    #[test]
    fn missing_secret_env_names_the_variable() {
        let err = parse(&with(
            "[[upstreams]]\nid = \"o\"\nkind = \"oidc\"\nissuer = \"https://idp.example.com\"\nclient_id = \"c\"\nclient_secret_env = \"NOT_SET_ANYWHERE\"",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("NOT_SET_ANYWHERE"), "{err}");
    }

    #[test]
    fn redirect_uri_rules_follow_the_security_bcp() {
        assert!(check_redirect_uri("https://app.example.com/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:9000/cb").is_ok());
        assert!(check_redirect_uri("http://[::1]/cb").is_ok());
        assert!(check_redirect_uri("com.example.app:/cb").is_ok());
        assert!(check_redirect_uri("http://app.example.com/cb").is_err());
        assert!(check_redirect_uri("https://app.example.com/cb#frag").is_err());
        assert!(check_redirect_uri("https://*.example.com/cb").is_err());
        assert!(check_redirect_uri("/relative/cb").is_err());
    }

    #[test]
    fn client_without_secret_is_public_and_secrets_are_hashed() {
        let (s, _) = parse(&with(&format!(
            r#"{DEV}
            [[clients]]
            client_id = "spa"
            redirect_uris = ["http://127.0.0.1:9000/cb"]
            scopes = ["openid"]
            [[clients]]
            client_id = "web"
            client_secret = "a-long-enough-secret"
            redirect_uris = ["https://web.example.com/cb"]
            scopes = ["openid", "profile"]"#
        )))
        .unwrap();
        assert!(s.client("spa").unwrap().is_public());
        let web = s.client("web").unwrap();
        match &web.auth {
            ClientAuth::Secret(h) => {
                assert!(h.verify("a-long-enough-secret"));
                assert!(!h.verify("wrong"));
                assert!(!format!("{h:?}").contains("a-long-enough-secret"));
            }
            other => panic!("web client must use a secret, not {other:?}"),
        }
    }

    #[test]
    fn a_client_credentials_only_client_needs_no_redirect_uris_key() {
        let (s, _) = parse(&with(&format!(
            "{DEV}[[clients]]\nclient_id = \"m2m\"\nclient_secret = \"a-long-enough-secret\"\nscopes = [\"profile\"]\ngrant_types = [\"client_credentials\"]\n"
        )))
        .unwrap();
        assert!(s.client("m2m").unwrap().redirect_uris.is_empty());
    }

    #[test]
    fn client_asking_for_an_undefined_scope_is_refused() {
        let err = parse(&with(&format!(
            "{DEV}[[clients]]\nclient_id = \"c\"\nredirect_uris = [\"https://a.example/cb\"]\nscopes = [\"openid\", \"groups\"]"
        )))
        .unwrap_err();
        assert!(err.to_string().contains("[scopes.groups]"), "{err}");
    }

    fn client_with(extra: &str) -> Result<(Settings, Vec<String>), ConfigError> {
        parse(&with(&format!(
            "{DEV}[[clients]]\nclient_id = \"c\"\nredirect_uris = [\"https://a.example/cb\"]\n\
             scopes = [\"openid\", \"offline_access\"]\n{extra}"
        )))
    }

    #[test]
    fn grant_types_default_to_authorization_code_with_refresh_lifetimes_of_14_and_90_days() {
        let (s, _) = client_with("").unwrap();
        let c = s.client("c").unwrap();
        assert_eq!(c.grant_types, vec![GrantType::AuthorizationCode]);
        assert!(!c.allows(GrantType::RefreshToken));
        assert_eq!(c.refresh_token_idle_ttl, Duration::from_secs(14 * 86_400));
        assert_eq!(
            c.refresh_token_absolute_ttl,
            Duration::from_secs(90 * 86_400)
        );
    }

    #[test]
    fn refresh_tokens_are_opted_into_with_their_lifetimes() {
        let (s, _) = client_with(
            "grant_types = [\"authorization_code\", \"refresh_token\"]\n\
             refresh_token_idle_ttl = \"1h\"\nrefresh_token_absolute_ttl = \"1d\"",
        )
        .unwrap();
        let c = s.client("c").unwrap();
        assert!(c.allows(GrantType::RefreshToken));
        assert_eq!(c.refresh_token_idle_ttl, Duration::from_secs(3600));
        assert_eq!(c.refresh_token_absolute_ttl, Duration::from_secs(86_400));
    }

    #[test]
    fn a_refresh_grace_period_is_opt_in_bounded_and_only_for_refreshing_clients() {
        let refreshing = "grant_types = [\"authorization_code\", \"refresh_token\"]\n";
        let (s, _) = client_with(refreshing).unwrap();
        assert_eq!(
            s.client("c").unwrap().refresh_token_grace_period,
            Duration::ZERO
        );
        let (s, _) =
            client_with(&format!("{refreshing}refresh_token_grace_period = \"3s\"")).unwrap();
        assert_eq!(
            s.client("c").unwrap().refresh_token_grace_period,
            Duration::from_secs(3)
        );
        for (extra, says) in [
            (
                format!("{refreshing}refresh_token_grace_period = \"6m\""),
                "5 minutes",
            ),
            (
                format!("{refreshing}refresh_token_grace_period = \"soon\""),
                "not a duration",
            ),
            (
                "refresh_token_grace_period = \"3s\"".to_string(),
                "no refresh tokens",
            ),
        ] {
            let err = client_with(&extra).unwrap_err().to_string();
            assert!(err.contains("refresh_token_grace_period"), "{err}");
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn unknown_grant_types_and_misplaced_refresh_lifetimes_are_refused_with_their_key() {
        let err = client_with("grant_types = [\"password\"]").unwrap_err();
        assert!(
            err.to_string()
                .contains("clients[0].grant_types: `password`"),
            "{err}"
        );
        let err = client_with("refresh_token_idle_ttl = \"1h\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("add \"refresh_token\" to grant_types"),
            "{err}"
        );
        let err = client_with(
            "grant_types = [\"authorization_code\", \"refresh_token\"]\n\
             refresh_token_idle_ttl = \"2d\"\nrefresh_token_absolute_ttl = \"1d\"",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("refresh_token_idle_ttl: longer"),
            "{err}"
        );
        let err = client_with("grant_types = [\"refresh_token\"]").unwrap_err();
        assert!(
            err.to_string().contains("without \"authorization_code\""),
            "{err}"
        );
    }

    #[test]
    fn client_credentials_needs_a_secret_but_no_redirect_uri_or_openid() {
        let err = client_with("grant_types = [\"client_credentials\"]").unwrap_err();
        assert!(
            err.to_string().contains("needs a confidential client"),
            "{err}"
        );
        let (s, _) = parse(&with(&format!(
            "{DEV}[[clients]]\nclient_id = \"m2m\"\nclient_secret = \"a-long-enough-secret\"\n\
             redirect_uris = []\nscopes = [\"profile\"]\ngrant_types = [\"client_credentials\"]"
        )))
        .unwrap();
        assert_eq!(
            s.client("m2m").unwrap().grant_types,
            vec![GrantType::ClientCredentials]
        );
    }

    #[test]
    fn dev_upstream_issuer_lives_under_herald() {
        let (s, warnings) = parse(&with(DEV)).unwrap();
        assert_eq!(
            s.upstream("dev").unwrap().endpoint.issuer,
            "http://127.0.0.1:8080/dev-upstream"
        );
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("Never use it in production"))
        );
    }
}
