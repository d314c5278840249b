//! Why an upstream login failed: unavailable, an answer that failed verification, or Herald's
//! own configuration of it.

/// Why an upstream login failed, in the terms the error page and the client need.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Down, slow, 5xx, or answering something that is not OpenID: try again later.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// It answered, but the answer failed verification (bad ID token, nonce, iss, sub).
    #[error("the identity provider's answer was rejected: {0}")]
    Invalid(String),
    /// Herald's own configuration for it is wrong.
    #[error("the identity provider is misconfigured in Herald: {0}")]
    Misconfigured(String),
}

impl UpstreamError {
    pub(crate) fn from_discovery<E: std::error::Error>(
        id: &str,
        e: openidconnect::DiscoveryError<E>,
    ) -> Self {
        use openidconnect::DiscoveryError as D;
        match e {
            D::Validation(msg) => {
                UpstreamError::Misconfigured(format!("{id}: discovery document rejected: {msg}"))
            }
            other => {
                UpstreamError::Unavailable(format!("{id}: discovery failed: {}", chain(&other)))
            }
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
