//! Where Herald may send its own requests (hole 5 of the hardening issue).
//!
//! Every outbound call (discovery, JWKS, token and userinfo at an upstream; later hooks and
//! webhooks) goes through a client built by [`client`]: connect and total timeouts, no
//! redirects followed, and a resolver that drops link-local and cloud-metadata addresses, so a
//! host name that resolves to `169.254.169.254` (a DNS rebinding, a hostile discovery document)
//! is never reached. Addresses written as IP literals skip the resolver, so URLs are also
//! checked before use with [`check_url`].
//!
//! Loopback stays allowed: the development upstream, the test upstreams and a sidecar proxy
//! live there, and whether a loopback `http://` upstream is acceptable is the configuration's
//! decision (only when Herald's own issuer is loopback `http://`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

/// Host names of cloud metadata services, refused whatever they resolve to.
const METADATA_HOSTS: [&str; 4] = [
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
];

/// True for addresses Herald never sends a request to: link-local (IPv4 169.254.0.0/16, where
/// AWS, Azure, GCP and OpenStack serve metadata; IPv6 fe80::/10), the other metadata addresses
/// (Alibaba's 100.100.100.200, AWS's fd00:ec2::254), unspecified, broadcast and multicast;
/// IPv4 mapped or compatible into IPv6 counts as the IPv4 address.
pub fn forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)
                // IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks).
                || (s[..6] == [0; 6] && !v6.is_loopback() && forbidden_v4(compat_v4(v6)))
        }
    }
}

fn compat_v4(v6: Ipv6Addr) -> Ipv4Addr {
    let o = v6.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

fn forbidden_v4(v4: Ipv4Addr) -> bool {
    v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.octets()[0] == 0
        || v4 == Ipv4Addr::new(100, 100, 100, 200)
}

/// Why a URL is not one Herald sends requests to, or `None` when it is: `http` or `https`, a
/// host, and the host neither a metadata name nor a forbidden address.
pub fn check_url(url: &Url) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Some(format!("`{url}` is not an http(s) URL"));
    }
    match url.host() {
        None => Some(format!("`{url}` has no host")),
        Some(url::Host::Ipv4(ip)) if forbidden_ip(IpAddr::V4(ip)) => Some(forbidden(url)),
        Some(url::Host::Ipv6(ip)) if forbidden_ip(IpAddr::V6(ip)) => Some(forbidden(url)),
        Some(url::Host::Domain(d)) if is_metadata_host(d) => Some(forbidden(url)),
        Some(_) => None,
    }
}

fn forbidden(url: &Url) -> String {
    format!(
        "`{}` is a link-local or cloud-metadata address, which Herald never calls",
        url.host_str().unwrap_or_default()
    )
}

fn is_metadata_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    METADATA_HOSTS.contains(&host.as_str())
}

/// Resolves with the system resolver, then drops forbidden addresses; a name left with none
/// fails to resolve, so the request fails before any connection.
#[derive(Debug, Default)]
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            if is_metadata_host(&host) {
                return Err(
                    format!("{host} is a cloud-metadata host, which Herald never calls").into(),
                );
            }
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| !forbidden_ip(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(format!(
                    "{host} resolves only to link-local or cloud-metadata addresses, which \
                     Herald never calls"
                )
                .into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Timeouts for one kind of outbound call.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub total: Duration,
}

/// How long an idle connection is kept for reuse: less than the shortest keep-alive common
/// servers keep (Node.js closes after 5 s), so Herald never sends a request on a connection the
/// server is closing at that moment. That race failed 1 login in about 50,000 against the
/// oidc-provider upstream ("connection reset by peer" at its token endpoint, seen in
/// `RSS_LOGINS=100000 scripts/bench-login-path.sh`), and a POST cut that way is not retried.
const POOL_IDLE: Duration = Duration::from_secs(4);

/// An HTTP client for outbound calls: the timeouts given, no redirects, the guarded resolver,
/// idle connections dropped before a server would ([`POOL_IDLE`]).
pub fn client(timeouts: Timeouts) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(POOL_IDLE)
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.total)
        .dns_resolver(Arc::new(GuardedResolver))
        .user_agent(concat!("Herald/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds with static settings")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn metadata_and_link_local_addresses_are_refused_in_every_spelling() {
        for bad in [
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.0.1/",
            "http://[fe80::1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::169.254.169.254]/",
            "http://[fd00:ec2::254]/",
            "http://100.100.100.200/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.google.internal./",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://224.0.0.1/",
            // The URL parser reads these as 169.254.169.254.
            "http://2852039166/",
            "http://0xa9.0xfe.0xa9.0xfe/",
        ] {
            assert!(check_url(&url(bad)).is_some(), "{bad} is let through");
        }
    }

    #[test]
    fn ordinary_and_loopback_hosts_pass() {
        for good in [
            "https://example.eu.auth0.com/.well-known/jwks.json",
            "http://127.0.0.1:9000/token",
            "http://[::1]/",
            "https://10.0.0.5/",
            "https://[2001:db8::1]/",
        ] {
            assert_eq!(check_url(&url(good)), None, "{good}");
        }
        assert!(check_url(&url("file:///etc/passwd")).is_some());
    }

    #[tokio::test]
    async fn the_resolver_drops_forbidden_addresses_and_keeps_loopback() {
        let r = GuardedResolver;
        let ok: Vec<_> = r
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(ok.iter().all(|a| a.ip().is_loopback()), "{ok:?}");
        let refused = r.resolve("169.254.169.254".parse().unwrap()).await;
        assert!(refused.is_err());
        let refused = r.resolve("metadata.google.internal".parse().unwrap()).await;
        assert!(refused.is_err());
    }
}
