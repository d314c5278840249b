//! One `[[upstreams]]` entry, checked: its endpoint, its client at the upstream, its secret and
//! its claim mapping.

use std::time::Duration;

use url::Url;

use super::Validator;
use crate::claims::declared::{self, ContextDecl};
use crate::claims::{self, UpstreamMapping};
use crate::config::file::{UpstreamFile, UpstreamKind};
use crate::config::settings::{
    PostLogin, Upstream, UpstreamEndpoint, WhenUnavailable, is_loopback_host,
};
use crate::egress;

/// How long one request to an upstream may take, unless the upstream sets `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Authorization parameters Herald sets itself toward an upstream, never taken from the app.
const HERALDS_OWN_PARAMETERS: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "ui_locales",
    "acr_values",
    "request",
    "request_uri",
    "claims",
    "id_token_hint",
];

/// Whether Herald's own issuer is a development one (plain http://, or not given yet).
fn herald_is_local(herald_issuer: Option<&str>) -> bool {
    herald_issuer
        .and_then(|i| Url::parse(i).ok())
        .is_none_or(|i| i.scheme() == "http")
}

/// Hole 5 of the hardening issue: Herald calls upstreams over https://, and over plain http://
/// only on loopback beside a development Herald (`herald_local`).
fn scheme_allowed(url: &Url, herald_local: bool) -> bool {
    url.scheme() == "https"
        || (url.scheme() == "http" && herald_local && url.host_str().is_some_and(is_loopback_host))
}

