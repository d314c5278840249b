//! Upstreams: adding, changing and removing one, and replacing its claim rules (attributes,
//! mappings, or both together as the admin page edits them).
//!
//! Herald's client secret at an upstream comes from one of two places: typed in
//! (`client_secret`), when it is stored sealed with the key-encryption key and never shown
//! again (see `config::upstream_secret`), or an environment variable of every replica named by
//! `client_secret_env`, whose name must follow the rules of `UpstreamSettings::check_secrets`
//! and [`UPSTREAM_SECRET_PREFIX`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value as Json, json};
use toml::{Table, Value};
use utoipa::ToSchema;

use super::service::{Changes, draft, stored, to_json, to_toml};
use crate::admin::error::ApiError;
use crate::claims::{Attribute, Mapping};
use crate::config::upstream_secret;
use crate::config::{ManagedConfig, OneOrMany, Settings, UpstreamFile, UpstreamKind};
use crate::secret::Secret;
use crate::state::AppState;
use crate::store::Removal;
use crate::tokens::kek::KeyEncryption;

/// Herald's own secrets, which no upstream may be told to send (`client_secret_env` would
/// otherwise let an admin post them to a provider of their choosing).
const HERALD_SECRET_VARIABLES: [&str; 2] = ["HERALD_KEY_ENCRYPTION_KEY", "HERALD_ADMIN_TOKEN"];

/// The names of environment variables the admin API may point an upstream's secret at.
pub const UPSTREAM_SECRET_PREFIX: &str = "HERALD_UPSTREAM_";

