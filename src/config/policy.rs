//! Access policies (issue 18): a client's `access_policy`, a CEL condition over the
//! authentication context, compiled when the configuration is loaded and evaluated at each
//! login and refresh for that client.
//!
//! The condition sees `context` (the login's mapped attributes, as the tokens' claims are
//! released from) and `upstream` (the upstream's id), e.g.
//! `"'herald-admins' in context.groups"`. It must answer `true` to let the user in: `false`,
//! an error (a missing attribute, a wrong type) or anything but a boolean refuses, so a
//! mistake in a policy never lets someone in.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

/// A compiled access policy.
#[derive(Clone)]
pub struct AccessPolicy {
    source: Arc<str>,
    program: Arc<cel::Program>,
}

impl fmt::Debug for AccessPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AccessPolicy").field(&self.source).finish()
    }
}

/// What a policy said of a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused: `false`, or why the condition could not say `true`.
    Refused(String),
}

impl AccessPolicy {
    /// Compiles `source`; the error says where and what is wrong.
    pub fn compile(source: &str) -> Result<Self, String> {
        let program = cel::Program::compile(source).map_err(|e| {
            let text = e.to_string();
            text.lines()
                .next()
                .unwrap_or("not a CEL expression")
                .to_string()
        })?;
        Ok(Self {
            source: source.into(),
            program: Arc::new(program),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the policy for a login through `upstream` whose attributes are `context`.
    pub fn evaluate(&self, context: &Map<String, Value>, upstream: &str) -> Verdict {
        let mut ctx = cel::Context::default();
        if ctx.add_variable("context", context).is_err()
            || ctx.add_variable("upstream", upstream).is_err()
        {
            return Verdict::Refused("the login's context could not be given to the policy".into());
        }
        match self.program.execute(&ctx) {
            Ok(cel::Value::Bool(true)) => Verdict::Allowed,
            Ok(cel::Value::Bool(false)) => Verdict::Refused("the access policy is false".into()),
            Ok(other) => Verdict::Refused(format!(
                "the access policy answered {other:?}, not true or false"
            )),
            Err(e) => Verdict::Refused(format!("the access policy could not be evaluated: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_policy_lets_in_only_on_true() {
        let p = AccessPolicy::compile("'herald-admins' in context.groups && upstream == 'auth0'")
            .unwrap();
        let admin = context(json!({"groups": ["staff", "herald-admins"]}));
        assert_eq!(p.evaluate(&admin, "auth0"), Verdict::Allowed);
        assert!(matches!(p.evaluate(&admin, "okta"), Verdict::Refused(_)));
        let staff = context(json!({"groups": ["staff"]}));
        assert!(matches!(p.evaluate(&staff, "auth0"), Verdict::Refused(_)));
        // No groups at all: an error, which refuses.
        let nobody = context(json!({}));
        assert!(matches!(p.evaluate(&nobody, "auth0"), Verdict::Refused(_)));
        // Not a boolean: refused.
        let number = AccessPolicy::compile("1 + 1").unwrap();
        assert!(matches!(
            number.evaluate(&admin, "auth0"),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn a_syntax_error_is_reported_with_its_place() {
        let err = AccessPolicy::compile("context.groups.exists(g, g ==").unwrap_err();
        assert!(!err.is_empty());
    }
}
