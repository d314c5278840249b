//! Building an [`AuthContext`] from one upstream login: reading attributes, checking their types and
//! applying the standard OIDC mapping, then the admin's mappings.
//!
//! The order is fixed so results never depend on hash order:
//! 1. every attribute is read from its source and checked against its type (OIDC Core §5.1 for the
//!    standard claims' types);
//! 2. the standard claims of OIDC Core §5.1 (except `sub`, which Herald mints itself) are copied under
//!    the same name, from the ID token, then userinfo, so userinfo wins when both have a value;
//! 3. explicit mappings apply in config order; within one mapping its attributes apply by source:
//!    ID token, then userinfo, then access token ([`Source::APPLY_ORDER`]);
//! 4. `amr` and `acr` are taken (OIDC Core §2).
//!
//! This runs on every login, so the config arrives pre-parsed ([`ClaimPath`]s, enums) and strings are only
//! formatted for origins and warnings.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::LazyLock;

use serde_json::{Map, Number, Value};

use super::context::forget_origins;
use super::json::describe_json;
use read::{AttrValue, coerce, is_empty, read_attribute, type_warning};

use computed::{Trace, claims_scope};

use super::{
    AttrType, AuthContext, Built, ClaimPath, Mapping, MappingError, Merge, Origin, OriginText,
    Scope, Source, UpstreamClaims, UpstreamMapping, Warning,
};

/// The OIDC Core §5.1 standard claims Herald maps out of the box, with the type each must have.
///
/// `sub` is deliberately absent: Herald mints its own subject for client apps.
pub const STANDARD_CLAIMS: &[(&str, AttrType)] = &[
    ("name", AttrType::String),
    ("given_name", AttrType::String),
    ("family_name", AttrType::String),
    ("middle_name", AttrType::String),
    ("nickname", AttrType::String),
    ("preferred_username", AttrType::String),
    ("profile", AttrType::String),
    ("picture", AttrType::String),
    ("website", AttrType::String),
    ("email", AttrType::String),
    ("email_verified", AttrType::Boolean),
    ("gender", AttrType::String),
    ("birthdate", AttrType::String),
    ("zoneinfo", AttrType::String),
    ("locale", AttrType::String),
    ("phone_number", AttrType::String),
    ("phone_number_verified", AttrType::Boolean),
    ("address", AttrType::Object),
    ("updated_at", AttrType::Number),
];

/// The sources the standard mapping reads, in order.
pub const STANDARD_SOURCES: [Source; 2] = [Source::IdToken, Source::Userinfo];

/// How origins name the built-in mapping.
pub const STANDARD_MAPPING: &str = "standard";

/// [`STANDARD_MAPPING`] and the names in [`STANDARD_CLAIMS`] as origins hold them, made once per process.
static STANDARD_ORIGIN_TEXT: LazyLock<(OriginText, Vec<OriginText>)> = LazyLock::new(|| {
    let names = STANDARD_CLAIMS
        .iter()
        .map(|&(name, _)| name.into())
        .collect();
    (STANDARD_MAPPING.into(), names)
});

/// Builds the authentication context for one login through `upstream_id`.
///
/// `previous` is the user's last context (from any upstream; only one from the same upstream is used), read
/// by attributes with `on_missing = "keep"`. Fails when a required claim is missing or ill-typed, or when
/// the ID token has no `sub`; every other problem becomes a [`Warning`], which is also logged.
pub fn build_context(
    upstream_id: &str,
    cfg: &UpstreamMapping,
    claims: &UpstreamClaims,
    previous: Option<&AuthContext>,
) -> Result<Built, MappingError> {
    build(upstream_id, cfg, claims, previous, None, false)
}

/// [`build_context`], recording what each condition, expression and transform made of its input
/// in [`Built::steps`]: what a preview shows.
pub fn build_traced(
    upstream_id: &str,
    cfg: &UpstreamMapping,
    claims: &UpstreamClaims,
    previous: Option<&AuthContext>,
) -> Result<Built, MappingError> {
    build(upstream_id, cfg, claims, previous, None, true)
}

