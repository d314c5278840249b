//! The browser's *binding*: a random value in a cookie of its own, `herald_binding`, whose
//! digest every authorization request records, so only the browser that started a request may
//! continue it (and the consent form's CSRF token is keyed with it).
//!
//! It is a cookie and not a value in the browser session so that starting a sign-in writes
//! nothing but the request: the session is first stored when there is a login to keep in it.
//! The cookie has the session cookie's attributes (HttpOnly, SameSite=Lax, Path=/, Secure behind
//! https), and behind https it is `__Host-herald_binding`, which no other host (a sibling
//! subdomain) can set. It lasts until the browser closes or the user logs out (the session cookie
//! instead expires after `session_ttl` without use). Several binding cookies in one request
//! count as none. A value the browser sent is not secret from whoever planted it, so nothing
//! keys a secret with the binding alone: the consent form's CSRF token also covers the session
//! id, which Herald makes at the login.
//!
//! [`binding_cookie`] reads the cookie into a [`BrowserBinding`] in the request's extensions and
//! sets it on the response when a handler made a new one.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_sessions::cookie::{Cookie, SameSite};

use crate::tokens::hashing::random_token;

/// The cookie's name over http (a development issuer on loopback).
pub const COOKIE: &str = "herald_binding";
/// The cookie's name behind an https issuer: a `__Host-` cookie is Secure, host-only, Path=/.
pub const HOST_COOKIE: &str = "__Host-herald_binding";

/// The binding cookie's name for an issuer that is (`secure`) or is not https.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure { HOST_COOKIE } else { COOKIE }
}

/// This browser's binding: the one its cookie holds, or one made for this response.
#[derive(Clone, Debug, Default)]
pub struct BrowserBinding(Arc<Slot>);

#[derive(Debug, Default)]
struct Slot {
    sent: Option<String>,
    made: OnceLock<String>,
    /// Set by [`BrowserBinding::forget`]: the response removes the cookie.
    forgotten: OnceLock<()>,
}

impl BrowserBinding {
    /// The binding of a request with these headers: the one binding cookie named `name`, if
    /// well formed (a value Herald makes: 43 base64url characters); none, several, or a
    /// malformed one is no binding.
    pub fn from_headers(headers: &HeaderMap, name: &str) -> Self {
        let mut sent: Vec<String> = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .filter(|c| c.name() == name)
            .map(|c| c.value().to_string())
            .collect();
        let sent = match sent.pop() {
            Some(one) if sent.is_empty() && well_formed(&one) => Some(one),
            _ => None,
        };
        Self(Arc::new(Slot {
            sent,
            ..Slot::default()
        }))
    }

    /// The binding the browser has, if any (one made for this response included).
    pub fn current(&self) -> Option<&str> {
        self.kept()
            .or_else(|| self.0.made.get().map(String::as_str))
    }

    /// The browser's binding, made (and set on the response) when it has none.
    pub fn get_or_make(&self) -> &str {
        match self.kept() {
            Some(sent) => sent,
            None => self.0.made.get_or_init(random_token),
        }
    }

    /// Ends the browser's binding with its session (a logout): the response removes the
    /// cookie, unless a new binding is made after this in the same request.
    pub fn forget(&self) {
        let _ = self.0.forgotten.set(());
    }

    /// The binding the browser sent, unless forgotten.
    fn kept(&self) -> Option<&str> {
        self.0
            .sent
            .as_deref()
            .filter(|_| self.0.forgotten.get().is_none())
    }

