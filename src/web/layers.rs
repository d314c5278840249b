//! The layers every listener puts around its routes: a request id and a trace span for every
//! request, security headers on every answer, and load shedding when too many requests are in
//! flight (checklist H91).

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath};
use axum::http::Request;
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Span;

use axum::middleware::Next;

use super::limits;
use crate::telemetry::{metrics, traces};
use crate::tokens::hashing::random_token;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header that carries a request's id, in the request (an id sent by a proxy is kept) and in
/// the response.
pub const REQUEST_ID: &str = "x-request-id";

/// Headers whose values never reach a log or a span: credentials and cookies.
pub const SENSITIVE_HEADERS: [header::HeaderName; 4] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    header::SET_COOKIE,
];

/// Gives a request without an `x-request-id` a random one: 22 URL-safe characters (132 random
/// bits) of a fresh token.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let mut id = random_token();
        id.truncate(22);
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// The span of one request: the request id, the client's address (from `client_ip_header`
/// behind a load balancer), the route template (never the raw path or query, which may carry
/// codes and tokens) and the method, so every line logged while serving it names them.
pub fn request_span<B>(req: &Request<B>, client_ip_header: Option<&HeaderName>) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client_ip = limits::client_address(client_ip_header, req.headers(), peer)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let span =
        tracing::info_span!("request", request_id = id, client_ip, route, method = %req.method());
    // A caller's W3C trace context makes this request part of its trace (when traces are on).
    let _ = span.set_parent(traces::remote_context(req.headers()));
    span
}

/// Counts every answer in `herald_http_requests_total` and times it in
/// `herald_http_request_duration_seconds`, by route template (`unmatched` for unknown paths).
pub async fn record_metrics(request: Request<axum::body::Body>, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().clone();
    let start = std::time::Instant::now();
    let res = next.run(request).await;
    metrics::http_request(
        &route,
        method.as_str(),
        res.status().as_u16(),
        start.elapsed(),
    );
    res
}

/// The largest request body outside the admin API: an OAuth form is a few hundred bytes, a
/// consent form a few kilobytes. Larger bodies are refused with 413 before they are read.
pub const BODY_LIMIT: usize = 64 * 1024;

pub async fn overloaded(uri: axum::http::Uri, _: tower::BoxError) -> Response {
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

macro_rules! policy_base {
    () => {
        "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; \
         base-uri 'none'; object-src 'none'"
    };
}

/// Herald's content security policy without its `img-src`, which a page may widen (the consent
/// page, for the app's logo); [`PAGE_POLICY`] is it with images from Herald only.
pub const PAGE_POLICY_BASE: &str = policy_base!();
/// The content security policy of every answer that sets none of its own.
pub const PAGE_POLICY: &str = concat!(policy_base!(), "; img-src 'self' data:");

pub async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // A page that set its own policy (only ever wider in `img-src`) keeps it.
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(PAGE_POLICY));
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
