//! One log line per thing that happened to a login, a consent, a token or the configuration:
//! target `herald::event`, an `event` field naming it (`login.succeeded`, `token.refresh_reused`,
//! …) and who it concerns (`sub`, `client_id`, `upstream`; the client's address is on the
//! request's span). Failures carry the reason.
//!
//! Never a secret, token, code or cookie: these functions take none. Values a request made up
//! (an unknown client id, a redirect URI) are logged quoted and escaped, at most 200 characters,
//! so they cannot forge a line or flood the log.

use tracing::info;

const TARGET: &str = "herald::event";

/// A value a request sent: Debug-quoted (control characters escaped), at most 200 characters.
fn untrusted(value: &str) -> String {
    let mut v: String = value.chars().take(200).collect();
    if v.len() < value.len() {
        v.push('…');
    }
    format!("{v:?}")
}

pub fn login_succeeded(sub: &str, client_id: &str, upstream: &str) {
    info!(target: TARGET, event = "login.succeeded", sub, client_id, upstream, "login succeeded");
}

/// `error` is the OAuth error code the app is sent; `reason` says why.
pub fn login_failed(client_id: &str, upstream: &str, error: &str, reason: &str) {
    info!(target: TARGET, event = "login.failed", client_id, upstream, error, reason, "login failed");
}

/// An upstream ended its session by back-channel logout, and Herald ended `ended` logins.
pub fn upstream_logout(upstream: &str, ended: u64) {
    info!(target: TARGET, event = "upstream.logout", upstream, ended, "the upstream ended a session");
}

pub fn consent(sub: &str, client_id: &str, granted: bool, scopes: &str) {
    let event = if granted {
        "consent.granted"
    } else {
        "consent.denied"
    };
    info!(target: TARGET, event, sub, client_id, scopes, "consent decided");
}

pub fn token_issued(client_id: &str, grant_type: &str) {
    info!(target: TARGET, event = "token.issued", client_id, grant_type, "tokens issued");
}

/// A token request refused with `error` (an OAuth error code); `client_id` when it authenticated.
pub fn token_refused(client_id: Option<&str>, error: &str, reason: &str) {
    let client_id = client_id.map(untrusted);
    info!(target: TARGET, event = "token.refused", client_id, error, reason = untrusted(reason), "token request refused");
}

pub fn code_replayed(client_id: &str, revoked: u64) {
    tracing::warn!(target: TARGET, event = "token.code_replayed", client_id, revoked, "an authorization code was replayed; its tokens are revoked");
}

pub fn refresh_reused(client_id: &str, revoked: u64) {
    tracing::warn!(target: TARGET, event = "token.refresh_reused", client_id, revoked, "a rotated refresh token was reused; its family is revoked");
}

pub fn token_revoked(client_id: &str, revoked: u64) {
    info!(target: TARGET, event = "token.revoked", client_id, revoked, "token revoked");
}

/// A client that failed to authenticate; `client_id` as sent.
pub fn client_auth_failed(client_id: Option<&str>, reason: &str) {
    let client_id = client_id.map(untrusted);
    info!(target: TARGET, event = "client_auth.failed", client_id, reason, "client authentication failed");
}

/// An authorization request refused on a page, never redirected (unknown client, a
/// redirect URI not registered): the client and the URI as sent, for the app's developer.
pub fn authorize_refused(client_id: Option<&str>, redirect_uri: Option<&str>, reason: &str) {
    let client_id = client_id.map(untrusted);
    let redirect_uri = redirect_uri.map(untrusted);
    info!(target: TARGET, event = "authorize.refused", client_id, redirect_uri, reason, "authorization request refused");
}

pub fn logout(sub: Option<&str>) {
    info!(target: TARGET, event = "logout", sub, "signed out");
}

/// An admin change stored as configuration version `version` (or audited without one).
pub fn admin_change(actor: &str, action: &str, target: &str) {
    info!(target: TARGET, event = "admin.change", actor, action, target = untrusted(target), "admin change");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_values_are_quoted_escaped_and_cut() {
        assert_eq!(untrusted("app"), "\"app\"");
        assert_eq!(untrusted("a\nevent=forged"), "\"a\\nevent=forged\"");
        let long = "x".repeat(500);
        assert_eq!(untrusted(&long).chars().count(), 203);
    }
}
