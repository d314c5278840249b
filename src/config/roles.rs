//! Who may do what in Herald's administration: three roles, each a set of permissions, held by
//! a signed-in user through a claim of their authentication context (`[admin] roles`) or by a
//! machine client through a built-in scope (`herald:admin`, `herald:edit`, `herald:read`).
//!
//! | permission | admin | editor | auditor |
//! |---|---|---|---|
//! | read the configuration, the lineage, the audit log | yes | yes | yes |
//! | change upstreams, mappings, scopes, clients | yes | yes | no |
//! | read users, their consents and deliveries | yes | no | yes |
//! | act on users (withdraw, erase, import, link, retry a delivery) and keys | yes | no | no |

use std::fmt;

use serde_json::{Map, Value};

use crate::claims::ClaimPath;

/// The scope that lets a client (by client_credentials) use the admin API as an admin. Built
/// in: a client lists it in `scopes` without defining it, and only a client with
/// `grant_types = ["client_credentials"]` may. The same goes for the two below.
pub const ADMIN_SCOPE: &str = "herald:admin";

/// The scope of the editor role: upstreams, mappings, scopes and clients through the admin API.
pub const EDIT_SCOPE: &str = "herald:edit";

/// The scope of the auditor role: the admin API's reads.
pub const READ_SCOPE: &str = "herald:read";

/// An admin role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read only: the configuration, users and the audit log.
    Auditor,
    /// Upstreams, mappings, scopes and clients; not keys, users or erasure.
    Editor,
    /// Everything.
    Admin,
}

/// What an admin request or page needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ReadConfig,
    EditConfig,
    ReadUsers,
    /// Acting on users and their data, and on keys.
    ManageUsers,
}

impl Role {
    /// Strongest first, so the first one held is the one that counts.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Editor, Role::Auditor];

    pub fn may(self, need: Permission) -> bool {
        match self {
            Role::Admin => true,
            Role::Editor => matches!(need, Permission::ReadConfig | Permission::EditConfig),
            Role::Auditor => matches!(need, Permission::ReadConfig | Permission::ReadUsers),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Auditor => "auditor",
        }
    }

    /// The client_credentials scope that carries this role.
    pub fn scope(self) -> &'static str {
        match self {
            Role::Admin => ADMIN_SCOPE,
            Role::Editor => EDIT_SCOPE,
            Role::Auditor => READ_SCOPE,
        }
    }

    pub fn of_scope(scope: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.scope() == scope)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Permission {
    /// The roles that hold this permission, strongest first.
    pub fn roles(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| r.may(self))
    }

    /// "admin or editor", for a refusal.
    pub fn who(self) -> String {
        let names: Vec<&str> = self.roles().map(Role::as_str).collect();
        names.join(" or ")
    }

    /// The scopes that carry it, for a refusal's description: "herald:admin or herald:edit".
    pub fn scopes(self) -> String {
        let names: Vec<&str> = self.roles().map(Role::scope).collect();
        names.join(" or ")
    }

    /// The least scope that is enough, for RFC 6750 §3's `scope` attribute (which lists the
    /// scopes a request needs, all of them, so alternatives cannot go there).
    pub fn scope(self) -> &'static str {
        self.roles().last().map_or(ADMIN_SCOPE, Role::scope)
    }
}

/// The roles someone holds (a user can be in several groups, a client hold several scopes); a
/// permission is theirs when any of their roles has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleSet(Vec<Role>);

impl RoleSet {
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Self {
        let mut held: Vec<Role> = roles.into_iter().collect();
        held.sort_by(|a, b| b.cmp(a));
        held.dedup();
        RoleSet(held)
    }

    pub fn may(&self, need: Permission) -> bool {
        self.0.iter().any(|r| r.may(need))
    }

    pub fn is_admin(&self) -> bool {
        self.0.contains(&Role::Admin)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// "editor and auditor", strongest first.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.0.iter().map(|r| r.as_str()).collect();
        names.join(" and ")
    }
}

/// Which value of which context claim makes a signed-in user an admin, an editor or an auditor.
#[derive(Debug, Clone)]
pub struct AdminRoles {
    pub claim: ClaimPath,
    /// The value for each role that has one, strongest first.
    pub values: Vec<(Role, String)>,
}

impl AdminRoles {
    /// The roles the context holds: each one whose value the claim equals or, for an array,
    /// contains.
    pub fn of(&self, context: &Map<String, Value>) -> RoleSet {
        let Some(held) = self.claim.get(context) else {
            return RoleSet::default();
        };
        RoleSet::new(
            self.values
                .iter()
                .filter(|(_, value)| match held {
                    Value::String(s) => s == value,
                    Value::Array(items) => items.iter().any(|v| v.as_str() == Some(value)),
                    _ => false,
                })
                .map(|(role, _)| *role),
        )
    }

    /// "groups holding herald-admins (admin), herald-editors (editor)", for a refusal.
    pub fn describe(&self) -> String {
        let each: Vec<String> = self
            .values
            .iter()
            .map(|(role, value)| format!("“{value}” ({role})"))
            .collect();
        format!("“{}” holding {}", self.claim.canonical(), each.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_role_holds_exactly_its_permissions() {
        use Permission::*;
        let table = [
            (Role::Admin, [true, true, true, true]),
            (Role::Editor, [true, true, false, false]),
            (Role::Auditor, [true, false, true, false]),
        ];
        for (role, expected) in table {
            let got = [ReadConfig, EditConfig, ReadUsers, ManageUsers].map(|p| role.may(p));
            assert_eq!(got, expected, "{role}");
        }
        assert_eq!(EditConfig.who(), "admin or editor");
        assert_eq!(ReadUsers.scopes(), "herald:admin or herald:read");
        assert_eq!(ReadUsers.scope(), "herald:read");
        assert_eq!(EditConfig.scope(), "herald:edit");
        assert_eq!(ManageUsers.scope(), "herald:admin");
        assert_eq!(Role::of_scope("herald:edit"), Some(Role::Editor));
        assert_eq!(Role::of_scope("herald:account-link"), None);
    }

    #[test]
    fn every_role_a_context_holds_counts() {
        let roles = AdminRoles {
            claim: ClaimPath::parse("groups").unwrap(),
            values: vec![
                (Role::Admin, "herald-admins".into()),
                (Role::Editor, "herald-editors".into()),
                (Role::Auditor, "herald-auditors".into()),
            ],
        };
        let ctx = |v: Value| json!({ "groups": v }).as_object().unwrap().clone();
        // An editor who is also an auditor may both edit and read users.
        let both = roles.of(&ctx(json!(["herald-auditors", "herald-editors"])));
        assert_eq!(both, RoleSet::new([Role::Editor, Role::Auditor]));
        assert!(both.may(Permission::EditConfig) && both.may(Permission::ReadUsers));
        assert!(!both.may(Permission::ManageUsers) && !both.is_admin());
        assert_eq!(both.names(), "editor and auditor");
        assert_eq!(
            roles.of(&ctx(json!("herald-auditors"))),
            RoleSet::new([Role::Auditor])
        );
        assert!(roles.of(&ctx(json!(["staff"]))).is_empty());
        assert!(roles.of(&ctx(json!(7))).is_empty());
        assert!(roles.of(&Map::new()).is_empty());
    }
}
