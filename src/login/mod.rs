//! The login journey: an authorization request's way from `/authorize` (or from one of
//! Herald's own pages) through the upstream login and the consent stage to the code.
//!
//! Floors inside, bottom up: [`session`] (the browser's binding and remembered login),
//! [`pending`] (a pending request as a browser step meets it, and how a step ends it with an
//! error), [`own_pages`] (where a sign-in to Herald's own pages returns), [`journey`] (reuse
//! the login or go upstream, consent, issue the code), [`upstream_login`] (a finished upstream
//! login recorded in one store transaction), and the browser's steps on top:
//! [`upstream_return`] (`/login/{request}` and `/callback/{upstream}`), [`consent_page`]
//! (`/consent`) and [`upstream_logout`] (the upstream's back-channel logout).
//!
//! The provider's `/authorize`, the consent center and the admin pages call into this journey;
//! it calls none of them. It decides consent with the rules in [`crate::consent`]. Toward the upstream it uses the relying-party
//! client in [`crate::upstream`], which knows nothing of the journey.

pub mod consent_page;
pub mod ending;
pub mod freshness;
pub mod journey;
pub mod own_pages;
pub mod pending;
pub mod post_login;
pub mod session;
pub mod upstream_login;
pub mod upstream_logout;
pub mod upstream_return;
mod upstream_start;

pub use freshness::{Stale, current_context};
pub use journey::{consent_stage, issue_code, proceed, start_sign_in};
pub use pending::{fail, pending_request, return_link, store_failure};
pub use session::{
    Browser, LoginSession, binding_digest, binding_of, current_login, live_login,
    live_login_context, login_has_ended, set_login,
};
