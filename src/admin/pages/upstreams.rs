//! One upstream on one page: its connection (the callback URL to register at the upstream,
//! Test connection, Delete), its settings (the form is [`super::upstream_settings`]'s) and its
//! claim mapping: attributes and mappings as editable rows, a
//! preview pane that runs the unsaved rows on sample claims, and Save.
//!
//! The rows ([`super::upstream_rows`]) are a plain form. Preview and Save both validate the whole
//! configuration with the rows as submitted, exactly like `herald check-config`; a problem is
//! shown next to the row it names (`attributes[2]`, `mappings[0]`), others above the tables.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::base::{AdminForm, AdminUser, Form, api_failed, inline, problems, stale_save};
use super::samples::{Samples, pretty};
use super::upstream_rows::{BLANK_ROWS, Rows, attr_row, blank_attr, blank_map, map_row};
use super::upstream_settings::{form_from, form_of, settings_from};
use super::views::{
    AttrRow, CheckView, MapRow, Nav, PreviewView, StepView, UpstreamForm, UpstreamPage,
};
use crate::admin::changes::upstreams::draft_claims;
use crate::admin::changes::{Changes, ClaimRules};
use crate::claims;
use crate::config::{Permission, Settings, Upstream};
use crate::state::AppState;
use crate::web::{error_page, render};

#[derive(Deserialize)]
pub struct ShowQuery {
    saved: Option<i64>,
    created: Option<i64>,
}

pub async fn show(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    query: Result<Query<ShowQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let settings = state.settings();
    let Some(up) = settings.upstream(&id) else {
        return no_upstream(&id);
    };
    let query = query.ok().map(|q| q.0);
    let saved = query.as_ref().and_then(|q| q.saved).map(|v| {
        format!(
            "Saved as configuration version {v}. It is in effect here now and on every other \
             replica within seconds; the next login through “{id}” uses it."
        )
    });
    let created = query.as_ref().and_then(|q| q.created).map(|v| {
        format!(
            "Upstream “{id}” is added (configuration version {v}). Register the callback URL \
             below at the upstream (in Auth0: the application's Allowed Callback URLs), then \
             press Test connection. Add attributes and mappings here for the claims it sends."
        )
    });
    let notice = saved.or(created);
    render(
        StatusCode::OK,
        &overview_page(&state, &admin, up, notice, Vec::new()),
    )
}

pub async fn submit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, form }: AdminForm,
) -> Response {
    if let Some(refusal) = admin.refuse_unless(Permission::EditConfig) {
        return refusal;
    }
    let settings = state.settings();
    let Some(up) = settings.upstream(&id).cloned() else {
        return no_upstream(&id);
    };
    match form.get("action") {
        Some("test") => return test_connection(&state, &admin, &up).await,
        Some("delete") => return delete(&state, &admin, &up).await,
        _ => {}
    }
    let rows = match Rows::parse(&form) {
        Ok(r) => r,
        Err(message) => {
            return error_page(StatusCode::BAD_REQUEST, "Invalid form", &message, None);
        }
    };
    let editor = Editor {
        state: &state,
        admin: &admin,
        up: &up,
        samples: Samples::from_form(&form),
        seen: form.version(),
        callback_url: settings.callback_url(&id),
    };
    if rows.has_errors() {
        let message = "Some rows are not valid; see the messages next to them.";
        return editor.again(rows, vec![message.into()]);
    }
    let rules = ClaimRules {
        attributes: rows.attributes(),
        mappings: rows.mappings(),
    };
    match form.get("action").unwrap_or("preview") {
        "save" => save(&state, &editor, &form, rows, &rules).await,
        _ => preview(&state, &editor, rows, &rules).await,
    }
}

/// The editor as the admin submitted it, to show again with messages or a preview.
struct Editor<'a> {
    state: &'a AppState,
    admin: &'a AdminUser,
    up: &'a Upstream,
    samples: Samples,
    /// The configuration version the admin's page was read at.
    seen: i64,
    callback_url: String,
}

impl Editor<'_> {
    fn render(
        &self,
        version: i64,
        rows: Rows,
        errors: Vec<String>,
        status: StatusCode,
        preview: Option<PreviewView>,
    ) -> Response {
        let (attributes, mappings) = rows.into_views();
        render(
            status,
            &page(
                self.admin,
                version,
                self.up,
                attributes,
                mappings,
                errors,
                None,
                self.samples.clone(),
                preview,
                self.callback_url.clone(),
                form_of(self.state, self.up),
            ),
        )
    }

    /// The rows again, with what is wrong (400).
    fn again(&self, rows: Rows, errors: Vec<String>) -> Response {
        self.render(self.seen, rows, errors, StatusCode::BAD_REQUEST, None)
    }
}

