//! The admin pages under `/admin`: server-rendered (askama), working without JavaScript.
//!
//! # Who may use them
//!
//! An admin signs in through Herald like any user (the same browser login and upstream as the
//! consent center, [`login::start_sign_in`]). What makes them an admin, an editor or an auditor
//! is a role that a claim mapping grants: `[admin] role_claim` and `roles` in the file, for
//! example `groups` containing `herald-admins`, `herald-editors` or `herald-auditors`
//! ([`crate::config::Role`] lists what each may do). The role is read from the authentication
//! context of the browser's current login on every request, so a login whose mapping no longer
//! grants it stops working at the next sign-in. Pages show only what the role may do, and
//! every handler checks it again ([`base::AdminUser::refuse_unless`]). Without a configured role
//! nobody can use the pages (the API still takes tokens).
//!
//! # Changes
//!
//! Every form carries a CSRF token kept in the browser session (a synchronizer token bound to
//! the signed-in admin, compared in constant time). A change goes through the same path as the
//! API ([`super::changes::Changes`]): validated like `herald check-config`, stored as the next
//! version, audited as `user:{sub}`, and live on every replica within seconds. Invalid changes
//! come back with check-config's messages next to the row they are about.
//!
//! # Layout
//! - this module: the router, the [`AdminUser`] guard and its CSRF token, the overview;
//! - [`upstream_list`]: the upstreams with their callback URLs, and adding one;
//!   [`upstream_settings`]: an upstream's own settings as a form (adding one, or changing it on
//!   its page), with Herald's client secret there stored encrypted;
//! - [`upstreams`]: one upstream: its connection (callback URL, Test connection, Delete) and
//!   its attributes and mappings, edited together, with a preview; [`upstream_rows`]: the
//!   editor's rows;
//! - [`clients`]: the client list, registration and editing;
//! - [`scopes`]: the scopes, their words per language, claims and purposes; adding and editing;
//! - [`keys`]: the signing keys and their rotation;
//! - [`logins`]: the login events (logins and refusals), filtered;
//! - [`user_actions`]: withdrawing a user's consent and erasing a user;
//! - [`directory`]: lineage, users and the audit log (read only);
//! - [`views`]: one askama struct per page.

mod base;
mod clients;
mod directory;
mod keys;
mod logins;
mod samples;
mod scopes;
mod upstream_list;
mod upstream_rows;
mod upstream_settings;
mod upstreams;
mod user_actions;
mod views;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use crate::state::AppState;
use crate::web::{error_page, render};
use base::{AdminUser, back_to_admin};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview))
        .route(
            "/admin/upstreams",
            get(upstream_list::list).post(upstream_list::create),
        )
        .route(
            "/admin/upstreams/{id}",
            get(upstreams::show).post(upstreams::submit),
        )
        .route(
            "/admin/upstreams/{id}/settings",
            post(upstreams::save_settings),
        )
        .route("/admin/scopes", get(scopes::list).post(scopes::create))
        .route("/admin/logins", get(logins::list))
        .route(
            "/admin/scopes/{name}",
            get(scopes::show).post(scopes::submit),
        )
        .route("/admin/clients", get(clients::list).post(clients::create))
        .route(
            "/admin/clients/{client_id}",
            get(clients::show).post(clients::submit),
        )
        .route("/admin/keys", get(keys::list).post(keys::rotate))
        .route("/admin/lineage", get(directory::lineage))
        .route("/admin/users", get(directory::users))
        .route(
            "/admin/users/{sub}",
            get(directory::user).post(user_actions::submit),
        )
        .route("/admin/audit", get(directory::audit))
        .route("/admin/{*rest}", axum::routing::any(not_found))
}

/// Unknown admin pages are 404, for admins only (others are asked to sign in or refused).
async fn not_found(_: AdminUser) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no admin page at this address.",
        Some(back_to_admin()),
    )
}

async fn overview(State(state): State<AppState>, admin: AdminUser) -> Response {
    let settings = state.settings();
    let mut clients: Vec<views::ClientRow> = settings
        .clients
        .values()
        .map(|c| views::ClientRow::of(c))
        .collect();
    clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    render(
        StatusCode::OK,
        &views::OverviewPage {
            nav: views::Nav::new(&admin, "overview"),
            version: state.config_version(),
            upstreams: settings
                .upstreams
                .iter()
                .map(|u| views::UpstreamRow {
                    id: u.id.clone(),
                    display_name: u.display_name.clone(),
                    issuer: u.endpoint.issuer.clone(),
                    attributes: u.mapping.attributes.len(),
                    mappings: u.mapping.mappings.len(),
                })
                .collect(),
            clients,
        },
    )
}
