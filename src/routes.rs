//! The top floor: every route Herald serves, composed once. This is the only module that knows
//! every handler module; none of them imports it. Each listener gets the same layers: a 404
//! page for unknown paths, per-client rate limits, security headers and one bound on the
//! requests in flight.

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderName;
use axum::routing::get;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::dev_upstream::DevProvider;
use crate::state::AppState;
use crate::web::{self, limits};
use crate::{account, admin, demo, dev_upstream, login, provider, site};

/// Everything Herald serves on its public listener; the admin surface (`/admin`: API and pages)
/// too unless `with_admin` is false because `[admin] listen` gives it a listener of its own
/// ([`admin_router`]). Then `/admin` here is an ordinary 404 that reveals nothing. `dev` is the
/// built-in development upstream, served under `/dev-upstream`.
pub fn public_router(state: AppState, dev: Arc<DevProvider>, with_admin: bool) -> Router {
    let mut public = Router::new()
        .route("/", get(site::home))
        .route("/healthz", get(site::healthz))
        .route("/readyz", get(site::ready))
        .route("/static/herald.css", get(web::stylesheet))
        .merge(provider::router())
        .merge(login::upstream_return::router())
        .merge(login::consent_page::router())
        .merge(account::router())
        .merge(dev_upstream::routes::router(dev))
        .merge(demo::router());
    if with_admin {
        public = public.merge(admin::router());
    }
    finish(public, state)
}

/// What the admin listener serves (checklist F74): the admin API and pages, and the first leg
/// of a sign-in (`/login/{request}`, where the pages send an admin who is not signed in; the
/// upstream's callback then comes back to the public listener, the issuer).
pub fn admin_router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/healthz", get(site::healthz))
        .route("/static/herald.css", get(web::stylesheet))
        .merge(admin::router())
        .merge(login::upstream_return::router());
    finish(admin, state)
}

/// The layers every listener has: a 404 page for unknown paths, rate limits (each listener
/// counts for itself, like each replica), security headers, the bounded number of requests in
/// flight, and outermost a request id (kept from a proxy, else made; echoed in the response)
/// with a trace span per request that never records credentials or cookies.
fn finish(router: Router<AppState>, state: AppState) -> Router {
    let routes = router.fallback(web::not_found);
    let routes = match limits::RateLimits::new(&state.settings().limits) {
        Some(l) => routes.layer(axum::middleware::from_fn_with_state(l, limits::limit)),
        None => routes,
    };
    let request_id = HeaderName::from_static(web::REQUEST_ID);
    routes
        .layer(axum::middleware::map_response(web::security_headers))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(web::overloaded))
                .load_shed()
                .concurrency_limit(web::MAX_IN_FLIGHT),
        )
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetSensitiveHeadersLayer::new(web::SENSITIVE_HEADERS))
                .layer(SetRequestIdLayer::new(
                    request_id.clone(),
                    web::NewRequestId,
                ))
                .layer(TraceLayer::new_for_http().make_span_with(web::request_span))
                .layer(PropagateRequestIdLayer::new(request_id)),
        )
        .with_state(state)
}