impl Validator {
    pub(super) fn upstream(
        &mut self,
        i: usize,
        u: UpstreamFile,
        herald_issuer: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Upstream> {
        let key = format!("upstreams[{i}]");
        let before = self.problems.len();
        let when_unavailable = self.when_unavailable(&key, &u);
        let management_api_url = self.management_api_url(&key, &u, herald_issuer);
        let post_login = self.post_login(&key, &u, herald_issuer);
        for name in &u.pass_through {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                || HERALDS_OWN_PARAMETERS.contains(&name.as_str())
            {
                self.problem(format!(
                    "{key}.pass_through: `{name}` is not a parameter Herald passes on; name the \
                     upstream's own ones, like \"connection\" or \"organization\" (Herald sets \
                     the OAuth and OpenID Connect parameters itself)"
                ));
            }
        }
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
                // Hole 5 of the hardening issue: a plain-http upstream is for development,
                // so only beside a Herald that is itself on loopback http://.
                let herald_local = herald_is_local(herald_issuer);
                let parsed = u
                    .issuer
                    .as_deref()
                    .map(|i| Url::parse(i).map(|url| (egress::check_url(&url), url)));
                match parsed {
                    Some(Ok((Some(why), _))) => {
                        self.problem(format!("{key}.issuer: {why}"));
                        None
                    }
                    Some(Ok((None, url))) if scheme_allowed(&url, herald_local) => u.issuer.clone(),
                    Some(Ok((None, url))) if url.scheme() == "http" && !herald_local => {
                        self.problem(format!(
                            "{key}.issuer: `{url}` is plain http:// while Herald's own issuer is \
                             https://; an http:// upstream is allowed only for development, when \
                             Herald's issuer is a loopback http:// URL too"
                        ));
                        None
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
        for host in &u.allowed_endpoint_hosts {
            let parsed = Url::parse(&format!("https://{host}/"));
            let bare = !host.is_empty() && !host.contains(['/', ':', '@', '?', '#']);
            match parsed {
                Ok(url) if bare => {
                    if let Some(why) = egress::check_url(&url) {
                        self.problem(format!("{key}.allowed_endpoint_hosts: {why}"));
                    }
                }
                _ => self.problem(format!(
                    "{key}.allowed_endpoint_hosts: `{host}` must be a host name without \
                     protocol, port or path, like \"keys.example.com\""
                )),
            }
        }
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
        let sealed = u.client_secret_sealed.is_some();
        if sealed && u.client_secret.is_none() {
            self.problem(format!(
                "{key}.client_secret_sealed: the client secret stored for this upstream cannot be \
                 opened: HERALD_KEY_ENCRYPTION_KEY is not set, or is not the key it was stored \
                 with. Start Herald with that key, or type the secret again on the upstream's \
                 admin page"
            ));
        }
        if sealed && u.client_secret_env.is_some() {
            self.problem(format!(
                "{key}: set either client_secret_env or a stored secret \
                 (client_secret_sealed), not both"
            ));
        }
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
        let timeout = self.duration(
            &format!("{key}.timeout"),
            u.timeout.as_deref(),
            DEFAULT_TIMEOUT,
        );
        if timeout.is_some_and(|t| t > MAX_TIMEOUT) {
            self.problem(format!(
                "{key}.timeout: at most 60s; a sign-in waits for each request to the upstream"
            ));
        }
        if u.refresh_upstream && ttl.is_none() {
            self.warnings.push(format!(
                "{key}.refresh_upstream: without auth_context_ttl a login is never stale, so \
                 Herald keeps the upstream's refresh token but never uses it; set \
                 auth_context_ttl (like \"15m\") to have claims refreshed"
            ));
        }
        if self.problems.len() != before {
            return None;
        }
        let secret_in_body = match u.token_endpoint_auth_method.as_deref() {
            None | Some("client_secret_basic") => false,
            Some("client_secret_post") => true,
            Some(other) => {
                self.problem(format!(
                    "{key}.token_endpoint_auth_method: `{other}` is not one Herald uses; \
                     \"client_secret_basic\" (the default) or \"client_secret_post\""
                ));
                false
            }
        };
        Some(Upstream {
            display_name: u.display_name.unwrap_or_else(|| match u.kind {
                UpstreamKind::Dev => "Development login (not for production)".into(),
                _ => u.id.clone(),
            }),
            id: u.id,
            kind: u.kind,
            endpoint: UpstreamEndpoint {
                issuer: issuer?,
                allowed_endpoint_hosts: u.allowed_endpoint_hosts,
            },
            client_id: client_id?,
            client_secret,
            client_secret_env,
            client_secret_sealed: sealed,
            secret_in_body,
            scopes,
            userinfo: u.userinfo,
            logout: u.logout,
            extra_authorize_params: u.extra_authorize_params,
            mapping,
            auth_context_ttl: ttl,
            timeout: timeout?,
            link_by_verified_email: u.link_by_verified_email,
            allow_signup: u.allow_signup,
            refresh_upstream: u.refresh_upstream,
            when_unavailable: when_unavailable?,
            management_api_url,
            pass_through: u.pass_through,
            silent_login: u.silent_login,
            post_login,
        })
    }

    /// `post_login_url` (https://, or http:// on loopback beside a loopback Herald) and
    /// `post_login_client`, which must be a client with `jwks` (checked with the clients).
    fn post_login(
        &mut self,
        key: &str,
        u: &UpstreamFile,
        herald_issuer: Option<&str>,
    ) -> Option<PostLogin> {
        let Some(raw) = u.post_login_url.as_deref() else {
            if u.post_login_client.is_some() {
                self.problem(format!(
                    "{key}.post_login_client: only used with post_login_url; set both or neither"
                ));
            }
            return None;
        };
        let Some(client_id) = u.post_login_client.clone() else {
            self.problem(format!(
                "{key}.post_login_url: needs post_login_client, the client (with `jwks`) whose \
                 keys sign the application's answer: without it nothing shows that the user \
                 went through the application"
            ));
            return None;
        };
        match Url::parse(raw) {
            Ok(url)
                if scheme_allowed(&url, herald_is_local(herald_issuer))
                    && url.fragment().is_none() =>
            {
                Some(PostLogin {
                    url: raw.to_string(),
                    client_id,
                })
            }
            _ => {
                self.problem(format!(
                    "{key}.post_login_url: `{raw}` must be an https:// URL without a fragment, \
                     like \"https://onboarding.example.com/start\""
                ));
                None
            }
        }
    }

    /// Each upstream's `post_login_client` names a client that signs with registered keys.
    pub(super) fn post_login_clients(
        &mut self,
        upstreams: &[Upstream],
        clients: &std::collections::HashMap<String, std::sync::Arc<crate::config::Client>>,
    ) {
        for u in upstreams {
            let Some(id) = u.post_login.as_ref().map(|p| p.client_id.as_str()) else {
                continue;
            };
            match clients.get(id).map(|c| &c.auth) {
                Some(crate::config::ClientAuth::PrivateKeyJwt(_)) => {}
                Some(_) => self.problem(format!(
                    "upstream `{}`: post_login_client `{id}` must authenticate with \
                     private_key_jwt (`jwks`): its keys verify the context it sends back",
                    u.id
                )),
                None => self.problem(format!(
                    "upstream `{}`: post_login_client `{id}` is not a registered client",
                    u.id
                )),
            }
        }
    }

    /// `management_api_url`: Auth0 only; https://, or http:// on loopback beside a loopback
    /// Herald (a stand-in in development and tests).
    fn management_api_url(
        &mut self,
        key: &str,
        u: &UpstreamFile,
        herald_issuer: Option<&str>,
    ) -> Option<String> {
        let raw = u.management_api_url.as_deref()?;
        if u.kind != UpstreamKind::Auth0 {
            self.problem(format!(
                "{key}.management_api_url: only kind = \"auth0\" upstreams have Auth0's \
                 Management API"
            ));
            return None;
        }
        match Url::parse(raw) {
            Ok(url)
                if egress::check_url(&url).is_none()
                    && scheme_allowed(&url, herald_is_local(herald_issuer)) =>
            {
                Some(raw.trim_end_matches('/').to_string())
            }
            _ => {
                self.problem(format!(
                    "{key}.management_api_url: `{raw}` must be an https:// URL like \
                     \"https://example.eu.auth0.com\""
                ));
                None
            }
        }
    }

    /// `on_upstream_unavailable` and `max_stale`.
    fn when_unavailable(&mut self, key: &str, u: &UpstreamFile) -> Option<WhenUnavailable> {
        let max_stale = self.duration(
            &format!("{key}.max_stale"),
            u.max_stale.as_deref(),
            Duration::from_secs(3600),
        );
        match u.on_upstream_unavailable.as_deref() {
            None | Some("fail") => {
                if u.max_stale.is_some() {
                    self.warnings.push(format!(
                        "{key}.max_stale: used only with on_upstream_unavailable = \"serve_stale\""
                    ));
                }
                Some(WhenUnavailable::Fail)
            }
            Some("serve_stale") => max_stale.map(WhenUnavailable::ServeStale),
            Some(other) => {
                self.problem(format!(
                    "{key}.on_upstream_unavailable: `{other}`; write \"fail\" (the default) or \
                     \"serve_stale\""
                ));
                None
            }
        }
    }
}

/// The declared authentication context (`[[context]]`, issue 18).
impl Validator {
    pub(super) fn declared_context(&mut self, context: Vec<ContextDecl>) -> Vec<ContextDecl> {
        for problem in declared::check_declarations(&context) {
            self.problem(problem);
        }
        context
    }

    /// Upstream `index`'s mapping targets against the declared context: warnings, or problems
    /// when `strict`.
    pub(super) fn declared_targets(
        &mut self,
        context: &[ContextDecl],
        strict: bool,
        index: usize,
        upstream: &Upstream,
    ) {
        for f in declared::check_mappings(context, strict, index, &upstream.mapping) {
            if f.strict {
                self.problem(f.message);
            } else {
                self.warnings.push(f.message);
            }
        }
    }
}
