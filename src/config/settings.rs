//! The validated runtime model built from the configuration file (by [`super::validate`]).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::file::UpstreamKind;
use super::roles::AdminRoles;
use crate::claims::{self, LineageRow, ScopeCatalog, UpstreamMapping};
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
    pub server: ServerSettings,
    pub outbox: OutboxSettings,
    /// The declared authentication context (`[[context]]`), in configuration order.
    pub context: Vec<crate::claims::ContextDecl>,
    /// Every client must push its authorization requests (RFC 9126 §5).
    pub require_pushed_authorization_requests: bool,
    /// DPoP proofs must carry one of Herald's nonces (RFC 9449 §8).
    pub require_dpop_nonce: bool,
    /// The APIs access tokens may be issued for (RFC 8707), in configuration order.
    pub resources: Vec<Resource>,
}

/// An API access tokens may be issued for (RFC 8707).
#[derive(Debug, Clone)]
pub struct Resource {
    /// An absolute URI without a fragment: the access token's `aud`.
    pub uri: String,
    /// Its scopes: an access token for it carries no others.
    pub scopes: Vec<String>,
    pub access_token_ttl: Option<Duration>,
    pub alg: Option<Alg>,
}

/// Where events go and how the outbox delivers them.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    pub webhooks: Vec<Webhook>,
    pub hooks: Vec<Hook>,
    pub poll_interval: Duration,
    pub first_retry: Duration,
    pub give_up_after: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            hooks: Vec::new(),
            poll_interval: Duration::from_secs(1),
            first_retry: Duration::from_secs(5),
            give_up_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// The event types Herald emits.
pub const EVENT_TYPES: [&str; 6] = [
    "consent.granted",
    "consent.denied",
    "consent.withdrawn",
    "login.succeeded",
    "user.created",
    "user.deleted",
];

/// A `[[webhooks]]` entry, validated.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    pub secret: Secret,
    /// The event types it gets.
    pub events: Vec<String>,
}

/// A `[[hooks]]` entry, validated.
#[derive(Debug, Clone)]
pub enum Hook {
    /// A OneTrust collection point.
    OneTrust {
        url: String,
        api_token: Secret,
        purpose_id: String,
        skip_if_no_email: bool,
    },
}

/// `[server]`, validated.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    /// `None`: no cap.
    pub max_connections_per_ip: Option<std::num::NonZeroU32>,
    pub max_in_flight: std::num::NonZeroU32,
    pub drain_delay: Duration,
    pub shutdown_timeout: Duration,
    /// How often each replica reloads the signing keys from the store.
    pub key_reload_interval: Duration,
    /// How often each replica polls the store for a newer configuration version.
    pub config_poll_interval: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections_per_ip: std::num::NonZeroU32::new(256),
            max_in_flight: std::num::NonZeroU32::new(2048).expect("not zero"),
            drain_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(30),
            key_reload_interval: Duration::from_secs(crate::tokens::keys::KEY_RELOAD_SECS),
            config_poll_interval: Duration::from_secs(2),
        }
    }
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
    /// Without roles, nobody can sign in to the admin pages (the API still takes tokens).
    pub roles: Option<AdminRoles>,
    /// When set, `/admin` is served only on this address.
    pub listen: Option<SocketAddr>,
    /// An admin's sign-in older than this is renewed at the upstream before a page is served.
    pub max_auth_age: Duration,
}

impl Settings {
    pub fn client(&self, client_id: &str) -> Option<&Arc<Client>> {
        self.clients.get(client_id)
    }