/// Builds the context an imported profile leaves: the mappings applied onto `stored` (the
/// user's stored context, when it is from this upstream), each with its merge strategy
/// against what is stored: `set` replaces a value the profile has and keeps one it lacks,
/// `set_if_empty` keeps a stored value, `add` unites (or sums) with it, `sum` adds a number
/// to it, `set_or_clear`
/// removes it when the profile has none.
pub fn build_onto(
    upstream_id: &str,
    cfg: &UpstreamMapping,
    claims: &UpstreamClaims,
    stored: Option<&AuthContext>,
) -> Result<Built, MappingError> {
    let stored = stored.filter(|s| s.upstream == upstream_id);
    build(upstream_id, cfg, claims, stored, stored, false)
}

fn build(
    upstream_id: &str,
    cfg: &UpstreamMapping,
    claims: &UpstreamClaims,
    previous: Option<&AuthContext>,
    onto: Option<&AuthContext>,
    trace: bool,
) -> Result<Built, MappingError> {
    // "The remaining fields": wildcard attributes and mappings, one per claim this login has.
    let expanded = wildcard::expand(cfg, claims, STANDARD_CLAIMS);
    let cfg: &UpstreamMapping = &expanded;
    let subject = match claims.id_token.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        _ => {
            return Err(MappingError::MissingSubject {
                upstream: upstream_id.to_owned(),
            });
        }
    };
    let mut writer = Writer {
        upstream: upstream_id.into(),
        attributes: onto.map(|c| c.attributes.clone()).unwrap_or_default(),
        origins: onto.map(|c| c.origins.clone()).unwrap_or_default(),
        warnings: Vec::new(),
        scratch: String::new(),
        trace: Trace(trace.then(Vec::new)),
    };

    // Sized up front: collecting `Result`s gives no size hint, and growing this list in steps cost more
    // than any other allocation of a login.
    let mut values = Vec::with_capacity(cfg.attributes.len());
    for attr in &cfg.attributes {
        values.push(read_attribute(
            upstream_id,
            attr,
            claims,
            &mut writer.warnings,
        )?);
    }

    map_standard_claims(&mut writer, claims);

    let previous = previous.filter(|p| p.upstream == upstream_id);
    // Attributes sorted by (claim fingerprint, source, position), so each mapping finds its attributes by
    // binary search and meets them in source order, then config order, without comparing strings.
    let mut index: Vec<(u64, Source, usize)> = cfg
        .attributes
        .iter()
        .enumerate()
        .map(|(i, attr)| (attr.claim.fingerprint(), attr.source, i))
        .collect();
    index.sort_unstable();
    let mut matched = Vec::new();
    // The variables of `expr` and `when`, made at the first mapping that has one.
    let mut scope: Option<Scope> = None;
    for mapping in &cfg.mappings {
        if let Some(when) = &mapping.when {
            let scope = scope.get_or_insert_with(|| claims_scope(claims));
            scope.set("context", Some(&writer.attributes));
            let applies =
                writer
                    .trace
                    .condition(upstream_id, mapping, when, scope, &mut writer.warnings)?;
            if !applies {
                continue;
            }
        }
        let Some(from) = &mapping.from else {
            let Some(expr) = &mapping.expr else { continue };
            let scope = scope.get_or_insert_with(|| claims_scope(claims));
            scope.set("context", Some(&writer.attributes));
            let value =
                writer
                    .trace
                    .compute(upstream_id, mapping, expr, scope, &mut writer.warnings)?;
            writer.apply_mapping(
                mapping,
                std::iter::once((Source::Computed, &value)),
                1,
                previous,
            );
            continue;
        };
        let fingerprint = from.fingerprint();
        let start = index.partition_point(|entry| entry.0 < fingerprint);
        matched.clear();
        matched.extend(
            index[start..]
                .iter()
                .take_while(|entry| entry.0 == fingerprint)
                .map(|entry| entry.2)
                .filter(|&i| cfg.attributes[i].claim == *from),
        );
        if mapping.transform.is_empty() {
            let attrs = matched
                .iter()
                .map(|&i| (cfg.attributes[i].source, &values[i]));
            writer.apply_mapping(mapping, attrs, matched.len(), previous);
        } else {
            let transformed: Vec<(Source, AttrValue)> = matched
                .iter()
                .map(|&i| {
                    let source = cfg.attributes[i].source;
                    let value =
                        writer
                            .trace
                            .transformed(mapping, source, &values[i], &mut writer.warnings);
                    (source, value)
                })
                .collect();
            let attrs = transformed.iter().map(|(source, v)| (*source, v));
            writer.apply_mapping(mapping, attrs, transformed.len(), previous);
        }
    }

    let amr = match &cfg.amr {
        Some(configured) => Some(configured.clone()),
        None => upstream_amr(&claims.id_token, &mut writer.warnings),
    };
    let acr = match claims.id_token.get("acr") {
        Some(Value::String(acr)) => Some(acr.clone()),
        None | Some(Value::Null) => None,
        Some(_) => {
            writer.warn(
                "acr",
                "the upstream's `acr` is not a string; ignored".to_owned(),
            );
            None
        }
    };

    for warning in &writer.warnings {
        tracing::warn!(upstream = upstream_id, path = %warning.path, "{}", warning.message);
    }
    Ok(Built {
        context: AuthContext {
            upstream: upstream_id.to_owned(),
            subject,
            attributes: writer.attributes,
            origins: writer.origins,
            amr,
            acr,
        },
        warnings: writer.warnings,
        steps: writer.trace.0.unwrap_or_default(),
    })
}

