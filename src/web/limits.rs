//! Rate limits per client address (checklist H93): a token bucket per IP address (governor's
//! GCRA) over every endpoint of a login and of the token endpoints, so one address cannot
//! hammer `/token` (each failed secret check of a person-chosen secret costs an argon2 hash),
//! the callback or the login pages. Discovery, JWKS, the health checks and the stylesheet are
//! not limited: they are cheap, cacheable, and what a load balancer probes.
//!
//! Over the limit, Herald answers 429 with `Retry-After` (RFC 6585): JSON data with the OAuth
//! error code `temporarily_unavailable` on the JSON endpoints, a page elsewhere. Each replica
//! counts for itself, so N replicas allow up to N times the rate; that bounds abuse per
//! address, which is the point, without a shared counter on every request.
//!
//! Behind a load balancer every request comes from the balancer, so `[limits]
//! client_ip_header` names the header it appends the client's address to; Herald trusts only
//! the last address in it (the one the balancer itself saw), never one a client wrote.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::render::error_page;
use crate::clock::Clock;
use crate::config::LimitSettings;
use crate::telemetry::metrics;

/// How often (in requests) addresses whose buckets are full again are forgotten.
const FORGET_EVERY: u64 = 4096;

/// The limiter of one Herald process.
pub struct RateLimits {
    limiter:
        RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, LimiterClock, NoOpMiddleware<Duration>>,
    clock: LimiterClock,
    client_ip_header: Option<HeaderName>,
    requests: AtomicU64,
}

impl RateLimits {
    /// `None` when the limit is off.
    pub fn new(settings: &LimitSettings, clock: Arc<dyn Clock>) -> Option<Arc<Self>> {
        let rate = settings.per_ip_per_second?;
        let quota = Quota::per_second(rate).allow_burst(settings.per_ip_burst);
        let clock = LimiterClock(clock);
        Some(Arc::new(Self {
            limiter: RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock.clone()),
            clock,
            client_ip_header: settings.client_ip_header.clone(),
            requests: AtomicU64::new(0),
        }))
    }

    fn client(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        client_address(self.client_ip_header.as_ref(), headers, peer)
    }

    /// `Err(seconds to wait)` when `ip` is over its limit. IPv6 addresses count per /64, the
    /// smallest network one subscriber gets, so a client cannot take a new bucket per address.
    fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let ip = bucket(ip);
        if self.requests.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// The client's address: the last one in `header` (the one a load balancer appends), else the
/// TCP peer.
pub fn client_address(
    header: Option<&HeaderName>,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Option<IpAddr> {
    if let Some(name) = header {
        let last = headers
            .get_all(name)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|a| parse_address(a.trim()));
        if last.is_some() {
            return last;
        }
    }
    peer
}

/// The client's address as the limits and the logs see it ([`client_address`] with `[limits]
/// client_ip_header`): a handler's extractor, for what records it (a user's `last_ip`).
pub struct ClientIp(pub Option<IpAddr>);

impl axum::extract::FromRequestParts<crate::state::AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::state::AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let header = state.settings().limits.client_ip_header.clone();
        Ok(ClientIp(client_address(
            header.as_ref(),
            &parts.headers,
            peer,
        )))
    }
}

/// Herald's injected clock as the limiter's: tests freeze it and decide how much time passes.
#[derive(Clone)]
struct LimiterClock(Arc<dyn Clock>);

impl governor::clock::Clock for LimiterClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// The key an address is counted under: itself for IPv4, its /64 for IPv6 (an IPv4-mapped
/// IPv6 address counts as the IPv4 one).
pub fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// `203.0.113.9`, `[2001:db8::1]:443` or `203.0.113.9:443`.
fn parse_address(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Paths that are never limited.
fn exempt(path: &str) -> bool {
    matches!(
        path,
        "/" | "/healthz" | "/readyz" | "/jwks" | "/static/herald.css"
    ) || path.starts_with("/.well-known/")
        || path == "/dev-upstream/jwks"
        || path.starts_with("/dev-upstream/.well-known/")
}

/// Endpoints that answer JSON data, so a refusal (rate limit, overload) is JSON data too.
pub fn answers_json(path: &str) -> bool {
    matches!(path, "/token" | "/revoke" | "/introspect" | "/userinfo")
        || path.starts_with("/admin/api")
        || path.starts_with("/dev-upstream/")
}

pub async fn limit(
    State(limits): State<Arc<RateLimits>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if exempt(path) {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let Some(ip) = limits.client(request.headers(), peer) else {
        return next.run(request).await;
    };
    match limits.check(ip) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map_or("unmatched", MatchedPath::as_str);
            metrics::rate_limited(route);
            too_many(answers_json(path), wait.max(1))
        }
    }
}

