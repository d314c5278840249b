//! An upstream's own settings as a form: adding one on the list page, and changing one on its
//! page (name, provider, client ID, Herald's client secret there, scopes, userinfo, logout).
//! The handlers are the pages' ([`super::upstream_list`], [`super::upstreams`]).
//!
//! The secret is typed into a password field and stored sealed with the key-encryption key
//! (never shown again; empty keeps the stored one), or named as an environment variable of
//! every replica. Both go through the change service the API uses
//! (`Changes::create_upstream`, `Changes::update_upstream`), so they are validated like
//! `herald check-config`. Settings the form does not show (timeouts, extra parameters, `amr`,
//! endpoint hosts) keep their values when an upstream is changed here.

use super::base::Form;
use super::views::{UpstreamForm, options};
use crate::admin::changes::{UPSTREAM_SECRET_PREFIX, UpstreamSettings};
use crate::admin::error::ApiError;
use crate::config::{SecretSource, Upstream, UpstreamKind, WhenUnavailable};
use crate::secret::Secret;
use crate::state::AppState;

const KINDS: [&str; 2] = ["auth0", "oidc"];

/// Where an upstream's secret comes from, in words for its page.
fn secret_source(up: &Upstream) -> String {
    match up.secret_source() {
        SecretSource::None => {
            "none: Herald sends no client secret (a public client at the upstream)".into()
        }
        SecretSource::Env => format!(
            "the environment variable {}",
            up.client_secret_env.as_deref().unwrap_or_default()
        ),
        SecretSource::Stored => "stored, encrypted with the key-encryption key".into(),
        SecretSource::File => "the configuration file".into(),
    }
}

/// The empty form for a new upstream.
pub fn new_form(state: &AppState) -> UpstreamForm {
    let can_store_secret = state.kek().is_enabled();
    UpstreamForm {
        kinds: options(&KINDS, "auth0"),
        scopes: "openid profile email".into(),
        // A server that cannot store a typed secret offers the variable, with its prefix.
        client_secret_env: if can_store_secret {
            String::new()
        } else {
            format!("{UPSTREAM_SECRET_PREFIX}AUTH0")
        },
        userinfo: true,
        can_store_secret,
        editable_kind: true,
        ..UpstreamForm::default()
    }
}

/// The form filled with upstream `up`'s current settings.
pub fn form_of(state: &AppState, up: &Upstream) -> UpstreamForm {
    let kind = format!("{:?}", up.kind).to_lowercase();
    UpstreamForm {
        id: up.id.clone(),
        display_name: up.display_name.clone(),
        kinds: options(&KINDS, &kind),
        domain: up.auth0_domain().unwrap_or_default(),
        issuer: up.endpoint.issuer.clone(),
        client_id: up.client_id.clone(),
        client_secret_env: up.client_secret_env.clone().unwrap_or_default(),
        scopes: up.scopes.join(" "),
        userinfo: up.userinfo,
        logout: up.logout,
        link_by_verified_email: up.link_by_verified_email,
        existing_only: !up.allow_signup,
        can_store_secret: state.kek().is_enabled(),
        secret_source: secret_source(up),
        editable_kind: up.kind != UpstreamKind::Dev,
    }
}

/// The form as submitted, to show again with its messages (the secret is never sent back).
pub fn form_from(state: &AppState, form: &Form, current: Option<&Upstream>) -> UpstreamForm {
    UpstreamForm {
        id: form.text("id"),
        display_name: form.text("display_name"),
        kinds: options(&KINDS, &form.text("kind")),
        domain: form.text("domain"),
        issuer: form.text("issuer"),
        client_id: form.text("client_id"),
        client_secret_env: form.text("client_secret_env"),
        scopes: form.text("scopes"),
        userinfo: form.checked("userinfo"),
        logout: form.checked("logout"),
        link_by_verified_email: form.checked("link_by_verified_email"),
        existing_only: form.text("signup") == "existing",
        can_store_secret: state.kek().is_enabled(),
        secret_source: current.map(secret_source).unwrap_or_default(),
        editable_kind: current.is_none_or(|u| u.kind != UpstreamKind::Dev),
    }
}