fn map_standard_claims(writer: &mut Writer, claims: &UpstreamClaims) {
    let (standard, names) = &*STANDARD_ORIGIN_TEXT;
    for (&(name, ty), name_text) in STANDARD_CLAIMS.iter().zip(names) {
        for source in STANDARD_SOURCES {
            let payload = match source {
                Source::IdToken => Some(&claims.id_token),
                _ => claims.userinfo.as_ref(),
            };
            let Some(raw) = payload.and_then(|p| p.get(name)).filter(|v| !v.is_null()) else {
                continue;
            };
            match coerce(ty, raw) {
                Ok(value) => {
                    writer
                        .attributes
                        .insert(name.to_owned(), value.into_owned());
                    let origin = Origin {
                        upstream: writer.upstream.clone(),
                        source,
                        claim: name_text.clone(),
                        mapping: standard.clone(),
                        merge: Merge::Set,
                        kept: false,
                    };
                    writer.origins.insert(name.to_owned(), vec![origin]);
                }
                Err(found) => {
                    writer
                        .warnings
                        .push(type_warning(name.to_owned(), source, ty, found))
                }
            }
        }
    }
}

fn upstream_amr(id_token: &Map<String, Value>, warnings: &mut Vec<Warning>) -> Option<Vec<String>> {
    match id_token.get("amr")? {
        Value::Array(items) if items.iter().all(Value::is_string) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        Value::Null => None,
        _ => {
            warnings.push(Warning {
                path: "amr".to_owned(),
                message: "the upstream's `amr` is not a list of strings; ignored".to_owned(),
            });
            None
        }
    }
}

/// The context under construction.
struct Writer {
    upstream: OriginText,
    attributes: Map<String, Value>,
    origins: BTreeMap<String, Vec<Origin>>,
    warnings: Vec<Warning>,
    /// Where mapping names are spelled out before they are shared.
    scratch: String,
    /// Each step's input and output, when a preview asks for them.
    trace: Trace,
}

impl Writer {
    fn warn(&mut self, path: &str, message: String) {
        self.warnings.push(Warning {
            path: path.to_owned(),
            message,
        });
    }

