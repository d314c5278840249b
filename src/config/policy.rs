//! Access policies (issue 18): a client's `access_policy`, a CEL condition over the
//! authentication context, compiled when the configuration is loaded and evaluated at each
//! login and refresh for that client.
//!
//! The condition sees `context` (the login's mapped attributes, as the tokens' claims are
//! released from) and `upstream` (the upstream's id), e.g.
//! `"'herald-admins' in context.groups"`. It must answer `true` to let the user in: `false`,
//! an error (a missing attribute, a wrong type) or anything but a boolean refuses, so a
//! mistake in a policy never lets someone in.

use serde_json::{Map, Value};

use crate::claims::{Expression, Scope};

/// The variables a policy reads.
const POLICY_VARIABLES: [&str; 2] = ["context", "upstream"];

/// A compiled access policy.
#[derive(Clone, Debug)]
pub struct AccessPolicy(Expression);

/// What a policy said of a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused: `false`, or why the condition could not say `true`.
    Refused(String),
}

impl AccessPolicy {
    /// Compiles `source`; the error says where and what is wrong (an unknown name or function
    /// included).
    pub fn compile(source: &str) -> Result<Self, String> {
        Expression::compile(source, &POLICY_VARIABLES)
            .map(Self)
            .map_err(|e| e.to_string())
    }

    pub fn source(&self) -> &str {
        self.0.source()
    }

    /// Evaluates the policy for a login through `upstream` whose attributes are `context`.
    pub fn evaluate(&self, context: &Map<String, Value>, upstream: &str) -> Verdict {
        let mut scope = Scope::new();
        scope.set("context", Some(context));
        scope.set_str("upstream", upstream);
        match self.0.holds(&scope) {
            Ok(true) => Verdict::Allowed,
            Ok(false) => Verdict::Refused("the access policy is false".into()),
            Err(e) => Verdict::Refused(format!("the access policy could not say true: {e}")),
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
    fn a_syntax_error_or_an_unknown_name_is_reported_with_its_place() {
        let err = AccessPolicy::compile("context.groups.exists(g, g ==").unwrap_err();
        assert!(err.starts_with("line 1, column "), "{err}");
        let err = AccessPolicy::compile("'a' in groups").unwrap_err();
        assert_eq!(
            err,
            "line 1, column 8: unknown name `groups`; the expression can read `context`, `upstream`"
        );
    }
}