/// The settings a submitted form asks for, in the API's terms: only the location key of the
/// chosen kind is sent (a domain for Auth0, an issuer otherwise). A typed secret wins over the
/// variable's name; neither keeps the current secret. For an existing upstream (`current`),
/// the settings the form does not show keep their values.
pub fn settings_from(
    form: &Form,
    current: Option<&Upstream>,
) -> Result<UpstreamSettings, ApiError> {
    let optional = |name: &str| Some(form.text(name)).filter(|v| !v.trim().is_empty());
    let kind = match (form.text("kind").as_str(), current.map(|u| u.kind)) {
        (_, Some(UpstreamKind::Dev)) => UpstreamKind::Dev,
        ("auth0", _) => UpstreamKind::Auth0,
        ("oidc", _) => UpstreamKind::Oidc,
        (other, _) => {
            return Err(ApiError::invalid_request(format!(
                "“{other}” is not a kind of upstream this page adds; choose auth0 or oidc"
            )));
        }
    };
    let id = match current {
        Some(up) => up.id.clone(),
        None => {
            optional("id").ok_or_else(|| ApiError::invalid_request("Give the upstream an id."))?
        }
    };
    let scopes: Vec<String> = form
        .text("scopes")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let client_secret = optional("client_secret").map(Secret::new);
    Ok(UpstreamSettings {
        id: Some(id),
        kind,
        display_name: optional("display_name"),
        domain: optional("domain").filter(|_| kind == UpstreamKind::Auth0),
        issuer: optional("issuer").filter(|_| kind == UpstreamKind::Oidc),
        allowed_endpoint_hosts: current
            .map(|u| u.endpoint.allowed_endpoint_hosts.clone())
            .unwrap_or_default(),
        client_id: optional("client_id"),
        client_secret_env: optional("client_secret_env").filter(|_| client_secret.is_none()),
        token_endpoint_auth_method: current
            .filter(|u| u.secret_in_body)
            .map(|_| "client_secret_post".into()),
        client_secret,
        scopes: (!scopes.is_empty()).then_some(scopes),
        userinfo: form.checked("userinfo"),
        logout: form.checked("logout"),
        extra_authorize_params: current
            .map(|u| u.extra_authorize_params.clone())
            .unwrap_or_default(),
        amr: current.and_then(|u| u.mapping.amr.clone()),
        auth_context_ttl: current
            .and_then(|u| u.auth_context_ttl)
            .map(|d| humantime::format_duration(d).to_string()),
        timeout: current.map(|u| humantime::format_duration(u.timeout).to_string()),
        link_by_verified_email: form.checked("link_by_verified_email"),
        // A form without the choice (an older page) keeps what the upstream has.
        allow_signup: match form.text("signup").as_str() {
            "open" => Some(true),
            "existing" => Some(false),
            _ => current.map(|u| u.allow_signup),
        },
        refresh_upstream: current.is_some_and(|u| u.refresh_upstream),
        management_api_url: current.and_then(|u| u.management_api_url.clone()),
        pass_through: current.map(|u| u.pass_through.clone()).unwrap_or_default(),
        silent_login: current.is_some_and(|u| u.silent_login),
        post_login_url: current.and_then(|u| u.post_login.as_ref().map(|p| p.url.clone())),
        post_login_client: current
            .and_then(|u| u.post_login.as_ref())
            .map(|p| p.client_id.clone()),
        on_upstream_unavailable: current
            .filter(|u| u.when_unavailable != WhenUnavailable::Fail)
            .map(|_| "serve_stale".into()),
        max_stale: match current.map(|u| u.when_unavailable) {
            Some(WhenUnavailable::ServeStale(d)) => Some(humantime::format_duration(d).to_string()),
            _ => None,
        },
        attributes: None,
        mappings: None,
    })
}
