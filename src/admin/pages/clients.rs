//! Clients: the list with a registration form, and one client's settings with Save, Rotate
//! secret and Delete.
//! Registration, changes and removal are operations of the change service the API uses too
//! ([`Changes`]), so both behave the same.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::base::{
    AdminForm, AdminUser, Form, api_failed, inline, lines, path_segment, problems, stale_save,
};
use super::views::{
    ClientForm, ClientPage, ClientRow, ClientsPage, CreatedView, Nav, SecretView, options,
};
use crate::admin::changes::{Changes, ClientSettings, secret_grace};
use crate::admin::error::ApiError;
use crate::clock::readable_utc;
use crate::config::{Client, ClientAuth, GrantType, Permission, Settings};
use crate::state::AppState;
use crate::web::{error_page, render};

const ALGS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

fn rows(settings: &Settings) -> Vec<ClientRow> {
    let mut rows: Vec<ClientRow> = settings
        .clients
        .values()
        .map(|c| ClientRow::of(c))
        .collect();
    rows.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    rows
}

fn empty_form() -> ClientForm {
    ClientForm {
        scopes: "openid".into(),
        authorization_code: true,
        algs: options(&ALGS, "RS256"),
        ..ClientForm::default()
    }
}

fn form_of(c: &Client) -> ClientForm {
    // Lifetimes mean something only for a client that gets refresh tokens.
    let refreshes = c.allows(GrantType::RefreshToken);
    let ttl = |d| {
        if refreshes {
            humantime::format_duration(d).to_string()
        } else {
            String::new()
        }
    };
    ClientForm {
        client_id: c.client_id.clone(),
        client_name: c.client_name.clone(),
        redirect_uris: c.redirect_uris.join("\n"),
        post_logout_redirect_uris: c.post_logout_redirect_uris.join("\n"),
        backchannel_logout_uri: c.backchannel_logout_uri.clone().unwrap_or_default(),
        scopes: c.scopes.join(" "),
        trusted: c.trusted,
        require_par: c.require_pushed_authorization_requests,
        require_dpop: c.dpop_bound_access_tokens,
        public: matches!(c.auth, ClientAuth::None),
        authorization_code: c.allows(GrantType::AuthorizationCode),
        refresh_token: c.allows(GrantType::RefreshToken),
        client_credentials: c.allows(GrantType::ClientCredentials),
        token_exchange: c.allows(GrantType::TokenExchange),
        algs: options(&ALGS, c.signing_alg.as_str()),
        refresh_token_idle_ttl: ttl(c.refresh_token_idle_ttl),
        refresh_token_absolute_ttl: ttl(c.refresh_token_absolute_ttl),
        refresh_token_grace_period: ttl(c.refresh_token_grace_period),
        logo_uri: c.links.logo_uri.clone().unwrap_or_default(),
        client_uri: c.links.client_uri.clone().unwrap_or_default(),
        policy_uri: c.links.policy_uri.clone().unwrap_or_default(),
        tos_uri: c.links.tos_uri.clone().unwrap_or_default(),
        access_policy: c
            .access_policy
            .as_ref()
            .map(|p| p.source().to_string())
            .unwrap_or_default(),
    }
}

/// The form as submitted, to show again with its problems.
fn form_from(form: &Form, client_id: String) -> ClientForm {
    ClientForm {
        client_id,
        client_name: form.text("client_name"),
        redirect_uris: form.text("redirect_uris"),
        post_logout_redirect_uris: form.text("post_logout_redirect_uris"),
        backchannel_logout_uri: form.text("backchannel_logout_uri"),
        scopes: form.text("scopes"),
        trusted: form.checked("trusted"),
        require_par: form.checked("require_par"),
        require_dpop: form.checked("require_dpop"),
        public: form.checked("public"),
        authorization_code: form.checked("authorization_code"),
        refresh_token: form.checked("refresh_token"),
        client_credentials: form.checked("client_credentials"),
        token_exchange: form.checked("token_exchange"),
        algs: options(&ALGS, &form.text("id_token_signed_response_alg")),
        refresh_token_idle_ttl: form.text("refresh_token_idle_ttl"),
        refresh_token_absolute_ttl: form.text("refresh_token_absolute_ttl"),
        refresh_token_grace_period: form.text("refresh_token_grace_period"),
        logo_uri: form.text("logo_uri"),
        client_uri: form.text("client_uri"),
        policy_uri: form.text("policy_uri"),
        tos_uri: form.text("tos_uri"),
        access_policy: form.text("access_policy"),
    }
}

