//! What an admin does to a user from their page: withdraw a consent (as the user could in the
//! consent center), block or unblock them, unlink one of their identities, and erase them. Each is the API's operation
//! ([`crate::admin::users::withdraw`], [`crate::admin::users::set_blocked`],
//! [`crate::admin::erasure::erase`]), audited the same way.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::base::{AdminForm, api_failed, path_segment};
use crate::admin::erasure::erase;
use crate::admin::identities::unlink;
use crate::admin::users::{set_blocked, withdraw};
use crate::config::Permission;
use crate::state::AppState;
use crate::web::error_page;

pub async fn submit(
    State(state): State<AppState>,
    Path(sub): Path<String>,
    AdminForm { admin, form }: AdminForm,
) -> Response {
    if let Some(refusal) = admin.refuse_unless(Permission::ManageUsers) {
        return refusal;
    }
    let actor = admin.actor();
    match form.get("action") {
        Some("withdraw") => {
            let client_id = form.text("client_id");
            match withdraw(&state, &actor, &sub, &client_id).await {
                Ok(_) => Redirect::to(&format!(
                    "/admin/users/{}?withdrawn={}",
                    path_segment(&sub),
                    path_segment(&client_id)
                ))
                .into_response(),
                Err(e) => api_failed(e),
            }
        }
        Some(action @ ("block" | "unblock")) => {
            let blocked = action == "block";
            match set_blocked(&state, &actor, &sub, blocked).await {
                Ok(()) => Redirect::to(&format!(
                    "/admin/users/{}?blocked={blocked}",
                    path_segment(&sub)
                ))
                .into_response(),
                Err(e) => api_failed(e),
            }
        }
        Some("unlink") => {
            let (upstream, subject) = (form.text("upstream"), form.text("subject"));
            match unlink(&state, &actor, &sub, &upstream, &subject).await {
                Ok(_) => Redirect::to(&format!(
                    "/admin/users/{}?unlinked={}",
                    path_segment(&sub),
                    path_segment(&subject)
                ))
                .into_response(),
                Err(e) => api_failed(e),
            }
        }
        Some("erase") if form.checked("confirm") => {
            match erase(&state, &actor, sub.clone(), form.checked("purge")).await {
                Ok(_) => Redirect::to(&format!("/admin/users?erased={}", path_segment(&sub)))
                    .into_response(),
                Err(e) => api_failed(e),
            }
        }
        Some("erase") => error_page(
            StatusCode::BAD_REQUEST,
            "Not erased",
            "Tick the box that confirms the erasure: it cannot be undone.",
            Some(super::base::back_to_admin()),
        ),
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid form",
            "This form asks for nothing Herald knows how to do.",
            Some(super::base::back_to_admin()),
        ),
    }
}