    /// The `Set-Cookie` value for this response: a binding made for it, or the removal of a
    /// forgotten one.
    fn set_cookie(&self, secure: bool) -> Option<HeaderValue> {
        let forgotten = self.0.forgotten.get().is_some();
        let (value, remove) = match self.0.made.get() {
            Some(made) => (made.as_str(), false),
            None if forgotten => ("", true),
            None => return None,
        };
        let mut cookie = Cookie::build((cookie_name(secure), value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure);
        if remove {
            cookie = cookie.max_age(time::Duration::ZERO);
        }
        HeaderValue::from_str(&cookie.build().to_string()).ok()
    }
}

fn well_formed(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads the binding cookie for the handlers and sets a new binding on the response. `secure`:
/// the cookie is sent over https only (Herald's issuer is https).
pub async fn binding_cookie(State(secure): State<bool>, mut req: Request, next: Next) -> Response {
    let binding = BrowserBinding::from_headers(req.headers(), cookie_name(secure));
    req.extensions_mut().insert(binding.clone());
    let mut res = next.run(req).await;
    if let Some(cookie) = binding.set_cookie(secure) {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    res
}

impl<S: Send + Sync> FromRequestParts<S> for BrowserBinding {
    type Rejection = Infallible;

    /// The binding [`binding_cookie`] read; none without that layer (which every listener
    /// has), so a route outside it can continue no sign-in and adopts no cookie.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<BrowserBinding>()
            .cloned()
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn the_one_well_formed_cookie_of_the_name_is_the_binding() {
        let value = random_token();
        let sent = headers(&["herald_session=abc", &format!("x=1; {COOKIE}={value}; y=2")]);
        let b = BrowserBinding::from_headers(&sent, COOKIE);
        assert_eq!(b.current(), Some(value.as_str()));
        assert_eq!(b.get_or_make(), value);
        assert_eq!(
            b.set_cookie(false),
            None,
            "a binding the browser has is not set again"
        );

        for bad in ["short", &format!("{value}x"), &format!("{}+", &value[..42])] {
            let b = BrowserBinding::from_headers(&headers(&[&format!("{COOKIE}={bad}")]), COOKIE);
            assert_eq!(b.current(), None, "{bad}");
        }
        // Two cookies of the name (one planted with another path or domain): neither counts.
        let two = headers(&[&format!("{COOKIE}={value}; {COOKIE}={}", random_token())]);
        assert_eq!(BrowserBinding::from_headers(&two, COOKIE).current(), None);
        // Behind https only the __Host- cookie counts, which no other host can set.
        let plain = headers(&[&format!("{COOKIE}={value}")]);
        let b = BrowserBinding::from_headers(&plain, cookie_name(true));
        assert_eq!(b.current(), None);
        let host = headers(&[&format!("{HOST_COOKIE}={value}")]);
        let b = BrowserBinding::from_headers(&host, cookie_name(true));
        assert_eq!(b.current(), Some(value.as_str()));
    }

    #[test]
    fn a_binding_is_made_once_and_set_with_the_session_cookies_attributes() {
        let b = BrowserBinding::from_headers(&HeaderMap::new(), COOKIE);
        assert_eq!(b.current(), None);
        let made = b.get_or_make().to_string();
        assert_eq!(b.get_or_make(), made, "made once per request");
        assert_eq!(b.clone().current(), Some(made.as_str()), "clones share it");
        let set = b.set_cookie(true).unwrap();
        let set = set.to_str().unwrap();
        assert!(set.starts_with(&format!("{HOST_COOKIE}={made};")), "{set}");
        for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(set.contains(attribute), "{set}");
        }
        assert!(!set.contains("Domain"), "{set}");
        let plain = b.set_cookie(false).unwrap();
        let plain = plain.to_str().unwrap();
        assert!(plain.starts_with(&format!("{COOKIE}={made};")), "{plain}");
        assert!(!plain.contains("Secure"), "{plain}");
    }

    #[test]
    fn a_forgotten_binding_is_removed_from_the_browser() {
        let value = random_token();
        let b = BrowserBinding::from_headers(&headers(&[&format!("{COOKIE}={value}")]), COOKIE);
        assert_eq!(b.set_cookie(false), None);
        b.forget();
        let set = b.set_cookie(false).unwrap();
        let set = set.to_str().unwrap();
        assert!(set.starts_with(&format!("{COOKIE}=;")), "{set}");
        assert!(set.contains("Max-Age=0"), "{set}");
        assert_eq!(b.current(), None);
        // A sign-in started after the logout in the same request gets a new binding.
        let made = b.get_or_make().to_string();
        assert_ne!(made, value);
        let set = b.set_cookie(false).unwrap();
        assert!(
            set.to_str()
                .unwrap()
                .starts_with(&format!("{COOKIE}={made};"))
        );
    }
}
