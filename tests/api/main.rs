//! Herald's HTTP behaviour, driven over real sockets like client apps and browsers would.
//! One test binary (see `support::spawn_app`).

mod account_link;
mod admin;
mod admin_pages;
mod authorize_errors;
mod checklist;
mod claims;
mod cli;
mod consent_center;
mod demo;
mod erasure;
mod fresh_claims;
mod hardening;
mod import;
mod keys;
mod lifecycle;
mod limits;
mod login;
mod logout;
mod logs;
mod metrics;
mod oidc_client;
mod pg_restart;
mod private_key_jwt;
mod purposes;
mod replicas;
mod request_ids;
mod sessions;
mod support;
mod token;
mod traces;
mod upstream_faults;
mod upstream_logout;
mod user_access;
mod user_linking;
mod webhooks;