/// Saves the rows as the next configuration version, unless another change came first (409) or
/// the result is invalid (the messages placed next to the rows they name).
async fn save(
    state: &AppState,
    editor: &Editor<'_>,
    form: &Form,
    mut rows: Rows,
    rules: &ClaimRules,
) -> Response {
    match stale_save(state, form, "rows").await {
        Ok(None) => {}
        Ok(Some((latest, message))) => {
            return editor.render(latest, rows, vec![message], StatusCode::CONFLICT, None);
        }
        Err(page) => return page,
    }
    let id = &editor.up.id;
    let actor = editor.admin.actor();
    match Changes::new(state, &actor).replace_claims(id, rules).await {
        Ok(version) => Redirect::to(&format!(
            "/admin/upstreams/{}?saved={version}",
            super::base::path_segment(id)
        ))
        .into_response(),
        Err(r) if r.error.body.problems.is_empty() => api_failed(r.error),
        Err(r) => {
            let errors = rows.place(r.position, r.error.body.problems);
            editor.again(rows, errors)
        }
    }
}

/// Runs the unsaved rows on the sample claims and shows what a login would produce.
async fn preview(
    state: &AppState,
    editor: &Editor<'_>,
    mut rows: Rows,
    rules: &ClaimRules,
) -> Response {
    let id = &editor.up.id;
    let draft = match draft_claims(state, id, rules).await {
        Ok(s) => s,
        Err(r) if r.error.body.problems.is_empty() => return api_failed(r.error),
        Err(r) => {
            let errors = rows.place(r.position, r.error.body.problems);
            return editor.again(rows, errors);
        }
    };
    if draft.upstream(id).is_none() {
        return no_upstream(id);
    }
    match preview_of(&draft, id, &editor.samples) {
        Ok(view) => editor.render(editor.seen, rows, vec![], StatusCode::OK, Some(view)),
        Err(message) => editor.again(rows, vec![message]),
    }
}

/// What a login through upstream `id` of the drafted settings would produce from the samples.
fn preview_of(draft: &Settings, id: &str, samples: &Samples) -> Result<PreviewView, String> {
    let claims = samples.claims()?;
    let Some(up) = draft.upstream(id) else {
        return Err(format!("upstream {id} is not in the drafted configuration"));
    };
    let scopes: Vec<String> = match samples.scopes.split_whitespace().collect::<Vec<_>>() {
        s if s.is_empty() => draft.scopes.names().cloned().collect(),
        s => s.into_iter().map(str::to_string).collect(),
    };
    let p = claims::preview(id, &up.mapping, &draft.scopes, &claims, None, &scopes);
    let context = p
        .context
        .as_ref()
        .map(|c| Value::Object(c.attributes.clone()))
        .unwrap_or(Value::Null);
    Ok(PreviewView {
        context: pretty(&context),
        id_token: pretty(&Value::Object(p.id_token)),
        userinfo: pretty(&Value::Object(p.userinfo)),
        access_token: pretty(&Value::Object(p.access_token)),
        warnings: p
            .warnings
            .iter()
            .map(|w| w.to_string())
            .chain(p.notes.iter().cloned())
            .collect(),
        steps: p
            .steps
            .into_iter()
            .map(|s| StepView {
                // A condition or an expression reads the claims, not one input.
                input: if s.input.is_null() {
                    "—".to_owned()
                } else {
                    s.input.to_string()
                },
                output: s.output.to_string(),
                mapping: s.mapping,
                step: s.step,
            })
            .collect(),
        error: p.error,
    })
}

pub(super) fn no_upstream(id: &str) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "No such upstream",
        &format!("Herald has no upstream “{id}”."),
        None,
    )
}

