//! The login events: the latest logins and refusals (who, upstream, app, result, reason,
//! time), newest first, filtered by result, user, upstream and app, a page at a time. The API's
//! `GET /admin/api/login-events` lists the same.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::base::{AdminUser, store_failed};
use super::views::{LoginEventRow, LoginsPage, Nav, options};
use crate::admin::login_events::{LoginEventParams, next_cursor};
use crate::clock::readable_utc;
use crate::config::{Permission, Settings};
use crate::state::AppState;
use crate::store::{LoginEvent, User};
use crate::web::render;

const RESULTS: [&str; 5] = ["", "success", "failure", "blocked", "denied"];
const PER_PAGE: i64 = 50;

/// An event as the pages show it; `user` names its user when Herald knows them.
pub fn row(settings: &Settings, e: LoginEvent, user: Option<&User>) -> LoginEventRow {
    LoginEventRow {
        at: readable_utc(e.at),
        result: e.result.as_str(),
        user_name: user
            .and_then(|u| u.email.clone().or_else(|| u.name.clone()))
            .unwrap_or_default(),
        sub: e.sub.unwrap_or_default(),
        upstream: e.upstream_id.unwrap_or_default(),
        app_name: settings.app_name(&e.client_id),
        client_id: e.client_id,
        reason: e.reason.unwrap_or_default(),
    }
}

pub async fn list(
    State(state): State<AppState>,
    admin: AdminUser,
    query: Result<Query<LoginEventParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(refusal) = admin.refuse_unless(Permission::ReadUsers) {
        return refusal;
    }
    let params = query.map(|q| q.0).unwrap_or_default();
    let (events, error) = match params.query() {
        Ok(mut q) => {
            q.limit = PER_PAGE;
            match state.store.login_events(&q).await {
                Ok(events) => (events, None),
                Err(e) => return store_failed(e),
            }
        }
        Err(e) => (Vec::new(), Some(e.body.error_description)),
    };
    // Each user once, to name them.
    let mut users: HashMap<String, Option<User>> = HashMap::new();
    for sub in events.iter().filter_map(|e| e.sub.as_ref()) {
        if !users.contains_key(sub) {
            match state.store.user(sub).await {
                Ok(u) => users.insert(sub.clone(), u),
                Err(e) => return store_failed(e),
            };
        }
    }
    let older = (events.len() as i64 == PER_PAGE)
        .then(|| events.last().map(next_cursor))
        .flatten()
        .map(|before| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in [
                ("result", &params.result),
                ("sub", &params.sub),
                ("upstream", &params.upstream),
                ("client_id", &params.client_id),
            ] {
                if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                    s.append_pair(k, v);
                }
            }
            s.append_pair("before", &before);
            format!("/admin/logins?{}", s.finish())
        });
    let settings = state.settings();
    let rows = events
        .into_iter()
        .map(|e| {
            let user = e
                .sub
                .as_ref()
                .and_then(|s| users.get(s))
                .and_then(Option::as_ref);
            row(&settings, e, user)
        })
        .collect();
    render(
        StatusCode::OK,
        &LoginsPage {
            nav: Nav::new(&admin, "logins"),
            events: rows,
            results: options(&RESULTS, params.result.as_deref().unwrap_or_default()),
            sub: params.sub.unwrap_or_default(),
            upstream: params.upstream.unwrap_or_default(),
            client_id: params.client_id.unwrap_or_default(),
            older,
            error,
        },
    )
}
