//! The validated runtime model built from the configuration file.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::ConfigError;
use super::file::{
    AdminFile, ClientFile, ConfigFile, LimitsFile, TokenFile, UpstreamFile, UpstreamKind,
};
use crate::claims::{self, ClaimPath, ScopeCatalog, UpstreamMapping};
use crate::secret::Secret;
use crate::tokens::{Alg, SecretHash};

/// Everything Herald runs on, validated. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Settings {
    /// Herald's issuer without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub issuer: String,
    pub listen: SocketAddr,
    pub database_url: String,
    pub session_store: Option<String>,
    pub tokens: TokenSettings,
    /// In configuration order; the first is the default when there is only one.
    pub upstreams: Vec<Arc<Upstream>>,
    pub clients: HashMap<String, Arc<Client>>,
    pub scopes: ScopeCatalog,
    pub admin: AdminSettings,
    pub limits: LimitSettings,
}

/// `[limits]`, validated.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Requests per second per client address; `None`: no limit.
    pub per_ip_per_second: Option<std::num::NonZeroU32>,
    pub per_ip_burst: std::num::NonZeroU32,
    /// The header a load balancer appends the client address to.
    pub client_ip_header: Option<axum::http::HeaderName>,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            per_ip_per_second: std::num::NonZeroU32::new(50),
            per_ip_burst: std::num::NonZeroU32::new(100).expect("not zero"),
            client_ip_header: None,
        }
    }
}

/// The longest grace period a client may give its rotated refresh tokens (Hydra's limit too).
pub const MAX_REFRESH_GRACE: Duration = Duration::from_secs(300);

/// How old an admin's sign-in may be, by default.
pub const DEFAULT_ADMIN_AUTH_AGE: Duration = Duration::from_secs(3600);

/// `[admin]`: who may use the admin pages and where the admin surface listens.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// Without a role, nobody can sign in to the admin pages (the API still takes tokens).
    pub role: Option<AdminRole>,
    /// When set, `/admin` is served only on this address.
    pub listen: Option<SocketAddr>,
    /// An admin's sign-in older than this is renewed at the upstream before a page is served.
    pub max_auth_age: Duration,
}

/// A user is an admin when this claim of their authentication context equals the value or, for
/// an array, contains it.
#[derive(Debug, Clone)]
pub struct AdminRole {
    pub claim: ClaimPath,
    pub value: String,
}

impl AdminRole {
    pub fn holds(&self, context: &serde_json::Map<String, serde_json::Value>) -> bool {
        match self.claim.get(context) {
            Some(serde_json::Value::String(s)) => *s == self.value,
            Some(serde_json::Value::Array(items)) => {
                items.iter().any(|v| v.as_str() == Some(&self.value))
            }
            _ => false,
        }
    }
}

impl Settings {
    pub fn client(&self, client_id: &str) -> Option<&Arc<Client>> {
        self.clients.get(client_id)
    }

    /// Every algorithm some client signs with, RS256 always among them.
    pub fn signing_algs(&self) -> Vec<Alg> {
        let mut algs = vec![Alg::RS256];
        for c in self.clients.values() {
            if !algs.contains(&c.signing_alg) {
                algs.push(c.signing_alg);
            }
        }
        algs
    }

    pub fn upstream(&self, id: &str) -> Option<&Arc<Upstream>> {
        self.upstreams.iter().find(|u| u.id == id)
    }

    /// Where browsers reach the admin pages when `[admin] listen` gives them a listener of their
    /// own: the issuer's scheme and host at the admin listener's port. Signing in to the pages
    /// needs the browser's Herald session, whose cookie belongs to the issuer's host (cookies are
    /// not specific to a port), so this is the one place the pages can sign admins in.
    pub fn admin_origin(&self) -> Option<String> {
        let port = self.admin.listen?.port();
        let issuer = Url::parse(&self.issuer).ok()?;
        Some(format!(
            "{}://{}:{port}",
            issuer.scheme(),
            issuer.host_str()?
        ))
    }

