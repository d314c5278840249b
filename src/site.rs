//! Herald's own front page, its health checks and its metrics.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::secret::Secret;
use crate::state::AppState;
use crate::telemetry::metrics::Metrics;
use crate::tokens::hashing::constant_time_eq;
use crate::web::{pages, render};

/// The front page: what this Herald is, and where to try a login or administer it.
pub async fn home(State(state): State<AppState>) -> Response {
    let settings = state.settings();
    render(
        StatusCode::OK,
        &pages::HomePage {
            issuer: settings.issuer.clone(),
            has_demo: crate::demo::available(&settings),
            admin_url: match settings.admin_origin() {
                Some(origin) => format!("{origin}/admin"),
                None => "/admin".into(),
            },
        },
    )
}

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: not shutting down, and the database answers.
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// `GET /metrics`: every metric in the Prometheus text format (0.0.4), for loopback clients
/// that did not come through a proxy, and for any client with the bearer token
/// `HERALD_METRICS_TOKEN` (compared in constant time).
#[derive(Clone)]
pub struct MetricsEndpoint {
    metrics: Option<&'static Metrics>,
    token: Option<Arc<Secret>>,
    /// The header a proxy puts the client's address in (`[limits] client_ip_header`): a request
    /// carrying it came through the proxy, so its loopback peer says nothing.
    client_ip_header: Option<HeaderName>,
}

/// Headers that mark a request as forwarded by a proxy.
const FORWARDED: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

impl MetricsEndpoint {
    pub fn new(
        metrics: Option<&'static Metrics>,
        token: Option<Arc<Secret>>,
        client_ip_header: Option<HeaderName>,
    ) -> Self {
        Self {
            metrics,
            token,
            client_ip_header,
        }
    }

    pub async fn answer(self, request: Request) -> Response {
        if let Some(refusal) = self.refusal(&request) {
            return refusal;
        }
        let Some(metrics) = self.metrics else {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "metrics are off: another metrics recorder was installed in this process",
            )
                .into_response();
        };
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            metrics.render(),
        )
            .into_response()
    }

    /// Why `request` may not read the metrics, as the answer; `None` when it may.
    fn refusal(&self, request: &Request) -> Option<Response> {
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match (bearer, &self.token) {
            (Some(sent), Some(token)) if constant_time_eq(sent, token.expose()) => return None,
            (Some(_), _) => {
                return Some(
                    (
                        StatusCode::UNAUTHORIZED,
                        [(header::WWW_AUTHENTICATE, "Bearer")],
                        "the bearer token is not the metrics token (HERALD_METRICS_TOKEN)",
                    )
                        .into_response(),
                );
            }
            (None, _) => {}
        }
        let loopback = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|c| c.0.ip().is_loopback());
        let h = request.headers();
        let forwarded = FORWARDED.iter().any(|name| h.contains_key(*name))
            || self
                .client_ip_header
                .as_ref()
                .is_some_and(|n| h.contains_key(n));
        if loopback && !forwarded {
            return None;
        }
        let why = if self.token.is_some() {
            "metrics are answered to loopback clients and to the bearer token HERALD_METRICS_TOKEN"
        } else {
            "metrics are answered to loopback clients only; set HERALD_METRICS_TOKEN to scrape \
             them from elsewhere with that bearer token"
        };
        Some(
            (
                StatusCode::FORBIDDEN,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                why,
            )
                .into_response(),
        )
    }
}
