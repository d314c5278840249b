//! Consent: which requested scopes a user must still approve, and recording decisions.
//!
//! A grant per (user, app) holds the scopes allowed and, for each, the version of the consent
//! text it was allowed under ([`ScopeCatalog::scope_version`]: a digest of its texts and its
//! purpose's version), so rewording a scope or its purpose asks again. Every decision is also appended to the consent records (proof of consent).
//! `openid` is part of every grant like any other scope, so the consent page lists it.

pub mod decision;
pub mod export;
pub mod import;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::claims::purposes::{DEFAULT_LOCALE, text_in};
use crate::claims::{LegalBasis, ScopeCatalog};
use crate::config::Settings;
use crate::store::{
    ConsentMethod, ConsentOutcome, ConsentRecord, ConsentWrite, Grant, OutboxRow, PurposeDecision,
    PurposeState, Result, Store, Withdrawal,
};
use crate::tokens::hashing::random_token;

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
                .is_some_and(|v| *v == catalog.scope_version(s))
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
        versions.insert(s.clone(), catalog.scope_version(s));
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
pub fn record_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:020}-{}", random_token())
}

/// One decision, before it becomes a [`ConsentRecord`] (a receipt).
#[derive(Debug, Clone, Copy)]
pub struct Receipt<'a> {
    pub sub: &'a str,
    pub client_id: &'a str,
    pub allowed: &'a [String],
    pub denied: &'a [String],
    /// How it was made. A withdrawal method (`consent_center`, `admin`, `client_deleted`) makes
    /// the outcome `withdrawn`; otherwise it is `granted` when something was allowed.
    pub method: ConsentMethod,
    /// The locale the wording was shown in.
    pub locale: &'a str,
    /// Purposes the user's other grants still serve: a withdrawal here does not end them.
    pub still_served: &'a [String],
    pub now: i64,
}

impl Receipt<'_> {
    /// Whether this decision ends consent given before.
    pub fn is_withdrawal(&self) -> bool {
        matches!(
            self.method,
            ConsentMethod::ConsentCenter | ConsentMethod::Admin | ConsentMethod::ClientDeleted
        )
    }

    fn outcome(&self) -> ConsentOutcome {
        if self.is_withdrawal() {
            ConsentOutcome::Withdrawn
        } else if self.allowed.is_empty() {
            ConsentOutcome::Denied
        } else {
            ConsentOutcome::Granted
        }
    }

    /// Whether this record may move the user's purpose states. Nobody decided anything about
    /// purposes when a trusted app was allowed without asking (consent cannot be given, nor an
    /// objection undone, without asking) or when an app was removed (the user still agrees to
    /// what other apps do with their data).
    fn decides_purposes(&self) -> bool {
        !matches!(
            self.method,
            ConsentMethod::TrustedApp | ConsentMethod::ClientDeleted
        )
    }

    /// The record: the versions, the exact wording in `locale` of every scope decided and of
    /// the purposes they serve, and each purpose's decision. A purpose is granted when a scope
    /// serving it was allowed; a withdrawal ends only purposes no other grant still serves.
    pub fn record(&self, catalog: &ScopeCatalog) -> ConsentRecord {
        let outcome = self.outcome();
        let decided = || self.allowed.iter().chain(self.denied);
        let versions: BTreeMap<&str, String> = decided()
            .map(|s| (s.as_str(), catalog.scope_version(s)))
            .collect();
        let scope_words: BTreeMap<&str, &str> = decided()
            .map(|s| (s.as_str(), catalog.scope_text(s, self.locale)))
            .collect();
        let mut purpose_words: BTreeMap<&str, &str> = BTreeMap::new();
        let mut purposes: BTreeMap<&str, PurposeDecision> = BTreeMap::new();
        for s in decided() {
            let Some((name, def)) = catalog.purpose_of(s) else {
                continue;
            };
            purpose_words.insert(
                name,
                text_in(&def.description, &def.translations, self.locale),
            );
            if !self.decides_purposes()
                || (outcome == ConsentOutcome::Withdrawn
                    && self.still_served.iter().any(|p| p == name))
            {
                continue;
            }
            let allowed_here = self.allowed.contains(s);
            let decision = match outcome {
                ConsentOutcome::Withdrawn => ConsentOutcome::Withdrawn,
                _ if allowed_here => ConsentOutcome::Granted,
                _ => match purposes.get(name) {
                    Some(p) if p.decision == ConsentOutcome::Granted.as_str() => {
                        ConsentOutcome::Granted
                    }
                    _ => ConsentOutcome::Denied,
                },
            };
            purposes.insert(
                name,
                PurposeDecision {
                    decision: decision.as_str().to_string(),
                    version: def.version(),
                    legal_basis: def.legal_basis.as_str().to_string(),
                },
            );
        }
        let json = |v: serde_json::Value| v.to_string();
        ConsentRecord {
            id: record_id(),
            sub: self.sub.to_string(),
            client_id: self.client_id.to_string(),
            allowed: self.allowed.iter().collect(),
            denied: self.denied.iter().collect(),
            text_versions: json(serde_json::json!(versions)),
            method: self.method,
            decided_at: self.now,
            decision: outcome,
            locale: self.locale.to_string(),
            wording: json(serde_json::json!({"scopes": scope_words, "purposes": purpose_words})),
            purposes: json(serde_json::json!(purposes)),
            source: None,
            source_reference: None,
        }
    }
}

