//! [`Changes`]: the steps every configuration change runs (edit the latest stored document,
//! validate it whole, store the next version with its audit entry, put it into effect), and
//! the scopes.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value as Json;
use toml::Value;

use crate::admin::auth::Admin;
use crate::admin::error::ApiError;
use crate::config::{LiveConfig, ManagedConfig, Settings};
use crate::state::AppState;
use crate::store::{AuditEntry, ConfigVersion, Removal};
use crate::telemetry::events;

/// The audit entry's view of a change: the state before and after (absent when created or
/// removed).
type Audit = (Option<Json>, Option<Json>);

/// One admin's changes to the managed configuration.
pub struct Changes<'a> {
    pub(super) state: &'a AppState,
    pub(super) admin: &'a Admin,
}

impl<'a> Changes<'a> {
    /// Changes made by `admin`, who the audit log names as their author.
    pub fn new(state: &'a AppState, admin: &'a Admin) -> Self {
        Self { state, admin }
    }

    /// Applies `edit` to the latest stored configuration and, when the result is valid, stores
    /// it as the next version with an audit entry (`edit` returns the before and after states),
    /// ends what `removals` were given in the same transaction, and puts it into effect on this
    /// replica. Returns the new version.
    pub(super) async fn apply(
        &self,
        action: &str,
        target: String,
        removals: &[Removal],
        edit: impl FnOnce(&mut ManagedConfig) -> Result<Audit, ApiError>,
    ) -> Result<i64, ApiError> {
        let state = self.state;
        let (latest, mut managed) = latest(state).await?;
        let unchanged = managed.clone();
        let (before, after) = edit(&mut managed)?;
        if !self.admin.roles.is_admin() {
            let settings = state.settings();
            let role_claim = settings.admin.roles.as_ref().map(|r| &r.claim);
            super::guard::admin_only(&unchanged, &managed, role_claim)?;
        }
        let settings = validated(state, &managed)?;
        let now = state.now();
        let version = latest.version + 1;
        let logged_target = target.clone();
        state
            .store
            .save_config(
                &ConfigVersion {
                    version,
                    document: managed.to_toml(),
                    created_at: now,
                    author: self.admin.actor.clone(),
                },
                &AuditEntry {
                    id: 0,
                    at: now,
                    actor: self.admin.actor.clone(),
                    action: action.into(),
                    target,
                    before: before.map(|v| v.to_string()),
                    after: after.map(|v| v.to_string()),
                    config_version: Some(version),
                },
                removals,
            )
            .await?;
        events::admin_change(&self.admin.actor, action, &logged_target);
        state.apply_config(version, settings);
        Ok(version)
    }

    /// Replaces the custom scopes (`[scopes.NAME]`), given as JSON: each definition is checked
    /// by the validation, so its problems come back with check-config's messages. Returns the
    /// scopes as stored.
    pub async fn replace_scopes(&self, scopes: &BTreeMap<String, Json>) -> Result<Json, ApiError> {
        let new = to_toml(scopes)?;
        self.apply("scopes.replace", "scopes".into(), &[], |doc| {
            let before = doc.table().get("scopes").map(to_json);
            doc.table_mut().insert("scopes".into(), new.clone());
            Ok((before, Some(to_json(&new))))
        })
        .await?;
        Ok(to_json(&new))
    }
}

/// What a change would put into effect, without storing it: the latest stored configuration
/// with `edit` applied, validated like `herald check-config`. The admin pages preview drafts.
pub(super) async fn draft(
    state: &AppState,
    edit: impl FnOnce(&mut ManagedConfig) -> Result<(), ApiError>,
) -> Result<Settings, ApiError> {
    let (_, mut managed) = latest(state).await?;
    edit(&mut managed)?;
    validated(state, &managed)
}

/// The latest stored configuration version, and its managed document parsed.
async fn latest(state: &AppState) -> Result<(ConfigVersion, ManagedConfig), ApiError> {
    live(state)?;
    let latest = state
        .store
        .latest_config()
        .await?
        .ok_or_else(|| ApiError::internal("no stored configuration"))?;
    let managed = ManagedConfig::parse(&latest.document)?;
    Ok((latest, managed))
}

/// The settings a managed document gives, validated like `herald check-config`.
fn validated(state: &AppState, managed: &ManagedConfig) -> Result<Settings, ApiError> {
    Ok(live(state)?.settings(managed)?.0)
}

fn live(state: &AppState) -> Result<&LiveConfig, ApiError> {
    state.live_config().ok_or_else(|| {
        ApiError::conflict(
            "this Herald runs without live configuration; change the configuration file",
        )
    })
}

/// `v` as TOML, or the 400 saying it cannot be stored (TOML has no null, for one).
pub(super) fn to_toml<T: Serialize + ?Sized>(v: &T) -> Result<Value, ApiError> {
    Value::try_from(v).map_err(stored)
}

pub(super) fn stored(e: toml::ser::Error) -> ApiError {
    ApiError::invalid_request(format!("cannot be stored: {e}"))
}

/// A stored TOML value as JSON, for the audit log and the API's answers.
pub(crate) fn to_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}