    /// The registered API with identifier `uri` (RFC 8707), compared exactly.
    pub fn resource(&self, uri: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.uri == uri)
    }

    /// Where upstream `upstream_id` sends the browser back after a login: the URL to register
    /// at the upstream (Auth0's Allowed Callback URLs).
    pub fn callback_url(&self, upstream_id: &str) -> String {
        format!("{}/callback/{upstream_id}", self.issuer)
    }

    /// Where every releasable token claim comes from, over every upstream's mappings.
    pub fn lineage(&self) -> Vec<LineageRow> {
        let upstreams: Vec<(&str, &UpstreamMapping)> = self
            .upstreams
            .iter()
            .map(|u| (u.id.as_str(), &u.mapping))
            .collect();
        claims::lineage(&upstreams, &self.scopes)
    }

    /// Every algorithm some client or API (`[[resources]]`) signs with, RS256 always among
    /// them.
    pub fn signing_algs(&self) -> Vec<Alg> {
        let mut algs = vec![Alg::RS256];
        let used = self.clients.values().map(|c| c.signing_alg);
        for alg in used.chain(self.resources.iter().filter_map(|r| r.alg)) {
            if !algs.contains(&alg) {
                algs.push(alg);
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

impl TokenSettings {
    /// How long a signing key stays published after it stops signing: the longest lifetime of
    /// a token it signed, plus five minutes of leeway.
    pub fn retired_key_lifetime(&self) -> i64 {
        self.id_token_ttl.max(self.access_token_ttl).as_secs() as i64 + 300
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
    /// `client_secret` was typed into the admin pages and is stored sealed with the
    /// key-encryption key.
    pub client_secret_sealed: bool,
    /// `client_secret_post`: the secret in the token request's body, not HTTP Basic.
    pub secret_in_body: bool,
    pub scopes: Vec<String>,
    pub userinfo: bool,
    pub logout: bool,
    pub extra_authorize_params: BTreeMap<String, String>,
    pub mapping: UpstreamMapping,
    pub auth_context_ttl: Option<Duration>,
    /// The longest one request to the upstream may take (discovery, JWKS, token, userinfo).
    pub timeout: Duration,
    /// A first login with a verified email joins the user with that verified email.
    pub link_by_verified_email: bool,
    /// `false`: only users that exist already may log in.
    pub allow_signup: bool,
    /// Keep the upstream's refresh token and refresh stale logins with it.
    pub refresh_upstream: bool,
    /// What a refresh of a stale login does when the upstream cannot be reached.
    pub when_unavailable: WhenUnavailable,
    /// kind = auth0: the Management API's base URL (default: the tenant's domain).
    pub management_api_url: Option<String>,
    /// Authorization parameters of the app passed on to this upstream.
    pub pass_through: Vec<String>,
    /// `prompt=none` is tried silently at this upstream.
    pub silent_login: bool,
    /// The post-authentication application users are sent to after this upstream's login.
    pub post_login: Option<PostLogin>,
}

/// A post-authentication application (onboarding, profile completion).
#[derive(Debug, Clone)]
pub struct PostLogin {
    /// Where the user is sent, with `token` added to its query.
    pub url: String,
    /// The client whose registered keys sign the `context` it sends back.
    pub client_id: String,
}

/// What a refresh of a stale login does when the upstream cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenUnavailable {
    /// Refuse (the default): claims are never older than the TTL.
    #[default]
    Fail,
    /// Serve the stored claims for at most this long past the TTL.
    ServeStale(Duration),
}

/// Where Herald's client secret at an upstream comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// No secret: a public client at the upstream.
    None,
    /// Typed into the admin pages or API, stored sealed with the key-encryption key.
    Stored,
    /// The environment variable named by `client_secret_env`.
    Env,
    /// Written inline in the configuration file (never stored).
    File,
}

impl SecretSource {
    /// The admin API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretSource::None => "none",
            SecretSource::Stored => "stored",
            SecretSource::Env => "env",
            SecretSource::File => "file",
        }
    }
}

impl Upstream {
    pub fn secret_source(&self) -> SecretSource {
        match (&self.client_secret, &self.client_secret_env) {
            (None, _) => SecretSource::None,
            (Some(_), Some(_)) => SecretSource::Env,
            (Some(_), None) if self.client_secret_sealed => SecretSource::Stored,
            (Some(_), None) => SecretSource::File,
        }
    }

    /// kind = auth0: the tenant's domain, as its issuer names it.
    pub fn auth0_domain(&self) -> Option<String> {
        (self.kind == UpstreamKind::Auth0).then(|| {
            let issuer = self.endpoint.issuer.as_str();
            let host = issuer.strip_prefix("https://").unwrap_or(issuer);
            host.trim_end_matches('/').to_string()
        })
    }
}

/// Where an upstream lives: the issuer exactly as its discovery document must state it, and
/// the hosts besides the issuer's that its discovery document may name for the token, JWKS
/// and userinfo endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamEndpoint {
    pub issuer: String,
    pub allowed_endpoint_hosts: Vec<String>,
}

#[derive(Debug)]
pub struct Client {
    pub client_id: String,
    pub client_name: String,
    pub auth: ClientAuth,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub trusted: bool,
    /// Who may get this app's tokens (checked at each login and refresh).
    pub access_policy: Option<super::policy::AccessPolicy>,
    /// Authorization requests only through `/par` (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// Token requests must carry a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    /// The grants this client may use at the token endpoint.
    pub grant_types: Vec<GrantType>,
    pub refresh_token_idle_ttl: Duration,
    /// How long a rotated refresh token may be used once more (0: never).
    pub refresh_token_grace_period: Duration,
    pub refresh_token_absolute_ttl: Duration,
    /// The algorithm of this client's ID and access tokens.
    pub signing_alg: Alg,
    pub post_logout_redirect_uris: Vec<String>,
    /// Where logout tokens go (Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    /// When the admin API registered this client (0 for one from the file): a client's own
    /// token issued before is from an earlier client of the same id, and is refused.
    pub registered_at: i64,
    /// The secret a rotation replaced, still accepted until it expires.
    pub previous_secret: Option<PreviousSecret>,
    /// Where people learn about the app: its logo, home page, privacy policy and terms.
    pub links: ClientLinks,
}

/// RFC 7591 §2's human-facing client metadata, each an https URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientLinks {
    pub logo_uri: Option<String>,
    pub client_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
}

/// A client's secret before its last rotation, kept working for a grace period so the app
/// can be redeployed with the new one without a moment of refused requests.
#[derive(Debug, Clone)]
pub struct PreviousSecret {
    pub hash: SecretHash,
    /// Unix time from which it is refused.
    pub expires_at: i64,
}

impl PreviousSecret {
    pub fn is_live(&self, now: i64) -> bool {
        now < self.expires_at
    }
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
    /// RFC 8693.
    TokenExchange,
}

impl GrantType {
    pub const ALL: [GrantType; 4] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::TokenExchange,
    ];

    /// The registered name, as in `grant_type` and `grant_types_supported`.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
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
