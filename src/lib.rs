//! Herald: an OpenID Connect identity-broker gateway.
//!
//! To client apps Herald is an OpenID Provider; to an upstream identity provider (Auth0, or any
//! OpenID provider) it is a relying party. Between the two it maps upstream claims into an
//! authentication context, asks users for consent, and mints its own tokens.
//!
//! # Layout
//!
//! - [`admin`]: the admin API under `/admin/api` (OpenAPI at `/admin/api/openapi.json`).
//! - [`config`]: the TOML file and its validation into [`config::Settings`].
//! - [`provider`]: the OP endpoints client apps call (discovery, JWKS, authorize, token with
//!   its grants, revocation, introspection, userinfo) and the flow from authorization request
//!   to code.
//! - [`upstream`]: the relying-party side (discovery, code flow with PKCE, ID-token
//!   validation, userinfo) and the built-in development provider.
//! - [`claims`]: claim paths, attributes, mappings into the authentication context, and the
//!   release of claims by scope. No HTTP.
//! - [`consent`]: which scopes a user must still approve; grants and consent records; the
//!   consent page and the consent center at `/account`.
//! - [`tokens`]: signing keys, JWT signing and verification, hashing of secrets.
//! - [`store`]: the storage trait and its SQLite and PostgreSQL implementations.
//! - [`web`]: the router, security headers, pages and the demo client.
//! - [`app`]: startup (`App::build`, `App::run`) and the shared [`app::AppState`].
//! - [`cli`]: the `herald` command line.

pub mod account;
pub mod admin;
pub mod app;
pub mod claims;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consent;
pub mod demo;
pub mod dev_upstream;
pub mod login;
pub mod oauth;
pub mod provider;
pub mod routes;
pub mod secret;
pub mod site;
pub mod state;
pub mod store;
pub mod tokens;
pub mod upstream;
pub mod web;
