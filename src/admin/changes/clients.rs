//! Clients: registering one (with a generated secret unless it is public or uses
//! private_key_jwt), changing its settings, removing it with everything it was given.

use serde::Deserialize;
use serde_json::Value as Json;
use toml::{Table, Value};
use utoipa::ToSchema;

use super::service::{Changes, stored, to_json};
use crate::admin::error::ApiError;
use crate::config::ClientFile;
use crate::consent;
use crate::store::Removal;
use crate::tokens::SecretHash;
use crate::tokens::hashing::random_token;

/// A client's registration as written; the keys mean what they mean in the file's
/// `[[clients]]`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "client_name": "Reports",
    "redirect_uris": ["https://reports.example.com/callback"],
    "scopes": ["openid", "profile", "email", "offline_access"],
    "grant_types": ["authorization_code", "refresh_token"],
    "refresh_token_idle_ttl": "7d",
    "id_token_signed_response_alg": "ES256",
    "post_logout_redirect_uris": ["https://reports.example.com/"]
})))]
pub struct ClientSettings {
    pub client_name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub trusted: bool,
    /// Default `["authorization_code"]`.
    pub grant_types: Option<Vec<String>>,
    pub refresh_token_idle_ttl: Option<String>,
    pub refresh_token_absolute_ttl: Option<String>,
    /// How long a rotated refresh token may be used once more (default `0s`, at most `5m`).
    pub refresh_token_grace_period: Option<String>,
    /// RS256 (default), ES256 or EdDSA.
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// A JWK Set for private_key_jwt client authentication.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
}

impl ClientSettings {
    /// The `[[clients]]` entry for these settings, without credentials or registration time.
    fn into_file(self, client_id: &str) -> ClientFile {
        ClientFile {
            client_id: client_id.into(),
            client_name: self.client_name,
            redirect_uris: self.redirect_uris,
            scopes: self.scopes,
            trusted: self.trusted,
            grant_types: self.grant_types,
            refresh_token_idle_ttl: self.refresh_token_idle_ttl,
            refresh_token_absolute_ttl: self.refresh_token_absolute_ttl,
            refresh_token_grace_period: self.refresh_token_grace_period,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            jwks: self.jwks,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            ..ClientFile::default()
        }
    }
}

/// A registered client: the configuration version it arrived with, and its generated secret,
/// which exists only here (the store keeps a digest).
pub struct Registered {
    pub version: i64,
    pub client_secret: Option<String>,
}

/// A client entry for the audit log: everything but the secret hash.
fn audit(t: &Table) -> Json {
    let mut t = t.clone();
    if t.remove("client_secret_hash").is_some() {
        t.insert(
            "client_secret_hash".into(),
            Value::String("[hashed]".into()),
        );
    }
    to_json(&Value::Table(t))
}

fn no_client(client_id: &str) -> ApiError {
    ApiError::not_found(format!("no client `{client_id}`"))
}

impl Changes<'_> {
    /// Registers a client; a confidential one gets a generated secret, returned this once.
    pub async fn register_client(
        &self,
        id: &str,
        public: bool,
        settings: ClientSettings,
    ) -> Result<Registered, ApiError> {
        // A client with a JWKS authenticates with private_key_jwt: no secret to generate.
        let secret = (!public && settings.jwks.is_none()).then(random_token);
        let client = ClientFile {
            registered_at: Some(self.state.now()),
            client_secret_hash: secret.as_deref().map(|s| SecretHash::sha256(s).to_stored()),
            ..settings.into_file(id)
        };
        Table::try_from(&client).map_err(stored)?;
        let version = self
            .apply("client.create", format!("client:{id}"), &[], |doc| {
                if doc.position::<ClientFile>(id).is_some() {
                    return Err(ApiError::conflict(format!(
                        "client `{id}` exists; PUT changes it"
                    )));
                }
                let written = doc.put(&client).map_err(stored)?;
                Ok((None, Some(audit(&written))))
            })
            .await?;
        Ok(Registered {
            version,
            client_secret: secret,
        })
    }

    /// Replaces a client's settings; its credentials (secret, or public status) and
    /// registration time stay as they are.
    pub async fn update_client(
        &self,
        client_id: &str,
        settings: ClientSettings,
    ) -> Result<i64, ApiError> {
        let changed = settings.into_file(client_id);
        Table::try_from(&changed).map_err(stored)?;
        self.apply("client.update", format!("client:{client_id}"), &[], |doc| {
            let before = doc.entry("clients", "client_id", client_id).map(audit);
            let old = doc
                .get::<ClientFile>(client_id)?
                .ok_or_else(|| no_client(client_id))?;
            let client = ClientFile {
                client_secret: old.client_secret,
                client_secret_env: old.client_secret_env,
                client_secret_hash: old.client_secret_hash,
                registered_at: old.registered_at,
                ..changed
            };
            let written = doc.put(&client).map_err(stored)?;
            Ok((before, Some(audit(&written))))
        })
        .await
    }

    /// Removes a client. What it was given ends with it: its codes are burned, its refresh and
    /// access tokens revoked, and its grants deleted, each with a consent record (method
    /// `client_deleted`) and its `consent.withdrawn` events.
    pub async fn delete_client(&self, client_id: &str) -> Result<i64, ApiError> {
        let removal = Removal::Client {
            client_id: client_id.to_string(),
            withdrawal: consent::client_removal(&self.state.settings(), self.state.now()),
        };
        self.apply(
            "client.delete",
            format!("client:{client_id}"),
            &[removal],
            |doc| {
                let removed = doc
                    .remove::<ClientFile>(client_id)
                    .ok_or_else(|| no_client(client_id))?;
                Ok((Some(audit(&removed)), None))
            },
        )
        .await
    }
}
