//! Purposes and the wording users are shown: what each scope's data is used for, on which legal
//! basis, and the exact text of a scope or purpose in the locale the page is shown in.
//!
//! A purpose (`[purposes.marketing]`) is what a consent-management platform such as OneTrust
//! records decisions about; a scope may name the purpose it serves (`purpose = "marketing"`), so
//! allowing the scope is consenting to the purpose. Texts have a default (`description`, in
//! [`DEFAULT_LOCALE`]) and `translations` keyed by language tag; the consent page is shown in
//! the first locale the request asks for (`ui_locales`, then `Accept-Language`) that Herald has
//! a text in, and the consent record keeps that locale and the very words shown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ConfigError;

/// The locale of every `description`.
pub const DEFAULT_LOCALE: &str = "en";

/// GDPR Art. 6(1): the lawful bases for processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    Consent,
    Contract,
    LegalObligation,
    VitalInterests,
    PublicTask,
    LegitimateInterest,
}

impl LegalBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasis::Consent => "consent",
            LegalBasis::Contract => "contract",
            LegalBasis::LegalObligation => "legal_obligation",
            LegalBasis::VitalInterests => "vital_interests",
            LegalBasis::PublicTask => "public_task",
            LegalBasis::LegitimateInterest => "legitimate_interest",
        }
    }
}

/// `[purposes.NAME]`: what data is used for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurposeDef {
    /// Shown on the consent page under the scopes that serve it.
    pub description: String,
    /// Why processing is lawful. Only `consent` purposes are off until the user agrees; the
    /// others are on unless the user objected (denied or withdrew).
    pub legal_basis: LegalBasis,
    /// The version of the purpose's terms; a new version asks users again. Default: a digest
    /// of the texts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The description in other locales, by language tag (`fr`, `de-CH`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub translations: BTreeMap<String, String>,
}

impl PurposeDef {
    /// The version records and grants carry: the configured one, or a digest of the texts.
    pub fn version(&self) -> String {
        match &self.version {
            Some(v) => v.clone(),
            None => texts_digest(&self.description, &self.translations),
        }
    }
}

/// A short digest of a text and its translations; with no translations it is the digest of the
/// text alone, as scope versions were before translations existed.
pub fn texts_digest(description: &str, translations: &BTreeMap<String, String>) -> String {
    let mut input = description.to_string();
    for (locale, text) in translations {
        input.push('\n');
        input.push_str(locale);
        input.push('=');
        input.push_str(text);
    }
    crate::tokens::hashing::digest_hex(&input)[..12].to_string()
}

/// The text of `description`/`translations` in `locale`: the exact translation, else the one
/// for its language (`fr` for `fr-CA`), else the description.
pub fn text_in<'a>(
    description: &'a str,
    translations: &'a BTreeMap<String, String>,
    locale: &str,
) -> &'a str {
    if let Some(t) = find_translation(translations, locale) {
        return t;
    }
    description
}

pub(super) fn find_translation<'a>(
    translations: &'a BTreeMap<String, String>,
    locale: &str,
) -> Option<&'a str> {
    let exact = translations
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(locale));
    if let Some((_, t)) = exact {
        return Some(t);
    }
    let language = locale.split(['-', '_']).next().unwrap_or(locale);
    translations
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(language))
        .map(|(_, t)| t.as_str())
}

/// The locale to show a page in: the first of `wanted` (most preferred first) that `available`
/// has texts in, matched like [`text_in`]; else [`DEFAULT_LOCALE`]. The answer is the tag as
/// Herald has it (`fr` when `fr-CA` was asked and only `fr` exists).
pub fn negotiate<'a>(
    wanted: &[String],
    available: impl Iterator<Item = &'a str> + Clone,
) -> String {
    for w in wanted {
        let w = w.trim();
        if w.is_empty() {
            continue;
        }
        let language = w.split(['-', '_']).next().unwrap_or(w);
        if let Some(found) = available.clone().find(|a| a.eq_ignore_ascii_case(w)) {
            return found.to_string();
        }
        if language.eq_ignore_ascii_case(DEFAULT_LOCALE) {
            return DEFAULT_LOCALE.to_string();
        }
        if let Some(found) = available.clone().find(|a| a.eq_ignore_ascii_case(language)) {
            return found.to_string();
        }
    }
    DEFAULT_LOCALE.to_string()
}

/// The languages of an `Accept-Language` header, most preferred first (q=0 left out).
pub fn accept_language(header: &str) -> Vec<String> {
    let mut tags: Vec<(f32, usize, String)> = header
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim();
            if tag.is_empty() || tag == "*" {
                return None;
            }
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q=").map(str::to_string))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
            (q > 0.0).then(|| (q, i, tag.to_string()))
        })
        .collect();
    tags.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    tags.into_iter().map(|(_, _, t)| t).collect()
}