    /// Applies one mapping with its `count` values (one per matching attribute, already in
    /// source order; one for a computed mapping).
    fn apply_mapping<'a>(
        &mut self,
        mapping: &Mapping,
        matched: impl Iterator<Item = (Source, &'a AttrValue<'a>)>,
        count: usize,
        previous: Option<&AuthContext>,
    ) {
        // Made at most once per mapping, only if it writes anything; the target path is moved into the context
        // by the last attribute, the rest is shared by every origin the mapping writes.
        let mut names: Option<Names> = None;
        let mut chosen: Option<(&Value, Origin)> = None;
        for (position, (source, value)) in matched.enumerate() {
            let last = position + 1 == count;
            let take = |s: &mut String| if last { std::mem::take(s) } else { s.clone() };
            let (value, kept_origin) = match (&value.value, value.keep, previous) {
                (Some(v), _, _) => (v.as_ref(), None),
                (None, true, Some(prev)) => {
                    let names = names.get_or_insert_with(|| Names::of(mapping, &mut self.scratch));
                    match kept_value(prev, mapping, names, source) {
                        Some((v, origin)) => (v, Some(origin)),
                        None => continue,
                    }
                }
                _ => continue,
            };
            let names = names.get_or_insert_with(|| Names::of(mapping, &mut self.scratch));
            let origin = match kept_origin {
                Some(origin) => origin,
                None => Origin {
                    upstream: self.upstream.clone(),
                    source,
                    // The attribute's claim is the mapping's `from` (or the expression).
                    claim: names.from.clone(),
                    mapping: names.mapping.clone(),
                    merge: mapping.merge,
                    kept: false,
                },
            };
            match mapping.merge {
                Merge::Set => self.set(&mapping.to, take(&mut names.to), value.clone(), origin),
                Merge::SetIfEmpty => {
                    if mapping.to.get(&self.attributes).is_none_or(is_empty) {
                        self.set(&mapping.to, take(&mut names.to), value.clone(), origin);
                    }
                }
                Merge::Add => self.add(&mapping.to, take(&mut names.to), value, origin),
                Merge::Sum if value.is_number() => {
                    self.add(&mapping.to, take(&mut names.to), value, origin);
                }
                Merge::Sum => {
                    let key = take(&mut names.to);
                    let message = format!(
                        "`sum` adds numbers, and `{}` sent {}; it was not added",
                        origin.claim,
                        describe_json(value)
                    );
                    self.warn(&key, message);
                }
                // Decided once all of the mapping's sources are seen: one empty source must not clear
                // what another sent.
                Merge::SetOrClear => {
                    if !is_empty(value) {
                        chosen = Some((value, origin));
                    }
                }
            }
        }
        if mapping.merge == Merge::SetOrClear {
            let to = match names {
                Some(names) => names.to,
                None => mapping.to.canonical(),
            };
            match chosen {
                Some((value, origin)) => self.set(&mapping.to, to, value.clone(), origin),
                None => {
                    if mapping.to.remove(&mut self.attributes).is_some() {
                        self.forget_origins(&to);
                    }
                }
            }
        }
    }

    fn set(&mut self, to: &ClaimPath, key: String, value: Value, origin: Origin) {
        // Only an object can have had nested origins, which this write makes stale.
        if let Some(Value::Object(_)) = to.set(&mut self.attributes, value) {
            self.forget_origins(&key);
        }
        // One search of the tree for both cases: the key is already owned.
        match self.origins.entry(key) {
            Entry::Occupied(mut entry) => {
                let origins = entry.get_mut();
                origins.clear();
                origins.push(origin);
            }
            Entry::Vacant(entry) => {
                entry.insert(vec![origin]);
            }
        }
    }

    /// Drops the origins of `key` and of everything nested under it, which a write there replaced.
    fn forget_origins(&mut self, key: &str) {
        forget_origins(&mut self.origins, key);
    }

    fn add(&mut self, to: &ClaimPath, key: String, value: &Value, origin: Origin) {
        let added = match to.get_mut(&mut self.attributes) {
            Some(existing) => add_into(existing, value),
            None => {
                // Adding to nothing: strings start a list, anything else is taken as it is.
                let fresh = match value {
                    Value::String(_) | Value::Array(_) => {
                        let mut list = Value::Array(Vec::new());
                        add_into(&mut list, value).expect("a list accepts strings and lists");
                        list
                    }
                    other => other.clone(),
                };
                to.set(&mut self.attributes, fresh);
                Ok(())
            }
        };
        match added {
            Ok(()) => match self.origins.entry(key) {
                Entry::Occupied(mut entry) => entry.get_mut().push(origin),
                Entry::Vacant(entry) => {
                    entry.insert(vec![origin]);
                }
            },
            Err(existing) => {
                let message = format!(
                    "cannot add {} from `{}` to {} already there; kept the existing value",
                    describe_json(value),
                    origin.claim,
                    existing
                );
                self.warn(&key, message);
            }
        }
    }
}

