//! Consent: which requested scopes a user must still approve, and recording decisions.
//!
//! A grant per (user, app) holds the scopes allowed and, for each, the version of the consent
//! text it was allowed under: a scope's version is a digest of its description, so rewording a
//! scope asks again. Every decision is also appended to the consent records (proof of consent).
//! `openid` is part of every grant like any other scope, so the consent page lists it.

pub mod decision;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::claims::ScopeCatalog;
use crate::config::Settings;

use crate::store::{ConsentMethod, ConsentRecord, ConsentStore, Grant, Result, Store};
use crate::tokens::hashing::{digest_hex, random_token};

/// The consent-text version of a scope: a short digest of its description.
pub fn scope_version(catalog: &ScopeCatalog, scope: &str) -> String {
    let description = catalog
        .get(scope)
        .map(|d| d.description.as_str())
        .unwrap_or_default();
    digest_hex(description)[..12].to_string()
}

/// What a request needs from the user.
#[derive(Debug, PartialEq)]
pub struct ConsentPlan {
    /// Requested scopes the grant already covers (at the current text version).
    pub granted: Vec<String>,
    /// Requested scopes the user must still decide on.
    pub needed: Vec<String>,
}

/// Splits requested scopes into already granted and still needed. With `force`
/// (`prompt=consent`) everything requested is asked again.
pub fn plan(
    requested: &[String],
    grant: Option<&Grant>,
    catalog: &ScopeCatalog,
    force: bool,
) -> ConsentPlan {
    let versions: BTreeMap<String, String> = grant
        .and_then(|g| serde_json::from_str(&g.scope_versions).ok())
        .unwrap_or_default();
    let (granted, needed) = requested.iter().cloned().partition(|s| {
        !force
            && versions
                .get(s)
                .is_some_and(|v| *v == scope_version(catalog, s))
    });
    ConsentPlan { granted, needed }
}

/// The grant after a decision: previously granted scopes stay, newly allowed ones are added at
/// their current version, denied ones removed.
pub fn apply(
    previous: Option<&Grant>,
    sub: &str,
    client_id: &str,
    allowed: &[String],
    denied: &[String],
    catalog: &ScopeCatalog,
    now: i64,
) -> Grant {
    let mut versions: BTreeMap<String, String> = previous
        .and_then(|g| serde_json::from_str(&g.scope_versions).ok())
        .unwrap_or_default();
    for s in allowed {
        versions.insert(s.clone(), scope_version(catalog, s));
    }
    for s in denied {
        versions.remove(s);
    }
    Grant {
        sub: sub.to_string(),
        client_id: client_id.to_string(),
        scopes: versions.keys().collect(),
        scope_versions: serde_json::to_string(&versions).unwrap_or_else(|_| "{}".into()),
        granted_at: previous.map_or(now, |g| g.granted_at),
        updated_at: now,
    }
}

/// A consent record's id: the wall clock in nanoseconds, then a random part. Records are listed
/// by `decided_at` (seconds, from the injected clock) and then by id, so two decisions made in
/// the same second still read in the order they were made.
fn record_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:020}-{}", random_token())
}

/// The start of the ids of records written for many users at once (the store appends each
/// user's sub; see [`crate::store::Removal::Client`]); ordered like [`record_id`].
pub fn record_id_prefix() -> String {
    format!("{}-", record_id())
}

/// A consent record for a decision.
pub fn record(
    sub: &str,
    client_id: &str,
    allowed: &[String],
    denied: &[String],
    catalog: &ScopeCatalog,
    method: ConsentMethod,
    now: i64,
) -> ConsentRecord {
    let versions: BTreeMap<&str, String> = allowed
        .iter()
        .chain(denied)
        .map(|s| (s.as_str(), scope_version(catalog, s)))
        .collect();
    ConsentRecord {
        id: record_id(),
        sub: sub.to_string(),
        client_id: client_id.to_string(),
        allowed: allowed.iter().collect(),
        denied: denied.iter().collect(),
        text_versions: serde_json::to_string(&versions).unwrap_or_else(|_| "{}".into()),
        method,
        decided_at: now,
    }
}

/// Trusted apps skip the page; their grant is still recorded, once per change, so the consent
/// center shows them and the record proves how the scopes were given. `grant` is the user's
/// current grant to the app, which the caller has read.
pub async fn record_trusted(
    store: &dyn ConsentStore,
    settings: &Settings,
    grant: Option<&Grant>,
    sub: &str,
    client_id: &str,
    requested: &[String],
    now: i64,
) -> Result<()> {
    let p = plan(requested, grant, &settings.scopes, false);
    if p.needed.is_empty() {
        return Ok(());
    }
    let new = apply(grant, sub, client_id, &p.needed, &[], &settings.scopes, now);
    let rec = record(
        sub,
        client_id,
        &p.needed,
        &[],
        &settings.scopes,
        ConsentMethod::TrustedApp,
        now,
    );
    let events = crate::outbox::consent_rows(&settings.outbox, &rec, false);
    store.record_consent(Some(&new), &rec, &events).await
}

