//! The TOML file's shape, exactly as people write it. Unknown keys are errors.
//!
//! [`UpstreamFile`] and [`ClientFile`] are also the entries of the managed document in the store:
//! the admin changes write them with serde, leaving out what is absent or at its default, so a
//! written entry reads like one a person wrote and parses back to the same values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::claims::{Attribute, Mapping, PurposeDef, ScopeDef};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Herald's own issuer identifier, e.g. `https://login.example.com`. `HERALD_ISSUER`
    /// overrides it; one of the two is required.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Address the public listener binds, e.g. `127.0.0.1:8080`. `HERALD_LISTEN` overrides it.
    #[serde(default)]
    pub listen: Option<String>,
    /// `sqlite://path` (created on first start) or `postgres://...`. `HERALD_DATABASE_URL`
    /// overrides it, so a database password need not be written in a file.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Where browser sessions live; default: the main database. `HERALD_SESSION_STORE`
    /// overrides it.
    #[serde(default)]
    pub session_store: Option<String>,
    /// `text` (the default) or `json`: one JSON object per log line. `HERALD_LOG_FORMAT`
    /// overrides it. Read by the command line before the rest of the file.
    #[serde(default)]
    pub log_format: Option<String>,
    #[serde(default)]
    pub tokens: TokenFile,
    #[serde(default)]
    pub upstreams: Vec<UpstreamFile>,
    #[serde(default)]
    pub clients: Vec<ClientFile>,
    /// APIs access tokens may be issued for (RFC 8707 resource indicators).
    #[serde(default)]
    pub resources: Vec<ResourceFile>,
    /// Custom scopes, and redefinitions of the built-in ones.
    #[serde(default)]
    pub scopes: BTreeMap<String, ScopeDef>,
    /// What data is used for (`[purposes.marketing]`); a scope may name the purpose it serves.
    #[serde(default)]
    pub purposes: BTreeMap<String, PurposeDef>,
    /// Who may use the admin pages, and where the admin surface listens.
    #[serde(default)]
    pub admin: AdminFile,
    /// Rate limits per client address.
    #[serde(default)]
    pub limits: LimitsFile,
    /// How connections are served and how Herald shuts down.
    #[serde(default)]
    pub server: ServerFile,
    /// Signed webhooks: events POSTed to each URL, from the durable outbox.
    #[serde(default)]
    pub webhooks: Vec<WebhookFile>,
    /// Post-login hooks (a OneTrust collection point), from the durable outbox.
    #[serde(default)]
    pub hooks: Vec<HookFile>,
    /// How the outbox delivers: how often it looks, how soon it retries, when it gives up.
    #[serde(default)]
    pub outbox: OutboxFile,
    /// OpenTelemetry traces. Read by the command line before the rest of the file.
    #[serde(default)]
    pub telemetry: TelemetryFile,
    /// The declared authentication context: `[[context]]` entries (`path`, `type`,
    /// `description`).
    #[serde(default)]
    pub context: Vec<crate::claims::ContextDecl>,
    /// A mapping to an undeclared context path is an error instead of a warning.
    #[serde(default)]
    pub strict_context: bool,
    /// Every client must push its authorization requests to `/par` (RFC 9126 §5); discovery
    /// says so.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// DPoP proofs must carry a nonce Herald handed out (RFC 9449 §8), which bounds how long a
    /// proof made in advance stays usable.
    #[serde(default)]
    pub require_dpop_nonce: bool,
}

/// `[telemetry]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryFile {
    /// An OTLP/HTTP collector, like `http://otel-collector:4318`: spans are sent to its
    /// `/v1/traces` as JSON. Unset: no traces.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of Herald's spans. Default `herald`.
    pub service_name: Option<String>,
}

/// `[[resources]]`: an API that apps may ask access tokens for with `resource` (RFC 8707).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceFile {
    /// The API's identifier, an absolute URI without a fragment: the access token's `aud`.
    pub uri: String,
    /// The scopes that belong to this API (each a defined scope); its tokens carry no others.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How long its access tokens live; default `[tokens] access_token_ttl`.
    pub access_token_ttl: Option<String>,
    /// `RS256`, `ES256` or `EdDSA`; default the client's algorithm.
    pub access_token_signed_response_alg: Option<String>,
}

/// `[[webhooks]]`: where events go, signed with a secret from the environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    pub url: String,
    /// The environment variable holding the signing secret (at least 32 characters).
    pub secret_env: Option<String>,
    /// The signing secret itself, for development; prefer `secret_env`.
    pub secret: Option<String>,
    /// Event types sent; every type when absent.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// `[[hooks]]`: called after every successful upstream login.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookFile {
    /// `onetrust`: a OneTrust collection point.
    pub kind: String,
    /// The collection point's API URL.
    pub url: String,
    /// The environment variable holding the collection point's API token.
    pub api_token_env: Option<String>,
    /// The API token itself, for development; prefer `api_token_env`.
    pub api_token: Option<String>,
    /// The collection point's purpose id.
    pub purpose_id: String,
    /// A login without an email: skip the call (true, the default), or refuse the login.
    #[serde(default)]
    pub skip_if_no_email: Option<bool>,
}

