//! Herald: an OpenID Connect identity-broker gateway.
//!
//! To client apps Herald is an OpenID Provider; to an upstream identity provider (Auth0, or any
//! OpenID provider) it is a relying party. Between the two it maps upstream claims into an
//! authentication context, asks users for consent, and mints its own tokens.
//!
//! # Layout
//!
//! In floors, top to bottom; a module imports only modules below it (`tests/floors.rs` checks).
//!
//! - [`cli`], [`app`] and [`server`]: the `herald` command line; startup (`App::build`,
//!   `App::run`); serving connections with their timeouts, caps and shutdown.
//! - [`routes`]: every route, composed once, and the layers each listener has.
//! - Handlers: [`provider`] (the OP endpoints client apps call), [`account`] (the consent
//!   center), [`admin`] (the admin API under `/admin/api` and the admin pages), [`demo`] (the
//!   demo app), [`site`] (front page, health), [`dev_upstream`] (the development upstream).
//! - [`profiles`]: what an upstream says about a user, kept on the user record, and profiles
//!   imported from a file or Auth0's Management API through the upstream's mappings.
//! - [`login`]: the login journey from an authorization request through the upstream login and
//!   the consent page to the code, and sign-in to Herald's own pages.
//! - [`state`]: [`state::AppState`], shared by every handler, and the reload loops.
//! - [`web`]: what pages share: rendering, error pages, sessions, rate limits, layers.
//! - [`upstream`] (the relying party toward Auth0 or any OpenID provider), [`oauth`] (OAuth errors
//!   and parameters), [`config`] (the TOML file and its validation into [`config::Settings`]).
//! - Cores, no HTTP: [`consent`] (which scopes a user must still approve; grants and records),
//!   [`claims`] (claim paths, mappings into the authentication context, release by scope),
//!   [`tokens`] (signing keys, JWTs, secret hashing), [`store`] (the storage traits and their
//!   SQLite and PostgreSQL implementations), [`outbox`] (events written with their changes and
//!   delivered from the store), [`telemetry`] (metrics and event log lines),
//!   [`clock`], [`secret`].

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
pub mod egress;
pub mod login;
pub mod oauth;
pub mod outbox;
pub mod profiles;
pub mod provider;
pub mod routes;
pub mod secret;
pub mod server;
pub mod site;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod upstream;
pub mod web;
