//! Reading one attribute out of the upstream's claims: found where its `claim` path points in
//! each of its sources, checked against its type (with the coercions the type allows), or
//! missing.

use std::borrow::Cow;

use serde_json::Value;

use crate::claims::json::describe_json;
use crate::claims::{
    AccessTokenClaims, AttrType, Attribute, MappingError, OnMissing, Source, UpstreamClaims,
    Warning,
};

/// One attribute's value for this login, after the type check.
pub(super) struct AttrValue<'a> {
    pub(super) value: Option<Cow<'a, Value>>,
    /// Missing, and `on_missing = "keep"` asks for the previous login's value.
    pub(super) keep: bool,
}

pub(super) fn read_attribute<'a>(
    upstream: &str,
    attr: &Attribute,
    claims: &'a UpstreamClaims,
    warnings: &mut Vec<Warning>,
) -> Result<AttrValue<'a>, MappingError> {
    let must_have = attr.required || attr.on_missing == OnMissing::Fail;
    let source = match attr.source {
        Source::IdToken => Some(&claims.id_token),
        Source::Userinfo => claims.userinfo.as_ref(),
        Source::AccessToken => match &claims.access_token {
            AccessTokenClaims::Jwt(payload) => Some(payload),
            AccessTokenClaims::Opaque if must_have => {
                return Err(MappingError::OpaqueAccessToken {
                    upstream: upstream.to_owned(),
                    claim: attr.claim.canonical(),
                });
            }
            AccessTokenClaims::Opaque => {
                warnings.push(Warning {
                    path: attr.claim.canonical(),
                    message: "the upstream's access token is opaque, and an opaque token yields no claims; \
                              the upstream must issue JWT access tokens (Auth0 does so only when an \
                              `audience` is requested)"
                        .to_owned(),
                });
                None
            }
            AccessTokenClaims::Absent => None,
        },
        // Refused by the configuration check: nothing to read.
        Source::Computed => None,
    };
    // `null` carries no information, so it counts as not sent.
    let raw = source
        .and_then(|claims| attr.claim.get(claims))
        .filter(|v| !v.is_null());
    let Some(raw) = raw else {
        if must_have {
            return Err(MappingError::MissingClaim {
                upstream: upstream.to_owned(),
                location: attr.source,
                claim: attr.claim.canonical(),
            });
        }
        return Ok(AttrValue {
            value: None,
            keep: attr.on_missing == OnMissing::Keep,
        });
    };
    match coerce(attr.ty, raw) {
        Ok(value) => Ok(AttrValue {
            value: Some(value),
            keep: false,
        }),
        Err(found) if attr.required => Err(MappingError::WrongType {
            upstream: upstream.to_owned(),
            location: attr.source,
            claim: attr.claim.canonical(),
            expected: attr.ty,
            found,
        }),
        Err(found) => {
            warnings.push(type_warning(
                attr.claim.canonical(),
                attr.source,
                attr.ty,
                found,
            ));
            // A value that was sent but is wrong is not "missing": `keep` does not apply.
            Ok(AttrValue {
                value: None,
                keep: false,
            })
        }
    }
}

pub(super) fn type_warning(path: String, source: Source, ty: AttrType, found: &str) -> Warning {
    Warning {
        path,
        message: format!(
            "the {} has {found} where {} (`{ty}`) is expected; value dropped",
            source.describe(),
            ty.describe()
        ),
    }
}

/// Checks `raw` against `ty`, making the few conversions that are safe. Errs with what the value was.
///
/// Strings are never turned into numbers or booleans: `"true"` for `email_verified` would otherwise
/// claim a verification the upstream never made.
pub(crate) fn coerce(ty: AttrType, raw: &Value) -> Result<Cow<'_, Value>, &'static str> {
    let fits = match ty {
        AttrType::Any => true,
        AttrType::String => raw.is_string(),
        AttrType::Number => raw.is_number(),
        AttrType::Boolean => raw.is_boolean(),
        AttrType::Object => raw.is_object(),
        AttrType::Integer => {
            if raw.is_i64() || raw.is_u64() {
                true
            } else if let Some(f) = raw.as_f64() {
                // 2^63: past it an integer-valued float no longer fits an i64.
                const LIMIT: f64 = 9_223_372_036_854_775_808.0;
                if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
                    return Ok(Cow::Owned(Value::from(f as i64)));
                }
                return Err("a number with a fractional part");
            } else {
                false
            }
        }
        AttrType::StringArray => match raw {
            Value::String(_) => return Ok(Cow::Owned(Value::Array(vec![raw.clone()]))),
            Value::Array(items) if items.iter().all(Value::is_string) => true,
            Value::Array(_) => return Err("a list with items that are not strings"),
            _ => false,
        },
    };
    if fits {
        Ok(Cow::Borrowed(raw))
    } else {
        Err(describe_json(raw))
    }
}

/// Absent, `null`, or an empty string, list or object.
pub(super) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}
