//! Herald's Prometheus metrics, recorded through the `metrics` facade and rendered by
//! `metrics-exporter-prometheus` in the text format (0.0.4); the process metrics (CPU, resident
//! memory, open file descriptors) come from `metrics-process`.
//!
//! Every family is named here, once, with its labels; callers use the functions below and never
//! spell a metric name. Label values are route templates, configured upstream and client ids,
//! OAuth error codes and fixed words: never a raw path, a user or anything a request made up,
//! so the number of series stays bounded.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const HTTP_REQUESTS: &str = "herald_http_requests_total";
const HTTP_DURATION: &str = "herald_http_request_duration_seconds";
const LOGINS: &str = "herald_logins_total";
const TOKENS_ISSUED: &str = "herald_tokens_issued_total";
const UPSTREAM_DURATION: &str = "herald_upstream_request_duration_seconds";
const UPSTREAM_ERRORS: &str = "herald_upstream_errors_total";
const CONSENT_DECISIONS: &str = "herald_consent_decisions_total";
const MAPPING_WARNINGS: &str = "herald_mapping_warnings_total";
const RATE_LIMITED: &str = "herald_rate_limited_total";
const STORE_ERRORS: &str = "herald_store_errors_total";
const BUILD_INFO: &str = "herald_build_info";
const OUTBOX_ATTEMPTS: &str = "herald_outbox_attempts_total";
const UPSTREAM_REFRESHES: &str = "herald_upstream_refreshes_total";

/// How an outbox delivery attempt ended, for `herald_outbox_attempts_total{result}`.
pub const OUTBOX_RESULTS: [&str; 3] = ["delivered", "retry", "failed"];

/// Seconds: from a cached token check (under a millisecond) to an upstream timing out (60 s).
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// What a store error was, for `herald_store_errors_total{kind}`.
pub const STORE_ERROR_KINDS: [&str; 4] = ["unavailable", "conflict", "corrupt", "other"];

/// The upstream endpoints Herald calls, for the `endpoint` label.
pub const UPSTREAM_ENDPOINTS: [&str; 4] = ["discovery", "jwks", "token", "userinfo"];

/// How an upstream request failed, for `herald_upstream_errors_total{kind}`.
pub const UPSTREAM_ERROR_KINDS: [&str; 6] = [
    "timeout",
    "connect",
    "transport",
    "status",
    "too_large",
    "refused",
];

/// The process's metrics: the Prometheus handle that renders every family, and the collector
/// of the process metrics. One per process (the `metrics` recorder is global); every `App` in
/// it shares them.
pub struct Metrics {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

static METRICS: OnceLock<Option<Metrics>> = OnceLock::new();

/// Installs Herald's recorder on first use and returns the metrics, or `None` when another
/// recorder was installed first (Herald embedded in a program that has its own): then nothing
/// is recorded and `/metrics` says so.
pub fn install() -> Option<&'static Metrics> {
    METRICS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .ok()?;
            let handle = match builder.install_recorder() {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics are off: another recorder is installed");
                    return None;
                }
            };
            describe();
            let process = metrics_process::Collector::default();
            process.describe();
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            for kind in STORE_ERROR_KINDS {
                counter!(STORE_ERRORS, "kind" => kind).absolute(0);
            }
            for result in OUTBOX_RESULTS {
                counter!(OUTBOX_ATTEMPTS, "result" => result).absolute(0);
            }
            Some(Metrics { handle, process })
        })
        .as_ref()
}

impl Metrics {
    /// Every family in the Prometheus text format, the process metrics read now.
    pub fn render(&self) -> String {
        self.process.collect();
        self.handle.run_upkeep();
        self.handle.render()
    }
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by route template."
    );
    describe_counter!(
        LOGINS,
        "Upstream logins finished, by upstream, client and result (success or the OAuth error code)."
    );
    describe_counter!(
        UPSTREAM_REFRESHES,
        "Stale logins refreshed at their upstream (refresh_upstream), by upstream and result: \
         refreshed, refused (the login ended) or unavailable."
    );
    describe_counter!(
        TOKENS_ISSUED,
        "Token responses issued, by grant type and client."
    );
    describe_histogram!(
        UPSTREAM_DURATION,
        metrics::Unit::Seconds,
        "Time of requests to upstreams, by upstream and endpoint."
    );
    describe_counter!(
        UPSTREAM_ERRORS,
        "Requests to upstreams that failed, by upstream, endpoint and kind."
    );
    describe_counter!(
        CONSENT_DECISIONS,
        "Consent decisions on the consent page, by client and decision (allow or deny)."
    );
    describe_counter!(
        MAPPING_WARNINGS,
        "Claim-mapping warnings (a claim missing or of the wrong type), by upstream."
    );
    describe_counter!(
        RATE_LIMITED,
        "Requests refused by the per-address rate limit (429), by route template."
    );
    describe_counter!(
        STORE_ERRORS,
        "Database errors, by kind (unavailable, conflict, corrupt, other)."
    );
    describe_gauge!(BUILD_INFO, "Herald's version; always 1.");
    describe_counter!(
        OUTBOX_ATTEMPTS,
        "Outbox delivery attempts to webhooks and hooks, by result (delivered, retry, failed)."
    );
}

