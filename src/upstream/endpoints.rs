//! Which URLs an upstream's discovery document may send Herald's own requests to (hole 5 of
//! the hardening issue).
//!
//! A discovery document is data from the network, and Herald fetches the JWKS, token and
//! userinfo endpoints it names, on an anonymous `/authorize`. So each such URL must be https
//! (plain http only beside a loopback http:// issuer, for development), on the issuer's own host
//! (as Auth0's are) or on a host the upstream lists in `allowed_endpoint_hosts`, and never a
//! link-local or cloud-metadata address ([`crate::egress`]).

use url::Url;

use crate::config::{UpstreamEndpoint, is_loopback_host};
use crate::egress;

/// Why Herald must not call `url` for the upstream at `endpoint`, or `None` when it may.
pub fn refusal(endpoint: &UpstreamEndpoint, url: &Url) -> Option<String> {
    if let Some(why) = egress::check_url(url) {
        return Some(why);
    }
    let Ok(issuer) = Url::parse(&endpoint.issuer) else {
        return Some(format!("the issuer `{}` is not a URL", endpoint.issuer));
    };
    let host = url.host_str().unwrap_or_default();
    let local_http = issuer.scheme() == "http" && is_loopback_host(host);
    if url.scheme() != "https" && !local_http {
        return Some(format!("`{url}` is not https://"));
    }
    let issuer_host = issuer.host_str().unwrap_or_default();
    let allowed = host.eq_ignore_ascii_case(issuer_host)
        || endpoint
            .allowed_endpoint_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host));
    (!allowed).then(|| {
        format!(
            "`{url}` is on `{host}`, not on the issuer's host `{issuer_host}`; if the provider \
             really serves it there, list `{host}` in the upstream's allowed_endpoint_hosts"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(issuer: &str, allowed: &[&str]) -> UpstreamEndpoint {
        UpstreamEndpoint {
            issuer: issuer.into(),
            allowed_endpoint_hosts: allowed.iter().map(|h| h.to_string()).collect(),
        }
    }

    fn refused(e: &UpstreamEndpoint, url: &str) -> bool {
        refusal(e, &Url::parse(url).unwrap()).is_some()
    }

    #[test]
    fn endpoints_stay_on_the_issuers_host_unless_listed() {
        let auth0 = endpoint("https://example.eu.auth0.com/", &[]);
        assert!(!refused(
            &auth0,
            "https://example.eu.auth0.com/.well-known/jwks.json"
        ));
        assert!(!refused(&auth0, "https://EXAMPLE.eu.auth0.com/oauth/token"));
        assert!(refused(&auth0, "https://attacker.example/jwks.json"));
        assert!(refused(&auth0, "https://127.0.0.1/jwks.json"));
        assert!(
            refused(&auth0, "http://example.eu.auth0.com/oauth/token"),
            "http"
        );
        let listed = endpoint("https://idp.example.com", &["keys.example.com"]);
        assert!(!refused(&listed, "https://keys.example.com/jwks"));
        assert!(refused(&listed, "https://other.example.com/jwks"));
    }

    #[test]
    fn metadata_addresses_are_refused_even_when_listed() {
        let e = endpoint("https://idp.example.com", &["169.254.169.254"]);
        assert!(refused(&e, "https://169.254.169.254/latest/meta-data/"));
        let local = endpoint("http://127.0.0.1:9000", &["169.254.169.254"]);
        assert!(refused(&local, "http://169.254.169.254/"));
    }

    #[test]
    fn plain_http_only_on_loopback_beside_a_loopback_issuer() {
        let local = endpoint("http://127.0.0.1:9000", &["localhost"]);
        assert!(!refused(&local, "http://127.0.0.1:9001/token"));
        assert!(!refused(&local, "http://localhost:9000/token"));
        let listed = endpoint("http://127.0.0.1:9000", &["idp.example.com"]);
        assert!(refused(&listed, "http://idp.example.com/token"));
    }
}
