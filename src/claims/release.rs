//! The scope catalog and claim release: which context values a granted scope puts into which token.
//!
//! Implements the standard scopes of OIDC Core §5.4 (`profile`, `email`, `address`, `phone`, plus `openid`
//! and `offline_access` from §3.1.2.1 and §11, which release nothing) and admin-defined custom scopes.
//! By default a claim goes to the ID token and userinfo, as §5.4 describes; a scope can also release a
//! claim into Herald's access tokens.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use super::purposes::{
    PurposeDef, check_purposes, check_translations, find_translation, negotiate, texts_digest,
};
use super::validate::is_reserved;
use super::{AuthContext, ClaimPath, ConfigError};

/// A token Herald mints (or the userinfo response it serves).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// The ID token.
    IdToken,
    /// The userinfo response.
    Userinfo,
    /// The access token (a JWT per RFC 9068).
    AccessToken,
}

impl TokenKind {
    /// The config spelling, e.g. `id_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::IdToken => "id_token",
            TokenKind::Userinfo => "userinfo",
            TokenKind::AccessToken => "access_token",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a bare path in a scope's `claims` is released: the ID token and userinfo (OIDC Core §5.4).
pub const DEFAULT_RELEASE: [TokenKind; 2] = [TokenKind::IdToken, TokenKind::Userinfo];

/// One claim a scope releases: a path string, or a table naming the tokens it goes to.
///
/// The config form is untagged: `"org.tenant"` or `{ claim = "org.tenant", to = ["access_token"] }`.
/// Deserialization is written by hand so a typo in the table reports the key instead of serde's
/// "did not match any variant".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseEntry {
    /// Released to the ID token and userinfo.
    Path(ClaimPath),
    /// Released to the listed tokens.
    Detailed {
        /// The context path to release; the token claim has the same path.
        claim: ClaimPath,
        /// The tokens it goes to.
        to: Vec<TokenKind>,
    },
}

impl ReleaseEntry {
    /// The released context path.
    pub fn claim(&self) -> &ClaimPath {
        match self {
            ReleaseEntry::Path(claim) | ReleaseEntry::Detailed { claim, .. } => claim,
        }
    }

    /// The tokens the claim goes to.
    pub fn tokens(&self) -> &[TokenKind] {
        match self {
            ReleaseEntry::Path(_) => &DEFAULT_RELEASE,
            ReleaseEntry::Detailed { to, .. } => to,
        }
    }

    /// Whether the claim goes to `kind`.
    pub fn releases_to(&self, kind: TokenKind) -> bool {
        self.tokens().contains(&kind)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetailedEntry {
    claim: ClaimPath,
    #[serde(default = "default_release")]
    to: Vec<TokenKind>,
}

fn default_release() -> Vec<TokenKind> {
    DEFAULT_RELEASE.to_vec()
}

impl<'de> Deserialize<'de> for ReleaseEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;

        impl<'de> serde::de::Visitor<'de> for EntryVisitor {
            type Value = ReleaseEntry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a claim path, or a table such as { claim = "org.tenant", to = ["id_token"] }"#)
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ReleaseEntry, E> {
                ClaimPath::parse(v)
                    .map(ReleaseEntry::Path)
                    .map_err(E::custom)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ReleaseEntry, A::Error> {
                let entry =
                    DetailedEntry::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ReleaseEntry::Detailed {
                    claim: entry.claim,
                    to: entry.to,
                })
            }
        }

        deserializer.deserialize_any(EntryVisitor)
    }
}

impl Serialize for ReleaseEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ReleaseEntry::Path(claim) => claim.serialize(serializer),
            ReleaseEntry::Detailed { claim, to } => DetailedEntry {
                claim: claim.clone(),
                to: to.clone(),
            }
            .serialize(serializer),
        }
    }
}

/// In the OpenAPI document, as in the file: a claim path, or `{claim, to}`.
impl PartialSchema for ReleaseEntry {
    fn schema() -> RefOr<Schema> {
        let path = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A context path, released to the ID token and userinfo",
            ));
        let detailed = ObjectBuilder::new()
            .description(Some("A context path released to the listed tokens"))
            .property("claim", ObjectBuilder::new().schema_type(Type::String))
            .required("claim")
            .property(
                "to",
                ArrayBuilder::new().items(Ref::from_schema_name(TokenKind::name())),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        OneOfBuilder::new().item(path).item(detailed).into()
    }
}