/// Withdraws a user's consent for an app: the grant is deleted and the decision recorded (every
/// granted scope denied) in one transaction, then what the grant allowed is revoked. Returns the
/// scopes withdrawn (empty when there was no grant). Revocation runs even without a grant, so
/// retrying after a failed revocation finishes the job.
pub async fn withdraw(
    store: &dyn Store,
    settings: &Settings,
    sub: &str,
    client_id: &str,
    method: ConsentMethod,
    now: i64,
) -> Result<Vec<String>> {
    let withdrawn: Vec<String> = match store.grant(sub, client_id).await? {
        Some(g) => {
            let scopes = g.scopes.to_vec();
            let rec = record(sub, client_id, &[], &scopes, &settings.scopes, method, now);
            let events = crate::outbox::consent_rows(&settings.outbox, &rec, true);
            store.record_consent(None, &rec, &events).await?;
            scopes
        }
        None => Vec::new(),
    };
    // After the grant is gone, so no new code can be issued under it meanwhile.
    store.revoke_grant_tokens(sub, client_id, now).await?;
    Ok(withdrawn)
}

/// A consent record as exported to its user (and to admins): scope lists as arrays, the text
/// versions as an object, times as Unix seconds and RFC 3339.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportedRecord {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    /// The scopes allowed.
    pub allowed: Vec<String>,
    /// The scopes refused, or withdrawn.
    pub denied: Vec<String>,
    /// Each scope's consent text as the user saw it: scope → version; `null` if unreadable.
    pub text_versions: Option<BTreeMap<String, String>>,
    /// How the decision was made: `page` (the consent page, or withdrawn in the consent
    /// center), `trusted_app` (allowed without asking), `admin` (withdrawn by an admin).
    pub method: String,
    pub decided_at: i64,
    pub decided_at_utc: String,
}

/// The export of one consent record.
pub fn export_record(r: &ConsentRecord, app_name: &str) -> ExportedRecord {
    ExportedRecord {
        id: r.id.clone(),
        client_id: r.client_id.clone(),
        client_name: app_name.to_string(),
        allowed: r.allowed.to_vec(),
        denied: r.denied.to_vec(),
        text_versions: serde_json::from_str(&r.text_versions).ok(),
        method: r.method.to_string(),
        decided_at: r.decided_at,
        decided_at_utc: crate::clock::rfc3339_utc(r.decided_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> ScopeCatalog {
        ScopeCatalog::new(Default::default()).unwrap()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn second_request_for_the_same_scopes_needs_no_consent() {
        let c = catalog();
        let g = apply(None, "u", "app", &s(&["openid", "email"]), &[], &c, 1);
        let p = plan(&s(&["openid", "email"]), Some(&g), &c, false);
        assert!(p.needed.is_empty());
        assert_eq!(p.granted, s(&["openid", "email"]));
    }

    #[test]
    fn a_wider_request_asks_only_for_the_new_scope() {
        let c = catalog();
        let g = apply(None, "u", "app", &s(&["openid"]), &[], &c, 1);
        let p = plan(&s(&["openid", "profile"]), Some(&g), &c, false);
        assert_eq!(p.needed, s(&["profile"]));
        assert_eq!(p.granted, s(&["openid"]));
    }

    #[test]
    fn prompt_consent_asks_again_for_everything() {
        let c = catalog();
        let g = apply(None, "u", "app", &s(&["openid"]), &[], &c, 1);
        assert_eq!(
            plan(&s(&["openid"]), Some(&g), &c, true).needed,
            s(&["openid"])
        );
    }

    #[test]
    fn a_reworded_scope_is_asked_again() {
        let c = catalog();
        let mut g = apply(None, "u", "app", &s(&["openid", "email"]), &[], &c, 1);
        g.scope_versions = g
            .scope_versions
            .replace(&scope_version(&c, "email"), "oldversion00");
        assert_eq!(
            plan(&s(&["openid", "email"]), Some(&g), &c, false).needed,
            s(&["email"])
        );
    }

    #[test]
    fn denied_scopes_leave_the_grant() {
        let c = catalog();
        let g = apply(None, "u", "app", &s(&["openid", "email"]), &[], &c, 1);
        let g = apply(Some(&g), "u", "app", &[], &s(&["email"]), &c, 2);
        assert_eq!(g.scopes, "openid");
        assert_eq!(g.granted_at, 1);
        assert_eq!(g.updated_at, 2);
    }
}