/// A decision to store: the grant after it, its record and its events.
pub struct Decided {
    pub grant: Grant,
    pub record: ConsentRecord,
    pub events: Vec<OutboxRow>,
}

/// Trusted apps skip the page; their grant is still recorded, once per change, so the consent
/// center shows them and the record proves how the scopes were given. `grant` is the user's
/// current grant to the app, which the caller has read. `None` when nothing changed; the caller
/// stores the decision with the code it issues.
pub fn trusted_decision(
    settings: &Settings,
    grant: Option<&Grant>,
    sub: &str,
    client_id: &str,
    requested: &[String],
    now: i64,
) -> Option<Decided> {
    let p = plan(requested, grant, &settings.scopes, false);
    if p.needed.is_empty() {
        return None;
    }
    let new = apply(grant, sub, client_id, &p.needed, &[], &settings.scopes, now);
    let rec = Receipt {
        sub,
        client_id,
        allowed: &p.needed,
        denied: &[],
        method: ConsentMethod::TrustedApp,
        locale: DEFAULT_LOCALE,
        still_served: &[],
        now,
    }
    .record(&settings.scopes);
    let events = crate::outbox::consent_rows(&settings.outbox, &rec);
    Some(Decided {
        grant: new,
        record: rec,
        events,
    })
}

impl Decided {
    /// The decision as the store writes it.
    pub fn write(&self) -> ConsentWrite<'_> {
        ConsentWrite {
            grant: Some(&self.grant),
            record: &self.record,
            outbox: &self.events,
        }
    }
}

/// Withdraws a user's consent for an app: the grant is deleted and the withdrawal recorded
/// (every granted scope, decision `withdrawn`) in one transaction, then what the grant allowed
/// is revoked. Returns the scopes withdrawn (empty when there was no grant). Revocation runs
/// even without a grant, so retrying after a failed revocation finishes the job.
pub async fn withdraw(
    store: &dyn Store,
    settings: &Settings,
    sub: &str,
    client_id: &str,
    method: ConsentMethod,
    now: i64,
) -> Result<Vec<String>> {
    let grants = store.grants(sub).await?;
    let withdrawn: Vec<String> = match grants.iter().find(|g| g.client_id == client_id) {
        Some(g) => {
            let scopes = g.scopes.to_vec();
            let still_served = served_purposes(
                &settings.scopes,
                grants.iter().filter(|o| o.client_id != client_id),
            );
            let rec = Receipt {
                sub,
                client_id,
                allowed: &[],
                denied: &scopes,
                method,
                locale: DEFAULT_LOCALE,
                still_served: &still_served,
                now,
            }
            .record(&settings.scopes);
            let events = crate::outbox::consent_rows(&settings.outbox, &rec);
            store.record_consent(None, &rec, &events).await?;
            scopes
        }
        None => Vec::new(),
    };
    // After the grant is gone, so no new code can be issued under it meanwhile.
    store.revoke_grant_tokens(sub, client_id, now).await?;
    Ok(withdrawn)
}