    /// True when the issuer is an `http://` loopback URL: development and tests.
    pub fn is_development_issuer(&self) -> bool {
        Url::parse(&self.issuer)
            .map(|u| u.scheme() == "http" && u.host_str().is_some_and(is_loopback_host))
            .unwrap_or(false)
    }
}

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub authorization_code_ttl: Duration,
    pub id_token_ttl: Duration,
    pub access_token_ttl: Duration,
    pub session_ttl: Duration,
    pub login_ttl: Duration,
}

#[derive(Debug)]
pub struct Upstream {
    pub id: String,
    pub kind: UpstreamKind,
    pub display_name: String,
    pub endpoint: UpstreamEndpoint,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// The environment variable `client_secret` was read from, if it was (a name, not a secret).
    pub client_secret_env: Option<String>,
    pub scopes: Vec<String>,
    pub userinfo: bool,
    pub logout: bool,
    pub extra_authorize_params: BTreeMap<String, String>,
    pub mapping: UpstreamMapping,
    pub auth_context_ttl: Option<Duration>,
}

/// Where an upstream lives: the issuer exactly as its discovery document must state it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamEndpoint {
    pub issuer: String,
}

#[derive(Debug)]
pub struct Client {
    pub client_id: String,
    pub client_name: String,
    pub auth: ClientAuth,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub trusted: bool,
    /// The grants this client may use at the token endpoint.
    pub grant_types: Vec<GrantType>,
    pub refresh_token_idle_ttl: Duration,
    /// How long a rotated refresh token may be used once more (0: never).
    pub refresh_token_grace_period: Duration,
    pub refresh_token_absolute_ttl: Duration,
    /// The algorithm of this client's ID and access tokens.
    pub signing_alg: Alg,
    pub post_logout_redirect_uris: Vec<String>,
    /// When the admin API registered this client (0 for one from the file): a client's own
    /// token issued before is from an earlier client of the same id, and is refused.
    pub registered_at: i64,
}

impl Client {
    pub fn is_public(&self) -> bool {
        matches!(self.auth, ClientAuth::None)
    }

    /// Whether the client registered `grant` (otherwise `unauthorized_client`, RFC 6749 §5.2).
    /// Whether a token this client's id was issued at `iat` came from an earlier client of the
    /// same id (deleted, then registered again); such a client_credentials token is refused.
    pub fn predates_registration(&self, iat: i64) -> bool {
        iat < self.registered_at
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Exact, character-for-character comparison (RFC 9700 §2.1; OIDC Core §3.1.2.1).
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }
}

/// The grant types Herald implements (RFC 6749 §4.1, §4.4, §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    /// The registered name, as in `grant_type` and `grant_types_supported`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(s: &str) -> Option<GrantType> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// How a client proves itself at the token endpoint.
#[derive(Debug)]
pub enum ClientAuth {
    /// A public client: no secret, PKCE is mandatory.
    None,
    /// client_secret_basic or client_secret_post against a stored hash.
    Secret(SecretHash),
    /// private_key_jwt (RFC 7523 §2.2): an assertion signed with a key of the client's JWKS.
    PrivateKeyJwt(Arc<jsonwebtoken::jwk::JwkSet>),
}

pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Turns the parsed file into [`Settings`], collecting every problem. `env` reads an environment
/// variable (injected so tests need not touch the process environment).
pub(super) fn validate(
    file: ConfigFile,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Settings, Vec<String>), ConfigError> {
    let mut v = Validator::default();

    let issuer = v.issuer(&file.issuer);
    let listen = match file.listen.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            v.problem(format!(
                "listen: `{}` is not an address and port; write it like \"127.0.0.1:8080\"",
                file.listen
            ));
            None
        }
    };
    if !(file.database_url.starts_with("sqlite:")
        || file.database_url.starts_with("postgres://")
        || file.database_url.starts_with("postgresql://"))
    {
        v.problem(
            "database_url: must start with sqlite:// (for example \"sqlite://data/herald.db\") \
             or postgres://",
        );
    }
    if let Some(store) = &file.session_store
        && !(store.starts_with("redis://") || store.starts_with("rediss://"))
    {
        v.problem(
            "session_store: only \"redis://host:port\" (or rediss://) is supported; remove the \
             key to keep browser sessions in the main database",
        );
    }
    let tokens = v.tokens(&file.tokens);
    let admin = v.admin(&file.admin);
    let limits = v.limits(&file.limits);

    let scopes = match ScopeCatalog::new(file.scopes) {
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
    for (i, u) in file.upstreams.into_iter().enumerate() {
        if let Some(u) = v.upstream(i, u, issuer.as_deref(), env) {
            if upstreams.iter().any(|o: &Upstream| o.id == u.id) {
                v.problem(format!("upstreams[{i}].id: `{}` is used twice", u.id));
            }
            upstreams.push(u);
        }
    }

    let mut clients = HashMap::new();
    for (i, c) in file.clients.into_iter().enumerate() {
        if let Some(c) = v.client(i, c, scopes.as_ref(), env) {
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

    let dev_issuer = issuer.as_deref().is_some_and(|iss| {
        Url::parse(iss)
            .is_ok_and(|u| u.scheme() == "http" && u.host_str().is_some_and(is_loopback_host))
    });
    for u in &upstreams {
        if u.kind == UpstreamKind::Dev {
            if !dev_issuer {
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

    match (issuer, listen, tokens, scopes, v.problems.is_empty()) {
        (Some(issuer), Some(listen), Some(tokens), Some(scopes), true) => Ok((
            Settings {
                issuer,
                listen,
                database_url: file.database_url,
                session_store: file.session_store,
                tokens,
                upstreams: upstreams.into_iter().map(Arc::new).collect(),
                clients,
                scopes,
                admin,
                limits,
            },
            v.warnings,
        )),
        _ => Err(ConfigError {
            problems: v.problems,
        }),
    }
}

#[derive(Default)]
struct Validator {
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl Validator {
    fn admin(&mut self, file: &AdminFile) -> AdminSettings {
        let role = match (&file.role_claim, &file.role_value) {
            (Some(claim), Some(value)) => match ClaimPath::parse(claim) {
                Ok(claim) if !value.is_empty() => Some(AdminRole {
                    claim,
                    value: value.clone(),
                }),
                Ok(_) => {
                    self.problem("admin.role_value: must not be empty");
                    None
                }
                Err(e) => {
                    self.problem(format!("admin.role_claim: {e}"));
                    None
                }
            },
            (None, None) => None,
            (Some(_), None) => {
                self.problem(
                    "admin.role_value: needed with role_claim; write the value the claim must \
                     hold, e.g. role_value = \"herald-admins\"",
                );
                None
            }
            (None, Some(_)) => {
                self.problem(
                    "admin.role_claim: needed with role_value; write the context claim that \
                     carries it, e.g. role_claim = \"groups\"",
                );
                None
            }
        };
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
            role,
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

    fn upstream(
        &mut self,
        i: usize,
        u: UpstreamFile,
        herald_issuer: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Upstream> {
        let key = format!("upstreams[{i}]");
        let before = self.problems.len();
        if u.id.is_empty()
            || !u
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.problem(format!(
                "{key}.id: `{}` must be letters, digits, - or _ (it appears in the callback URL)",
                u.id
            ));
        }
        let issuer = match u.kind {
            UpstreamKind::Auth0 => {
                if u.issuer.is_some() {
                    self.problem(format!(
                        "{key}.issuer: kind = \"auth0\" takes `domain` (e.g. \
                         \"example.eu.auth0.com\"), not issuer"
                    ));
                }
                match u.domain.as_deref() {
                    Some(d)
                        if !d.is_empty()
                            && !d.contains("://")
                            && !d.contains('/')
                            && Url::parse(&format!("https://{d}/")).is_ok() =>
                    {
                        Some(format!("https://{d}/"))
                    }
                    Some(d) => {
                        self.problem(format!(
                            "{key}.domain: `{d}` must be the tenant's domain without protocol or \
                             path, like \"example.eu.auth0.com\""
                        ));
                        None
                    }
                    None => {
                        self.problem(format!(
                            "{key}.domain: kind = \"auth0\" needs the tenant's domain, like \
                             \"example.eu.auth0.com\""
                        ));
                        None
                    }
                }
            }
            UpstreamKind::Oidc => {
                if u.domain.is_some() {
                    self.problem(format!(
                        "{key}.domain: kind = \"oidc\" takes `issuer`, not domain"
                    ));
                }
                match u.issuer.as_deref().map(Url::parse) {
                    Some(Ok(url))
                        if url.scheme() == "https"
                            || (url.scheme() == "http"
                                && url.host_str().is_some_and(is_loopback_host)) =>
                    {
                        u.issuer.clone()
                    }
                    Some(_) => {
                        self.problem(format!(
                            "{key}.issuer: `{}` must be an https:// URL (http:// only for \
                             loopback hosts)",
                            u.issuer.as_deref().unwrap_or_default()
                        ));
                        None
                    }
                    None => {
                        self.problem(format!(
                            "{key}.issuer: kind = \"oidc\" needs the provider's issuer, like \
                             \"https://idp.example.com\""
                        ));
                        None
                    }
                }
            }
            UpstreamKind::Dev => herald_issuer.map(|iss| format!("{iss}/dev-upstream")),
        };
        let client_id = match (u.kind, u.client_id) {
            (UpstreamKind::Dev, id) => Some(id.unwrap_or_else(|| "herald".into())),
            (_, Some(id)) if !id.is_empty() => Some(id),
            _ => {
                self.problem(format!(
                    "{key}.client_id: the client ID Herald has at this upstream is required"
                ));
                None
            }
        };
        let client_secret_env = u.client_secret_env.clone();
        let client_secret = self.secret(
            &format!("{key}.client_secret"),
            u.client_secret,
            u.client_secret_env,
            env,
        );
        let scopes = u
            .scopes
            .unwrap_or_else(|| vec!["openid".into(), "profile".into(), "email".into()]);
        if !scopes.iter().any(|s| s == "openid") {
            self.problem(format!(
                "{key}.scopes: must contain \"openid\"; Herald logs users in with OpenID Connect"
            ));
        }
        for reserved in [
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "nonce",
            "code_challenge",
            "code_challenge_method",
        ] {
            if u.extra_authorize_params.contains_key(reserved) {
                self.problem(format!(
                    "{key}.extra_authorize_params: `{reserved}` is set by Herald itself; remove it"
                ));
            }
        }
        let amr = u.amr.map(|a| a.into_vec());
        let mapping = UpstreamMapping {
            attributes: u.attributes,
            mappings: u.mappings,
            amr,
        };
        match claims::validate_upstream(&mapping, u.userinfo) {
            Ok(warnings) => self
                .warnings
                .extend(warnings.into_iter().map(|w| format!("{key}: {w}"))),
            Err(e) => self.problem(format!("{key}: {e}")),
        }
        let ttl = match u.auth_context_ttl.as_deref() {
            None => None,
            Some(raw) => self.duration(
                &format!("{key}.auth_context_ttl"),
                Some(raw),
                Duration::ZERO,
            ),
        };
        if self.problems.len() != before {
            return None;
        }
        Some(Upstream {
            display_name: u.display_name.unwrap_or_else(|| match u.kind {
                UpstreamKind::Dev => "Development login (not for production)".into(),
                _ => u.id.clone(),
            }),
            id: u.id,
            kind: u.kind,
            endpoint: UpstreamEndpoint { issuer: issuer? },
            client_id: client_id?,
            client_secret,
            client_secret_env,
            scopes,
            userinfo: u.userinfo,
            logout: u.logout,
            extra_authorize_params: u.extra_authorize_params,
            mapping,
            auth_context_ttl: ttl,
        })
    }

    fn client(
        &mut self,
        i: usize,
        c: ClientFile,
        scopes: Option<&ScopeCatalog>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Client> {
        let key = format!("clients[{i}]");
        let before = self.problems.len();
        if c.client_id.is_empty() || c.client_id.chars().any(|ch| ch.is_control() || ch == ' ') {
            self.problem(format!(
                "{key}.client_id: must be non-empty, without spaces or control characters"
            ));
        }
        if c.client_id == super::reserved::ACCOUNT_CLIENT_ID {
            self.problem(format!(
                "{key}.client_id: `{}` is reserved for Herald's own consent center; choose \
                 another",
                c.client_id
            ));
        }
        let grant_types = self.grant_types(&key, c.grant_types.as_deref());
        // A machine-to-machine client (client_credentials only) never sees /authorize.
        let logs_users_in = grant_types
            .as_ref()
            .is_none_or(|g| g.contains(&GrantType::AuthorizationCode));
        if c.redirect_uris.is_empty() && logs_users_in {
            self.problem(format!(
                "{key}.redirect_uris: at least one redirect URI is needed"
            ));
        }
        for (j, uri) in c.redirect_uris.iter().enumerate() {
            if let Err(why) = check_redirect_uri(uri) {
                self.problem(format!("{key}.redirect_uris[{j}]: `{uri}` {why}"));
            }
        }
        if let Some(catalog) = scopes {
            for s in &c.scopes {
                if s == super::reserved::ADMIN_SCOPE {
                    // Built in, and never a user's: only a client acting for itself gets it.
                    if logs_users_in {
                        self.problem(format!(
                            "{key}.scopes: `{s}` lets a client administer Herald and is only for \
                             clients with grant_types = [\"client_credentials\"]"
                        ));
                    }
                } else if catalog.get(s).is_none() {
                    self.problem(format!(
                        "{key}.scopes: `{s}` is not a known scope; define it under [scopes.{s}] \
                         or remove it"
                    ));
                }
            }
        }
        if logs_users_in && !c.scopes.iter().any(|s| s == "openid") {
            self.problem(format!(
                "{key}.scopes: must contain \"openid\" so the client can log users in"
            ));
        }
        let idle = self.duration(
            &format!("{key}.refresh_token_idle_ttl"),
            c.refresh_token_idle_ttl.as_deref(),
            Duration::from_secs(14 * 86_400),
        );
        let absolute = self.duration(
            &format!("{key}.refresh_token_absolute_ttl"),
            c.refresh_token_absolute_ttl.as_deref(),
            Duration::from_secs(90 * 86_400),
        );
        if let (Some(i), Some(a)) = (idle, absolute)
            && i > a
        {
            self.problem(format!(
                "{key}.refresh_token_idle_ttl: longer than refresh_token_absolute_ttl; make it \
                 shorter (for example \"14d\" idle within \"90d\" absolute)"
            ));
        }
        let grace = match c.refresh_token_grace_period.as_deref() {
            None => Some(Duration::ZERO),
            Some(raw) => match humantime::parse_duration(raw) {
                Ok(d) if d <= MAX_REFRESH_GRACE => Some(d),
                Ok(_) => {
                    self.problem(format!(
                        "{key}.refresh_token_grace_period: `{raw}` is longer than the 5 minutes \
                         allowed; a reused refresh token is a leak unless it comes back at once"
                    ));
                    None
                }
                Err(_) => {
                    self.problem(format!(
                        "{key}.refresh_token_grace_period: `{raw}` is not a duration; write it \
                         like \"0s\", \"3s\" or \"1m\""
                    ));
                    None
                }
            },
        };
        let refreshes = grant_types
            .as_ref()
            .is_some_and(|g| g.contains(&GrantType::RefreshToken));
        if !refreshes
            && (c.refresh_token_idle_ttl.is_some()
                || c.refresh_token_absolute_ttl.is_some()
                || c.refresh_token_grace_period.is_some())
        {
            self.problem(format!(
                "{key}.refresh_token_idle_ttl/refresh_token_absolute_ttl/\
                 refresh_token_grace_period: this client gets no refresh tokens; add \
                 \"refresh_token\" to grant_types or remove these keys"
            ));
        }
        if refreshes && !c.scopes.iter().any(|s| s == "offline_access") {
            self.warnings.push(format!(
                "{key}: grant_types has \"refresh_token\" but scopes lacks \"offline_access\"; \
                 refresh tokens are issued only when offline_access is granted"
            ));
        }
        let stored_hash = match c.client_secret_hash.as_deref() {
            None => None,
            Some(_) if c.client_secret.is_some() || c.client_secret_env.is_some() => {
                self.problem(format!(
                    "{key}.client_secret_hash: set one of client_secret, client_secret_env or \
                     client_secret_hash"
                ));
                None
            }
            Some(h) => match SecretHash::from_stored(h) {
                Some(h) => Some(h),
                None => {
                    self.problem(format!(
                        "{key}.client_secret_hash: not a stored secret hash; write an argon2 PHC \
                         string (\"$argon2id$...\") or \"sha256:\" and a base64url digest"
                    ));
                    None
                }
            },
        };
        let secret = self.secret(
            &format!("{key}.client_secret"),
            c.client_secret,
            c.client_secret_env,
            env,
        );
        if secret.as_ref().is_some_and(|s| s.expose().len() < 8) {
            self.problem(format!(
                "{key}.client_secret: too short; use at least 8 characters (32 random bytes is \
                 better)"
            ));
        }
        if secret.is_none()
            && c.jwks.is_none()
            && stored_hash.is_none()
            && c.client_secret_hash.is_none()
            && grant_types
                .as_ref()
                .is_some_and(|g| g.contains(&GrantType::ClientCredentials))
        {
            self.problem(format!(
                "{key}.grant_types: \"client_credentials\" needs a confidential client (RFC 6749 \
                 §4.4); set client_secret_env or jwks (private_key_jwt), or remove the grant"
            ));
        }
        if self.problems.len() != before {
            return None;
        }
        if stored_hash.is_some() && c.jwks.is_some() {
            self.problem(format!(
                "{key}.jwks: a client authenticates with a secret or with private_key_jwt (jwks), \
                 not both; remove client_secret_hash or jwks"
            ));
            return None;
        }
        let auth = match (secret, c.jwks) {
            (Some(_), Some(_)) => {
                self.problem(format!(
                    "{key}.jwks: a client authenticates with a secret or with private_key_jwt \
                     (jwks), not both; remove one"
                ));
                return None;
            }
            (None, Some(jwks)) => match serde_json::from_value::<jsonwebtoken::jwk::JwkSet>(jwks) {
                Ok(set) if !set.keys.is_empty() => ClientAuth::PrivateKeyJwt(Arc::new(set)),
                Ok(_) => {
                    self.problem(format!("{key}.jwks: has no keys"));
                    return None;
                }
                Err(e) => {
                    self.problem(format!(
                        "{key}.jwks: not a JWK Set ({e}); write jwks = {{ keys = [ {{ kty = \"EC\", ... }} ] }}"
                    ));
                    return None;
                }
            },
            (secret, None) => match secret {
                None if stored_hash.is_some() => ClientAuth::Secret(stored_hash?),
                None => ClientAuth::None,
                Some(s) => match SecretHash::argon2(s.expose()) {
                    Ok(h) => ClientAuth::Secret(h),
                    Err(e) => {
                        self.problem(format!("{key}.client_secret: cannot be hashed: {e}"));
                        return None;
                    }
                },
            },
        };
        let signing_alg = match c.id_token_signed_response_alg.as_deref() {
            None => Some(Alg::RS256),
            Some(raw) => match Alg::parse(raw) {
                Some(alg) => Some(alg),
                None => {
                    self.problem(format!(
                        "{key}.id_token_signed_response_alg: `{raw}` is not supported; use \
                         \"RS256\", \"ES256\" or \"EdDSA\""
                    ));
                    None
                }
            },
        };
        for (j, uri) in c.post_logout_redirect_uris.iter().enumerate() {
            if let Err(why) = check_redirect_uri(uri) {
                self.problem(format!(
                    "{key}.post_logout_redirect_uris[{j}]: `{uri}` {why}"
                ));
            }
        }
        Some(Client {
            client_name: c.client_name.unwrap_or_else(|| c.client_id.clone()),
            client_id: c.client_id,
            auth,
            redirect_uris: c.redirect_uris,
            scopes: c.scopes,
            trusted: c.trusted,
            grant_types: grant_types?,
            refresh_token_idle_ttl: idle?,
            refresh_token_grace_period: grace?,
            refresh_token_absolute_ttl: absolute?,
            signing_alg: signing_alg?,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            registered_at: c.registered_at.unwrap_or(0),
        })
    }

    fn grant_types(&mut self, key: &str, raw: Option<&[String]>) -> Option<Vec<GrantType>> {
        let Some(raw) = raw else {
            return Some(vec![GrantType::AuthorizationCode]);
        };
        if raw.is_empty() {
            self.problem(format!(
                "{key}.grant_types: empty; remove the key for [\"authorization_code\"] or list \
                 the grants the client uses"
            ));
            return None;
        }
        let mut out = Vec::new();
        for g in raw {
            match GrantType::parse(g) {
                Some(g) if !out.contains(&g) => out.push(g),
                Some(_) => {}
                None => {
                    self.problem(format!(
                        "{key}.grant_types: `{g}` is not supported; use \"authorization_code\", \
                         \"refresh_token\" or \"client_credentials\""
                    ));
                    return None;
                }
            }
        }
        if out.contains(&GrantType::RefreshToken) && !out.contains(&GrantType::AuthorizationCode) {
            self.problem(format!(
                "{key}.grant_types: \"refresh_token\" without \"authorization_code\" issues \
                 nothing; refresh tokens come from logins, so add \"authorization_code\""
            ));
            return None;
        }
        Some(out)
    }
}

/// Registration rules for redirect URIs (RFC 9700 §2.1, §4.1; RFC 8252 §7): absolute, no
/// fragment, no wildcard, `http:` only for loopback hosts.
pub fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    let url = Url::parse(uri).map_err(|_| "is not an absolute URL")?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err("must not contain a fragment (RFC 6749 §3.1.2)");
    }
    if uri.contains('*') {
        return Err("must not contain a wildcard; register each URI exactly");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host_str().is_some_and(is_loopback_host) => Ok(()),
        "http" => Err("uses http:// on a host that is not loopback; use https://"),
        // Private-use schemes of native apps use reverse domain names (RFC 8252 §7.1).
        s if s.contains('.') => Ok(()),
        _ => Err("must be https://, loopback http://, or a reverse-domain private-use scheme"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_admin_role_is_a_context_claim_holding_a_value() {
        let (s, _) = parse(&with(&format!(
            "{DEV}\n[admin]\nrole_claim = 'https://example\\.com/roles'\nrole_value = \"ops\""
        )))
        .unwrap();
        let role = s.admin.role.unwrap();
        let ctx = |v: serde_json::Value| {
            serde_json::json!({ "https://example.com/roles": v })
                .as_object()
                .unwrap()
                .clone()
        };
        assert!(role.holds(&ctx(serde_json::json!(["staff", "ops"]))));
        assert!(role.holds(&ctx(serde_json::json!("ops"))));
        assert!(!role.holds(&ctx(serde_json::json!(["staff", "ops-team"]))));
        assert!(!role.holds(&ctx(serde_json::json!(true))));
        assert!(!role.holds(&serde_json::Map::new()));
        // Nested, not dotted: `https://example` → `com/roles` is another claim.
        let nested = serde_json::json!({"https://example": {"com/roles": ["ops"]}});
        assert!(!role.holds(nested.as_object().unwrap()));
        assert!(s.admin.listen.is_none());
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