/// Sets to zero the series an operator alerts on, for the upstreams and clients configured, so
/// a rate over them is defined before the first failure.
pub fn initialise<'a>(upstreams: impl Iterator<Item = &'a str>) {
    for up in upstreams {
        counter!(MAPPING_WARNINGS, "upstream" => up.to_string()).absolute(0);
        for endpoint in UPSTREAM_ENDPOINTS {
            for kind in UPSTREAM_ERROR_KINDS {
                counter!(UPSTREAM_ERRORS, "upstream" => up.to_string(), "endpoint" => endpoint, "kind" => kind)
                    .absolute(0);
            }
        }
    }
}

pub fn http_request(route: &str, method: &str, status: u16, took: Duration) {
    counter!(HTTP_REQUESTS, "route" => route.to_string(), "method" => method.to_string(), "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_DURATION, "route" => route.to_string()).record(took.as_secs_f64());
}

/// A login that came back from `upstream` for `client_id`: `result` is `success` or the OAuth
/// error code the app was sent.
pub fn login(upstream: &str, client_id: &str, result: &str) {
    counter!(LOGINS, "upstream" => upstream.to_string(), "client_id" => client_id.to_string(), "result" => result.to_string())
        .increment(1);
}

/// A stale login refreshed at `upstream`: `result` is `refreshed`, `refused` or `unavailable`.
pub fn upstream_refresh(upstream: &str, result: &'static str) {
    counter!(UPSTREAM_REFRESHES, "upstream" => upstream.to_string(), "result" => result)
        .increment(1);
}

pub fn token_issued(grant_type: &'static str, client_id: &str) {
    counter!(TOKENS_ISSUED, "grant_type" => grant_type, "client_id" => client_id.to_string())
        .increment(1);
}

/// One request to an upstream's `endpoint` (one of [`UPSTREAM_ENDPOINTS`]), and how it failed
/// (one of [`UPSTREAM_ERROR_KINDS`]) if it did.
pub fn upstream_request(
    upstream: &str,
    endpoint: &'static str,
    took: Duration,
    error: Option<&'static str>,
) {
    histogram!(UPSTREAM_DURATION, "upstream" => upstream.to_string(), "endpoint" => endpoint)
        .record(took.as_secs_f64());
    if let Some(kind) = error {
        counter!(UPSTREAM_ERRORS, "upstream" => upstream.to_string(), "endpoint" => endpoint, "kind" => kind)
            .increment(1);
    }
}

pub fn consent_decision(client_id: &str, allowed: bool) {
    let decision = if allowed { "allow" } else { "deny" };
    counter!(CONSENT_DECISIONS, "client_id" => client_id.to_string(), "decision" => decision)
        .increment(1);
}

pub fn mapping_warnings(upstream: &str, count: usize) {
    if count > 0 {
        counter!(MAPPING_WARNINGS, "upstream" => upstream.to_string()).increment(count as u64);
    }
}

pub fn rate_limited(route: &str) {
    counter!(RATE_LIMITED, "route" => route.to_string()).increment(1);
}

/// A database error of `kind` (one of [`STORE_ERROR_KINDS`]).
pub fn store_error(kind: &'static str) {
    counter!(STORE_ERRORS, "kind" => kind).increment(1);
}

/// An outbox delivery attempt that ended in `result` (one of [`OUTBOX_RESULTS`]).
pub fn outbox_attempt(result: &'static str) {
    counter!(OUTBOX_ATTEMPTS, "result" => result).increment(1);
}
