//! Config-time checks of claim mapping, so mistakes surface when Herald starts rather than at a user's login.
//!
//! Owns the list of reserved claims: those Herald sets itself in the tokens it mints (OIDC Core §2 and
//! §3.1.3.6, RFC 9068 §2.2). A mapping or a scope that wrote one would let an upstream forge it.

use super::{ClaimPath, Source, UpstreamMapping, Warning};

/// Claims Herald sets itself; no mapping or scope may write them.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "azp",
    "auth_time",
    "at_hash",
    "c_hash",
    "acr",
    "amr",
    "sid",
    "jti",
    "purposes",
];

/// Whether writing `path` would overwrite a claim Herald sets itself.
pub fn is_reserved(path: &ClaimPath) -> bool {
    RESERVED_CLAIMS.contains(&path.first())
}

/// A claim-mapping or scope setting Herald refuses to start with. Each names the key and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An attribute reads userinfo on an upstream whose userinfo is off.
    #[error(
        "attributes[{index}] (claim `{claim}`): `source = \"userinfo\"` but userinfo is off for this upstream; \
         set `userinfo = true` on the upstream or change the attribute's source"
    )]
    UserinfoDisabled {
        /// Position in `attributes`.
        index: usize,
        /// The attribute's claim, canonical.
        claim: String,
    },
    /// A mapping's `from` matches no attribute.
    #[error(
        "mappings[{index}] (`{from}` → `{to}`): `from = \"{from}\"` matches no attribute; declare an \
         attribute with `claim = \"{from}\"` or fix the mapping's `from`"
    )]
    UnknownAttribute {
        /// Position in `mappings`.
        index: usize,
        /// The mapping's `from`, canonical.
        from: String,
        /// The mapping's `to`, canonical.
        to: String,
    },
    /// A mapping to a wildcard target (`ext.*`) from a claim that is not a wildcard.
    #[error(
        "mappings[{index}] (`{from}` → `{to}`): `to` ends in `*`, which only a mapping from a wildcard \
         attribute (a claim ending in `*`, like `https://example\\.com/*`) may do; name one target"
    )]
    WildcardTarget {
        index: usize,
        from: String,
        to: String,
    },
    /// A mapping from a wildcard attribute to a single target.
    #[error(
        "mappings[{index}] (`{from}` → `{to}`): `from` is a wildcard attribute, which matches many \
         claims, so `to` must end in `*` (like `ext.*`): each claim lands there under its name \
         without the prefix"
    )]
    WildcardSource {
        index: usize,
        from: String,
        to: String,
    },
    /// A mapping's keys do not fit together: not exactly one of `from` and `expr`, `on_missing`
    /// on a `from` mapping, an expression writing a wildcard target.
    #[error("mappings[{index}] (→ `{to}`): {problem}")]
    MappingShape {
        index: usize,
        to: String,
        problem: &'static str,
    },
    /// An attribute's source is `computed`, which only mappings' expressions produce.
    #[error(
        "attributes[{index}] (claim `{claim}`): `source = \"computed\"` is for values a mapping's \
         `expr` computes; an attribute reads \"id_token\", \"userinfo\" or \"access_token\""
    )]
    ComputedAttribute { index: usize, claim: String },
    /// A wildcard attribute marked required or failing when missing.
    #[error(
        "attributes[{index}] (claim `{claim}`): a wildcard attribute matches any number of claims, \
         none included, so it cannot be `required` or `on_missing = \"fail\"`"
    )]
    WildcardRequired { index: usize, claim: String },
    /// A mapping writes a claim Herald sets itself.
    #[error(
        "mappings[{index}] (`{from}` → `{to}`): `to` writes the reserved claim `{reserved}`, which Herald sets \
         itself; map it to another name"
    )]
    ReservedMappingTarget {
        /// Position in `mappings`.
        index: usize,
        /// The mapping's `from`, canonical.
        from: String,
        /// The mapping's `to`, canonical.
        to: String,
        /// The reserved top-level claim.
        reserved: String,
    },
    /// A scope releases a claim Herald sets itself.
    #[error(
        "scopes.{scope}.claims[{index}] (`{claim}`): releases the reserved claim `{reserved}`, which Herald sets \
         itself; remove it from the scope or release another name"
    )]
    ReservedRelease {
        /// The scope's name.
        scope: String,
        /// Position in the scope's `claims`.
        index: usize,
        /// The released path, canonical.
        claim: String,
        /// The reserved top-level claim.
        reserved: String,
    },
    /// A scope's name cannot appear in a `scope` parameter (RFC 6749 §3.3).
    #[error(
        "scopes.{scope}: not a valid scope name; use printable ASCII without spaces, `\"` or `\\`"
    )]
    InvalidScopeName {
        /// The name as written.
        scope: String,
    },
    /// A release entry lists no token to release to.
    #[error(
        "scopes.{scope}.claims[{index}] (`{claim}`): `to` is empty; list at least one of \
         \"id_token\", \"userinfo\", \"access_token\" or remove the entry"
    )]
    EmptyReleaseTarget {
        /// The scope's name.
        scope: String,
        /// Position in the scope's `claims`.
        index: usize,
        /// The released path, canonical.
        claim: String,
    },
    /// A scope serves a purpose that is not defined.
    #[error(
        "scopes.{scope}.purpose: `{purpose}` is not a defined purpose; define it under \
         [purposes.{purpose}] or remove the key"
    )]
    UnknownPurpose {
        /// The scope's name.
        scope: String,
        /// The purpose as written.
        purpose: String,
    },
    /// A purpose or a translation has an unusable name or text.
    #[error("{key}: {problem}")]
    InvalidPurpose {
        /// Where, e.g. `purposes.marketing.translations.fr`.
        key: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

/// Checks one upstream's mapping config. Errors stop Herald from starting; warnings are worth a log line.
pub fn validate_upstream(
    cfg: &UpstreamMapping,
    userinfo_enabled: bool,
) -> Result<Vec<Warning>, ConfigError> {
    let mut warnings = Vec::new();
    for (index, attr) in cfg.attributes.iter().enumerate() {
        match attr.source {
            Source::Userinfo if !userinfo_enabled => {
                return Err(ConfigError::UserinfoDisabled {
                    index,
                    claim: attr.claim.canonical(),
                });
            }
            Source::Computed => {
                return Err(ConfigError::ComputedAttribute {
                    index,
                    claim: attr.claim.canonical(),
                });
            }
            Source::AccessToken => warnings.push(Warning {
                path: attr.claim.canonical(),
                message: format!(
                    "attributes[{index}] reads the access token: the upstream must issue JWT access tokens \
                     (Auth0 does so only when an `audience` is requested); an opaque token yields no claims"
                ),
            }),
            _ => {}
        }
        if attr.claim.wildcard_prefix().is_some()
            && (attr.required || attr.on_missing == super::OnMissing::Fail)
        {
            return Err(ConfigError::WildcardRequired {
                index,
                claim: attr.claim.canonical(),
            });
        }
        if attr.required && attr.on_missing != super::OnMissing::Clear {
            warnings.push(Warning {
                path: attr.claim.canonical(),
                message: format!(
                    "attributes[{index}] is required, so a missing claim fails the login whatever `on_missing` says"
                ),
            });
        }
        let duplicate = cfg.attributes[..index]
            .iter()
            .any(|a| a.claim == attr.claim && a.source == attr.source);
        if duplicate {
            warnings.push(Warning {
                path: attr.claim.canonical(),
                message: format!(
                    "attributes[{index}] declares the same claim and source as an earlier attribute"
                ),
            });
        }
    }
    for (index, mapping) in cfg.mappings.iter().enumerate() {
        if is_reserved(&mapping.to) {
            return Err(ConfigError::ReservedMappingTarget {
                index,
                from: mapping.input().to_owned(),
                to: mapping.to.canonical(),
                reserved: mapping.to.first().to_owned(),
            });
        }
        let shape = |problem| ConfigError::MappingShape {
            index,
            to: mapping.to.canonical(),
            problem,
        };
        let from = match (&mapping.from, &mapping.expr) {
            (Some(from), None) => from,
            (None, Some(_)) => {
                if mapping.to.is_wildcard_target() {
                    return Err(shape(
                        "an `expr` computes one value, so `to` must name one target, not end in `*`",
                    ));
                }
                continue;
            }
            (Some(_), Some(_)) => {
                return Err(shape(
                    "has both `from` and `expr`; a mapping copies an attribute (`from`) or computes a value (`expr`)",
                ));
            }
            (None, None) => {
                return Err(shape(
                    "has neither `from` nor `expr`; name the attribute to copy or the expression to compute",
                ));
            }
        };
        if mapping.on_missing != super::OnMissing::Clear {
            return Err(shape(
                "`on_missing` on a mapping is for `expr`; a `from` mapping follows its attribute's `on_missing`",
            ));
        }
        let from_wildcard = from.wildcard_prefix().is_some();
        let to_wildcard = mapping.to.is_wildcard_target();
        if to_wildcard && !from_wildcard {
            return Err(ConfigError::WildcardTarget {
                index,
                from: from.canonical(),
                to: mapping.to.canonical(),
            });
        }
        if from_wildcard && !to_wildcard {
            return Err(ConfigError::WildcardSource {
                index,
                from: from.canonical(),
                to: mapping.to.canonical(),
            });
        }
        if !cfg.attributes.iter().any(|a| a.claim == *from) {
            return Err(ConfigError::UnknownAttribute {
                index,
                from: from.canonical(),
                to: mapping.to.canonical(),
            });
        }
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(toml_text: &str) -> UpstreamMapping {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn userinfo_source_is_refused_when_userinfo_is_off() {
        let c = cfg(r#"
            [[attributes]]
            claim = "groups"
            source = "userinfo"
        "#);
        let err = validate_upstream(&c, false).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::UserinfoDisabled { index: 0, .. }
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("attributes[0]") && msg.contains("`groups`"),
            "{msg}"
        );
        assert!(
            msg.contains("set `userinfo = true` on the upstream or change the attribute's source"),
            "{msg}"
        );
        assert!(validate_upstream(&c, true).unwrap().is_empty());
    }

    #[test]
    fn access_token_source_warns_that_jwt_access_tokens_are_needed() {
        let c = cfg(r#"
            [[attributes]]
            claim = "permissions"
            source = "access_token"
        "#);
        let warnings = validate_upstream(&c, false).unwrap();
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].path, "permissions");
        assert!(
            warnings[0].message.contains("`audience`"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn mapping_from_an_undeclared_attribute_is_refused() {
        let c = cfg(r#"
            [[attributes]]
            claim = "a"
            source = "id_token"
            [[mappings]]
            from = 'https://example\.com/roles'
            to = "roles"
        "#);
        let msg = validate_upstream(&c, true).unwrap_err().to_string();
        assert!(
            msg.starts_with(r"mappings[0] (`https://example\.com/roles` → `roles`)"),
            "{msg}"
        );
        assert!(msg.contains("declare an attribute"), "{msg}");
    }

    #[test]
    fn mapping_to_any_reserved_claim_is_refused() {
        for reserved in RESERVED_CLAIMS {
            let c = cfg(&format!(
                r#"
                [[attributes]]
                claim = "x"
                source = "id_token"
                [[mappings]]
                from = "x"
                to = "{reserved}.nested"
            "#
            ));
            let err = validate_upstream(&c, true).unwrap_err();
            assert!(
                matches!(&err, ConfigError::ReservedMappingTarget { reserved: r, .. } if r == reserved),
                "{err}"
            );
            assert!(err.to_string().contains("map it to another name"));
        }
    }

    #[test]
    fn reserved_name_deeper_in_the_path_is_allowed() {
        let c = cfg(r#"
            [[attributes]]
            claim = "x"
            source = "id_token"
            [[mappings]]
            from = "x"
            to = "upstream.sub"
        "#);
        assert!(validate_upstream(&c, true).is_ok());
    }

    #[test]
    fn required_with_keep_and_duplicate_attributes_warn() {
        let c = cfg(r#"
            [[attributes]]
            claim = "x"
            source = "id_token"
            required = true
            on_missing = "keep"
            [[attributes]]
            claim = "x"
            source = "id_token"
        "#);
        let warnings = validate_upstream(&c, true).unwrap();
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].message.contains("whatever `on_missing` says"));
        assert!(warnings[1].message.contains("same claim and source"));
    }
}
