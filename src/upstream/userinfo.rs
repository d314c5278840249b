//! The upstream's userinfo endpoint (OIDC Core §5.3): one bounded request with the access
//! token, timed for the metrics.

use std::time::Instant;

use serde_json::{Map, Value};
use tracing::Instrument;

use super::claims_json::claims_object;
use super::client::UpstreamClients;
use super::error::UpstreamError;
use crate::config::Upstream;
use crate::telemetry::metrics;

const MAX_USERINFO_BYTES: usize = 256 * 1024;

impl UpstreamClients {
    pub(super) async fn userinfo(
        &self,
        up: &Upstream,
        endpoint: &str,
        access_token: &str,
    ) -> Result<Map<String, Value>, UpstreamError> {
        let start = Instant::now();
        let span =
            tracing::info_span!("upstream.request", upstream = %up.id, endpoint = "userinfo");
        let (answer, error) = self
            .fetch_userinfo(up, endpoint, access_token)
            .instrument(span)
            .await;
        metrics::upstream_request(&up.id, "userinfo", start.elapsed(), error);
        answer
    }

    /// The userinfo answer, and how the request failed for the metrics (`None`: it was answered).
    async fn fetch_userinfo(
        &self,
        up: &Upstream,
        endpoint: &str,
        access_token: &str,
    ) -> (
        Result<Map<String, Value>, UpstreamError>,
        Option<&'static str>,
    ) {
        let upstream_id = &up.id;
        let failed = |e: reqwest::Error| {
            let kind = if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connect"
            } else {
                "transport"
            };
            let error = UpstreamError::Unavailable(format!("{upstream_id} userinfo: {e}"));
            (Err(error), Some(kind))
        };
        let resp = match self
            .http
            .get(endpoint)
            .timeout(up.timeout)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        let status = resp.status();
        if status.is_server_error() || status.is_redirection() {
            let error = format!("{upstream_id} userinfo answered {status}");
            return (Err(UpstreamError::Unavailable(error)), Some("status"));
        }
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return failed(e),
        };
        (check_userinfo(upstream_id, status, &body), None)
    }
}

/// A userinfo answer that arrived: a success status and a JSON object of bounded size.
fn check_userinfo(
    upstream_id: &str,
    status: reqwest::StatusCode,
    body: &[u8],
) -> Result<Map<String, Value>, UpstreamError> {
    if !status.is_success() {
        return Err(UpstreamError::Invalid(format!(
            "{upstream_id} userinfo answered {status}"
        )));
    }
    if body.len() > MAX_USERINFO_BYTES {
        return Err(UpstreamError::Invalid(format!(
            "{upstream_id} userinfo response is larger than {MAX_USERINFO_BYTES} bytes"
        )));
    }
    claims_object(body).ok_or_else(|| {
        UpstreamError::Invalid(format!(
            "{upstream_id} userinfo is not a JSON object with unique member names"
        ))
    })
}