/// An upstream's settings as written; the keys mean what they mean in the file's
/// `[[upstreams]]`. Herald's client secret at the upstream is either typed in
/// (`client_secret`: stored encrypted with the key-encryption key, never shown again) or read
/// from an environment variable of every replica named by `client_secret_env`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    /// Required to create an upstream (letters, digits, `-`, `_`; it appears in the callback
    /// URL). When replacing one it may be repeated, and must then match the path.
    pub id: Option<String>,
    pub kind: UpstreamKind,
    /// Shown on the chooser page when there are several upstreams.
    pub display_name: Option<String>,
    /// kind = auth0: the tenant's domain without protocol, like `example.eu.auth0.com`.
    pub domain: Option<String>,
    /// kind = oidc: the issuer exactly as the provider's discovery document states it.
    pub issuer: Option<String>,
    /// Hosts besides the issuer's that its discovery document may name for the token, JWKS
    /// and userinfo endpoints.
    #[serde(default)]
    pub allowed_endpoint_hosts: Vec<String>,
    /// The client ID Herald has at the upstream (kind = dev: default `herald`).
    pub client_id: Option<String>,
    /// The environment variable holding Herald's client secret at the upstream; every replica
    /// must have it set. When replacing an upstream, absent (with no `client_secret`) keeps the
    /// current secret while the upstream stays the same provider.
    pub client_secret_env: Option<String>,
    /// `client_secret_basic` (the default) or `client_secret_post`.
    pub token_endpoint_auth_method: Option<String>,
    /// Herald's client secret at the upstream, stored encrypted with the key-encryption key
    /// (`HERALD_KEY_ENCRYPTION_KEY`, which must be set) and never shown again; it replaces
    /// `client_secret_env`.
    #[schema(value_type = Option<String>, format = Password)]
    pub client_secret: Option<Secret>,
    /// Default `["openid", "profile", "email"]`; must contain `openid`.
    pub scopes: Option<Vec<String>>,
    /// Fetch userinfo after the login.
    #[serde(default)]
    pub userinfo: bool,
    /// End the upstream session too on logout.
    #[serde(default)]
    pub logout: bool,
    #[serde(default)]
    pub extra_authorize_params: BTreeMap<String, String>,
    /// `amr` written into Herald's tokens for logins through this upstream.
    pub amr: Option<Vec<String>>,
    /// How long a login's authentication context is reused, like `10m`.
    pub auth_context_ttl: Option<String>,
    /// The longest one request to the upstream may take, like `10s` (the default).
    pub timeout: Option<String>,
    /// A first login whose email the upstream says is verified joins the user who has that
    /// verified email already, instead of creating another (default `false`).
    #[serde(default)]
    pub link_by_verified_email: bool,
    /// `false`: only users that exist already (created through `POST /admin/api/users`,
    /// imported, or found by verified email) may log in (default `true`).
    pub allow_signup: Option<bool>,
    /// Ask the upstream for a refresh token, kept encrypted, and refresh a login older than
    /// `auth_context_ttl` there at the next refresh or `/userinfo` (default `false`).
    #[serde(default)]
    pub refresh_upstream: bool,
    /// `fail` (the default) or `serve_stale`: what such a refresh does when the upstream
    /// cannot be reached.
    pub on_upstream_unavailable: Option<String>,
    /// With `serve_stale`, how long past the TTL stored claims may be served, like `1h`.
    pub max_stale: Option<String>,
    /// kind = auth0: the Management API's base URL, when not at the domain.
    pub management_api_url: Option<String>,
    /// Parameters of the app's authorization request passed on to this upstream, like
    /// `["connection", "organization"]`.
    #[serde(default)]
    pub pass_through: Vec<String>,
    /// An app's `prompt=none` is tried at this upstream with `prompt=none`.
    #[serde(default)]
    pub silent_login: bool,
    /// A post-authentication application the user is sent to after the login, like
    /// `https://onboarding.example.com/start`.
    #[serde(default)]
    pub post_login_url: Option<String>,
    /// The client (with `jwks`) whose keys sign the context that application sends back.
    #[serde(default)]
    pub post_login_client: Option<String>,
    /// Replace the attributes. Absent: none for a new upstream; kept when replacing one (they
    /// also have their own endpoint).
    pub attributes: Option<Vec<Attribute>>,
    /// Replace the mappings; absent: as for `attributes`.
    pub mappings: Option<Vec<Mapping>>,
}
impl UpstreamSettings {
    /// Refuses two sources for one secret, an empty secret, a secret this server cannot store
    /// encrypted, and a reference to one of Herald's own secrets.
    fn check_secrets(&self, kek: &KeyEncryption) -> Result<(), ApiError> {
        if let Some(secret) = &self.client_secret {
            if self.client_secret_env.is_some() {
                return Err(ApiError::invalid_request(
                    "client_secret and client_secret_env: give one; a typed secret is stored \
                     encrypted, a variable is read from every replica's environment",
                ));
            }
            if secret.expose().trim().is_empty() {
                return Err(ApiError::invalid_request(
                    "client_secret: empty; paste the client secret the upstream shows for \
                     Herald's application",
                ));
            }
            if !kek.is_enabled() {
                return Err(ApiError::invalid_request(
                    "client_secret: Herald stores an upstream's secret only encrypted with \
                     HERALD_KEY_ENCRYPTION_KEY, and this server runs without one (a loopback \
                     development issuer). Set it (`herald keys gen-kek` prints one) and \
                     restart, or put the secret in an environment variable and name it in \
                     client_secret_env.",
                ));
            }
        }
        if let Some(name) = self.client_secret_env.as_deref()
            && HERALD_SECRET_VARIABLES.contains(&name)
        {
            return Err(ApiError::invalid_request(format!(
                "client_secret_env: `{name}` holds one of Herald's own secrets, which must never \
                 be sent to an upstream; name the variable that holds Herald's client secret at \
                 this upstream"
            )));
        }
        Ok(())
    }