impl ToSchema for ReleaseEntry {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((TokenKind::name().into(), TokenKind::schema()));
    }
}

/// One scope: what the consent page says about it and which claims it releases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeDef {
    /// Shown on the consent page, e.g. "Your name and basic profile".
    pub description: String,
    /// The claims released when the scope is granted.
    #[serde(default)]
    pub claims: Vec<ReleaseEntry>,
    /// The user may decline this scope on the consent page and still sign in.
    #[serde(default)]
    pub optional: bool,
    /// The purpose (`[purposes.NAME]`) this scope's data serves: allowing the scope consents to
    /// it, and its terms are shown under the scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The description in other locales, by language tag (`fr`, `de-CH`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub translations: BTreeMap<String, String>,
}

fn builtin(description: &str, claims: &[&str]) -> ScopeDef {
    ScopeDef {
        description: description.to_owned(),
        claims: claims
            .iter()
            .map(|c| {
                ReleaseEntry::Path(
                    ClaimPath::parse(c).expect("built-in claim names are valid paths"),
                )
            })
            .collect(),
        optional: false,
        purpose: None,
        translations: BTreeMap::new(),
    }
}

/// The scopes of OIDC Core §5.4 and the two protocol scopes, with consent-page descriptions.
pub fn builtin_scopes() -> BTreeMap<String, ScopeDef> {
    let scopes = [
        ("openid", builtin(builtin_english("openid"), &[])),
        (
            "offline_access",
            builtin(builtin_english("offline_access"), &[]),
        ),
        (
            "profile",
            builtin(
                builtin_english("profile"),
                &[
                    "name",
                    "family_name",
                    "given_name",
                    "middle_name",
                    "nickname",
                    "preferred_username",
                    "profile",
                    "picture",
                    "website",
                    "gender",
                    "birthdate",
                    "zoneinfo",
                    "locale",
                    "updated_at",
                ],
            ),
        ),
        (
            "email",
            builtin(builtin_english("email"), &["email", "email_verified"]),
        ),
        ("address", builtin(builtin_english("address"), &["address"])),
        ("consents", builtin(builtin_english("consents"), &[])),
        (
            "phone",
            builtin(
                builtin_english("phone"),
                &["phone_number", "phone_number_verified"],
            ),
        ),
    ];
    scopes
        .into_iter()
        .map(|(name, def)| (name.to_owned(), def))
        .collect()
}

/// Herald's own German for its built-in scopes' descriptions. Kept apart from the scopes'
/// `translations` (the admin's texts, which make a scope's consent version): Herald translating
/// its own words does not ask anyone again. Used only while a built-in scope keeps Herald's
/// English description (an admin's rewording brings its own translations).
pub const BUILTIN_LOCALE: &str = "de";

/// The built-in scopes' words: name, English (the description), German.
const BUILTIN_TEXTS: [(&str, &str, &str); 7] = [
    (
        "openid",
        "Sign you in with your account",
        "Sie mit Ihrem Konto anmelden",
    ),
    (
        "offline_access",
        "Keep access to your data while you are not using the app",
        "Zugriff auf Ihre Daten behalten, während Sie die App nicht verwenden",
    ),
    (
        "profile",
        "Your name and basic profile",
        "Ihr Name und Ihr Basisprofil",
    ),
    ("email", "Your email address", "Ihre E-Mail-Adresse"),
    ("address", "Your postal address", "Ihre Postanschrift"),
    (
        "consents",
        "Which uses of your data you agreed to (your consent choices)",
        "Welchen Verwendungen Ihrer Daten Sie zugestimmt haben (Ihre Einwilligungen)",
    ),
    ("phone", "Your phone number", "Ihre Telefonnummer"),
];

fn builtin_english(name: &str) -> &'static str {
    BUILTIN_TEXTS
        .iter()
        .find(|(n, ..)| *n == name)
        .map_or("", |(_, en, _)| en)
}

/// Herald's German for built-in scope `name`, while `def` still has Herald's own description.
fn builtin_text_in(name: &str, def: &ScopeDef, locale: &str) -> Option<&'static str> {
    let language = locale.split(['-', '_']).next().unwrap_or(locale);
    if !language.eq_ignore_ascii_case(BUILTIN_LOCALE) {
        return None;
    }
    BUILTIN_TEXTS
        .iter()
        .find(|(n, en, _)| *n == name && *en == def.description)
        .map(|(.., de)| *de)
}

