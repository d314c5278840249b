//! Web pages and the HTTP surface: the router, security headers, and page rendering.
//!
//! Every response carries headers that deny framing and leak nothing through the referrer
//! (RFC 9700 §4.16, §4.2.4); every page is rendered from an askama template (one struct per
//! page in [`pages`]) and marked `no-store`.

pub mod demo;
pub mod limits;
pub mod pages;
pub mod sessions;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;

/// Everything Herald serves on its public listener; the admin surface (`/admin`: API and pages)
/// too unless `with_admin` is false because `[admin] listen` gives it a listener of its own
/// ([`admin_router`]). Then `/admin` here is an ordinary 404 that reveals nothing.
pub fn router(state: AppState, with_admin: bool) -> Router {
    let mut public = Router::new()
        .route("/", get(home))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .merge(crate::provider::router())
        .merge(crate::upstream::routes::router())
        .merge(crate::consent::routes::router())
        .merge(crate::consent::center::router())
        .merge(crate::upstream::dev::router())
        .merge(demo::router());
    if with_admin {
        public = public.merge(crate::admin::router());
    }
    finish(public, state)
}

/// What the admin listener serves (checklist F74): the admin API and pages, and the first leg
/// of a sign-in (`/login/{request}`, where the pages send an admin who is not signed in; the
/// upstream's callback then comes back to the public listener, the issuer).
pub fn admin_router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/static/herald.css", get(crate::provider::stylesheet))
        .merge(crate::admin::router())
        .merge(crate::upstream::routes::router());
    finish(admin, state)
}

/// The layers every listener has: a 404 page for unknown paths, rate limits (each listener
/// counts for itself, like each replica), security headers, and the bounded number of requests
/// in flight.
fn finish(router: Router<AppState>, state: AppState) -> Router {
    let routes = router.fallback(not_found);
    let routes = match limits::RateLimits::new(&state.settings().limits) {
        Some(l) => routes.layer(axum::middleware::from_fn_with_state(l, limits::limit)),
        None => routes,
    };
    routes
        .layer(axum::middleware::map_response(security_headers))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(MAX_IN_FLIGHT),
        )
        .with_state(state)
}

/// Requests handled at once; beyond this Herald answers 503 at once rather than queueing
/// without bound (checklist H91: bounded queue, 503, no OOM).
const MAX_IN_FLIGHT: usize = 2048;

async fn overloaded(uri: axum::http::Uri, _: tower::BoxError) -> Response {
    let message = "Herald is overloaded; retry in a moment.";
    let mut res = if limits::answers_json(uri.path()) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": message,
            })),
        )
            .into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
    };
    let h = res.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
             frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

async fn home(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let settings = state.settings();
    render(
        StatusCode::OK,
        &pages::HomePage {
            issuer: settings.issuer.clone(),
            has_demo: settings.client(demo::DEMO_CLIENT_ID).is_some(),
            admin_url: match settings.admin_origin() {
                Some(origin) => format!("{origin}/admin"),
                None => "/admin".into(),
            },
        },
    )
}

async fn ready(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

async fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing at this address.",
        None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overload_answers_json_on_json_endpoints_and_text_elsewhere_with_retry_after() {
        let res = overloaded(axum::http::Uri::from_static("/token"), "shed".into()).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "temporarily_unavailable");

        let res = overloaded(axum::http::Uri::from_static("/authorize"), "shed".into()).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());
    }
}
