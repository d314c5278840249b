//! A decision on the consent page, worked out without HTTP: from the plan and what the user
//! chose, which scopes are allowed and denied, what the grant becomes, the record that proves
//! it, and which requested scopes the code releases.

use crate::claims::ScopeCatalog;
use crate::store::{ConsentMethod, ConsentRecord, Grant};

use super::{ConsentPlan, Receipt, apply};

/// The button the user pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Allow,
    Deny,
}

impl Choice {
    /// The form's `decision` value; anything else is no choice.
    pub fn parse(decision: &str) -> Option<Choice> {
        match decision {
            "allow" => Some(Choice::Allow),
            "deny" => Some(Choice::Deny),
            _ => None,
        }
    }
}

/// What a choice on the consent page means for the scopes still needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentDecision {
    pub choice: Choice,
    /// Needed scopes the user allowed: every required one, and the optional ones checked.
    pub allowed: Vec<String>,
    /// Needed scopes the user refused: the optional ones left unchecked, or all on a deny.
    pub denied: Vec<String>,
    /// The requested scopes the code releases, in the order requested: those granted before
    /// and those allowed now. Empty on a deny.
    pub released: Vec<String>,
}

impl ConsentDecision {
    /// Decides the scopes `plan` still needs. `checked` are the optional scopes the user left
    /// ticked; `is_optional` tells a scope the user may untick from one they may not.
    pub fn new(
        choice: Choice,
        requested: &[String],
        plan: &ConsentPlan,
        checked: &[String],
        is_optional: impl Fn(&str) -> bool,
    ) -> ConsentDecision {
        match choice {
            Choice::Allow => {
                let (allowed, denied): (Vec<String>, Vec<String>) = plan
                    .needed
                    .iter()
                    .cloned()
                    .partition(|s| !is_optional(s) || checked.contains(s));
                let released = requested
                    .iter()
                    .filter(|s| plan.granted.contains(s) || allowed.contains(s))
                    .cloned()
                    .collect();
                ConsentDecision {
                    choice,
                    allowed,
                    denied,
                    released,
                }
            }
            Choice::Deny => ConsentDecision {
                choice,
                allowed: Vec::new(),
                denied: plan.needed.clone(),
                released: Vec::new(),
            },
        }
    }

    /// The grant to store: an allow adds what was allowed (and drops what was refused); a deny
    /// leaves the grant as it was.
    pub fn grant_after(
        &self,
        previous: Option<&Grant>,
        sub: &str,
        client_id: &str,
        catalog: &ScopeCatalog,
        now: i64,
    ) -> Option<Grant> {
        match self.choice {
            Choice::Allow => Some(apply(
                previous,
                sub,
                client_id,
                &self.allowed,
                &self.denied,
                catalog,
                now,
            )),
            Choice::Deny => previous.cloned(),
        }
    }

    /// The consent record of this decision, made on the page shown in `locale`.
    pub fn record(
        &self,
        sub: &str,
        client_id: &str,
        catalog: &ScopeCatalog,
        locale: &str,
        now: i64,
    ) -> ConsentRecord {
        Receipt {
            sub,
            client_id,
            allowed: &self.allowed,
            denied: &self.denied,
            method: ConsentMethod::Page,
            locale,
            still_served: &[],
            now,
        }
        .record(catalog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn plan(granted: &[&str], needed: &[&str]) -> ConsentPlan {
        ConsentPlan {
            granted: s(granted),
            needed: s(needed),
        }
    }

    fn optional(scope: &str) -> bool {
        matches!(scope, "profile" | "phone")
    }

    #[test]
    fn only_allow_and_deny_are_choices() {
        assert_eq!(Choice::parse("allow"), Some(Choice::Allow));
        assert_eq!(Choice::parse("deny"), Some(Choice::Deny));
        assert_eq!(Choice::parse("Allow"), None);
        assert_eq!(Choice::parse(""), None);
    }

    #[test]
    fn allowing_keeps_required_scopes_and_only_the_optional_ones_left_checked() {
        let requested = s(&["openid", "email", "profile", "phone"]);
        let d = ConsentDecision::new(
            Choice::Allow,
            &requested,
            &plan(&["openid"], &["email", "profile", "phone"]),
            &s(&["phone"]),
            optional,
        );
        assert_eq!(d.allowed, s(&["email", "phone"]));
        assert_eq!(d.denied, s(&["profile"]));
        assert_eq!(d.released, s(&["openid", "email", "phone"]));
    }

    #[test]
    fn a_required_scope_cannot_be_unchecked() {
        let d = ConsentDecision::new(
            Choice::Allow,
            &s(&["openid", "email"]),
            &plan(&[], &["openid", "email"]),
            &[],
            optional,
        );
        assert_eq!(d.allowed, s(&["openid", "email"]));
        assert!(d.denied.is_empty());
    }

    #[test]
    fn released_scopes_keep_the_requested_order() {
        let d = ConsentDecision::new(
            Choice::Allow,
            &s(&["email", "openid"]),
            &plan(&["openid"], &["email"]),
            &[],
            optional,
        );
        assert_eq!(d.released, s(&["email", "openid"]));
    }

    #[test]
    fn denying_refuses_every_needed_scope_releases_nothing_and_keeps_the_grant() {
        let c = ScopeCatalog::new(Default::default()).unwrap();
        let before = apply(None, "u", "app", &s(&["openid"]), &[], &c, 1);
        let d = ConsentDecision::new(
            Choice::Deny,
            &s(&["openid", "email"]),
            &plan(&["openid"], &["email"]),
            &s(&["email"]),
            optional,
        );
        assert!(d.allowed.is_empty() && d.released.is_empty());
        assert_eq!(d.denied, s(&["email"]));
        assert_eq!(
            d.grant_after(Some(&before), "u", "app", &c, 2),
            Some(before)
        );
        let rec = d.record("u", "app", &c, "en", 2);
        assert_eq!((rec.allowed.as_str(), rec.denied.as_str()), ("", "email"));
        assert_eq!(rec.method, ConsentMethod::Page);
        assert_eq!(rec.decision, crate::store::ConsentOutcome::Denied);
    }

    #[test]
    fn allowing_adds_the_allowed_scopes_to_the_grant() {
        let c = ScopeCatalog::new(Default::default()).unwrap();
        let before = apply(None, "u", "app", &s(&["openid"]), &[], &c, 1);
        let d = ConsentDecision::new(
            Choice::Allow,
            &s(&["openid", "email"]),
            &plan(&["openid"], &["email"]),
            &[],
            optional,
        );
        let after = d.grant_after(Some(&before), "u", "app", &c, 2).unwrap();
        assert_eq!(after.scopes, "email openid");
        assert_eq!((after.granted_at, after.updated_at), (1, 2));
    }
}