/// Checks purposes: non-empty texts, plausible language tags.
pub fn check_purposes(purposes: &BTreeMap<String, PurposeDef>) -> Result<(), ConfigError> {
    for (name, def) in purposes {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(ConfigError::InvalidPurpose {
                key: format!("purposes.{name}"),
                problem: "use letters, digits, `_`, `-` or `.` in a purpose's name".into(),
            });
        }
        if def.description.trim().is_empty() {
            return Err(ConfigError::InvalidPurpose {
                key: format!("purposes.{name}.description"),
                problem: "say what the data is used for; users read it on the consent page".into(),
            });
        }
        check_translations(&format!("purposes.{name}"), &def.translations)?;
        if def.version.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(ConfigError::InvalidPurpose {
                key: format!("purposes.{name}.version"),
                problem: "empty; leave it out to version by the texts".into(),
            });
        }
    }
    Ok(())
}

/// Checks the `translations` of `key`: language tags (RFC 5646 shape) and non-empty texts.
pub fn check_translations(
    key: &str,
    translations: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    for (locale, text) in translations {
        let tag_ok = !locale.is_empty()
            && locale.split('-').all(|p| {
                (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if !tag_ok {
            return Err(ConfigError::InvalidPurpose {
                key: format!("{key}.translations"),
                problem: format!("`{locale}` is not a language tag such as `fr` or `de-CH`"),
            });
        }
        if text.trim().is_empty() {
            return Err(ConfigError::InvalidPurpose {
                key: format!("{key}.translations.{locale}"),
                problem: "empty; give the text or leave the translation out".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn v(tags: &[&str]) -> Vec<String> {
        tags.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn a_region_falls_back_to_its_language_then_to_the_default() {
        let t = tr(&[("fr", "Votre adresse"), ("de-CH", "Ihre Adresse (CH)")]);
        assert_eq!(text_in("Your address", &t, "fr-CA"), "Votre adresse");
        assert_eq!(text_in("Your address", &t, "DE-ch"), "Ihre Adresse (CH)");
        assert_eq!(text_in("Your address", &t, "de"), "Your address");
        assert_eq!(text_in("Your address", &t, "en"), "Your address");
    }

    #[test]
    fn negotiation_takes_the_first_locale_herald_has() {
        let available = ["de", "fr"];
        let it = available.iter().copied();
        assert_eq!(negotiate(&v(&["es", "fr-CA", "de"]), it.clone()), "fr");
        assert_eq!(negotiate(&v(&["en-GB", "fr"]), it.clone()), "en");
        assert_eq!(negotiate(&v(&["es"]), it.clone()), "en");
        assert_eq!(negotiate(&[], it.clone()), "en");
        // A regional English text is chosen over the default when asked for.
        let gb = ["en-GB"];
        assert_eq!(negotiate(&v(&["en-GB"]), gb.iter().copied()), "en-GB");
        assert_eq!(negotiate(&v(&["en-US"]), gb.iter().copied()), "en");
    }

    #[test]
    fn accept_language_is_ordered_by_quality_then_position() {
        assert_eq!(
            accept_language("de;q=0.5, fr-CA, fr;q=0.9, en;q=0, *;q=0.1"),
            v(&["fr-CA", "fr", "de"])
        );
        assert_eq!(accept_language("fr;q=abc, de"), v(&["de"]));
        assert!(accept_language("").is_empty());
    }

    #[test]
    fn versions_follow_the_texts_unless_set() {
        let mut p = PurposeDef {
            description: "Newsletters".into(),
            legal_basis: LegalBasis::Consent,
            version: None,
            translations: BTreeMap::new(),
        };
        let plain = p.version();
        assert_eq!(plain, texts_digest("Newsletters", &BTreeMap::new()));
        p.translations = tr(&[("fr", "Lettres")]);
        assert_ne!(p.version(), plain);
        p.version = Some("2026-01".into());
        assert_eq!(p.version(), "2026-01");
    }

    #[test]
    fn bad_names_tags_and_empty_texts_are_refused_with_their_key() {
        let mut purposes = BTreeMap::new();
        purposes.insert(
            "marketing".to_string(),
            PurposeDef {
                description: "Offers".into(),
                legal_basis: LegalBasis::Consent,
                version: None,
                translations: tr(&[("fr fr", "x")]),
            },
        );
        let err = check_purposes(&purposes).unwrap_err().to_string();
        assert!(
            err.starts_with("purposes.marketing.translations: `fr fr`"),
            "{err}"
        );
        purposes.get_mut("marketing").unwrap().translations = tr(&[("fr", " ")]);
        let err = check_purposes(&purposes).unwrap_err().to_string();
        assert!(
            err.starts_with("purposes.marketing.translations.fr: empty"),
            "{err}"
        );
        purposes.get_mut("marketing").unwrap().translations = BTreeMap::new();
        purposes.get_mut("marketing").unwrap().description = String::new();
        assert!(check_purposes(&purposes).is_err());
    }
}