    /// A variable named through the API must be one set aside for upstream secrets, so the API
    /// cannot have Herald send any other variable of its process (a database password, say) to
    /// a server of the caller's choosing. `current` (the name the upstream has now) may stay.
    fn check_secret_variable(&self, current: Option<&str>) -> Result<(), ApiError> {
        match self.client_secret_env.as_deref() {
            Some(name) if Some(name) != current && !name.starts_with(UPSTREAM_SECRET_PREFIX) => {
                Err(ApiError::invalid_request(format!(
                    "client_secret_env: `{name}` does not start with {UPSTREAM_SECRET_PREFIX}; \
                     through the admin API Herald reads upstream secrets only from variables \
                     named so (for example {UPSTREAM_SECRET_PREFIX}AUTH0), so that no other \
                     variable of its process can be sent to an upstream. Variables named in the \
                     configuration file are not limited."
                )))
            }
            _ => Ok(()),
        }
    }

    /// The `[[upstreams]]` entry for these settings; absent attributes and mappings are none.
    fn to_file(&self, id: &str) -> UpstreamFile {
        UpstreamFile {
            id: id.into(),
            kind: self.kind,
            display_name: self.display_name.clone(),
            domain: self.domain.clone(),
            issuer: self.issuer.clone(),
            allowed_endpoint_hosts: self.allowed_endpoint_hosts.clone(),
            client_id: self.client_id.clone(),
            client_secret: None,
            client_secret_env: self.client_secret_env.clone(),
            client_secret_sealed: None,
            token_endpoint_auth_method: self.token_endpoint_auth_method.clone(),
            scopes: self.scopes.clone(),
            userinfo: self.userinfo,
            logout: self.logout,
            extra_authorize_params: self.extra_authorize_params.clone(),
            amr: self.amr.clone().map(OneOrMany::Many),
            auth_context_ttl: self.auth_context_ttl.clone(),
            timeout: self.timeout.clone(),
            link_by_verified_email: self.link_by_verified_email,
            allow_signup: self.allow_signup.unwrap_or(true),
            refresh_upstream: self.refresh_upstream,
            on_upstream_unavailable: self.on_upstream_unavailable.clone(),
            max_stale: self.max_stale.clone(),
            management_api_url: self.management_api_url.clone(),
            pass_through: self.pass_through.clone(),
            silent_login: self.silent_login,
            post_login_url: self.post_login_url.clone(),
            post_login_client: self.post_login_client.clone(),
            attributes: self.attributes.clone().unwrap_or_default(),
            mappings: self.mappings.clone().unwrap_or_default(),
        }
    }
}

/// An upstream's claim rules, as the admin page edits them together.
pub struct ClaimRules {
    pub attributes: Vec<Attribute>,
    pub mappings: Vec<Mapping>,
}

/// A refused change of an upstream's claim rules, with where the upstream stands in the
/// document (check-config's messages name it `upstreams[N]`), so each problem can be shown next
/// to the row it is about.
pub struct Refused {
    pub error: ApiError,
    pub position: Option<usize>,
}

fn no_upstream(id: &str) -> ApiError {
    ApiError::not_found(format!("no upstream `{id}`"))
}

/// An upstream as the audit log shows it: a stored secret only as `[sealed]`, so that the log
/// says it changed without keeping even its ciphertext.
fn audit(t: &Table) -> Json {
    let mut t = t.clone();
    if let Some(v) = t.get_mut(upstream_secret::SEALED) {
        *v = Value::String("[sealed]".into());
    }
    to_json(&Value::Table(t))
}

/// Seals a typed secret into upstream `id` of `doc`; returns the entry as written.
fn seal_secret(
    doc: &mut ManagedConfig,
    id: &str,
    secret: Option<&Secret>,
    kek: &KeyEncryption,
) -> Result<Option<Table>, ApiError> {
    let (Some(secret), Some(entry)) = (secret, doc.entry_mut("upstreams", "id", id)) else {
        return Ok(None);
    };
    upstream_secret::seal(kek, entry, secret.expose())
        .map_err(|e| ApiError::invalid_request(format!("client_secret: cannot be stored: {e}")))?;
    Ok(Some(entry.clone()))
}