fn too_many(json: bool, wait: u64) -> Response {
    let mut res = if json {
        (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": format!(
                    "too many requests from this address; retry in {wait} s"
                ),
            })),
        )
            .into_response()
    } else {
        error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            &format!(
                "Herald received too many requests from your network address. Please wait \
                 {wait} seconds and try again."
            ),
            None,
        )
    };
    let h = res.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(wait));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::OffsetClock;
    use std::num::NonZeroU32;

    /// Limits on a frozen clock: no time passes unless the test says so.
    fn limits(rate: u32, burst: u32, header: Option<&str>) -> Arc<RateLimits> {
        limits_on(rate, burst, header, frozen())
    }

    fn frozen() -> Arc<OffsetClock> {
        let clock = Arc::new(OffsetClock::default());
        clock.freeze();
        clock
    }

    fn limits_on(
        rate: u32,
        burst: u32,
        header: Option<&str>,
        clock: Arc<OffsetClock>,
    ) -> Arc<RateLimits> {
        let settings = LimitSettings {
            per_ip_per_second: NonZeroU32::new(rate),
            per_ip_burst: NonZeroU32::new(burst).unwrap(),
            client_ip_header: header.map(|h| HeaderName::from_bytes(h.as_bytes()).unwrap()),
        };
        RateLimits::new(&settings, clock).unwrap()
    }

    #[test]
    fn the_bucket_refills_only_as_the_clock_moves() {
        let clock = frozen();
        let l = limits_on(1, 2, None, clock.clone());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(l.check(a).is_ok());
        assert!(l.check(a).is_ok());
        // However long the machine takes, a frozen clock refills nothing.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(l.check(a), Err(1));
        clock.advance(1);
        assert!(l.check(a).is_ok(), "one request a second");
        assert_eq!(l.check(a), Err(1));
        clock.advance(2);
        assert!(l.check(a).is_ok());
        assert!(l.check(a).is_ok(), "up to the burst again");
        assert!(l.check(a).is_err());
    }

    #[test]
    fn each_address_gets_its_own_burst_then_waits() {
        let l = limits(1, 3, None);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
        }
        let wait = l.check(a).unwrap_err();
        assert!((1..=1).contains(&wait), "{wait}");
        assert!(l.check(b).is_ok(), "another address is not affected");
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let l = limits(1, 1, None);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.check(a).is_ok());
        assert!(l.check(b).is_err(), "the same /64");
        assert!(l.check(c).is_ok(), "another /64");
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(l.check(v4).is_ok());
        assert!(l.check(mapped).is_err(), "the same IPv4 address");
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let off = LimitSettings {
            per_ip_per_second: None,
            ..LimitSettings::default()
        };
        assert!(RateLimits::new(&off, frozen()).is_none());
    }

    #[test]
    fn only_the_last_forwarded_address_is_trusted() {
        let l = limits(1, 1, Some("x-forwarded-for"));
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        // A client wrote the first address; the balancer appended the real one.
        h.append(
            "x-forwarded-for",
            "198.51.100.7, 203.0.113.9".parse().unwrap(),
        );
        assert_eq!(l.client(&h, Some(peer)), "203.0.113.9".parse().ok());
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "198.51.100.7".parse().unwrap());
        h.append("x-forwarded-for", "[2001:db8::1]:443".parse().unwrap());
        assert_eq!(l.client(&h, Some(peer)), "2001:db8::1".parse().ok());
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(l.client(&h, Some(peer)), Some(peer));
        // Without the setting the header is ignored.
        let l = limits(1, 1, None);
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "203.0.113.9".parse().unwrap());
        assert_eq!(l.client(&h, Some(peer)), Some(peer));
    }

    #[test]
    fn discovery_and_health_are_never_limited() {
        for p in [
            "/.well-known/openid-configuration",
            "/jwks",
            "/healthz",
            "/readyz",
        ] {
            assert!(exempt(p), "{p}");
        }
        for p in [
            "/token",
            "/authorize",
            "/callback/dev",
            "/consent",
            "/admin/api/users",
        ] {
            assert!(!exempt(p), "{p}");
        }
    }
}
