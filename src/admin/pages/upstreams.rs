//! One upstream on one page: its connection (the callback URL to register at the upstream,
//! Test connection, Delete) and its claim mapping: attributes and mappings as editable rows, a
//! preview pane that runs the unsaved rows on sample claims, and Save.
//!
//! The rows are a plain form (no JavaScript): each row's fields are named `attr.N.FIELD` or
//! `map.N.FIELD`; a row with an empty claim (or `from`) is ignored, so the blank rows at the end
//! add new ones, and a ticked `remove` drops a row. Preview and Save both validate the whole
//! configuration with the rows as submitted, exactly like `herald check-config`; a problem is
//! shown next to the row it names (`attributes[2]`, `mappings[0]`), others above the tables.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::base::{AdminForm, AdminUser, Form, api_failed, stale_save};
use super::samples::{Samples, pretty};
use super::views::{AttrRow, CheckView, MapRow, Nav, PreviewView, UpstreamPage, options, word};
use crate::admin::changes::upstreams::draft_claims;
use crate::admin::changes::{Changes, ClaimRules};
use crate::claims::{self, Attribute, Mapping};
use crate::config::{Permission, Settings, Upstream};
use crate::state::AppState;
use crate::web::{error_page, render};

const SOURCES: [&str; 3] = ["id_token", "userinfo", "access_token"];
const TYPES: [&str; 7] = [
    "any",
    "string",
    "number",
    "integer",
    "boolean",
    "string_array",
    "object",
];
const ON_MISSING: [&str; 3] = ["clear", "keep", "fail"];
const MERGES: [&str; 4] = ["set", "set_if_empty", "add", "set_or_clear"];
/// Empty rows offered below the existing ones for additions.
const BLANK_ROWS: usize = 2;
/// More rows than any upstream needs; a larger form is refused.
const MAX_ROWS: usize = 500;

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
        warnings: p.warnings.iter().map(|w| w.to_string()).collect(),
        error: p.error,
    })
}

fn no_upstream(id: &str) -> Response {
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
    }
}

fn attr_row(a: &Attribute, errors: Vec<String>) -> AttrRow {
    AttrRow {
        claim: a.claim.canonical(),
        sources: options(&SOURCES, a.source.as_str()),
        types: options(&TYPES, a.ty.as_str()),
        display_name: a.display_name.clone().unwrap_or_default(),
        required: a.required,
        on_missing: options(&ON_MISSING, &word(&a.on_missing)),
        errors,
    }
}

fn blank_attr() -> AttrRow {
    AttrRow {
        claim: String::new(),
        sources: options(&SOURCES, "id_token"),
        types: options(&TYPES, "any"),
        display_name: String::new(),
        required: false,
        on_missing: options(&ON_MISSING, "clear"),
        errors: Vec::new(),
    }
}

fn map_row(m: &Mapping, errors: Vec<String>) -> MapRow {
    MapRow {
        from: m.from.canonical(),
        to: m.to.canonical(),
        merges: options(&MERGES, m.merge.as_str()),
        errors,
    }
}

fn blank_map() -> MapRow {
    MapRow {
        from: String::new(),
        to: String::new(),
        merges: options(&MERGES, "set"),
        errors: Vec::new(),
    }
}

/// One submitted row: its fields as typed, what they parse to, and its problems.
struct Row<T> {
    fields: Map<String, Value>,
    parsed: Option<T>,
    errors: Vec<String>,
}

/// The submitted rows, in form order; blank and removed rows are already left out.
struct Rows {
    attributes: Vec<Row<Attribute>>,
    mappings: Vec<Row<Mapping>>,
}

impl Rows {
    fn parse(form: &Form) -> Result<Self, String> {
        let mut attr_fields: Vec<Map<String, Value>> = Vec::new();
        let mut map_fields: Vec<Map<String, Value>> = Vec::new();
        for (name, value) in form.fields() {
            let (list, rest) = if let Some(rest) = name.strip_prefix("attr.") {
                (&mut attr_fields, rest)
            } else if let Some(rest) = name.strip_prefix("map.") {
                (&mut map_fields, rest)
            } else {
                continue;
            };
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(n) = n.parse::<usize>() else {
                return Err(format!("“{name}” is not a field of this form."));
            };
            if n >= MAX_ROWS {
                return Err(format!("At most {MAX_ROWS} rows can be saved at once."));
            }
            if list.len() <= n {
                list.resize_with(n + 1, Map::new);
            }
            list[n].insert(field.to_string(), Value::String(value.trim().to_string()));
        }
        let kept = |f: &Map<String, Value>, key: &str| {
            !f.contains_key("remove")
                && f.get(key)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
        };
        Ok(Self {
            attributes: attr_fields
                .into_iter()
                .filter(|f| kept(f, "claim"))
                .map(|fields| parse_row(fields, attribute_json))
                .collect(),
            mappings: map_fields
                .into_iter()
                .filter(|f| kept(f, "from"))
                .map(|fields| parse_row(fields, mapping_json))
                .collect(),
        })
    }

    fn has_errors(&self) -> bool {
        self.attributes.iter().any(|r| !r.errors.is_empty())
            || self.mappings.iter().any(|r| !r.errors.is_empty())
    }

    fn attributes(&self) -> Vec<Attribute> {
        self.attributes
            .iter()
            .filter_map(|r| r.parsed.clone())
            .collect()
    }