/// A list as the audit log shows it: as stored.
fn list_json<T: serde::Serialize>(list: &[T]) -> Result<Json, ApiError> {
    Ok(to_json(&to_toml(list)?))
}

impl ClaimRules {
    fn audit(&self) -> Result<Json, ApiError> {
        Ok(json!({
            "attributes": list_json(&self.attributes)?,
            "mappings": list_json(&self.mappings)?,
        }))
    }

    /// Puts the rules into upstream `id` of `doc`; returns the rules it had.
    fn put(&self, doc: &mut ManagedConfig, id: &str) -> Result<Json, ApiError> {
        let mut up = doc
            .get::<UpstreamFile>(id)?
            .ok_or_else(|| no_upstream(id))?;
        let before = json!({
            "attributes": list_json(&up.attributes)?,
            "mappings": list_json(&up.mappings)?,
        });
        up.attributes = self.attributes.clone();
        up.mappings = self.mappings.clone();
        doc.put(&up).map_err(stored)?;
        Ok(before)
    }
}

/// What replacing upstream `id`'s claim rules would put into effect, without storing it.
pub async fn draft_claims(
    state: &AppState,
    id: &str,
    rules: &ClaimRules,
) -> Result<Settings, Refused> {
    rules.audit().map_err(|error| Refused {
        error,
        position: None,
    })?;
    let mut position = None;
    draft(state, |doc| {
        position = doc.position::<UpstreamFile>(id);
        rules.put(doc, id).map(|_| ())
    })
    .await
    .map_err(|error| Refused { error, position })
}