/// The settings a submitted form asks for, in the API's terms.
fn settings_from(form: &Form) -> ClientSettings {
    let optional = |name: &str| Some(form.text(name)).filter(|v| !v.is_empty());
    // Refresh-token settings are sent only with the refresh_token grant (check-config refuses
    // them without it), so unticking the grant does not leave them behind as an error.
    let refreshing = |name: &str| optional(name).filter(|_| form.checked("refresh_token"));
    let grant_types = ["authorization_code", "refresh_token", "client_credentials"]
        .into_iter()
        .filter(|g| form.checked(g))
        .map(str::to_string)
        .chain(
            form.checked("token_exchange")
                .then(|| GrantType::TokenExchange.as_str().to_string()),
        )
        .collect();
    ClientSettings {
        client_name: optional("client_name"),
        redirect_uris: lines(&form.text("redirect_uris")),
        scopes: form
            .text("scopes")
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        trusted: form.checked("trusted"),
        require_pushed_authorization_requests: form.checked("require_par"),
        dpop_bound_access_tokens: form.checked("require_dpop"),
        grant_types: Some(grant_types),
        refresh_token_idle_ttl: refreshing("refresh_token_idle_ttl"),
        refresh_token_absolute_ttl: refreshing("refresh_token_absolute_ttl"),
        refresh_token_grace_period: refreshing("refresh_token_grace_period"),
        id_token_signed_response_alg: optional("id_token_signed_response_alg"),
        post_logout_redirect_uris: lines(&form.text("post_logout_redirect_uris")),
        backchannel_logout_uri: optional("backchannel_logout_uri"),
        jwks: None,
        logo_uri: optional("logo_uri"),
        client_uri: optional("client_uri"),
        policy_uri: optional("policy_uri"),
        tos_uri: optional("tos_uri"),
        access_policy: optional("access_policy"),
    }
}

/// An API refusal as lines for the page: the description, then each problem.
pub async fn list(State(state): State<AppState>, admin: AdminUser) -> Response {
    render(
        StatusCode::OK,
        &clients_page(&admin, &state.settings(), empty_form(), vec![], None),
    )
}

fn clients_page(
    admin: &AdminUser,
    settings: &Settings,
    form: ClientForm,
    errors: Vec<String>,
    created: Option<CreatedView>,
) -> ClientsPage {
    ClientsPage {
        nav: Nav::new(admin, "clients"),
        csrf: admin.csrf.clone(),
        clients: rows(settings),
        form,
        errors,
        created,
    }
}

pub async fn create(
    State(state): State<AppState>,
    AdminForm { admin, form }: AdminForm,
) -> Response {
    if let Some(refusal) = admin.refuse_unless(Permission::EditConfig) {
        return refusal;
    }
    let client_id = form.text("client_id");
    let outcome = if client_id.is_empty() {
        Err(ApiError::invalid_request("Give the client a client_id."))
    } else {
        let public = form.checked("public");
        Changes::new(&state, &admin.actor())
            .register_client(&client_id, public, settings_from(&form))
            .await
    };
    match outcome {
        Ok(created) => render(
            StatusCode::CREATED,
            &clients_page(
                &admin,
                &state.settings(),
                empty_form(),
                vec![],
                Some(CreatedView {
                    client_id,
                    secret: created.client_secret,
                }),
            ),
        ),
        Err(e) if inline(&e) => render(
            StatusCode::BAD_REQUEST,
            &clients_page(
                &admin,
                &state.settings(),
                form_from(&form, client_id),
                problems(e),
                None,
            ),
        ),
        Err(e) => api_failed(e),
    }
}

#[derive(Deserialize)]
pub struct ShowQuery {
    saved: Option<i64>,
}

pub async fn show(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(client_id): Path<String>,
    query: Result<Query<ShowQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let settings = state.settings();
    let Some(client) = settings.client(&client_id) else {
        return no_client(&client_id);
    };
    let notice = query.ok().and_then(|q| q.0.saved).map(|v| {
        format!("Saved as configuration version {v}; in effect on every replica within seconds.")
    });
    render(
        StatusCode::OK,
        &client_page(
            &admin,
            state.now(),
            state.config_version(),
            client,
            form_of(client),
            vec![],
            notice,
        ),
    )
}

fn client_page(
    admin: &AdminUser,
    now: i64,
    version: i64,
    client: &Client,
    form: ClientForm,
    errors: Vec<String>,
    notice: Option<String>,
) -> ClientPage {
    ClientPage {
        nav: Nav::new(admin, "clients"),
        csrf: admin.csrf.clone(),
        version,
        kind: ClientRow::of(client).kind,
        form,
        errors,
        notice,
        secret: secret_view(client, None, now),
    }
}