/// All scopes Herald knows: the built-in ones, overridden or extended by the admin's.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeCatalog {
    scopes: BTreeMap<String, ScopeDef>,
    purposes: BTreeMap<String, PurposeDef>,
}

/// The scope whose grant releases the `purposes` claim: the user's decision per purpose.
pub const CONSENTS_SCOPE: &str = "consents";

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_valid_scope_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

impl ScopeCatalog {
    /// The built-in scopes plus `custom`, whose entries replace built-ins of the same name.
    pub fn new(custom: BTreeMap<String, ScopeDef>) -> Result<ScopeCatalog, ConfigError> {
        ScopeCatalog::with_purposes(custom, BTreeMap::new())
    }

    /// [`ScopeCatalog::new`] with `[purposes]`, which custom scopes may name.
    pub fn with_purposes(
        custom: BTreeMap<String, ScopeDef>,
        purposes: BTreeMap<String, PurposeDef>,
    ) -> Result<ScopeCatalog, ConfigError> {
        check_purposes(&purposes)?;
        let mut scopes = builtin_scopes();
        for (name, def) in custom {
            if !is_valid_scope_name(&name) {
                return Err(ConfigError::InvalidScopeName { scope: name });
            }
            if name == CONSENTS_SCOPE {
                return Err(ConfigError::InvalidPurpose {
                    key: format!("scopes.{name}"),
                    problem: "built in: it releases the user's decision per purpose and cannot \
                              be redefined; name your scope differently"
                        .into(),
                });
            }
            if let Some(p) = &def.purpose
                && !purposes.contains_key(p)
            {
                return Err(ConfigError::UnknownPurpose {
                    scope: name,
                    purpose: p.clone(),
                });
            }
            check_translations(&format!("scopes.{name}"), &def.translations)?;
            for (index, entry) in def.claims.iter().enumerate() {
                if is_reserved(entry.claim()) {
                    return Err(ConfigError::ReservedRelease {
                        scope: name,
                        index,
                        claim: entry.claim().canonical(),
                        reserved: entry.claim().first().to_owned(),
                    });
                }
                if entry.tokens().is_empty() {
                    return Err(ConfigError::EmptyReleaseTarget {
                        scope: name,
                        index,
                        claim: entry.claim().canonical(),
                    });
                }
            }
            scopes.insert(name, def);
        }
        Ok(ScopeCatalog { scopes, purposes })
    }

    /// The purpose named `name`, if defined.
    pub fn purpose(&self, name: &str) -> Option<&PurposeDef> {
        self.purposes.get(name)
    }

    /// Every purpose, by name.
    pub fn purposes(&self) -> impl Iterator<Item = (&str, &PurposeDef)> {
        self.purposes.iter().map(|(n, d)| (n.as_str(), d))
    }

    /// The purpose `scope` serves, with its name.
    pub fn purpose_of(&self, scope: &str) -> Option<(&str, &PurposeDef)> {
        let name = self.scopes.get(scope)?.purpose.as_deref()?;
        self.purposes
            .get_key_value(name)
            .map(|(n, d)| (n.as_str(), d))
    }

    /// The consent-text version of a scope: a digest of its texts, and of its purpose's name
    /// and version, so rewording either asks users again. An unknown scope has the version of
    /// an empty text.
    pub fn scope_version(&self, scope: &str) -> String {
        let Some(def) = self.scopes.get(scope) else {
            return texts_digest("", &BTreeMap::new());
        };
        match self.purpose_of(scope) {
            None => texts_digest(&def.description, &def.translations),
            Some((name, p)) => {
                let mut texts = def.translations.clone();
                texts.insert(format!("purpose {name}"), p.version());
                texts_digest(&def.description, &texts)
            }
        }
    }

    /// The words shown for `scope` in `locale` (the scope's name when it is unknown).
    pub fn scope_text<'a>(&'a self, scope: &'a str, locale: &str) -> &'a str {
        // The admin's translation first, then Herald's own for a built-in scope it still words,
        // then the description.
        match self.scopes.get(scope) {
            Some(d) => find_translation(&d.translations, locale)
                .or_else(|| builtin_text_in(scope, d, locale))
                .unwrap_or(&d.description),
            None => scope,
        }
    }