/// `[outbox]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxFile {
    /// How often the replica holding the outbox lease looks for due deliveries. Default `1s`.
    pub poll_interval: Option<String>,
    /// The wait after a first failed attempt; it doubles after each (at most 1 h). Default `5s`.
    pub first_retry: Option<String>,
    /// How long a delivery is retried before it is marked failed. Default `24h`.
    pub give_up_after: Option<String>,
}

/// `[server]`: bounds on connections and on shutdown. Stays in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// How long a client may take to send a request's headers; also how long an idle
    /// keep-alive connection stays open. Default `10s`.
    pub header_read_timeout: Option<String>,
    /// How long one request may take, body included. Default `30s`.
    pub request_timeout: Option<String>,
    /// Open connections per client address (IPv6 per /64); 0 turns the cap off, which a
    /// listener behind a load balancer needs. Default 256.
    pub max_connections_per_ip: Option<u32>,
    /// Requests served at once, on all listeners together; more are answered 503 at once.
    /// Default 2048.
    pub max_in_flight: Option<u32>,
    /// After SIGTERM, how long `/readyz` answers 503 while Herald still accepts requests, so a
    /// load balancer stops sending new ones. Default `0s`.
    pub drain_delay: Option<String>,
    /// After that, how long in-flight requests have to finish before Herald exits anyway.
    /// Default `30s`.
    pub shutdown_timeout: Option<String>,
    /// How often each replica reloads the signing keys from the store (a key rotated through
    /// one replica reaches the others within it). Default `10s`, at most `60s`.
    pub key_reload_interval: Option<String>,
    /// How often each replica polls the store for a newer configuration version (an admin
    /// change through one replica reaches the others within it). Default `2s`, at most `60s`.
    pub config_poll_interval: Option<String>,
}

/// `[limits]`: requests per second per client IP address on the endpoints of a login and of the
/// token endpoints. Stays in the file: each replica holds its own counters.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Sustained rate per client address; 0 turns the limit off. Default 50.
    pub per_ip_per_second: Option<u32>,
    /// Requests a client address may make at once above the rate. Default 100.
    pub per_ip_burst: Option<u32>,
    /// Behind a load balancer: the header it appends the client address to (e.g.
    /// `X-Forwarded-For`); Herald takes the last address in it. Unset: the TCP peer.
    pub client_ip_header: Option<String>,
}

/// `[admin]`: stays in the file (it decides who administers Herald, so the admin API cannot
/// change it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    /// A path in the authentication context (after mapping), e.g. `groups`.
    pub role_claim: Option<String>,
    /// The value that claim must equal or, for an array, contain, e.g. `herald-admins`: the
    /// admin role; the same as `roles.admin`.
    pub role_value: Option<String>,
    /// The value of `role_claim` (default `groups`) for each role:
    /// `roles = { admin = "herald-admins", editor = "herald-editors", auditor = "herald-auditors" }`.
    pub roles: Option<RolesFile>,
    /// A separate address for everything under `/admin`; the public listener then has no
    /// `/admin`.
    pub listen: Option<String>,
    /// How old an admin's sign-in may be before the pages ask for a fresh one at the upstream
    /// (which also reads the role again); default `1h`.
    pub max_auth_age: Option<String>,
}

/// `[admin] roles`: the claim value of each role; a role without one is held by nobody.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesFile {
    pub admin: Option<String>,
    pub editor: Option<String>,
    pub auditor: Option<String>,
}

