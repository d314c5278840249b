//! The HTTP client the `openidconnect` flows use toward an upstream: each request's URL is
//! checked against [`endpoints::refusal`] before anything is sent, and an answer larger than
//! [`MAX_BODY`] is dropped unread past that size, so neither a hostile discovery document nor
//! an endless body can make Herald reach or hold what it should not.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::{AsyncHttpClient, HttpClientError, HttpRequest, HttpResponse};
use url::Url;

use super::endpoints;
use crate::config::{Upstream, UpstreamEndpoint};
use crate::telemetry::metrics;
use tracing::Instrument;

/// The largest discovery document, JWKS or token response Herald reads.
pub const MAX_BODY: usize = 1024 * 1024;

/// `http` with the checks and the timeout of one upstream.
pub(super) struct Guarded<'a> {
    pub http: &'a reqwest::Client,
    /// The upstream's id, for the metrics.
    pub upstream: &'a str,
    pub endpoint: &'a UpstreamEndpoint,
    pub timeout: Duration,
    /// Why a request was refused by the endpoint policy, for the error Herald reports (the
    /// library only says that the request failed): Herald's configuration, not an outage.
    pub refused: Mutex<Option<String>>,
    /// The last request's endpoint (`discovery`, `jwks`, `token`) and URL, so a failure inside
    /// the library's discovery can say whether the document or its JWKS failed.
    pub last: Mutex<Option<(&'static str, String)>>,
}

impl<'a> Guarded<'a> {
    pub fn new(http: &'a reqwest::Client, up: &'a Upstream) -> Self {
        Self {
            http,
            upstream: &up.id,
            endpoint: &up.endpoint,
            timeout: up.timeout,
            refused: Mutex::new(None),
            last: Mutex::new(None),
        }
    }

    /// The URL of the JWKS request, when the last request was one.
    pub fn last_jwks_url(&self) -> Option<String> {
        match self.last.lock().ok()?.clone() {
            Some(("jwks", url)) => Some(url),
            _ => None,
        }
    }

    /// Why the last request was refused, if one was.
    pub fn refusal(&self) -> Option<String> {
        self.refused.lock().ok()?.take()
    }

    fn refuse(&self, why: String) -> HttpClientError<reqwest::Error> {
        if let Ok(mut r) = self.refused.lock() {
            *r = Some(why.clone());
        }
        HttpClientError::Other(why)
    }
}

type Answer = Result<HttpResponse, HttpClientError<reqwest::Error>>;

impl<'c> AsyncHttpClient<'c> for Guarded<'_> {
    type Error = HttpClientError<reqwest::Error>;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let endpoint = endpoint_of(&request);
            if let Ok(mut last) = self.last.lock() {
                *last = Some((endpoint, request.uri().to_string()));
            }
            let start = Instant::now();
            let span = tracing::info_span!("upstream.request", upstream = self.upstream, endpoint);
            let answer = self.send(request).instrument(span).await;
            let error = match &answer {
                Ok(r) if r.status().is_server_error() => Some("status"),
                Ok(_) => None,
                Err(HttpClientError::Reqwest(e)) if e.is_timeout() => Some("timeout"),
                Err(HttpClientError::Reqwest(e)) if e.is_connect() => Some("connect"),
                Err(HttpClientError::Other(why)) if why.contains(TOO_LARGE) => Some("too_large"),
                Err(HttpClientError::Other(_)) => Some("refused"),
                Err(_) => Some("transport"),
            };
            metrics::upstream_request(self.upstream, endpoint, start.elapsed(), error);
            answer
        })
    }
}

/// Which endpoint a request of `openidconnect` goes to: the discovery document by its
/// well-known path, the token endpoint by its POST; the only other request made through this
/// client is discovery's JWKS fetch.
fn endpoint_of(request: &HttpRequest) -> &'static str {
    if request
        .uri()
        .path()
        .ends_with("/.well-known/openid-configuration")
    {
        "discovery"
    } else if request.method() == openidconnect::http::Method::POST {
        "token"
    } else {
        "jwks"
    }
}

impl Guarded<'_> {
    async fn send(&self, request: HttpRequest) -> Answer {
        let url = Url::parse(&request.uri().to_string())
            .map_err(|e| HttpClientError::Other(e.to_string()))?;
        if let Some(why) = endpoints::refusal(self.endpoint, &url) {
            return Err(self.refuse(why));
        }
        let mut request: reqwest::Request = request.try_into().map_err(Box::new)?;
        *request.timeout_mut() = Some(self.timeout);
        let mut response = self.http.execute(request).await.map_err(Box::new)?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(HttpClientError::Other(too_large(&url)));
        }
        let mut builder = openidconnect::http::Response::builder()
            .status(response.status())
            .version(response.version());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(Box::new)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(HttpClientError::Other(too_large(&url)));
            }
            body.extend_from_slice(&chunk);
        }
        builder.body(body).map_err(HttpClientError::Http)
    }
}

const TOO_LARGE: &str = "is larger than";

fn too_large(url: &Url) -> String {
    format!("the answer from `{url}` {TOO_LARGE} {MAX_BODY} bytes")
}
