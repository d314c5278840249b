//! Computed mappings and transforms (issue 18): evaluating a mapping's `expr` and running its
//! `transform` steps, with the step-by-step record a preview shows.

use std::borrow::Cow;

use serde_json::Value;

use super::read::AttrValue;
use crate::claims::context::Step;
use crate::claims::transform;
use crate::claims::{
    AccessTokenClaims, Expression, Mapping, MappingError, OnMissing, Scope, Source, UpstreamClaims,
    Warning,
};

/// The upstream's claims as an expression reads them; absent ones are empty maps.
pub(super) fn claims_scope(claims: &UpstreamClaims) -> Scope {
    let mut scope = Scope::new();
    scope.set("id_token", Some(&claims.id_token));
    scope.set("userinfo", claims.userinfo.as_ref());
    let access_token = match &claims.access_token {
        AccessTokenClaims::Jwt(payload) => Some(payload),
        _ => None,
    };
    scope.set("access_token", access_token);
    scope
}

/// What each step of a login's mappings made of its input, kept only for a preview.
pub(super) struct Trace(pub(super) Option<Vec<Step>>);

impl Trace {
    /// Records a step for the preview; the output is only made when one is recorded.
    pub(super) fn record(
        &mut self,
        mapping: &Mapping,
        step: impl FnOnce() -> String,
        input: Value,
        output: impl FnOnce() -> Value,
    ) {
        if let Some(steps) = &mut self.0 {
            steps.push(Step {
                mapping: mapping.describe(),
                step: step(),
                input,
                output: output(),
            });
        }
    }

    /// Runs a mapping's transforms over `value`; an error is a warning and leaves nothing.
    fn transform(&mut self, mapping: &Mapping, value: Value) -> Result<Option<Value>, String> {
        transform::run(&mapping.transform, value, |step, input, out| {
            if self.0.is_some() {
                self.record(
                    mapping,
                    || step.describe(),
                    input.clone(),
                    || match out {
                        Ok(v) => v.clone().unwrap_or(Value::Null),
                        Err(e) => Value::String(e.clone()),
                    },
                );
            }
        })
    }

    /// One attribute's value after the mapping's transforms.
    pub(super) fn transformed<'v>(
        &mut self,
        mapping: &Mapping,
        source: Source,
        value: &AttrValue<'v>,
        warnings: &mut Vec<Warning>,
    ) -> AttrValue<'v> {
        let Some(v) = &value.value else {
            return AttrValue {
                value: None,
                keep: value.keep,
            };
        };
        match self.transform(mapping, v.clone().into_owned()) {
            Ok(v) => AttrValue {
                value: v.map(Cow::Owned),
                keep: false,
            },
            Err(e) => {
                let message = format!(
                    "the {}'s value could not be transformed ({e}); value dropped",
                    source.describe()
                );
                warnings.push(Warning {
                    path: mapping.to.canonical(),
                    message,
                });
                AttrValue {
                    value: None,
                    keep: false,
                }
            }
        }
    }

    /// Whether a mapping's `when` lets it apply. A condition that cannot be evaluated skips
    /// the mapping with a warning, or fails the login when the mapping has
    /// `on_missing = "fail"`.
    pub(super) fn condition(
        &mut self,
        upstream_id: &str,
        mapping: &Mapping,
        when: &Expression,
        scope: &Scope,
        warnings: &mut Vec<Warning>,
    ) -> Result<bool, MappingError> {
        let holds = when.holds(scope);
        self.record(
            mapping,
            || format!("when {}", when.source()),
            Value::Null,
            || holds.clone().map_or_else(Value::String, Value::Bool),
        );
        match holds {
            Ok(applies) => Ok(applies),
            Err(e) if mapping.on_missing == OnMissing::Fail => Err(MappingError::Computed {
                upstream: upstream_id.to_owned(),
                mapping: mapping.describe(),
                reason: format!("its `when` could not be evaluated: {e}"),
            }),
            Err(e) => {
                warnings.push(Warning {
                    path: mapping.to.canonical(),
                    message: format!("`when` could not be evaluated ({e}); mapping skipped"),
                });
                Ok(false)
            }
        }
    }

    /// The value a computed mapping writes: its expression's result after its transforms. An
    /// error, or `null`, follows the mapping's `on_missing`.
    pub(super) fn compute(
        &mut self,
        upstream_id: &str,
        mapping: &Mapping,
        expr: &Expression,
        scope: &Scope,
        warnings: &mut Vec<Warning>,
    ) -> Result<AttrValue<'static>, MappingError> {
        let result = expr.evaluate(scope);
        self.record(
            mapping,
            || "expr".to_owned(),
            Value::Null,
            || match &result {
                Ok(v) => v.clone(),
                Err(e) => Value::String(e.clone()),
            },
        );
        let value = match result {
            Ok(Value::Null) => Ok(None),
            Ok(v) => self.transform(mapping, v),
            Err(e) => Err(e),
        };
        let reason = match value {
            Ok(Some(v)) => {
                return Ok(AttrValue {
                    value: Some(Cow::Owned(v)),
                    keep: false,
                });
            }
            Ok(None) => None,
            Err(e) => Some(e),
        };
        if mapping.on_missing == OnMissing::Fail {
            return Err(MappingError::Computed {
                upstream: upstream_id.to_owned(),
                mapping: mapping.describe(),
                reason: reason.unwrap_or_else(|| "it came out empty".to_owned()),
            });
        }
        if let Some(reason) = reason {
            let message = format!("the expression could not be computed ({reason}); no value");
            warnings.push(Warning {
                path: mapping.to.canonical(),
                message,
            });
        }
        Ok(AttrValue {
            value: None,
            keep: mapping.on_missing == OnMissing::Keep,
        })
    }
}