#[allow(clippy::too_many_arguments)]
fn page(
    admin: &AdminUser,
    version: i64,
    up: &Upstream,
    attributes: Vec<AttrRow>,
    mappings: Vec<MapRow>,
    errors: Vec<String>,
    notice: Option<String>,
    samples: Samples,
    preview: Option<PreviewView>,
    callback_url: String,
    settings: UpstreamForm,
) -> UpstreamPage {
    UpstreamPage {
        nav: Nav::new(admin, "upstreams"),
        csrf: admin.csrf.clone(),
        version,
        id: up.id.clone(),
        display_name: up.display_name.clone(),
        kind: format!("{:?}", up.kind).to_lowercase(),
        issuer: up.endpoint.issuer.clone(),
        userinfo: up.userinfo,
        attributes,
        mappings,
        errors,
        notice,
        sample_id_token: samples.id_token,
        sample_userinfo: samples.userinfo,
        sample_access_token: samples.access_token,
        scopes: samples.scopes,
        preview,
        callback_url,
        check: None,
        settings,
        settings_errors: Vec::new(),
        secret_prefix: crate::admin::changes::UPSTREAM_SECRET_PREFIX,
    }
}

/// The upstream's page as stored (no unsaved rows), with `notice` or `errors`.
pub(super) fn overview_page(
    state: &AppState,
    admin: &AdminUser,
    up: &Upstream,
    notice: Option<String>,
    errors: Vec<String>,
) -> UpstreamPage {
    let attributes = up
        .mapping
        .attributes
        .iter()
        .map(|a| attr_row(a, Vec::new()))
        .chain((0..BLANK_ROWS).map(|_| blank_attr()))
        .collect();
    let mappings = up
        .mapping
        .mappings
        .iter()
        .map(|m| map_row(m, Vec::new()))
        .chain((0..BLANK_ROWS).map(|_| blank_map()))
        .collect();
    page(
        admin,
        state.config_version(),
        up,
        attributes,
        mappings,
        errors,
        notice,
        Samples::for_upstream(up),
        None,
        state.settings().callback_url(&up.id),
        form_of(state, up),
    )
}

/// Checks the upstream for real, as the API's test does, and shows each step on its page.
async fn test_connection(state: &AppState, admin: &AdminUser, up: &Upstream) -> Response {
    let settings = state.settings();
    let steps = state
        .upstreams
        .check(up, &settings.callback_url(&up.id))
        .await;
    let mut shown = overview_page(state, admin, up, None, Vec::new());
    shown.check = Some(CheckView {
        ok: crate::upstream::check_passed(&steps),
        steps,
    });
    render(StatusCode::OK, &shown)
}

/// Removes the upstream, with every login made through it; back to the list.
async fn delete(state: &AppState, admin: &AdminUser, up: &Upstream) -> Response {
    let actor = admin.actor();
    match Changes::new(state, &actor).delete_upstream(&up.id).await {
        Ok(_) => Redirect::to("/admin/upstreams").into_response(),
        Err(e) if inline(&e) => {
            let shown = overview_page(state, admin, up, None, problems(e));
            render(StatusCode::BAD_REQUEST, &shown)
        }
        Err(e) => api_failed(e),
    }
}

/// Saves the settings card of upstream `id`'s page; a refused change comes back on the page
/// with check-config's messages and the typed values (not the secret).
pub async fn save_settings(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, form }: AdminForm,
) -> Response {
    if let Some(refusal) = admin.refuse_unless(Permission::EditConfig) {
        return refusal;
    }
    let settings = state.settings();
    let Some(up) = settings.upstream(&id).cloned() else {
        return no_upstream(&id);
    };
    let again = |status: StatusCode, errors: Vec<String>| {
        let mut shown = overview_page(&state, &admin, &up, None, Vec::new());
        shown.settings = form_from(&state, &form, Some(&up));
        shown.settings_errors = errors;
        render(status, &shown)
    };
    match stale_save(&state, &form, "settings").await {
        Ok(None) => {}
        Ok(Some((_, message))) => return again(StatusCode::CONFLICT, vec![message]),
        Err(page) => return page,
    }
    let actor = admin.actor();
    let outcome = match settings_from(&form, Some(&up)) {
        Ok(changed) => {
            Changes::new(&state, &actor)
                .update_upstream(&id, &changed)
                .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(version) => Redirect::to(&format!(
            "/admin/upstreams/{}?saved={version}",
            super::base::path_segment(&id)
        ))
        .into_response(),
        Err(e) if inline(&e) => {
            let mut errors = problems(e);
            errors.dedup();
            again(StatusCode::BAD_REQUEST, errors)
        }
        Err(e) => api_failed(e),
    }
}
