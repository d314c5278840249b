//! Names Herald reserves for itself, which the configuration's validation refuses or treats as
//! built in. They live here, with the rules that enforce them, so the configuration depends on
//! no feature module; the features import them from here.

/// The built-in client the consent center signs users in as. Reserved: no configured client
/// may use it.
pub const ACCOUNT_CLIENT_ID: &str = "herald-account";

/// The scope that lets a client (by client_credentials) use the admin API. Built in: a client
/// lists it in `scopes` without defining it, and only a client with
/// `grant_types = ["client_credentials"]` may.
pub const ADMIN_SCOPE: &str = "herald:admin";
