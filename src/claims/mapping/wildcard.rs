//! "Map the remaining fields": an attribute whose claim's last key ends in `*` names every claim
//! under it (`https://example\.com/*`: each top-level claim whose name starts with
//! `https://example.com/`; `app_metadata.*`: each key of that object), and a mapping from it
//! whose `to` ends in `*` (`ext.*`) writes each one there under its name without the prefix
//! (`https://example.com/plan` → `ext.plan`).
//!
//! Before a login's context is built, each such attribute and mapping is expanded into one
//! concrete attribute and mapping per claim the login carries, in claim-name order, so every
//! value goes through the same reading, typing, merging and origins as a declared one, and the
//! origins (lineage's per-login view, and preview) show each. A claim that another attribute
//! reads is left to it; the registered JWT and ID-token claims are never taken.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::claims::validate::is_reserved;
use crate::claims::{
    AccessTokenClaims, AttrType, Attribute, ClaimPath, Mapping, Source, UpstreamClaims,
    UpstreamMapping,
};

/// Claims a wildcard at the top level never takes: what JWTs and ID tokens carry about
/// themselves, not about the user.
const REGISTERED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "nonce",
    "azp",
    "at_hash",
    "c_hash",
    "auth_time",
    "acr",
    "amr",
    "sid",
    "scope",
];

/// `cfg` with its wildcard attributes and mappings expanded for `claims`; borrowed when it has
/// none. `standard`: the standard claims, which the standard mapping reads.
pub fn expand<'a>(
    cfg: &'a UpstreamMapping,
    claims: &UpstreamClaims,
    standard: &[(&str, AttrType)],
) -> Cow<'a, UpstreamMapping> {
    if !cfg
        .attributes
        .iter()
        .any(|a| a.claim.wildcard_prefix().is_some())
    {
        return Cow::Borrowed(cfg);
    }
    // Each wildcard attribute's concrete claims, by its position.
    let mut expanded: Vec<(usize, Vec<(ClaimPath, String)>)> = Vec::new();
    let mut attributes: Vec<Attribute> = Vec::new();
    for (i, attr) in cfg.attributes.iter().enumerate() {
        let Some(prefix) = attr.claim.wildcard_prefix() else {
            attributes.push(attr.clone());
            continue;
        };
        let matches = matching(cfg, attr, prefix, claims, standard);
        for (claim, _) in &matches {
            attributes.push(Attribute {
                claim: claim.clone(),
                ..attr.clone()
            });
        }
        expanded.push((i, matches));
    }
    let mut mappings = Vec::new();
    for mapping in &cfg.mappings {
        let Some(from) = mapping
            .from
            .as_ref()
            .filter(|from| from.wildcard_prefix().is_some() && mapping.to.is_wildcard_target())
        else {
            mappings.push(mapping.clone());
            continue;
        };
        let from_wildcard = expanded
            .iter()
            .filter(|(i, _)| cfg.attributes[*i].claim == *from)
            .flat_map(|(_, m)| m.iter())
            .collect::<Vec<_>>();
        let parent = &mapping.to.segments()[..mapping.to.segments().len() - 1];
        let mut seen: Vec<&ClaimPath> = Vec::new();
        for (claim, rest) in from_wildcard {
            // One mapping per claim, though several sources may carry it.
            if seen.contains(&claim) {
                continue;
            }
            seen.push(claim);
            let mut to = parent.to_vec();
            to.push(rest.clone());
            // Never written this way: a claim Herald sets itself (`sub`, `iss`, ...), a
            // standard claim (a user-editable `user_metadata.*` must not say `email_verified`),
            // or a target a declared mapping writes.
            let writable = |to: &ClaimPath| {
                !is_reserved(to)
                    && !standard.iter().any(|(name, _)| *name == to.first())
                    && !cfg
                        .mappings
                        .iter()
                        .any(|m| !m.to.is_wildcard_target() && m.to.starts_with(to))
            };
            if let Some(to) = ClaimPath::from_segments(to).filter(writable) {
                mappings.push(Mapping {
                    from: Some(claim.clone()),
                    to,
                    ..mapping.clone()
                });
            }
        }
    }
    Cow::Owned(UpstreamMapping {
        attributes,
        mappings,
        amr: cfg.amr.clone(),
    })
}

/// The claims under wildcard attribute `attr` in this login: each concrete path and its name
/// without the prefix, sorted by name.
fn matching(
    cfg: &UpstreamMapping,
    attr: &Attribute,
    prefix: &str,
    claims: &UpstreamClaims,
    standard: &[(&str, AttrType)],
) -> Vec<(ClaimPath, String)> {
    let source: Option<&Map<String, Value>> = match attr.source {
        Source::IdToken => Some(&claims.id_token),
        Source::Userinfo => claims.userinfo.as_ref(),
        Source::AccessToken => match &claims.access_token {
            AccessTokenClaims::Jwt(payload) => Some(payload),
            _ => None,
        },
        Source::Computed => None,
    };
    let parent = &attr.claim.segments()[..attr.claim.segments().len() - 1];
    let object = match (source, parent.is_empty()) {
        (Some(root), true) => Some(root),
        (Some(root), false) => ClaimPath::from_segments(parent.to_vec())
            .and_then(|p| p.get(root).and_then(Value::as_object)),
        (None, _) => None,
    };
    let Some(object) = object else {
        return Vec::new();
    };
    let mut found: Vec<(ClaimPath, String)> = object
        .keys()
        .filter(|k| k.starts_with(prefix) && k.len() > prefix.len())
        .filter(|k| {
            // At the top level, neither the token's own claims nor the standard ones, which
            // the standard mapping reads.
            !(parent.is_empty()
                && (REGISTERED.contains(&k.as_str()) || standard.iter().any(|(name, _)| name == k)))
        })
        .filter_map(|k| {
            let mut segments = parent.to_vec();
            segments.push(k.clone());
            let path = ClaimPath::from_segments(segments)?;
            // Another attribute reads it: it is not one of "the remaining fields".
            let declared = cfg
                .attributes
                .iter()
                .any(|a| a.claim.wildcard_prefix().is_none() && a.claim == path);
            (!declared).then(|| (path, k[prefix.len()..].to_string()))
        })
        .collect();
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found
}