/// Lifetimes, written as humantime durations (`"60s"`, `"10m"`, `"1h"`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    pub authorization_code_ttl: Option<String>,
    pub id_token_ttl: Option<String>,
    pub access_token_ttl: Option<String>,
    /// How long a browser's login at Herald lasts.
    pub session_ttl: Option<String>,
    /// How long a user may take between /authorize and the end of the login.
    pub login_ttl: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamKind {
    /// Auth0: `domain` without protocol; the issuer is `https://{domain}/`.
    Auth0,
    /// Any OpenID provider: `issuer` as it appears in its discovery document.
    Oidc,
    /// The built-in development provider: a login form that accepts any name.
    Dev,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    pub id: String,
    pub kind: UpstreamKind,
    /// Shown on the chooser page when there are several upstreams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Hosts besides the issuer's that the discovery document may send Herald's token, JWKS
    /// and userinfo requests to (host names only, like `keys.example.com`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_endpoint_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// The secret typed into the admin pages, sealed with the key-encryption key (see
    /// `config::upstream_secret`); never written by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_sealed: Option<String>,
    /// How Herald authenticates at the upstream's token endpoint: `client_secret_basic` (the
    /// default) or `client_secret_post` (Auth0's "Token Endpoint Authentication Method").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub userinfo: bool,
    /// End the upstream session too on RP-initiated logout (its `end_session_endpoint`, or
    /// Auth0's `/v2/logout`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub logout: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_authorize_params: BTreeMap<String, String>,
    /// `amr` written into Herald's tokens for logins through this upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<OneOrMany>,
    /// How long a login's authentication context is reused (`"10m"`); default: the session's life.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_context_ttl: Option<String>,
    /// The longest one request to the upstream may take (`"10s"`, the default; at most 60s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// A first login whose email the upstream says is verified joins the user who has that
    /// verified email already, instead of creating another.
    #[serde(default, skip_serializing_if = "is_false")]
    pub link_by_verified_email: bool,
    /// `false`: only users that exist already (created by an admin, imported, or found by
    /// verified email) may log in through this upstream.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub allow_signup: bool,
    /// Ask the upstream for a refresh token (`offline_access`), stored encrypted with the
    /// key-encryption key: a refresh or `/userinfo` that finds the login older than
    /// `auth_context_ttl` refreshes it there, and the upstream's refusal ends the login.
    #[serde(default, skip_serializing_if = "is_false")]
    pub refresh_upstream: bool,
    /// When the upstream cannot be reached for such a refresh: `"fail"` (the default) or
    /// `"serve_stale"` (the stored claims, for at most `max_stale` past the TTL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_upstream_unavailable: Option<String>,
    /// With `serve_stale`: how long past `auth_context_ttl` claims may be served (default 1h).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_stale: Option<String>,
    /// kind = auth0: where the Management API is, when not at the domain (a tenant behind a
    /// custom domain serves it at its canonical `*.auth0.com` domain), like
    /// `"https://example.eu.auth0.com"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_api_url: Option<String>,
    /// Parameters of the app's authorization request passed on to this upstream when the app
    /// sends them, like Auth0's `["connection", "organization"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_through: Vec<String>,
    /// An app's `prompt=none` without a login at Herald is tried at this upstream with
    /// `prompt=none` (its session may still be there) instead of answering `login_required`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silent_login: bool,
    /// A post-authentication application: after the upstream login and the mappings, the user
    /// is sent there with a signed, single-use `continue` token, and comes back to
    /// `/login/continue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_login_url: Option<String>,
    /// The client (with `jwks`) whose keys sign the `context` the application sends back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_login_client: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mappings: Vec<Mapping>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    pub client_id: String,
    /// Shown on the consent page; defaults to the client_id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Absent (and no `client_secret_env`): a public client, PKCE required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// The stored hash of the secret (an argon2 PHC string, or `sha256:` and a base64url
    /// digest of a generated secret), as the database keeps it and `herald export` writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_hash: Option<String>,
    /// After a secret rotation: the stored hash of the secret it replaced, which keeps working
    /// until `previous_secret_expires_at` (Unix time); both written by Herald.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<i64>,
    /// Needed by clients that log users in; a client_credentials-only client has none.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub trusted: bool,
    /// A CEL condition over the login's `context` (and `upstream`) that must be true for a user
    /// to get this app's tokens, like `"'herald-admins' in context.groups"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_policy: Option<String>,
    /// The client must push its authorization requests to `/par` (RFC 9126 §6).
    #[serde(default, skip_serializing_if = "is_false")]
    pub require_pushed_authorization_requests: bool,
    /// The client's access tokens are always DPoP-bound: a token request without a proof is
    /// refused (RFC 9449 §5.2).
    #[serde(default, skip_serializing_if = "is_false")]
    pub dpop_bound_access_tokens: bool,
    /// Grants the client may use at /token (RFC 7591 §2 `grant_types`); default
    /// `["authorization_code"]`. `refresh_token` and `client_credentials` are opted into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    /// A refresh token unused this long expires (`"14d"`); each rotation restarts the clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_idle_ttl: Option<String>,
    /// No refresh token of a login outlives this (`"90d"`), however often it is rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_absolute_ttl: Option<String>,
    /// For this long after a refresh token is rotated, it may be used once more (a client that
    /// lost the answer and retries, or two tabs refreshing at once) instead of revoking its
    /// family as a reuse. Default `"0s"` (strict); at most `"5m"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token_grace_period: Option<String>,
    /// RS256 (default), ES256 or EdDSA: how this client's ID and access tokens are signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    /// The client's public keys for private_key_jwt client authentication (RFC 7523), as a
    /// JWK Set: `jwks = { keys = [ { kty = "EC", crv = "P-256", x = "...", y = "..." } ] }`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// Where RP-initiated logout may send the browser afterwards (exact match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where Herald POSTs a logout token when a login the app got tokens from ends (OpenID
    /// Connect Back-Channel Logout 1.0): https, or http on a loopback host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// The app needs `sid` in its logout tokens (Herald always sends `sub` and `sid`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub backchannel_logout_session_required: bool,
    /// The app's logo, shown on the consent page (RFC 7591 §2; https only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// The app's home page (https only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// The app's privacy policy, linked from the consent page (https only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// The app's terms of service, linked from the consent page (https only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// Unix time the admin API registered this client; written by Herald. Tokens a client of
    /// the same id had before (deleted, then registered again) are older and never accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<i64>,
}

/// Booleans that default to `false` are written only when `true`.
fn is_false(b: &bool) -> bool {
    !*b
}

/// Booleans that default to `true` are written only when `false`.
fn is_true(b: &bool) -> bool {
    *b
}

fn yes() -> bool {
    true
}
