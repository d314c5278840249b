//! The upstreams: the list, with each one's callback URL, and a form that adds one (Auth0 by
//! its domain, any OpenID provider by its issuer). Adding goes through the change service the
//! API uses ([`Changes::create_upstream`]), so it is validated like `herald check-config`;
//! the form is [`super::upstream_settings`]'s, which the upstream's own page uses too.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::base::{AdminForm, AdminUser, api_failed, inline, path_segment, problems};
use super::upstream_settings::{form_from, new_form, settings_from};
use super::views::{Nav, UpstreamForm, UpstreamListRow, UpstreamsPage};
use crate::admin::changes::{Changes, UPSTREAM_SECRET_PREFIX};
use crate::config::{Permission, Settings};
use crate::state::AppState;
use crate::web::render;

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
        &list_page(&admin, &state.settings(), new_form(&state), Vec::new()),
    )
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
    let outcome = match settings_from(&form, None) {
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
                &list_page(
                    &admin,
                    &state.settings(),
                    form_from(&state, &form, None),
                    errors,
                ),
            )
        }
        Err(e) => api_failed(e),
    }
}
