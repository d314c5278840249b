//! Why an upstream login failed: unavailable, an answer that failed verification, or Herald's
//! own configuration of it.

/// Why an upstream login failed, in the terms the error page and the client need.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Down, slow, 5xx, or answering something that is not OpenID: try again later.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// Its discovery document answered, but the signing keys it names (JWKS) did not: as
    /// unavailable for the user, and named apart so nobody looks for the fault in discovery.
    #[error("the identity provider's signing keys are unavailable: {0}")]
    KeysUnavailable(String),
    /// It answered, but the answer failed verification (bad ID token, nonce, iss, sub).
    #[error("the identity provider's answer was rejected: {0}")]
    Invalid(String),
    /// Herald's own configuration for it is wrong.
    #[error("the identity provider is misconfigured in Herald: {0}")]
    Misconfigured(String),
}

impl UpstreamError {
    /// A failure of discovery: of its document or, when `jwks_url` is given, of the signing
    /// keys (JWKS) the document named, which the message then names instead of discovery.
    pub(crate) fn from_discovery<E: std::error::Error>(
        id: &str,
        e: openidconnect::DiscoveryError<E>,
        jwks_url: Option<&str>,
    ) -> Self {
        use openidconnect::DiscoveryError as D;
        match (e, jwks_url) {
            (D::Validation(msg), None) => {
                UpstreamError::Misconfigured(format!("{id}: discovery document rejected: {msg}"))
            }
            (other, None) => {
                UpstreamError::Unavailable(format!("{id}: discovery failed: {}", chain(&other)))
            }
            (other, Some(url)) => UpstreamError::KeysUnavailable(format!(
                "{id}: the discovery document answered, but its signing keys (JWKS) at {url} \
                 could not be fetched: {}",
                chain(&other)
            )),
        }
    }

    pub(crate) fn from_token<
        RE: std::error::Error + 'static,
        T: openidconnect::ErrorResponse + 'static,
    >(
        id: &str,
        e: openidconnect::RequestTokenError<RE, T>,
    ) -> Self {
        use openidconnect::RequestTokenError as R;
        match e {
            R::ServerResponse(err) => {
                UpstreamError::Invalid(format!("{id}: token endpoint refused the code: {err}"))
            }
            // It answered, but not with a token response we accept (for example an ID token
            // whose email_verified is a string): an invalid answer, not an outage.
            R::Parse(err, _) => UpstreamError::Invalid(format!(
                "{id}: the token response could not be parsed: {err}"
            )),
            other => UpstreamError::Unavailable(format!(
                "{id}: token exchange failed: {}",
                chain(&other)
            )),
        }
    }
}

/// An error with its causes, one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
