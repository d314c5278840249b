//! Pages as people see them: rendering an askama page `no-store`, the error page that says what
//! happened and what to do next, and the stylesheet.

use axum::http::{HeaderValue, StatusCode, header};
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

/// The page for a failed store call: [`unavailable_page`] when the database cannot be reached,
/// else a 500 with `message` (what could not be done, and that nothing was changed). `place`
/// names where it happened, for the log.
pub fn store_failure_page(
    e: crate::store::StoreError,
    place: &str,
    message: &str,
    back: Option<ReturnLink>,
) -> Response {
    match e {
        crate::store::StoreError::Unavailable(_) => {
            tracing::warn!(error = %e, "database unavailable {place}");
            unavailable_page()
        }
        other => {
            tracing::error!(error = %other, "store error {place}");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                message,
                back,
            )
        }
    }
}

/// The page for a database that cannot be reached: 503 with Retry-After.
pub fn unavailable_page() -> Response {
    let mut res = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Herald cannot reach its database right now. Nothing was lost; please try again in a \
         few seconds.",
        None,
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    res
}