/// `add` in place: union for strings and lists, sum for numbers. Errs with what `existing` is otherwise.
fn add_into(existing: &mut Value, value: &Value) -> Result<(), &'static str> {
    match (&mut *existing, value) {
        (Value::Number(a), Value::Number(b)) => {
            let sum = match (a.as_i64(), b.as_i64()) {
                (Some(x), Some(y)) => x.checked_add(y).map(Number::from),
                _ => None,
            }
            .or_else(|| Number::from_f64(a.as_f64()? + b.as_f64()?));
            match sum {
                Some(sum) => {
                    *a = sum;
                    Ok(())
                }
                None => Err("a number it cannot be summed with"),
            }
        }
        (Value::String(_) | Value::Array(_), Value::String(_) | Value::Array(_)) => {
            if let Value::String(s) = existing {
                *existing = Value::Array(vec![Value::String(std::mem::take(s))]);
            }
            let Value::Array(items) = existing else {
                unreachable!("turned into a list just above")
            };
            let new = match value {
                Value::Array(new) => new.as_slice(),
                single => std::slice::from_ref(single),
            };
            for item in new {
                if !items.contains(item) {
                    items.push(item.clone());
                }
            }
            Ok(())
        }
        (existing, _) => Err(describe_json(existing)),
    }
}

/// A mapping's paths and name as origins spell them.
struct Names {
    /// Shared with the configured path, which computed it once.
    from: OriginText,
    /// The key of the mapping's origins.
    to: String,
    /// `from → to`.
    mapping: OriginText,
}

impl Names {
    /// Spells the mapping's name in `scratch`, which is reused across mappings, before sharing it.
    fn of(mapping: &Mapping, scratch: &mut String) -> Names {
        scratch.clear();
        scratch.push_str(mapping.input());
        scratch.push_str(" → ");
        scratch.push_str(mapping.to.canonical_str());
        let from = match (&mapping.from, &mapping.expr) {
            (Some(from), _) => from.canonical_shared().clone().into(),
            (None, Some(expr)) => expr.source_shared().clone().into(),
            (None, None) => OriginText::from(""),
        };
        Names {
            from,
            to: mapping.to.canonical(),
            mapping: scratch.as_str().into(),
        }
    }
}

/// The value `mapping` wrote from its attribute in `source` in the previous context, if it did.
fn kept_value<'p>(
    prev: &'p AuthContext,
    mapping: &Mapping,
    names: &Names,
    source: Source,
) -> Option<(&'p Value, Origin)> {
    let origin = prev
        .origins
        .get(&names.to)?
        .iter()
        .find(|o| o.source == source && o.claim == names.from && o.mapping == names.mapping)?;
    let value = mapping.to.get(&prev.attributes)?;
    Some((
        value,
        Origin {
            kept: true,
            ..origin.clone()
        },
    ))
}

mod computed;
mod read;
pub mod wildcard;

#[cfg(test)]
mod tests;
