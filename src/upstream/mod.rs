//! The upstream side: Herald as a relying party toward Auth0 or any OpenID provider.
//!
//! - [`client`]: discovery, the authorization-code flow with PKCE, state and nonce, ID-token
//!   validation and the userinfo call.
//! - [`endpoints`]: which URLs a discovery document may send Herald's requests to.
//! - `http`: the client those flows use, each URL checked and each answer capped in size.
//! - `signed_tokens`: tokens the upstream signs outside the login (back-channel logout tokens,
//!   JWT access tokens), checked against its JWKS.
//! - [`exchange`]: upstream tokens presented for token exchange (RFC 8693), verified.
//! - [`error`]: why an upstream login failed, in the terms the error page and the app need.
//!
//! This side knows nothing of the provider endpoints or the login journey: the journey
//! ([`crate::login`]) calls it. The built-in development provider that stands in for Auth0 is
//! [`crate::dev_upstream`].

mod check;
mod claims_json;
pub mod client;
pub mod endpoints;
pub mod error;
pub mod exchange;
mod http;
mod refresh;
mod signed_tokens;
mod userinfo;

pub use check::{CheckStep, check_passed};
pub use client::{Asked, LoginStart, UpstreamClients};
pub use error::UpstreamError;
pub use refresh::RefreshFailure;
pub use signed_tokens::{BACKCHANNEL_LOGOUT_EVENT, LogoutClaims};
