//! Pages as people see them: rendering an askama page `no-store`, the error page that says what
//! happened and what to do next (handlers return it as a [`PageError`](super::PageError)), and
//! the stylesheet.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::pages;

pub async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing at this address.",
        None,
    )
}

/// The pages' stylesheet (served on the public and the admin listener).
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        pages::STYLESHEET,
    )
}

/// Renders a page with `Cache-Control: no-store`.
pub fn render(status: StatusCode, page: &impl askama::Template) -> Response {
    match page.render() {
        Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CACHE_CONTROL, "no-store")],
                "Herald could not render this page.",
            )
                .into_response()
        }
    }
}

/// A link back to the app, carrying an OAuth error, for error pages met mid-login.
pub struct ReturnLink {
    pub url: String,
    pub app_name: String,
}

/// The page people see when something goes wrong: what happened and what to do next.
pub fn error_page(
    status: StatusCode,
    title: &str,
    message: &str,
    back: Option<ReturnLink>,
) -> Response {
    render(
        status,
        &pages::ErrorPage {
            title: title.to_string(),
            message: message.to_string(),
            back_url: back.as_ref().map(|b| b.url.clone()),
            back_app: back.map(|b| b.app_name).unwrap_or_default(),
        },
    )
}
