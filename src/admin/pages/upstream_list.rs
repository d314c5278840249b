//! The upstreams: the list, with each one's callback URL, and a form that adds one (Auth0 by
//! its domain, any OpenID provider by its issuer). Adding goes through the change service the
//! API uses ([`Changes::create_upstream`]), so it is validated like `herald check-config`;
//! Herald's secret at the upstream stays in an environment variable that the form names.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::base::{AdminForm, AdminUser, Form, api_failed, inline, path_segment, problems};
use super::views::{Nav, UpstreamForm, UpstreamListRow, UpstreamsPage, options};
use crate::admin::changes::{Changes, UPSTREAM_SECRET_PREFIX, UpstreamSettings};
use crate::admin::error::ApiError;
use crate::config::{Permission, Settings, UpstreamKind};
use crate::state::AppState;
use crate::web::render;

const KINDS: [&str; 2] = ["auth0", "oidc"];

fn rows(settings: &Settings) -> Vec<UpstreamListRow> {
    settings
        .upstreams
        .iter()
        .map(|u| UpstreamListRow {
            id: u.id.clone(),
            display_name: u.display_name.clone(),
            kind: format!("{:?}", u.kind).to_lowercase(),
            issuer: u.endpoint.issuer.clone(),
            callback_url: settings.callback_url(&u.id),
        })
        .collect()
}

fn empty_form() -> UpstreamForm {
    UpstreamForm {
        kinds: options(&KINDS, "auth0"),
        scopes: "openid profile email".into(),
        client_secret_env: format!("{UPSTREAM_SECRET_PREFIX}AUTH0"),
        userinfo: true,
        ..UpstreamForm::default()
    }
}

fn form_from(form: &Form) -> UpstreamForm {
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
    }
}

fn list_page(
    admin: &AdminUser,
    settings: &Settings,
    form: UpstreamForm,
    errors: Vec<String>,
) -> UpstreamsPage {
    UpstreamsPage {
        nav: Nav::new(admin, "upstreams"),
        csrf: admin.csrf.clone(),
        upstreams: rows(settings),
        form,
        errors,
        issuer: settings.issuer.clone(),
        secret_prefix: UPSTREAM_SECRET_PREFIX,
    }
}

pub async fn list(State(state): State<AppState>, admin: AdminUser) -> Response {
    render(
        StatusCode::OK,
        &list_page(&admin, &state.settings(), empty_form(), Vec::new()),
    )
}

/// The settings a submitted form asks for, in the API's terms: only the location key of the
/// chosen kind is sent (a domain for Auth0, an issuer otherwise).
fn settings_from(form: &Form) -> Result<UpstreamSettings, ApiError> {
    let optional = |name: &str| Some(form.text(name)).filter(|v| !v.is_empty());
    let kind = match form.text("kind").as_str() {
        "auth0" => UpstreamKind::Auth0,
        "oidc" => UpstreamKind::Oidc,
        other => {
            return Err(ApiError::invalid_request(format!(
                "“{other}” is not a kind of upstream this page adds; choose auth0 or oidc"
            )));
        }
    };
    let id = optional("id").ok_or_else(|| ApiError::invalid_request("Give the upstream an id."))?;
    let scopes: Vec<String> = form
        .text("scopes")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    Ok(UpstreamSettings {
        id: Some(id),
        kind,
        display_name: optional("display_name"),
        domain: optional("domain").filter(|_| kind == UpstreamKind::Auth0),
        issuer: optional("issuer").filter(|_| kind == UpstreamKind::Oidc),
        allowed_endpoint_hosts: Vec::new(),
        client_id: optional("client_id"),
        client_secret_env: optional("client_secret_env"),
        token_endpoint_auth_method: None,
        client_secret: None,
        scopes: (!scopes.is_empty()).then_some(scopes),
        userinfo: form.checked("userinfo"),
        logout: false,
        extra_authorize_params: Default::default(),
        amr: None,
        auth_context_ttl: None,
        timeout: None,
        attributes: None,
        mappings: None,
    })
}

/// Adds the upstream and opens its page, which shows the callback URL and Test connection; a
/// refused one comes back with check-config's messages and the typed values.
pub async fn create(
    State(state): State<AppState>,
    AdminForm { admin, form }: AdminForm,
) -> Response {
    if let Some(refusal) = admin.refuse_unless(Permission::EditConfig) {
        return refusal;
    }
    let actor = admin.actor();
    let outcome = match settings_from(&form) {
        Ok(new) => Changes::new(&state, &actor)
            .create_upstream(&new)
            .await
            .map(|version| (new.id.unwrap_or_default(), version)),
        Err(e) => Err(e),
    };
    match outcome {
        Ok((id, version)) => Redirect::to(&format!(
            "/admin/upstreams/{}?created={version}",
            path_segment(&id)
        ))
        .into_response(),
        Err(e) if inline(&e) => {
            let mut errors = problems(e);
            errors.dedup();
            render(
                StatusCode::BAD_REQUEST,
                &list_page(&admin, &state.settings(), form_from(&form), errors),
            )
        }
        Err(e) => api_failed(e),
    }
}
