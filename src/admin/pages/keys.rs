//! The signing keys: every published key with its algorithm and its life (published, signs
//! from, stops signing, leaves the JWKS), and, for admins, a rotation (what `herald keys rotate`
//! does), recorded in the audit log and published on this replica at once (the others reload
//! within `[server] key_reload_interval`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::base::{AdminForm, AdminUser, store_failed};
use super::views::{KeyRow, KeysPage, Nav, options};
use crate::clock::readable_utc;
use crate::config::Permission;
use crate::state::AppState;
use crate::store::{AuditEntry, KeyRecord};
use crate::tokens::Alg;
use crate::tokens::keys::DEFAULT_ACTIVATION_DELAY_SECS;
use crate::web::{error_page, render};

const ALGS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

/// Where a key is in its life at `now`.
fn status(k: &KeyRecord, now: i64) -> &'static str {
    match (k.retires_at, k.expires_at) {
        (_, Some(gone)) if gone <= now => "left the JWKS",
        (Some(stop), _) if stop <= now => "retired: verifies what it signed",
        _ if k.activates_at > now => "published, signs soon",
        (Some(_), _) => "signing until its successor starts",
        (None, _) => "signing",
    }
}

fn row(k: &KeyRecord, now: i64) -> KeyRow {
    KeyRow {
        kid: k.kid.clone(),
        alg: Alg::from(k.alg).as_str(),
        status: status(k, now),
        published: readable_utc(k.created_at),
        signs_from: readable_utc(k.activates_at),
        stops: k.retires_at.map(readable_utc).unwrap_or_default(),
        leaves: k.expires_at.map(readable_utc).unwrap_or_default(),
    }
}

#[derive(Deserialize)]
pub struct KeysQuery {
    rotated: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    admin: AdminUser,
    query: Result<Query<KeysQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let mut keys = match state.store.signing_keys().await {
        Ok(k) => k,
        Err(e) => return store_failed(e),
    };
    let now = state.now();
    keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
    let notice = query.ok().and_then(|q| q.0.rotated).map(|kid| {
        format!(
            "Key {kid} is published. It signs from the time below; the keys it replaces stop \
             signing then and stay published until every token they signed has expired."
        )
    });
    render(
        StatusCode::OK,
        &KeysPage {
            nav: Nav::new(&admin, "keys"),
            csrf: admin.csrf.clone(),
            keys: keys.iter().map(|k| row(k, now)).collect(),
            algs: options(&ALGS, "ES256"),
            can_rotate: admin.roles.may(Permission::ManageUsers),
            default_delay_minutes: DEFAULT_ACTIVATION_DELAY_SECS / 60,
            notice,
        },
    )
}

/// Publishes a new key of the chosen algorithm; it signs after the chosen delay.
pub async fn rotate(
    State(state): State<AppState>,
    AdminForm { admin, form }: AdminForm,
) -> Response {
    if let Some(refusal) = admin.refuse_unless(Permission::ManageUsers) {
        return refusal;
    }
    let Some(alg) = Alg::parse(&form.text("alg")) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Not rotated",
            "Choose RS256, ES256 or EdDSA.",
            None,
        );
    };
    let delay = match form.text("activate_in").parse::<i64>() {
        Ok(d) if (0..=7 * 24 * 3600).contains(&d) => d,
        _ => DEFAULT_ACTIVATION_DELAY_SECS,
    };
    let now = state.now();
    let rotation = match state.rotate_keys(alg, delay).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "key rotation from the admin pages failed");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not rotated",
                "Herald could not store the new key. Nothing was published; try again.",
                Some(super::base::back_to_admin()),
            );
        }
    };
    let after = serde_json::json!({
        "new_kid": rotation.new_kid,
        "activates_at": rotation.activates_at,
        "retired": rotation.retired.iter().map(|(kid, until)| {
            serde_json::json!({"kid": kid, "leaves_jwks_at": until})
        }).collect::<Vec<_>>(),
    });
    let entry = AuditEntry {
        id: 0,
        at: now,
        actor: admin.actor().actor,
        action: "keys.rotate".into(),
        target: format!("keys:{}", alg.as_str()),
        before: None,
        after: Some(after.to_string()),
        config_version: None,
    };
    if let Err(e) = state.store.append_audit(&entry).await {
        tracing::error!(error = %e, "recording a key rotation in the audit log failed");
    }
    Redirect::to(&format!("/admin/keys?rotated={}", rotation.new_kid)).into_response()
}
