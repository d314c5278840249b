//! What Herald tells its operators: Prometheus metrics ([`metrics`]) and one log line per
//! login, consent, token and admin change ([`events`]). A floor of its own below
//! every handler: it knows no HTTP framework, so the cores (the store, the claims engine) can
//! count what happens in them.

pub mod events;
pub mod metrics;
pub mod traces;