/// The secret section of a client's page, for a client that authenticates with a secret.
fn secret_view(client: &Client, new_secret: Option<String>, now: i64) -> Option<SecretView> {
    matches!(client.auth, ClientAuth::Secret(_)).then(|| SecretView {
        new_secret,
        previous_until: client
            .previous_secret
            .as_ref()
            .filter(|p| p.is_live(now))
            .map(|p| readable_utc(p.expires_at)),
    })
}

fn no_client(client_id: &str) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "No such client",
        &format!("Herald has no client “{client_id}”."),
        None,
    )
}

pub async fn submit(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    AdminForm { admin, form }: AdminForm,
) -> Response {
    if let Some(refusal) = admin.refuse_unless(Permission::EditConfig) {
        return refusal;
    }
    let settings = state.settings();
    let Some(client) = settings.client(&client_id).cloned() else {
        return no_client(&client_id);
    };
    let escaped = path_segment(&client_id);
    let seen = form.version();
    if form.get("action") == Some("rotate") {
        return rotate(&state, &admin, &client, &form).await;
    }
    if form.get("action") == Some("delete") {
        return match Changes::new(&state, &admin.actor())
            .delete_client(&client_id)
            .await
        {
            Ok(_) => Redirect::to("/admin/clients").into_response(),
            Err(e) if inline(&e) => render(
                StatusCode::BAD_REQUEST,
                &client_page(
                    &admin,
                    state.now(),
                    seen,
                    &client,
                    form_of(&client),
                    problems(e),
                    None,
                ),
            ),
            Err(e) => api_failed(e),
        };
    }
    match stale_save(&state, &form, "values").await {
        Ok(None) => {}
        Ok(Some((latest, message))) => {
            let mut shown = form_from(&form, client_id);
            shown.public = matches!(client.auth, ClientAuth::None);
            return render(
                StatusCode::CONFLICT,
                &client_page(
                    &admin,
                    state.now(),
                    latest,
                    &client,
                    shown,
                    vec![message],
                    None,
                ),
            );
        }
        Err(page) => return page,
    }
    let mut changed = settings_from(&form);
    // The page does not edit a private_key_jwt client's keys: they stay as registered.
    if let ClientAuth::PrivateKeyJwt(set) = &client.auth {
        changed.jwks = serde_json::to_value(set.as_ref()).ok();
    }
    let actor = admin.actor();
    match Changes::new(&state, &actor)
        .update_client(&client_id, changed)
        .await
    {
        Ok(version) => {
            Redirect::to(&format!("/admin/clients/{escaped}?saved={version}")).into_response()
        }
        Err(e) if inline(&e) => {
            let mut shown = form_from(&form, client_id);
            shown.public = matches!(client.auth, ClientAuth::None);
            render(
                StatusCode::BAD_REQUEST,
                &client_page(&admin, state.now(), seen, &client, shown, problems(e), None),
            )
        }
        Err(e) => api_failed(e),
    }
}

/// A new secret for the client, shown on its page this once; the replaced one keeps working
/// for the grace period the form chose.
async fn rotate(state: &AppState, admin: &AdminUser, client: &Client, form: &Form) -> Response {
    // A second press of the button (or a reload of its answer) must not rotate again: that
    // would stop the secret still deployed at once and replace the one just shown.
    match stale_save(state, form, "secret").await {
        Ok(None) => {}
        Ok(Some((latest, _))) => {
            let message = format!(
                "Not rotated: the configuration changed (version {} → {latest}) since this \
                 page was opened, perhaps by this very rotation submitted twice. Nothing was \
                 changed now; reload the page and rotate again if you mean to.",
                form.version()
            );
            return render(
                StatusCode::CONFLICT,
                &client_page(
                    admin,
                    state.now(),
                    latest,
                    client,
                    form_of(client),
                    vec![message],
                    None,
                ),
            );
        }
        Err(page) => return page,
    }
    let actor = admin.actor();
    let outcome = match secret_grace(form.get("grace")) {
        Ok(grace) => {
            Changes::new(state, &actor)
                .rotate_client_secret(&client.client_id, grace)
                .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(rotated) => {
            let settings = state.settings();
            let Some(now_client) = settings.client(&client.client_id) else {
                return no_client(&client.client_id);
            };
            let mut page = client_page(
                admin,
                state.now(),
                rotated.version,
                now_client,
                form_of(now_client),
                vec![],
                None,
            );
            page.secret = secret_view(now_client, Some(rotated.client_secret), state.now());
            render(StatusCode::OK, &page)
        }
        Err(e) if inline(&e) => render(
            StatusCode::BAD_REQUEST,
            &client_page(
                admin,
                state.now(),
                form.version(),
                client,
                form_of(client),
                problems(e),
                None,
            ),
        ),
        Err(e) => api_failed(e),
    }
}