    /// Every locale the consent texts exist in (discovery's `ui_locales_supported`), sorted:
    /// English, German (the consent page's own words and the built-in scopes), and those of the
    /// admin's translations.
    pub fn locales(&self) -> Vec<String> {
        let mut out: Vec<String> = vec![
            super::purposes::DEFAULT_LOCALE.to_owned(),
            BUILTIN_LOCALE.to_owned(),
        ];
        for d in self.scopes.values() {
            out.extend(d.translations.keys().cloned());
        }
        for p in self.purposes.values() {
            out.extend(p.translations.keys().cloned());
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The locale to show `scopes` in: see [`negotiate`].
    pub fn locale_for(&self, scopes: &[String], wanted: &[String]) -> String {
        let mut available: Vec<&str> = Vec::new();
        for s in scopes {
            if let Some(d) = self.scopes.get(s) {
                available.extend(d.translations.keys().map(String::as_str));
                if builtin_text_in(s, d, BUILTIN_LOCALE).is_some() {
                    available.push(BUILTIN_LOCALE);
                }
            }
            if let Some((_, p)) = self.purpose_of(s) {
                available.extend(p.translations.keys().map(String::as_str));
            }
        }
        negotiate(wanted, available.into_iter())
    }

    /// The scope named `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&ScopeDef> {
        self.scopes.get(name)
    }

    /// Every scope name, sorted (for discovery's `scopes_supported`).
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.scopes.keys()
    }

    /// Every scope with its definition, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ScopeDef)> {
        self.scopes.iter().map(|(n, d)| (n.as_str(), d))
    }

    /// Sorted top-level claim names some scope can release (for discovery's `claims_supported`, to which
    /// the caller adds the claims Herald always sets, such as `sub`).
    pub fn claims_supported(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .scopes
            .values()
            .flat_map(|def| def.claims.iter().map(|e| e.claim().first().to_owned()))
            .collect();
        // The `consents` scope releases the user's decision per purpose, once there are any.
        if !self.purposes.is_empty() && self.scopes.contains_key(CONSENTS_SCOPE) {
            names.push("purposes".to_owned());
        }
        names.sort_unstable();
        names.dedup();
        names
    }
}

impl Default for ScopeCatalog {
    fn default() -> Self {
        ScopeCatalog {
            scopes: builtin_scopes(),
            purposes: BTreeMap::new(),
        }
    }
}

