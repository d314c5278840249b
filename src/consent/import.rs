//! Decisions made elsewhere (a consent-management platform such as OneTrust) recorded in Herald:
//! each becomes a consent record with method `import` and its source, and moves the user's
//! purpose state like a decision made here (unless Herald holds a later one), so the `purposes`
//! claim and the exports show it. Imports decide purposes, not an app's scopes: a grant to an
//! app is still made on Herald's consent page.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::claims::purposes::{DEFAULT_LOCALE, text_in};
use crate::config::Settings;
use crate::store::{ConsentMethod, ConsentOutcome, ConsentRecord, PurposeDecision, ScopeList};

use super::record_id;

/// How many decisions one import may carry.
pub const MAX_DECISIONS: usize = 1000;

/// `POST /admin/api/users/{sub}/consents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentImport {
    /// Where the decisions were made, e.g. `onetrust`.
    #[schema(min_length = 1, max_length = 200)]
    pub source: String,
    /// At most 1000, applied in the order given.
    #[schema(min_items = 1, max_items = 1000)]
    pub decisions: Vec<ImportedDecision>,
}

/// One decision on one purpose.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportedDecision {
    /// A purpose defined under `[purposes]`.
    pub purpose: String,
    /// `granted`, `denied` or `withdrawn`.
    #[schema(pattern = "^(granted|denied|withdrawn)$")]
    pub decision: String,
    /// When it was made, Unix seconds; default now. Not in the future.
    #[schema(minimum = 0)]
    pub decided_at: Option<i64>,
    /// The purpose's version it was made under; default the current one.
    pub version: Option<String>,
    /// The words the user was shown there; default the purpose's text in `locale`.
    pub wording: Option<String>,
    /// Default `en`.
    #[schema(min_length = 1, max_length = 35)]
    pub locale: Option<String>,
    /// The app it concerns, if any.
    pub client_id: Option<String>,
    /// The decision's id at the source (a receipt id), kept with the source.
    #[schema(max_length = 200)]
    pub reference: Option<String>,
}

/// The records of an import, or why it is refused (nothing is recorded then).
pub fn records(
    settings: &Settings,
    sub: &str,
    import: &ConsentImport,
    now: i64,
) -> Result<Vec<ConsentRecord>, String> {
    let source = import.source.trim();
    if source.is_empty() || source.len() > 200 {
        return Err("source: say where the decisions were made, in 1 to 200 characters".into());
    }
    if import.decisions.is_empty() || import.decisions.len() > MAX_DECISIONS {
        return Err(format!(
            "decisions: give 1 to {MAX_DECISIONS} decisions per import"
        ));
    }
    let mut out = Vec::with_capacity(import.decisions.len());
    for (i, d) in import.decisions.iter().enumerate() {
        let key = format!("decisions[{i}]");
        let Some(def) = settings.scopes.purpose(&d.purpose) else {
            return Err(format!(
                "{key}.purpose: `{}` is not a defined purpose",
                d.purpose
            ));
        };
        let decision: ConsentOutcome = d
            .decision
            .parse()
            .map_err(|_| format!("{key}.decision: use \"granted\", \"denied\" or \"withdrawn\""))?;
        let decided_at = d.decided_at.unwrap_or(now);
        if decided_at > now + 300 || decided_at < 0 {
            return Err(format!(
                "{key}.decided_at: {decided_at} is in the future or before 1970"
            ));
        }
        let locale = d.locale.as_deref().unwrap_or(DEFAULT_LOCALE);
        if locale.is_empty() || locale.len() > 35 {
            return Err(format!("{key}.locale: give a language tag such as `fr`"));
        }
        let wording = d
            .wording
            .clone()
            .unwrap_or_else(|| text_in(&def.description, &def.translations, locale).to_string());
        let reference = d
            .reference
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        let purposes = BTreeMap::from([(
            d.purpose.as_str(),
            PurposeDecision {
                decision: decision.as_str().to_string(),
                version: d.version.clone().unwrap_or_else(|| def.version()),
                legal_basis: def.legal_basis.as_str().to_string(),
            },
        )]);
        out.push(ConsentRecord {
            id: record_id(),
            sub: sub.to_string(),
            client_id: d.client_id.clone().unwrap_or_default(),
            allowed: ScopeList::default(),
            denied: ScopeList::default(),
            text_versions: "{}".into(),
            method: ConsentMethod::Import,
            decided_at,
            decision,
            locale: locale.to_string(),
            wording: json!({"scopes": {}, "purposes": {d.purpose.as_str(): wording}}).to_string(),
            purposes: json!(purposes).to_string(),
            source: Some(source.to_string()),
            source_reference: reference.map(str::to_string),
        });
    }
    Ok(out)
}
