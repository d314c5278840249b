//! What every page and listener shares: rendering, error pages ([`PageError`], which handlers
//! return with `?`), the stylesheet, browser sessions ([`sessions`]), rate limits ([`limits`]),
//! security headers and load shedding.
//!
//! Every response carries headers that deny framing and leak nothing through the referrer
//! (RFC 9700 §4.16, §4.2.4); every page is rendered from an askama template (one struct per
//! page in [`pages`]) and marked `no-store`. This is the page base: it knows no handler module
//! and no application state; the router at the top puts its layers around the routes.

pub mod binding;
pub mod layers;
pub mod limits;
pub mod page_error;
pub mod pages;
pub mod render;
pub mod sessions;
pub mod texts;

pub use layers::{
    BODY_LIMIT, NewRequestId, PAGE_POLICY_BASE, REQUEST_ID, SENSITIVE_HEADERS, overloaded,
    record_metrics, request_span, security_headers,
};
pub use page_error::{PageError, store_failure_page, unavailable_page};
pub use render::{ReturnLink, error_page, not_found, render, stylesheet};
