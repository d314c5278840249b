//! The consent page's own words, in English and German. The scopes' and purposes' words come
//! from the configuration (with Herald's German for the built-in scopes); these are the rest:
//! headings, buttons, the lines around the list.

use crate::claims::LegalBasis;

/// One language's words for the consent page.
pub struct ConsentTexts {
    /// `{app}` is replaced by the app's name.
    pub title: &'static str,
    pub heading: &'static str,
    pub signed_in_as: &'static str,
    pub not_you: &'static str,
    pub return_to: &'static str,
    pub about: &'static str,
    pub already_allowed: &'static str,
    pub used_for: &'static str,
    pub legal_basis: &'static str,
    pub app_documents: &'static str,
    pub privacy_policy: &'static str,
    pub terms: &'static str,
    pub allow: &'static str,
    pub deny: &'static str,
    /// The legal bases (GDPR Art. 6(1)), in [`LegalBasis`]'s order.
    pub bases: [&'static str; 6],
}

const EN: ConsentTexts = ConsentTexts {
    title: "Allow {app}?",
    heading: "{app} wants to access your account",
    signed_in_as: "Signed in as",
    not_you: "Not you? Use another account",
    return_to: "After you decide, you will return to",
    about: "about",
    already_allowed: "already allowed",
    used_for: "Used for:",
    legal_basis: "legal basis:",
    app_documents: "Before you allow it, read what {app} says about your data:",
    privacy_policy: "privacy policy",
    terms: "terms of service",
    allow: "Allow",
    deny: "Deny",
    bases: [
        "consent",
        "contract",
        "legal obligation",
        "vital interests",
        "public task",
        "legitimate interest",
    ],
};

const DE: ConsentTexts = ConsentTexts {
    title: "{app} erlauben?",
    heading: "{app} möchte auf Ihr Konto zugreifen",
    signed_in_as: "Angemeldet als",
    not_you: "Nicht Sie? Anderes Konto verwenden",
    return_to: "Nach Ihrer Entscheidung kehren Sie zurück zu",
    about: "über",
    already_allowed: "bereits erlaubt",
    used_for: "Verwendet für:",
    legal_basis: "Rechtsgrundlage:",
    app_documents: "Bevor Sie zustimmen, lesen Sie, was {app} über Ihre Daten sagt:",
    privacy_policy: "Datenschutzerklärung",
    terms: "Nutzungsbedingungen",
    allow: "Erlauben",
    deny: "Ablehnen",
    bases: [
        "Einwilligung",
        "Vertrag",
        "rechtliche Verpflichtung",
        "lebenswichtige Interessen",
        "öffentliche Aufgabe",
        "berechtigtes Interesse",
    ],
};

/// The words for `locale` (its language: `de-CH` is German); English for any other.
pub fn consent_texts(locale: &str) -> &'static ConsentTexts {
    let language = locale.split(['-', '_']).next().unwrap_or(locale);
    if language.eq_ignore_ascii_case("de") {
        &DE
    } else {
        &EN
    }
}

impl ConsentTexts {
    /// The name of legal basis `b` in these words.
    pub fn basis(&self, b: LegalBasis) -> &'static str {
        let i = match b {
            LegalBasis::Consent => 0,
            LegalBasis::Contract => 1,
            LegalBasis::LegalObligation => 2,
            LegalBasis::VitalInterests => 3,
            LegalBasis::PublicTask => 4,
            LegalBasis::LegitimateInterest => 5,
        };
        self.bases[i]
    }

    /// `text` with the app's name in place of `{app}`.
    pub fn with_app(&self, text: &str, app: &str) -> String {
        text.replace("{app}", app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn german_for_german_speakers_and_english_for_everyone_else() {
        assert_eq!(consent_texts("de").allow, "Erlauben");
        assert_eq!(consent_texts("de-CH").allow, "Erlauben");
        assert_eq!(consent_texts("en").allow, "Allow");
        assert_eq!(consent_texts("fr").allow, "Allow");
        assert_eq!(
            consent_texts("de").basis(LegalBasis::Consent),
            "Einwilligung"
        );
        assert_eq!(
            consent_texts("en").basis(LegalBasis::LegalObligation),
            "legal obligation"
        );
        let t = consent_texts("de");
        assert_eq!(
            t.with_app(t.heading, "Reports"),
            "Reports möchte auf Ihr Konto zugreifen"
        );
    }
}
