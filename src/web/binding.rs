//! The browser's *binding*: a random value in a cookie of its own, `herald_binding`, whose
//! digest every authorization request records, so only the browser that started a request may
//! continue it (and the consent form's CSRF token is keyed with it).
//!
//! It is a cookie and not a value in the browser session so that starting a sign-in writes
//! nothing but the request: the session is first stored when there is a login to keep in it.
//! The cookie is as secret as the session's (HttpOnly, SameSite=Lax, Secure behind https) and
//! lives as long as the browser does.
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

/// The cookie's name.
pub const COOKIE: &str = "herald_binding";

/// This browser's binding: the one its cookie holds, or one made for this response.
#[derive(Clone, Debug, Default)]
pub struct BrowserBinding(Arc<Slot>);

#[derive(Debug, Default)]
struct Slot {
    sent: Option<String>,
    made: OnceLock<String>,
}

impl BrowserBinding {
    /// The binding of a request with these headers: the first well-formed `herald_binding`
    /// cookie (a value Herald makes: 43 base64url characters); anything else is no binding.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let sent = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == COOKIE && well_formed(c.value()))
            .map(|c| c.value().to_string());
        Self(Arc::new(Slot {
            sent,
            made: OnceLock::new(),
        }))
    }

    /// The binding the browser has, if any (one made for this response included).
    pub fn current(&self) -> Option<&str> {
        self.0
            .sent
            .as_deref()
            .or_else(|| self.0.made.get().map(String::as_str))
    }

    /// The browser's binding, made (and set on the response) when it has none.
    pub fn get_or_make(&self) -> &str {
        match &self.0.sent {
            Some(sent) => sent,
            None => self.0.made.get_or_init(random_token),
        }
    }

    /// The `Set-Cookie` value for a binding made for this response.
    fn set_cookie(&self, secure: bool) -> Option<HeaderValue> {
        let made = self.0.made.get()?;
        let cookie = Cookie::build((COOKIE, made.as_str()))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .build();
        HeaderValue::from_str(&cookie.to_string()).ok()
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
    let binding = BrowserBinding::from_headers(req.headers());
    req.extensions_mut().insert(binding.clone());
    let mut res = next.run(req).await;
    if let Some(cookie) = binding.set_cookie(secure) {
        res.headers_mut().append(header::SET_COOKIE, cookie);
    }
    res
}

impl<S: Send + Sync> FromRequestParts<S> for BrowserBinding {
    type Rejection = Infallible;

    /// The binding [`binding_cookie`] read; without that layer, the cookie's (a binding made
    /// then would not reach the browser, so routes that make one sit under the layer).
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<BrowserBinding>()
            .cloned()
            .unwrap_or_else(|| BrowserBinding::from_headers(&parts.headers)))
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
    fn the_cookie_is_read_among_others_and_only_when_well_formed() {
        let value = random_token();
        let b = BrowserBinding::from_headers(&headers(&[
            "herald_session=abc",
            &format!("x=1; {COOKIE}={value}; y=2"),
        ]));
        assert_eq!(b.current(), Some(value.as_str()));
        assert_eq!(b.get_or_make(), value);
        assert_eq!(
            b.set_cookie(false),
            None,
            "a binding the browser has is not set again"
        );

        for bad in ["short", &format!("{value}x"), &format!("{}+", &value[..42])] {
            let b = BrowserBinding::from_headers(&headers(&[&format!("{COOKIE}={bad}")]));
            assert_eq!(b.current(), None, "{bad}");
        }
    }

    #[test]
    fn a_binding_is_made_once_and_set_with_the_session_cookies_attributes() {
        let b = BrowserBinding::from_headers(&HeaderMap::new());
        assert_eq!(b.current(), None);
        let made = b.get_or_make().to_string();
        assert_eq!(b.get_or_make(), made, "made once per request");
        assert_eq!(b.clone().current(), Some(made.as_str()), "clones share it");
        let set = b.set_cookie(true).unwrap();
        let set = set.to_str().unwrap();
        assert!(set.starts_with(&format!("{COOKIE}={made};")), "{set}");
        for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
            assert!(set.contains(attribute), "{set}");
        }
        assert!(
            !b.set_cookie(false)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }
}
