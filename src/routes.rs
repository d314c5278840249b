//! The top floor: every route Herald serves, composed once. This is the only module that knows
//! every handler module; none of them imports it. Each listener gets the same layers: a 404
//! page for unknown paths, per-client rate limits, security headers and one bound on the
//! requests in flight.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::routing::get;
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::dev_upstream::DevProvider;
use crate::site::MetricsEndpoint;
use crate::state::AppState;
use crate::web::{self, limits};
use crate::{account, admin, demo, dev_upstream, login, provider, site};

/// Everything Herald serves on its public listener; the admin surface (`/admin`: API and pages)
/// too unless `with_admin` is false because `[admin] listen` gives it a listener of its own
/// ([`admin_router`]). Then `/admin` here is an ordinary 404 that reveals nothing. `dev` is the
/// built-in development upstream, served under `/dev-upstream`.
pub fn public_router(
    state: AppState,
    dev: Arc<DevProvider>,
    with_admin: bool,
    in_flight: InFlight,
    metrics: MetricsEndpoint,
) -> Router {
    let mut public = Router::new()
        .route("/", get(site::home))
        .route("/healthz", get(site::healthz))
        .route("/readyz", get(site::ready))
        .route("/metrics", get(move |req| metrics.answer(req)))
        .route("/static/herald.css", get(web::stylesheet))
        .merge(provider::router())
        .merge(login::upstream_return::router())
        .merge(login::consent_page::router())
        .merge(login::post_login::router())
        .merge(login::upstream_logout::router())
        .merge(account::router())
        .merge(dev_upstream::routes::router(dev))
        .merge(demo::router());
    if with_admin {
        public = public.merge(admin::router());
    }
    finish(public, state, in_flight)
}

/// What the admin listener serves (checklist F74): the admin API and pages, and the first leg
/// of a sign-in (`/login/{request}`, the chooser, where the pages send an admin who is not
/// signed in when several upstreams could sign them in; with one, the pages send them straight
/// to it; the upstream's callback then comes back to the public listener, the issuer).
pub fn admin_router(state: AppState, in_flight: InFlight, metrics: MetricsEndpoint) -> Router {
    let admin = Router::new()
        .route("/healthz", get(site::healthz))
        .route("/metrics", get(move |req| metrics.answer(req)))
        .route("/static/herald.css", get(web::stylesheet))
        .merge(admin::router())
        .merge(login::upstream_return::router());
    finish(admin, state, in_flight)
}

/// The one bound on requests in flight, shared by every route of every listener (checklist
/// H91): past `[server] max_in_flight` a request is answered 503 with `Retry-After` at once.
#[derive(Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max)))
    }
}

/// The layers every listener has: a 404 page for unknown paths, a small body limit (a token
/// request is never large; the admin API sets its own), rate limits (each listener counts for
/// itself, like each replica), security headers, the bound on requests in flight and on the
/// time one may take, a request id (kept from a proxy, else made; echoed in the response) with
/// a trace span per request that never records credentials or cookies, and outermost the HTTP
/// metrics, so shed, timed-out and rate-limited answers are counted too.
fn finish(router: Router<AppState>, state: AppState, in_flight: InFlight) -> Router {
    let routes = router
        .fallback(web::not_found)
        .layer(DefaultBodyLimit::max(web::BODY_LIMIT));
    let routes = match limits::RateLimits::new(&state.settings().limits, state.clock.clone()) {
        Some(l) => routes.layer(axum::middleware::from_fn_with_state(l, limits::limit)),
        None => routes,
    };
    let request_id = HeaderName::from_static(web::REQUEST_ID);
    let request_timeout = state.settings().server.request_timeout;
    let client_ip_header = state.settings().limits.client_ip_header.clone();
    routes
        .layer(axum::middleware::map_response(web::security_headers))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(web::overloaded))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(in_flight.0)),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetSensitiveHeadersLayer::new(web::SENSITIVE_HEADERS))
                .layer(SetRequestIdLayer::new(
                    request_id.clone(),
                    web::NewRequestId,
                ))
                .layer(TraceLayer::new_for_http().make_span_with(
                    move |req: &axum::http::Request<_>| {
                        web::request_span(req, client_ip_header.as_ref())
                    },
                ))
                .layer(PropagateRequestIdLayer::new(request_id)),
        )
        .layer(axum::middleware::from_fn(web::record_metrics))
        .with_state(state)
}
