//! Scopes one at a time, as the admin pages edit them: a custom scope added, changed or
//! removed; a built-in one redefined, or given back to Herald's definition. (`PUT
//! /admin/api/scopes` replaces them all at once.) Each change is validated like
//! `herald check-config`: a scope that a client still asks for cannot be removed, and a claim or
//! purpose the configuration does not know is named.

use toml::{Table, Value};

use super::service::{Changes, to_json, to_toml};
use crate::admin::error::ApiError;
use crate::claims::{ScopeDef, builtin_scopes};
use crate::config::ManagedConfig;

/// The managed document's `[scopes]` table, made when absent.
fn scopes_mut(doc: &mut ManagedConfig) -> Result<&mut Table, ApiError> {
    match doc
        .table_mut()
        .entry("scopes")
        .or_insert_with(|| Value::Table(Table::new()))
    {
        Value::Table(t) => Ok(t),
        _ => Err(ApiError::internal("the stored scopes are not a table")),
    }
}

impl Changes<'_> {
    /// Adds scope `name`; refused when a scope of that name exists (built-in ones included:
    /// change those with [`Changes::put_scope`]).
    pub async fn create_scope(&self, name: &str, def: &ScopeDef) -> Result<i64, ApiError> {
        let value = to_toml(def)?;
        self.apply("scope.create", format!("scope:{name}"), &[], |doc| {
            let scopes = scopes_mut(doc)?;
            if scopes.contains_key(name) || builtin_scopes().contains_key(name) {
                return Err(ApiError::conflict(format!(
                    "scope `{name}` exists; open it to change it"
                )));
            }
            scopes.insert(name.into(), value.clone());
            Ok((None, Some(to_json(&value))))
        })
        .await
    }

    /// Replaces scope `name`'s definition (a built-in one is then redefined).
    pub async fn put_scope(&self, name: &str, def: &ScopeDef) -> Result<i64, ApiError> {
        let value = to_toml(def)?;
        self.apply("scope.update", format!("scope:{name}"), &[], |doc| {
            let known = doc
                .table()
                .get("scopes")
                .and_then(|s| s.get(name))
                .is_some()
                || builtin_scopes().contains_key(name);
            if !known {
                return Err(ApiError::not_found(format!("no scope `{name}`")));
            }
            let before = scopes_mut(doc)?.insert(name.into(), value.clone());
            Ok((before.as_ref().map(to_json), Some(to_json(&value))))
        })
        .await
    }

    /// Removes scope `name`'s definition: a custom scope goes, a built-in one returns to
    /// Herald's own definition.
    pub async fn remove_scope(&self, name: &str) -> Result<i64, ApiError> {
        self.apply("scope.delete", format!("scope:{name}"), &[], |doc| {
            let removed = scopes_mut(doc)?.remove(name).ok_or_else(|| {
                ApiError::not_found(format!("scope `{name}` has no definition of its own"))
            })?;
            Ok((Some(to_json(&removed)), None))
        })
        .await
    }
}
