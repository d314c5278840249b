//! Clients: registering one (with a generated secret unless it is public or uses
//! private_key_jwt), changing its settings, removing it with everything it was given.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value as Json;
use toml::{Table, Value};
use utoipa::ToSchema;

use super::service::{Changes, stored, to_json};
use crate::admin::error::ApiError;
use crate::config::{ClientAuth, ClientFile};
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
    /// A CEL condition over the login's `context` (and `upstream`) that must be true for a
    /// user to get this app's tokens, like `'herald-admins' in context.groups`.
    pub access_policy: Option<String>,
    /// Authorization requests only through `/par` (RFC 9126 §6).
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// Token requests must carry a DPoP proof (RFC 9449 §5.2).
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
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
    /// Where logout tokens are POSTed (OpenID Connect Back-Channel Logout 1.0).
    pub backchannel_logout_uri: Option<String>,
    /// A JWK Set for private_key_jwt client authentication.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// The app's logo on the consent page (https).
    pub logo_uri: Option<String>,
    /// The app's home page (https).
    pub client_uri: Option<String>,
    /// The app's privacy policy, linked from the consent page (https).
    pub policy_uri: Option<String>,
    /// The app's terms of service, linked from the consent page (https).
    pub tos_uri: Option<String>,
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
            access_policy: self.access_policy,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            dpop_bound_access_tokens: self.dpop_bound_access_tokens,
            grant_types: self.grant_types,
            refresh_token_idle_ttl: self.refresh_token_idle_ttl,
            refresh_token_absolute_ttl: self.refresh_token_absolute_ttl,
            refresh_token_grace_period: self.refresh_token_grace_period,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            jwks: self.jwks,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            backchannel_logout_uri: self.backchannel_logout_uri,
            logo_uri: self.logo_uri,
            client_uri: self.client_uri,
            policy_uri: self.policy_uri,
            tos_uri: self.tos_uri,
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

/// How long a rotated-out secret keeps working unless the admin says otherwise.
pub const DEFAULT_SECRET_GRACE: Duration = Duration::from_secs(24 * 3600);
/// The longest a rotated-out secret may keep working.
pub const MAX_SECRET_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// A client's new secret, shown this once, and until when the one it replaced still works.
pub struct Rotated {
    pub version: i64,
    pub client_secret: String,
    /// Unix time; absent when the grace period was zero (the old secret stopped at once).
    pub previous_secret_expires_at: Option<i64>,
}

/// Reads a rotation's grace period: a duration such as `24h` or `30m`, from `0s` (the old
/// secret stops at once) to [`MAX_SECRET_GRACE`]; absent means [`DEFAULT_SECRET_GRACE`].
pub fn secret_grace(raw: Option<&str>) -> Result<Duration, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(DEFAULT_SECRET_GRACE);
    };
    let grace = humantime::parse_duration(raw).map_err(|_| {
        ApiError::invalid_request(format!(
            "grace: `{raw}` is not a duration; write for example \"24h\", \"30m\" or \"0s\""
        ))
    })?;
    if grace > MAX_SECRET_GRACE {
        return Err(ApiError::invalid_request(format!(
            "grace: `{raw}` is longer than the 7 days a replaced secret may keep working"
        )));
    }
    Ok(grace)
}

/// A client entry for the audit log: everything but the secret hash.
fn audit(t: &Table) -> Json {
    let mut t = t.clone();
    for key in ["client_secret_hash", "previous_secret_hash"] {
        if t.remove(key).is_some() {
            t.insert(key.into(), Value::String("[hashed]".into()));
        }
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
        let now = self.state.now();
        self.apply("client.update", format!("client:{client_id}"), &[], |doc| {
            let before = doc.entry("clients", "client_id", client_id).map(audit);
            let old = doc
                .get::<ClientFile>(client_id)?
                .ok_or_else(|| no_client(client_id))?;
            // A secret replaced by a rotation stays until its grace period ends, not after.
            let live = old.previous_secret_expires_at.is_some_and(|at| now < at);
            let client = ClientFile {
                client_secret: old.client_secret,
                client_secret_env: old.client_secret_env,
                client_secret_hash: old.client_secret_hash,
                previous_secret_hash: live.then_some(old.previous_secret_hash).flatten(),
                previous_secret_expires_at: live
                    .then_some(old.previous_secret_expires_at)
                    .flatten(),
                registered_at: old.registered_at,
                ..changed
            };
            let written = doc.put(&client).map_err(stored)?;
            Ok((before, Some(audit(&written))))
        })
        .await
    }

    /// Gives a confidential client a new generated secret, returned this once. The secret it
    /// replaces keeps working for `grace` (an earlier replaced secret stops now); grants and
    /// tokens are untouched. A client whose secret came from the file or its environment
    /// variable gets a stored one from now on: the variable no longer counts.
    pub async fn rotate_client_secret(
        &self,
        client_id: &str,
        grace: Duration,
    ) -> Result<Rotated, ApiError> {
        let settings = self.state.settings();
        let now = self.state.now();
        let secret = random_token();
        // Whole seconds, rounded up: a grace of 500ms still lets the old secret work a moment.
        let grace_secs = grace.as_millis().div_ceil(1000) as i64;
        let expires_at = (grace_secs > 0).then(|| now + grace_secs);
        let version = self
            .apply(
                "client.secret_rotate",
                format!("client:{client_id}"),
                &[],
                |doc| {
                    let before = doc.entry("clients", "client_id", client_id).map(audit);
                    let old = doc
                        .get::<ClientFile>(client_id)?
                        .ok_or_else(|| no_client(client_id))?;
                    // The secret being replaced, as stored: the document's hash, or for a secret
                    // written inline or read from the environment the hash this replica made.
                    let replaced = match &old.client_secret_hash {
                        Some(h) => Some(h.clone()),
                        None if old.client_secret.is_some() || old.client_secret_env.is_some() => {
                            settings.client(client_id).and_then(|c| match &c.auth {
                                ClientAuth::Secret(h) => Some(h.to_stored()),
                                _ => None,
                            })
                        }
                        None => None,
                    };
                    let Some(replaced) = replaced else {
                        return Err(ApiError::conflict(format!(
                            "client `{client_id}` has no secret to rotate: it is public or \
                             authenticates with private_key_jwt"
                        )));
                    };
                    let client = ClientFile {
                        client_secret: None,
                        client_secret_env: None,
                        client_secret_hash: Some(SecretHash::sha256(&secret).to_stored()),
                        previous_secret_hash: expires_at.map(|_| replaced),
                        previous_secret_expires_at: expires_at,
                        ..old
                    };
                    let written = doc.put(&client).map_err(stored)?;
                    Ok((before, Some(audit(&written))))
                },
            )
            .await?;
        Ok(Rotated {
            version,
            client_secret: secret,
            previous_secret_expires_at: expires_at,
        })
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