impl Changes<'_> {
    /// Adds an upstream; its id is required.
    pub async fn create_upstream(&self, new: &UpstreamSettings) -> Result<i64, ApiError> {
        let kek = &self.state.kek();
        new.check_secrets(kek)?;
        new.check_secret_variable(None)?;
        let Some(id) = new.id.as_deref() else {
            return Err(ApiError::invalid_request(
                "id: required; the upstream's id appears in its callback URL, like \"auth0\"",
            ));
        };
        let upstream = new.to_file(id);
        Table::try_from(&upstream).map_err(stored)?;
        self.apply("upstream.create", format!("upstream:{id}"), &[], |doc| {
            if doc.position::<UpstreamFile>(id).is_some() {
                return Err(ApiError::conflict(format!(
                    "upstream `{id}` exists; PUT changes it"
                )));
            }
            let written = doc.put(&upstream).map_err(stored)?;
            let written = seal_secret(doc, id, new.client_secret.as_ref(), kek)?.unwrap_or(written);
            Ok((None, Some(audit(&written))))
        })
        .await
    }

    /// Replaces upstream `id`'s settings. The secret (while the upstream stays the same
    /// provider), `attributes` and `mappings` stay as they are when absent.
    pub async fn update_upstream(
        &self,
        id: &str,
        settings: &UpstreamSettings,
    ) -> Result<i64, ApiError> {
        let kek = &self.state.kek();
        settings.check_secrets(kek)?;
        if let Some(other) = settings.id.as_deref().filter(|i| *i != id) {
            return Err(ApiError::invalid_request(format!(
                "id: `{other}` differs from the path's `{id}`; an upstream's id cannot be changed \
                 (create the new one, then delete the old one)"
            )));
        }
        let changed = settings.to_file(id);
        Table::try_from(&changed).map_err(stored)?;
        self.apply("upstream.update", format!("upstream:{id}"), &[], |doc| {
            let before = doc.entry("upstreams", "id", id).map(audit);
            let old = doc
                .get::<UpstreamFile>(id)?
                .ok_or_else(|| no_upstream(id))?;
            settings.check_secret_variable(old.client_secret_env.as_deref())?;
            // The secret stays only while the upstream stays the same provider: it must never
            // follow the upstream to another issuer.
            let same_provider = (old.kind, &old.issuer, &old.domain)
                == (changed.kind, &changed.issuer, &changed.domain);
            let keep = same_provider
                && settings.client_secret.is_none()
                && changed.client_secret_env.is_none();
            if !same_provider
                && old.client_secret_sealed.is_some()
                && settings.client_secret.is_none()
                && changed.client_secret_env.is_none()
            {
                return Err(ApiError::invalid_request(
                    "client_secret: this change points the upstream at another provider, and \
                     the secret stored for the current one is never sent elsewhere; give the \
                     new provider's client secret too",
                ));
            }
            let upstream = UpstreamFile {
                client_secret_env: match changed.client_secret_env {
                    None if keep => old.client_secret_env,
                    env => env,
                },
                client_secret_sealed: if keep { old.client_secret_sealed } else { None },
                attributes: match settings.attributes {
                    None => old.attributes,
                    Some(_) => changed.attributes,
                },
                mappings: match settings.mappings {
                    None => old.mappings,
                    Some(_) => changed.mappings,
                },
                ..changed
            };
            let written = doc.put(&upstream).map_err(stored)?;
            let written =
                seal_secret(doc, id, settings.client_secret.as_ref(), kek)?.unwrap_or(written);
            Ok((before, Some(audit(&written))))
        })
        .await
    }

    /// Removes an upstream. Every login made through it ends with it: browsers must log in
    /// again, and its codes, refresh and access tokens are revoked.
    pub async fn delete_upstream(&self, id: &str) -> Result<i64, ApiError> {
        let removal = Removal::Upstream {
            upstream_id: id.to_string(),
            logouts: crate::login::ending::logouts(self.state),
        };
        self.apply(
            "upstream.delete",
            format!("upstream:{id}"),
            &[removal],
            |doc| {
                let removed = doc
                    .remove::<UpstreamFile>(id)
                    .ok_or_else(|| no_upstream(id))?;
                Ok((Some(audit(&removed)), None))
            },
        )
        .await
    }

    /// Replaces upstream `id`'s attributes.
    pub async fn replace_attributes(&self, id: &str, list: &[Attribute]) -> Result<i64, ApiError> {
        self.replace_list("upstream.attributes.replace", id, list, |up| {
            &mut up.attributes
        })
        .await
    }

    /// Replaces upstream `id`'s mappings.
    pub async fn replace_mappings(&self, id: &str, list: &[Mapping]) -> Result<i64, ApiError> {
        self.replace_list("upstream.mappings.replace", id, list, |up| &mut up.mappings)
            .await
    }

    /// Replaces one of upstream `id`'s lists (`field`) with `list`, audited as `action`.
    async fn replace_list<T: Clone + serde::Serialize>(
        &self,
        action: &str,
        id: &str,
        list: &[T],
        field: fn(&mut UpstreamFile) -> &mut Vec<T>,
    ) -> Result<i64, ApiError> {
        let after = list_json(list)?;
        self.apply(action, format!("upstream:{id}"), &[], |doc| {
            let mut up = doc
                .get::<UpstreamFile>(id)?
                .ok_or_else(|| no_upstream(id))?;
            let before = list_json(field(&mut up))?;
            *field(&mut up) = list.to_vec();
            doc.put(&up).map_err(stored)?;
            Ok((Some(before), Some(after)))
        })
        .await
    }

    /// Replaces upstream `id`'s attributes and mappings together, as the admin page saves them.
    pub async fn replace_claims(&self, id: &str, rules: &ClaimRules) -> Result<i64, Refused> {
        let after = rules.audit().map_err(|error| Refused {
            error,
            position: None,
        })?;
        let mut position = None;
        self.apply(
            "upstream.claims.replace",
            format!("upstream:{id}"),
            &[],
            |doc| {
                position = doc.position::<UpstreamFile>(id);
                let before = rules.put(doc, id)?;
                Ok((Some(before), Some(after)))
            },
        )
        .await
        .map_err(|error| Refused { error, position })
    }
}
