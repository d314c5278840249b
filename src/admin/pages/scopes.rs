//! The scopes: every scope an app may ask for, built-in or the admin's, with what the consent
//! page says for it in each language, the claims it releases, whether the user may decline it
//! and the purpose it serves; a form adds one, and each scope's page changes it, removes it, or
//! gives a built-in one back to Herald's own definition.
//!
//! Changes go through the change service ([`Changes::create_scope`], [`Changes::put_scope`],
//! [`Changes::remove_scope`]), so they are validated like `herald check-config`.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::base::{
    AdminForm, AdminUser, Form, api_failed, inline, path_segment, problems, stale_save,
};
use super::views::{LocaleField, NamedOpt, Nav, ScopeForm, ScopePage, ScopeRow, ScopesPage};
use crate::admin::changes::Changes;
use crate::admin::error::ApiError;
use crate::claims::release::BUILTIN_LOCALE;
use crate::claims::{ClaimPath, ReleaseEntry, ScopeCatalog, ScopeDef, TokenKind, builtin_scopes};
use crate::config::{Permission, Settings};
use crate::state::AppState;
use crate::web::{error_page, render};

/// The consent page's default language: `description` is written in it.
const DEFAULT_LOCALE: &str = "en";

/// A scope's claims as the form writes them: one per line, `claim` (to the ID token and
/// userinfo) or `claim -> access_token userinfo` (to the tokens named).
fn claims_text(def: &ScopeDef) -> String {
    def.claims
        .iter()
        .map(|e| match e {
            ReleaseEntry::Path(p) => p.to_string(),
            ReleaseEntry::Detailed { claim, to } => {
                let to: Vec<&str> = to.iter().map(|t| t.as_str()).collect();
                format!("{claim} -> {}", to.join(" "))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_claims(text: &str) -> Result<Vec<ReleaseEntry>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = |e: String| format!("Claims, line {}: {e}", i + 1);
        let (claim, to) = match line.split_once("->") {
            Some((c, t)) => (c.trim(), Some(t)),
            None => (line, None),
        };
        let claim = ClaimPath::parse(claim).map_err(|e| at(e.to_string()))?;
        out.push(match to {
            None => ReleaseEntry::Path(claim),
            Some(to) => {
                let to = to
                    .split([' ', ','])
                    .filter(|w| !w.is_empty())
                    .map(|w| {
                        serde_json::from_value::<TokenKind>(serde_json::Value::String(w.into()))
                            .map_err(|_| {
                                at(format!(
                                    "“{w}” is not a token; write id_token, userinfo or access_token"
                                ))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if to.is_empty() {
                    return Err(at("name the tokens after ->, like access_token".into()));
                }
                ReleaseEntry::Detailed { claim, to }
            }
        });
    }
    Ok(out)
}

/// A language tag as the form names it: `German (de)`; a tag Herald has no name for as itself.
fn language_name(tag: &str) -> String {
    let language = tag
        .split(['-', '_'])
        .next()
        .unwrap_or(tag)
        .to_ascii_lowercase();
    let name = match language.as_str() {
        "de" => "German",
        "fr" => "French",
        "es" => "Spanish",
        "it" => "Italian",
        "nl" => "Dutch",
        "pt" => "Portuguese",
        "pl" => "Polish",
        "sv" => "Swedish",
        "da" => "Danish",
        "fi" => "Finnish",
        "ja" => "Japanese",
        "zh" => "Chinese",
        _ => return tag.to_string(),
    };
    format!("{name} ({tag})")
}

/// Where scope `name`'s definition comes from.
fn origin(name: &str, def: &ScopeDef) -> &'static str {
    match builtin_scopes().get(name) {
        Some(b) if b == def => "built-in",
        Some(_) => "built-in, redefined",
        None => "custom",
    }
}

fn purposes(catalog: &ScopeCatalog, chosen: Option<&str>) -> Vec<NamedOpt> {
    std::iter::once(NamedOpt {
        value: String::new(),
        label: "none".into(),
        selected: chosen.is_none(),
    })
    .chain(catalog.purposes().map(|(p, _)| NamedOpt {
        value: p.into(),
        label: p.into(),
        selected: chosen == Some(p),
    }))
    .collect()
}

/// The form for scope `name` (empty for a new one): one description field per language the
/// consent page speaks, each showing what that language gets when it is left empty.
fn form_of(catalog: &ScopeCatalog, name: &str, def: Option<&ScopeDef>) -> ScopeForm {
    let mut locales: Vec<String> = catalog.locales();
    if let Some(d) = def {
        locales.extend(d.translations.keys().cloned());
    }
    locales.sort_unstable();
    locales.dedup();
    let translations = locales
        .into_iter()
        .filter(|l| l != DEFAULT_LOCALE)
        .map(|locale| {
            let value = def
                .and_then(|d| d.translations.get(&locale).cloned())
                .unwrap_or_default();
            let fallback = def.map(|_| catalog.scope_text(name, &locale).to_string());
            LocaleField {
                placeholder: fallback.filter(|f| *f != value).unwrap_or_default(),
                label: language_name(&locale),
                locale,
                value,
            }
        })
        .collect();
    ScopeForm {
        name: name.into(),
        description: def.map(|d| d.description.clone()).unwrap_or_default(),
        translations,
        claims: def.map(claims_text).unwrap_or_default(),
        optional: def.is_some_and(|d| d.optional),
        purposes: purposes(catalog, def.and_then(|d| d.purpose.as_deref())),
    }
}

/// The form as submitted, to show again with its messages.
fn form_from(catalog: &ScopeCatalog, form: &Form, name: &str) -> ScopeForm {
    let mut shown = form_of(catalog, name, catalog.get(name));
    shown.description = form.text("description");
    for t in &mut shown.translations {
        t.value = form.text(&format!("translation.{}", t.locale));
    }
    shown.claims = form.text("claims");
    shown.optional = form.checked("optional");
    let purpose = form.text("purpose");
    shown.purposes = purposes(catalog, Some(purpose.as_str()).filter(|p| !p.is_empty()));
    shown
}

/// The definition a submitted form asks for.
fn def_from(form: &Form) -> Result<ScopeDef, ApiError> {
    let mut translations = BTreeMap::new();
    for (key, value) in form.pairs() {
        if let Some(locale) = key.strip_prefix("translation.")
            && !value.trim().is_empty()
        {
            translations.insert(locale.to_string(), value.trim().to_string());
        }
    }
    let (locale, text) = (form.text("new_locale"), form.text("new_translation"));
    if !locale.trim().is_empty() && !text.trim().is_empty() {
        translations.insert(locale.trim().to_string(), text.trim().to_string());
    }
    let purpose = form.text("purpose");
    Ok(ScopeDef {
        description: form.text("description").trim().to_string(),
        claims: parse_claims(&form.text("claims")).map_err(ApiError::invalid_request)?,
        optional: form.checked("optional"),
        purpose: Some(purpose).filter(|p| !p.is_empty()),
        translations,
    })
}

/// The languages scope `name` has its own words in besides English: the admin's translations,
/// and German while Herald still words a built-in scope.
fn languages(catalog: &ScopeCatalog, name: &str, def: &ScopeDef) -> String {
    let mut out: Vec<String> = def.translations.keys().cloned().collect();
    if !def.translations.contains_key(BUILTIN_LOCALE)
        && catalog.scope_text(name, BUILTIN_LOCALE) != def.description
    {
        out.push(format!("{BUILTIN_LOCALE} (Herald's)"));
    }
    out.sort();
    out.join(", ")
}

fn rows(settings: &Settings) -> Vec<ScopeRow> {
    settings
        .scopes
        .iter()
        .map(|(name, def)| ScopeRow {
            name: name.into(),
            description: def.description.clone(),
            languages: languages(&settings.scopes, name, def),
            claims: claims_text(def).replace('\n', ", "),
            optional: def.optional,
            purpose: def.purpose.clone().unwrap_or_default(),
            origin: origin(name, def),
        })
        .collect()
}

fn list_page(
    admin: &AdminUser,
    state: &AppState,
    form: ScopeForm,
    errors: Vec<String>,
) -> ScopesPage {
    let settings = state.settings();
    ScopesPage {
        nav: Nav::new(admin, "scopes"),
        csrf: admin.csrf.clone(),
        scopes: rows(&settings),
        form,
        errors,
    }
}

pub async fn list(State(state): State<AppState>, admin: AdminUser) -> Response {
    let form = form_of(&state.settings().scopes, "", None);
    render(StatusCode::OK, &list_page(&admin, &state, form, Vec::new()))
}

/// Adds a scope and opens its page; a refused one comes back with the typed values.
pub async fn create(
    State(state): State<AppState>,
    AdminForm { admin, form }: AdminForm,
) -> Response {
    if let Some(refusal) = admin.refuse_unless(Permission::EditConfig) {
        return refusal;
    }
    let name = form.text("name").trim().to_string();
    let actor = admin.actor();
    let outcome = match def_from(&form) {
        Ok(_) if name.is_empty() => Err(ApiError::invalid_request(
            "Give the scope a name: the word apps put in their scope parameter, like \
             read:reports.",
        )),
        Ok(def) => Changes::new(&state, &actor).create_scope(&name, &def).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(version) => Redirect::to(&format!(
            "/admin/scopes/{}?saved={version}",
            path_segment(&name)
        ))
        .into_response(),
        Err(e) if inline(&e) => {
            let mut shown = form_from(&state.settings().scopes, &form, &name);
            shown.name = name;
            let status = e.status;
            render(status, &list_page(&admin, &state, shown, problems(e)))
        }
        Err(e) => api_failed(e),
    }
}

#[derive(Deserialize)]
pub struct ShowQuery {
    saved: Option<i64>,
}

fn no_scope(name: &str) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "No such scope",
        &format!("Herald has no scope “{name}”."),
        None,
    )
}

fn scope_page(
    admin: &AdminUser,
    state: &AppState,
    name: &str,
    form: ScopeForm,
    errors: Vec<String>,
    notice: Option<String>,
) -> ScopePage {
    let settings = state.settings();
    let origin = settings
        .scopes
        .get(name)
        .map_or("custom", |d| origin(name, d));
    ScopePage {
        nav: Nav::new(admin, "scopes"),
        csrf: admin.csrf.clone(),
        version: state.config_version(),
        name: name.into(),
        origin,
        clients: settings
            .clients
            .values()
            .filter(|c| c.scopes.iter().any(|s| s == name))
            .map(|c| c.client_id.clone())
            .collect(),
        form,
        errors,
        notice,
    }
}

pub async fn show(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(name): Path<String>,
    query: Result<Query<ShowQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let settings = state.settings();
    let Some(def) = settings.scopes.get(&name) else {
        return no_scope(&name);
    };
    let notice = query.ok().and_then(|q| q.0.saved).map(|v| {
        format!(
            "Saved as configuration version {v}. The consent page shows it from the next \
             request; users who granted this scope before a change of its words or claims are \
             asked again."
        )
    });
    let form = form_of(&settings.scopes, &name, Some(def));
    render(
        StatusCode::OK,
        &scope_page(&admin, &state, &name, form, Vec::new(), notice),
    )
}

/// Saves the scope, or removes its definition (`action=delete`).
pub async fn submit(
    State(state): State<AppState>,
    Path(name): Path<String>,
    AdminForm { admin, form }: AdminForm,
) -> Response {
    if let Some(refusal) = admin.refuse_unless(Permission::EditConfig) {
        return refusal;
    }
    if state.settings().scopes.get(&name).is_none() {
        return no_scope(&name);
    }
    let again = |status: StatusCode, errors: Vec<String>| {
        let shown = form_from(&state.settings().scopes, &form, &name);
        render(
            status,
            &scope_page(&admin, &state, &name, shown, errors, None),
        )
    };
    match stale_save(&state, &form, "changes").await {
        Ok(None) => {}
        Ok(Some((_, message))) => return again(StatusCode::CONFLICT, vec![message]),
        Err(page) => return page,
    }
    let actor = admin.actor();
    let changes = Changes::new(&state, &actor);
    let outcome = match form.get("action") {
        Some("delete") => changes.remove_scope(&name).await.map(|v| (v, true)),
        _ => match def_from(&form) {
            Ok(def) => changes.put_scope(&name, &def).await.map(|v| (v, false)),
            Err(e) => Err(e),
        },
    };
    match outcome {
        // A custom scope removed is gone; a built-in one given back stays, as Herald defines it.
        Ok((_, true)) if state.settings().scopes.get(&name).is_none() => {
            Redirect::to("/admin/scopes").into_response()
        }
        Ok((version, _)) => Redirect::to(&format!(
            "/admin/scopes/{}?saved={version}",
            path_segment(&name)
        ))
        .into_response(),
        Err(e) if inline(&e) => {
            let status = e.status;
            let mut errors = problems(e);
            errors.dedup();
            again(status, errors)
        }
        Err(e) => api_failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_written_and_read_one_per_line() {
        let text = "groups\nhttps://example\\.com/roles -> access_token userinfo\n\n";
        let entries = parse_claims(text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].claim().segments(), ["https://example.com/roles"]);
        assert_eq!(
            entries[1].tokens(),
            [TokenKind::AccessToken, TokenKind::Userinfo]
        );
        let def = ScopeDef {
            description: "d".into(),
            claims: entries,
            optional: false,
            purpose: None,
            translations: BTreeMap::new(),
        };
        assert_eq!(
            claims_text(&def),
            "groups\nhttps://example\\.com/roles -> access_token userinfo"
        );
        let err = parse_claims("groups\nroles -> id_tokens").unwrap_err();
        assert!(
            err.starts_with("Claims, line 2: “id_tokens” is not a token"),
            "{err}"
        );
        assert!(
            parse_claims("a..b")
                .unwrap_err()
                .starts_with("Claims, line 1:")
        );
    }
}