    fn mappings(&self) -> Vec<Mapping> {
        self.mappings
            .iter()
            .filter_map(|r| r.parsed.clone())
            .collect()
    }

    /// Puts each check-config problem about this upstream (`upstreams[N]…`) next to the row it
    /// names; returns the others, for the top of the page.
    fn place(&mut self, position: Option<usize>, problems: Vec<String>) -> Vec<String> {
        let mut rest = Vec::new();
        for p in problems {
            let ours = position.is_some_and(|n| p.starts_with(&format!("upstreams[{n}]")));
            // The row is the first list index after the upstream's own: `upstreams[0]:
            // mappings[1] (… attributes[3] …)` is about mapping 1.
            let slot = match ours.then(|| first_row(&p)).flatten() {
                Some(Named::Attribute(i)) => self.attributes.get_mut(i).map(|r| &mut r.errors),
                Some(Named::Mapping(i)) => self.mappings.get_mut(i).map(|r| &mut r.errors),
                None => None,
            };
            match slot {
                Some(errors) => errors.push(p),
                None => rest.push(p),
            }
        }
        if rest.is_empty() {
            rest.push("Some rows have problems; see the messages next to them.".into());
        }
        rest
    }

    fn into_views(self) -> (Vec<AttrRow>, Vec<MapRow>) {
        let text = |f: &Map<String, Value>, k: &str| {
            f.get(k).and_then(Value::as_str).unwrap_or("").to_string()
        };
        let attributes = self
            .attributes
            .into_iter()
            .map(|r| AttrRow {
                claim: text(&r.fields, "claim"),
                sources: options(&SOURCES, &text(&r.fields, "source")),
                types: options(&TYPES, &text(&r.fields, "type")),
                display_name: text(&r.fields, "display_name"),
                required: r.fields.contains_key("required"),
                on_missing: options(&ON_MISSING, &text(&r.fields, "on_missing")),
                errors: r.errors,
            })
            .chain((0..BLANK_ROWS).map(|_| blank_attr()))
            .collect();
        let mappings = self
            .mappings
            .into_iter()
            .map(|r| MapRow {
                from: text(&r.fields, "from"),
                to: text(&r.fields, "to"),
                merges: options(&MERGES, &text(&r.fields, "merge")),
                errors: r.errors,
            })
            .chain((0..BLANK_ROWS).map(|_| blank_map()))
            .collect();
        (attributes, mappings)
    }
}

enum Named {
    Attribute(usize),
    Mapping(usize),
}

/// The row a check-config message about one upstream names first: `attributes[3]` or
/// `mappings[3]`, after the `upstreams[N]` it starts with.
fn first_row(message: &str) -> Option<Named> {
    let rest = message.split_once(']').map_or(message, |(_, r)| r);
    let index = |prefix: &str| {
        let at = rest.find(prefix)?;
        let start = at + prefix.len();
        let end = start + rest[start..].find(']')?;
        Some((at, rest[start..end].parse::<usize>().ok()?))
    };
    match (index("attributes["), index("mappings[")) {
        (Some((a, i)), Some((m, _))) if a < m => Some(Named::Attribute(i)),
        (_, Some((_, i))) => Some(Named::Mapping(i)),
        (Some((_, i)), None) => Some(Named::Attribute(i)),
        (None, None) => None,
    }
}

fn parse_row<T: serde::de::DeserializeOwned>(
    fields: Map<String, Value>,
    to_json: fn(&Map<String, Value>) -> Value,
) -> Row<T> {
    match serde_json::from_value::<T>(to_json(&fields)) {
        Ok(parsed) => Row {
            fields,
            parsed: Some(parsed),
            errors: Vec::new(),
        },
        Err(e) => Row {
            fields,
            parsed: None,
            errors: vec![e.to_string()],
        },
    }
}

/// An attribute row as the configuration writes it. Checkbox fields are present when ticked.
fn attribute_json(f: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for k in ["claim", "source", "type", "on_missing"] {
        if let Some(v) = f.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    if let Some(Value::String(name)) = f.get("display_name")
        && !name.is_empty()
    {
        out.insert("display_name".into(), Value::String(name.clone()));
    }
    out.insert("required".into(), Value::Bool(f.contains_key("required")));
    Value::Object(out)
}

fn mapping_json(f: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for k in ["from", "to", "merge"] {
        if let Some(v) = f.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    Value::Object(out)
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
        Err(e) if e.status == StatusCode::BAD_REQUEST || e.status == StatusCode::CONFLICT => {
            let mut errors = vec![e.body.error_description];
            errors.extend(e.body.problems);
            let shown = overview_page(state, admin, up, None, errors);
            render(StatusCode::BAD_REQUEST, &shown)
        }
        Err(e) => api_failed(e),
    }
}

/// The upstream's page as stored (no unsaved rows), with `notice` or `errors`.
fn overview_page(
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
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_lands_on_the_row_its_message_names_first() {
        let row = |m: &str| match first_row(m) {
            Some(Named::Attribute(i)) => format!("attribute {i}"),
            Some(Named::Mapping(i)) => format!("mapping {i}"),
            None => "page".into(),
        };
        assert_eq!(
            row("upstreams[0]: attributes[2] (claim `x`): bad"),
            "attribute 2"
        );
        assert_eq!(
            row("upstreams[1]: mappings[1] (`a` → `sub`): reads attributes[3], which…"),
            "mapping 1"
        );
        assert_eq!(row("upstreams[0].auth_context_ttl: not a duration"), "page");
    }
}