/// The purposes the scopes of `grants` serve.
fn served_purposes<'a>(
    catalog: &ScopeCatalog,
    grants: impl Iterator<Item = &'a Grant>,
) -> Vec<String> {
    let mut out: Vec<String> = grants
        .flat_map(|g| g.scopes.iter().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|s| catalog.purpose_of(&s).map(|(name, _)| name.to_string()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// How the grants of a removed client are recorded: each a withdrawal (method
/// `client_deleted`) with its `consent.withdrawn` events, written in the removal's transaction.
pub fn client_removal(settings: &Settings, now: i64) -> Withdrawal {
    let catalog = settings.scopes.clone();
    let outbox = settings.outbox.clone();
    Withdrawal(std::sync::Arc::new(move |g: &Grant| {
        let scopes = g.scopes.to_vec();
        let rec = Receipt {
            sub: &g.sub,
            client_id: &g.client_id,
            allowed: &[],
            denied: &scopes,
            method: ConsentMethod::ClientDeleted,
            locale: DEFAULT_LOCALE,
            still_served: &[],
            now,
        }
        .record(&catalog);
        let events = crate::outbox::consent_rows(&outbox, &rec);
        (rec, events)
    }))
}

/// A consent record as exported to its user (and to admins): scope lists as arrays, the text
/// versions, wording and purposes as objects, times as Unix seconds and RFC 3339.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExportedRecord {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    /// `granted`, `denied` or `withdrawn`.
    pub decision: String,
    /// The scopes allowed.
    pub allowed: Vec<String>,
    /// The scopes refused, or withdrawn.
    pub denied: Vec<String>,
    /// Each scope's consent text as the user saw it: scope → version; `null` if unreadable.
    pub text_versions: Option<BTreeMap<String, String>>,
    /// The locale the wording was shown in.
    pub locale: String,
    /// The exact words shown: `{"scopes": {scope: text}, "purposes": {purpose: text}}`.
    #[schema(value_type = Object)]
    pub wording: serde_json::Value,
    /// Each purpose decided: `{"decision", "version", "legal_basis"}`.
    #[schema(value_type = Object)]
    pub purposes: serde_json::Value,
    /// How the decision was made: `page` (the consent page), `trusted_app` (allowed without
    /// asking), `consent_center` (withdrawn by the user), `admin` (withdrawn by an admin),
    /// `client_deleted` (the app was removed), `import` (made elsewhere; see `source`).
    pub method: String,
    /// Where an imported decision was made.
    pub source: Option<String>,
    /// The decision's id at the source (removed when the user is erased).
    pub source_reference: Option<String>,
    pub decided_at: i64,
    pub decided_at_utc: String,
}

/// The export of one consent record.
pub fn export_record(r: &ConsentRecord, app_name: &str) -> ExportedRecord {
    let object = |text: &str| serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    ExportedRecord {
        id: r.id.clone(),
        client_id: r.client_id.clone(),
        client_name: app_name.to_string(),
        decision: r.decision.to_string(),
        allowed: r.allowed.to_vec(),
        denied: r.denied.to_vec(),
        text_versions: serde_json::from_str(&r.text_versions).ok(),
        locale: r.locale.clone(),
        wording: object(&r.wording),
        purposes: object(&r.purposes),
        method: r.method.to_string(),
        source: r.source.clone(),
        source_reference: r.source_reference.clone(),
        decided_at: r.decided_at,
        decided_at_utc: crate::clock::rfc3339_utc(r.decided_at),
    }
}

/// The `purposes` claim of `sub` as it stands in the store (see [`purposes_claim`]).
pub async fn current_purposes(
    store: &dyn Store,
    catalog: &ScopeCatalog,
    sub: &str,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    Ok(purposes_claim(catalog, &store.purpose_states(sub).await?))
}

/// The `purposes` claim (released by the `consents` scope): every defined purpose, `true` when
/// the user's current decision allows it. A `consent` purpose is on only when granted under its
/// current version; a purpose on another legal basis is on unless the user denied or withdrew it.
pub fn purposes_claim(
    catalog: &ScopeCatalog,
    states: &[PurposeState],
) -> serde_json::Map<String, serde_json::Value> {
    catalog
        .purposes()
        .map(|(name, def)| {
            let state = states.iter().find(|s| s.purpose == name);
            let on = match def.legal_basis {
                LegalBasis::Consent => state.is_some_and(|s| {
                    s.decision == ConsentOutcome::Granted && s.version == def.version()
                }),
                _ => state.is_none_or(|s| s.decision == ConsentOutcome::Granted),
            };
            (name.to_string(), serde_json::Value::Bool(on))
        })
        .collect()
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
            .replace(&c.scope_version("email"), "oldversion00");
        assert_eq!(
            plan(&s(&["openid", "email"]), Some(&g), &c, false).needed,
            s(&["email"])
        );
    }

    fn with_purposes() -> ScopeCatalog {
        let scopes = toml::from_str(
            r#"
            [news]
            description = "News by email"
            purpose = "marketing"
            translations = { fr = "Actualités par e-mail" }
            [stats]
            description = "Usage statistics"
            purpose = "analytics"
            "#,
        )
        .unwrap();
        let purposes = toml::from_str(
            r#"
            [marketing]
            description = "Offers and news"
            legal_basis = "consent"
            version = "2026-01"
            translations = { fr = "Offres et actualités" }
            [analytics]
            description = "Improving the service"
            legal_basis = "legitimate_interest"
            "#,
        )
        .unwrap();
        ScopeCatalog::with_purposes(scopes, purposes).unwrap()
    }

    fn receipt<'a>(
        allowed: &'a [String],
        denied: &'a [String],
        method: ConsentMethod,
    ) -> Receipt<'a> {
        Receipt {
            sub: "u",
            client_id: "app",
            allowed,
            denied,
            method,
            locale: "fr",
            still_served: &[],
            now: 7,
        }
    }

    #[test]
    fn a_receipt_keeps_the_words_shown_in_their_locale_and_each_purposes_decision() {
        let c = with_purposes();
        let rec = receipt(&s(&["openid", "news"]), &s(&["stats"]), ConsentMethod::Page).record(&c);
        assert_eq!(rec.decision, ConsentOutcome::Granted);
        assert_eq!(rec.locale, "fr");
        let wording: serde_json::Value = serde_json::from_str(&rec.wording).unwrap();
        assert_eq!(wording["scopes"]["news"], "Actualités par e-mail");
        // No French text: the words shown were the default ones.
        assert_eq!(wording["scopes"]["stats"], "Usage statistics");
        assert_eq!(wording["purposes"]["marketing"], "Offres et actualités");
        let purposes: serde_json::Value = serde_json::from_str(&rec.purposes).unwrap();
        assert_eq!(
            purposes,
            serde_json::json!({
                "marketing": {"decision": "granted", "version": "2026-01", "legal_basis": "consent"},
                "analytics": {"decision": "denied", "version": c.purpose("analytics").unwrap().version(), "legal_basis": "legitimate_interest"},
            })
        );
    }

    #[test]
    fn a_withdrawal_is_its_own_decision_and_trusted_apps_and_removals_decide_no_purpose() {
        let c = with_purposes();
        let rec = receipt(&[], &s(&["news"]), ConsentMethod::ConsentCenter).record(&c);
        assert_eq!(rec.decision, ConsentOutcome::Withdrawn);
        assert!(rec.purposes.contains(r#""decision":"withdrawn""#));
        let denied = receipt(&[], &s(&["news"]), ConsentMethod::Page).record(&c);
        assert_eq!(denied.decision, ConsentOutcome::Denied);
        let trusted = receipt(&s(&["news", "stats"]), &[], ConsentMethod::TrustedApp).record(&c);
        assert_eq!(trusted.purposes, "{}");
        // The words are still kept: they were on record for the scopes.
        assert!(trusted.wording.contains("Offres"), "{}", trusted.wording);
        let removed = receipt(&[], &s(&["news"]), ConsentMethod::ClientDeleted).record(&c);
        assert_eq!(removed.purposes, "{}");
        // A purpose another grant still serves is not withdrawn with this one.
        let served = s(&["marketing"]);
        let partial = Receipt {
            still_served: &served,
            ..receipt(&[], &s(&["news", "stats"]), ConsentMethod::ConsentCenter)
        }
        .record(&c);
        let purposes: serde_json::Value = serde_json::from_str(&partial.purposes).unwrap();
        assert!(purposes.get("marketing").is_none());
        assert_eq!(purposes["analytics"]["decision"], "withdrawn");
    }

    #[test]
    fn the_purposes_claim_is_on_for_consent_only_when_granted_under_the_current_version() {
        let c = with_purposes();
        let state = |purpose: &str, decision, version: &str| PurposeState {
            sub: "u".into(),
            purpose: purpose.into(),
            decision,
            version: version.into(),
            record_id: "r".into(),
            decided_at: 1,
        };
        let claim = |states: &[PurposeState]| serde_json::Value::Object(purposes_claim(&c, states));
        assert_eq!(
            claim(&[]),
            serde_json::json!({"marketing": false, "analytics": true})
        );
        assert_eq!(
            claim(&[state("marketing", ConsentOutcome::Granted, "2026-01")]),
            serde_json::json!({"marketing": true, "analytics": true})
        );
        assert_eq!(
            claim(&[
                state("marketing", ConsentOutcome::Granted, "2025-06"),
                state("analytics", ConsentOutcome::Withdrawn, "x"),
            ]),
            serde_json::json!({"marketing": false, "analytics": false})
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
