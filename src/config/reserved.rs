//! Names Herald keeps for itself, and the name people see for an app. They sit with the
//! settings because every part that needs them (validation, the login journey, the consent
//! center, the admin pages) already reads the settings.

use super::Settings;

/// The built-in client the consent center and the admin pages sign users in as. Reserved: no
/// configured client may use it, and it cannot be named in `/authorize`.
pub const ACCOUNT_CLIENT_ID: &str = "herald-account";

/// The scope that lets a client (by client_credentials) make account links
/// (`POST /admin/api/users/{sub}/account-link`) and nothing else of the admin API. Built in like
/// the role scopes ([`super::ADMIN_SCOPE`]), under the same rule.
pub const ACCOUNT_LINK_SCOPE: &str = "herald:account-link";

impl Settings {
    /// The name people see for the app behind `client_id`: its `client_name`, the client_id for
    /// an app no longer configured, and "your Herald account" for Herald's own pages.
    pub fn app_name(&self, client_id: &str) -> String {
        if client_id == ACCOUNT_CLIENT_ID {
            return "your Herald account".into();
        }
        self.client(client_id)
            .map(|c| c.client_name.clone())
            .unwrap_or_else(|| client_id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_configured_client_may_take_the_consent_centers_client_id() {
        let toml = format!(
            r#"
            issuer = "http://127.0.0.1:8080"
            listen = "127.0.0.1:8080"
            database_url = "sqlite::memory:"
            [[upstreams]]
            id = "dev"
            kind = "dev"
            [[clients]]
            client_id = "{ACCOUNT_CLIENT_ID}"
            redirect_uris = ["http://127.0.0.1:9000/cb"]
            scopes = ["openid"]
            "#
        );
        let err = crate::config::from_toml(&toml).unwrap_err().to_string();
        assert!(err.contains("clients[0].client_id"), "{err}");
        assert!(err.contains("reserved"), "{err}");
    }
}