/// The claims that `granted` scopes release from `ctx` into a token of `kind`.
///
/// Scopes apply in name order, not in the order granted, so the result is the same whatever order the
/// client listed them in; when two scopes release the same path the value is the same anyway. Values the
/// context does not have are skipped; unknown scope names release nothing.
pub fn release(
    ctx: &AuthContext,
    catalog: &ScopeCatalog,
    granted: &[String],
    kind: TokenKind,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, def) in &catalog.scopes {
        if !granted.iter().any(|g| g == name) {
            continue;
        }
        for entry in &def.claims {
            if !entry.releases_to(kind) {
                continue;
            }
            if let Some(value) = entry.claim().get(&ctx.attributes) {
                entry.claim().set(&mut out, value.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(attributes: Value) -> AuthContext {
        AuthContext {
            upstream: "auth0".into(),
            subject: "auth0|1".into(),
            attributes: attributes.as_object().unwrap().clone(),
            origins: BTreeMap::new(),
            amr: None,
            acr: None,
        }
    }

    fn granted(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|s| s.to_string()).collect()
    }

    fn custom(toml_text: &str) -> BTreeMap<String, ScopeDef> {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn only_granted_scopes_release_their_claims() {
        let c =
            ctx(json!({"email": "a@b.c", "email_verified": true, "name": "Ann", "locale": "en"}));
        let catalog = ScopeCatalog::default();
        let out = release(
            &c,
            &catalog,
            &granted(&["openid", "email"]),
            TokenKind::IdToken,
        );
        assert_eq!(
            Value::Object(out),
            json!({"email": "a@b.c", "email_verified": true})
        );
        let out = release(&c, &catalog, &granted(&["profile"]), TokenKind::Userinfo);
        assert_eq!(Value::Object(out), json!({"name": "Ann", "locale": "en"}));
    }

    #[test]
    fn bare_paths_go_to_id_token_and_userinfo_but_not_access_token() {
        let c = ctx(json!({"email": "a@b.c"}));
        let catalog = ScopeCatalog::default();
        let out = release(&c, &catalog, &granted(&["email"]), TokenKind::AccessToken);
        assert!(out.is_empty());
    }

    #[test]
    fn nested_paths_release_nested_values_to_the_listed_tokens() {
        let catalog = ScopeCatalog::new(custom(
            r#"
            [org]
            description = "Your organisation"
            claims = [{ claim = "org.tenant", to = ["access_token"] }, "roles"]
        "#,
        ))
        .unwrap();
        let c = ctx(json!({"org": {"tenant": "acme", "plan": "pro"}, "roles": ["admin"]}));
        let at = release(&c, &catalog, &granted(&["org"]), TokenKind::AccessToken);
        assert_eq!(Value::Object(at), json!({"org": {"tenant": "acme"}}));
        let id = release(&c, &catalog, &granted(&["org"]), TokenKind::IdToken);
        assert_eq!(Value::Object(id), json!({"roles": ["admin"]}));
    }

    #[test]
    fn release_ignores_the_order_scopes_were_granted_in() {
        let c = ctx(json!({"email": "a@b.c", "name": "Ann"}));
        let catalog = ScopeCatalog::default();
        let a = release(
            &c,
            &catalog,
            &granted(&["profile", "email"]),
            TokenKind::IdToken,
        );
        let b = release(
            &c,
            &catalog,
            &granted(&["email", "profile"]),
            TokenKind::IdToken,
        );
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
    }

    #[test]
    fn custom_scope_releasing_a_reserved_claim_is_refused() {
        let err = ScopeCatalog::new(custom(
            r#"
            [bad]
            description = "x"
            claims = ["roles", "sub"]
        "#,
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "scopes.bad.claims[1] (`sub`): releases the reserved claim `sub`, which Herald sets itself; \
             remove it from the scope or release another name"
        );
    }

    #[test]
    fn german_comes_from_the_admins_translation_then_heralds_own_then_the_description() {
        let catalog = ScopeCatalog::new(custom(
            r#"
            [email]
            description = "Your email address"
            claims = ["email", "email_verified"]
            translations = { fr = "Votre adresse e-mail" }
            [profile]
            description = "Your name and basic profile"
            translations = { de = "Ihr Profil" }
            [phone]
            description = "Your work phone"
        "#,
        ))
        .unwrap();
        // Herald's words kept (with a French translation beside them): Herald's German.
        assert_eq!(catalog.scope_text("email", "de"), "Ihre E-Mail-Adresse");
        assert_eq!(catalog.scope_text("email", "fr"), "Votre adresse e-mail");
        // The admin's German wins over Herald's.
        assert_eq!(catalog.scope_text("profile", "de-AT"), "Ihr Profil");
        // Reworded by the admin without German: their words, not Herald's translation of others.
        assert_eq!(catalog.scope_text("phone", "de"), "Your work phone");
        assert_eq!(
            catalog.scope_text("openid", "de"),
            "Sie mit Ihrem Konto anmelden"
        );
        assert_eq!(
            catalog.scope_text("openid", "en"),
            "Sign you in with your account"
        );
    }

    #[test]
    fn custom_scope_may_redefine_a_builtin() {
        let catalog = ScopeCatalog::new(custom(
            r#"
            [email]
            description = "Your work email"
            claims = ["email"]
            optional = true
        "#,
        ))
        .unwrap();
        let email = catalog.get("email").unwrap();
        assert_eq!(email.description, "Your work email");
        assert!(email.optional);
        assert_eq!(email.claims.len(), 1);
    }

    #[test]
    fn invalid_scope_names_and_empty_targets_are_refused() {
        let err = ScopeCatalog::new(custom("[\"two words\"]\ndescription = \"x\"")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("scopes.two words: not a valid scope name")
        );
        let err = ScopeCatalog::new(custom(
            "[x]\ndescription = \"x\"\nclaims = [{ claim = \"a\", to = [] }]",
        ))
        .unwrap_err();
        assert!(err.to_string().contains("`to` is empty"));
    }

    #[test]
    fn release_entry_table_with_a_typo_names_the_key() {
        let err = toml::from_str::<BTreeMap<String, ScopeDef>>(
            "[x]\ndescription = \"x\"\nclaims = [{ claim = \"a\", too = [\"id_token\"] }]",
        )
        .unwrap_err();
        assert!(err.to_string().contains("too"), "{err}");
    }

    #[test]
    fn release_entries_serialize_back_to_their_config_form() {
        let entries = vec![
            ReleaseEntry::Path(ClaimPath::parse("a.b").unwrap()),
            ReleaseEntry::Detailed {
                claim: ClaimPath::parse(r"https://e\.com/x").unwrap(),
                to: vec![TokenKind::AccessToken],
            },
        ];
        let json = serde_json::to_value(&entries).unwrap();
        assert_eq!(
            json,
            json!(["a.b", {"claim": r"https://e\.com/x", "to": ["access_token"]}])
        );
        let back: Vec<ReleaseEntry> = serde_json::from_value(json).unwrap();
        assert_eq!(back, entries);
    }

    fn purposes(toml_text: &str) -> BTreeMap<String, PurposeDef> {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn a_scope_may_serve_only_a_defined_purpose() {
        let err = ScopeCatalog::with_purposes(
            custom("[news]\ndescription = \"News\"\npurpose = \"marketing\""),
            BTreeMap::new(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "scopes.news.purpose: `marketing` is not a defined purpose; define it under \
             [purposes.marketing] or remove the key"
        );
        let p = purposes("[marketing]\ndescription = \"Offers\"\nlegal_basis = \"consent\"");
        let catalog = ScopeCatalog::with_purposes(
            custom("[news]\ndescription = \"News\"\npurpose = \"marketing\""),
            p,
        )
        .unwrap();
        assert_eq!(catalog.purpose_of("news").unwrap().0, "marketing");
        assert!(catalog.purpose_of("email").is_none());
        assert!(catalog.claims_supported().contains(&"purposes".to_string()));
    }

    #[test]
    fn a_new_purpose_version_or_translation_changes_the_scope_version() {
        let build = |purpose: &str, scope: &str| {
            ScopeCatalog::with_purposes(custom(scope), purposes(purpose)).unwrap()
        };
        let scope = "[news]\ndescription = \"News\"\npurpose = \"m\"";
        let v1 = build(
            "[m]\ndescription = \"Offers\"\nlegal_basis = \"consent\"\nversion = \"1\"",
            scope,
        );
        let v2 = build(
            "[m]\ndescription = \"Offers\"\nlegal_basis = \"consent\"\nversion = \"2\"",
            scope,
        );
        assert_ne!(v1.scope_version("news"), v2.scope_version("news"));
        // Built-in scopes keep the version they always had: a digest of the description.
        assert_eq!(
            v1.scope_version("email"),
            super::super::purposes::texts_digest("Your email address", &BTreeMap::new())
        );
        let fr = build(
            "[m]\ndescription = \"Offers\"\nlegal_basis = \"consent\"\nversion = \"1\"",
            "[news]\ndescription = \"News\"\npurpose = \"m\"\ntranslations = { fr = \"Actualités\" }",
        );
        assert_ne!(fr.scope_version("news"), v1.scope_version("news"));
        assert_eq!(fr.scope_text("news", "fr-FR"), "Actualités");
        assert_eq!(fr.scope_text("news", "de"), "News");
        assert_eq!(fr.locale_for(&["news".into()], &["fr-BE".into()]), "fr");
    }

    #[test]
    fn catalog_lists_names_and_claims_supported_sorted() {
        let catalog = ScopeCatalog::new(custom(
            "[org]\ndescription = \"x\"\nclaims = [\"org.tenant\", \"org.plan\"]",
        ))
        .unwrap();
        let names: Vec<&str> = catalog.names().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "address",
                "consents",
                "email",
                "offline_access",
                "openid",
                "org",
                "phone",
                "profile"
            ]
        );
        let claims = catalog.claims_supported();
        assert!(claims.windows(2).all(|w| w[0] < w[1]));
        assert!(claims.contains(&"org".to_owned()) && claims.contains(&"email".to_owned()));
        assert!(!claims.contains(&"sub".to_owned()));
        assert_eq!(
            catalog.get("profile").unwrap().description,
            "Your name and basic profile"
        );
    }
}
