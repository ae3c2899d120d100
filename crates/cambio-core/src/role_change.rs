//! What a configuration change hands out: the roles that someone could hold after the change
//! and could not hold before it. The admin API's escalation guard asks this of every change
//! that can alter the roles anyone ends up with, and refuses the change unless the caller may
//! grant every role in the answer.
//!
//! The answers are upper bounds, computed on the role graph rather than per user: a role
//! counts as gained when the change makes it reachable through the path it touches, even if
//! some holder already had it another way. A bound that is too large only ever refuses an
//! administrator who could not grant the role anyway.

use std::collections::BTreeSet;

use crate::realm::RealmSnapshot;

/// One change to the paths through which roles reach principals.
#[derive(Debug, Clone, Copy)]
pub enum RoleChange<'a> {
    /// A user's or service account's direct role mappings (role ids).
    UserMappings {
        before: &'a [String],
        after: &'a [String],
    },
    /// The composites of one role (role ids): everyone holding `role`, directly or through
    /// another composite, default roles included, gets what it newly contains.
    Composites { role: &'a str, after: &'a [String] },
    /// The realm's default roles (realm role names): every user gets them.
    DefaultRoles {
        before: &'a [String],
        after: &'a [String],
    },
    /// The roles a client's tokens may carry beyond its own (scope mappings, role ids).
    ScopeMappings {
        before: &'a [String],
        after: &'a [String],
    },
    /// The realm roles an identity provider puts in the tokens of the users it signs in
    /// (realm role names).
    ProviderMappings {
        before: &'a [String],
        after: &'a [String],
    },
    /// A user's group memberships (group ids): the roles of the groups joined and of every
    /// group above them.
    GroupMembership {
        before: &'a [String],
        after: &'a [String],
    },
    /// A group's role mappings (role ids): every member of the group or of a group below it
    /// gets what they newly reach.
    GroupMappings {
        before: &'a [String],
        after: &'a [String],
    },
    /// A group placed under another parent (None: made top-level): the members of the group
    /// and of every group below it get the roles of the new ancestors.
    GroupParent {
        group: &'a str,
        parent: Option<&'a str>,
    },
}

impl RealmSnapshot {
    /// The role ids a change makes newly reachable (see the module documentation).
    pub fn roles_gained<'a>(&'a self, change: RoleChange<'a>) -> BTreeSet<String> {
        let by_id = |ids: &'a [String]| ids.iter().map(String::as_str).collect::<Vec<&'a str>>();
        let by_name = |names: &'a [String]| {
            names
                .iter()
                .filter_map(|name| self.realm_role_id(name))
                .collect::<Vec<&str>>()
        };
        let (before, after) = match change {
            RoleChange::UserMappings { before, after }
            | RoleChange::ScopeMappings { before, after } => (
                self.role_closure(by_id(before), None),
                self.role_closure(by_id(after), None),
            ),
            RoleChange::DefaultRoles { before, after }
            | RoleChange::ProviderMappings { before, after } => (
                self.role_closure(by_name(before), None),
                self.role_closure(by_name(after), None),
            ),
            RoleChange::GroupMappings { before, after } => (
                self.role_closure(by_id(before), None),
                self.role_closure(by_id(after), None),
            ),
            RoleChange::GroupMembership { before, after } => (
                self.role_closure(self.roles_through_groups(by_id(before)), None),
                self.role_closure(self.roles_through_groups(by_id(after)), None),
            ),
            RoleChange::GroupParent { group, parent } => {
                let own = self
                    .group(group)
                    .map(|g| by_id(&g.role_ids))
                    .unwrap_or_default();
                let mut after = own.clone();
                after.extend(self.roles_through_groups(parent));
                (
                    self.role_closure(self.roles_through_groups([group]), None),
                    self.role_closure(after, None),
                )
            }
            RoleChange::Composites { role, after } => (
                self.role_closure([role], None),
                self.role_closure([role], Some((role, after))),
            ),
        };
        after.difference(&before).cloned().collect()
    }

    /// Every existing role reachable from `start` through composites, `start` included.
    /// `replaced` reads one role's composites as the given list instead of the stored one,
    /// to see the graph as a change would leave it. Cycles are harmless; unknown ids are
    /// skipped.
    pub fn role_closure<'s>(
        &'s self,
        start: impl IntoIterator<Item = &'s str>,
        replaced: Option<(&'s str, &'s [String])>,
    ) -> BTreeSet<String> {
        let mut pending: Vec<&str> = start.into_iter().collect();
        let mut found = BTreeSet::new();
        while let Some(id) = pending.pop() {
            let Some(role) = self.role(id) else {
                continue;
            };
            if !found.insert(role.id.clone()) {
                continue;
            }
            let composites = match replaced {
                Some((replaced_id, list)) if replaced_id == id => list,
                _ => role.composites.as_slice(),
            };
            pending.extend(composites.iter().map(String::as_str));
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Realm, Role};

    fn role(id: &str, name: &str, composites: &[&str]) -> Role {
        Role {
            id: id.into(),
            name: name.into(),
            composites: composites.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// `admin` is administrative; `bundle` contains `reader`; `loop-a` and `loop-b` contain
    /// each other; `default` is the realm's default role.
    fn snapshot() -> RealmSnapshot {
        let roles = vec![
            role("r-admin", "admin", &[]),
            role("r-reader", "reader", &[]),
            role("r-bundle", "bundle", &["r-reader"]),
            role("r-loop-a", "loop-a", &["r-loop-b"]),
            role("r-loop-b", "loop-b", &["r-loop-a"]),
            role("r-default", "default", &[]),
        ];
        let realm = Realm {
            default_roles: vec!["default".into()],
            ..Default::default()
        };
        RealmSnapshot::new(realm, "http://x/realms/r".into(), vec![], roles, vec![])
    }

    fn group(id: &str, parent: Option<&str>, roles: &[&str]) -> crate::model::Group {
        crate::model::Group {
            id: id.into(),
            name: id.into(),
            parent_id: parent.map(String::from),
            role_ids: ids(roles),
            ..Default::default()
        }
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn check(change: RoleChange<'_>, expected: &[&str]) {
        let gained = snapshot().roles_gained(change);
        assert_eq!(
            gained.iter().map(String::as_str).collect::<Vec<_>>(),
            expected,
            "{change:?}"
        );
    }

    #[test]
    fn gains_of_each_kind_of_change() {
        let none: Vec<String> = vec![];
        let bundle = ids(&["r-bundle"]);
        let bundle_and_admin = ids(&["r-bundle", "r-admin"]);
        let reader = ids(&["r-reader"]);
        let admin_name = ids(&["admin"]);
        let default_name = ids(&["default"]);
        let both_names = ids(&["default", "admin"]);
        let unknown = ids(&["r-deleted"]);
        let with_admin = ids(&["r-reader", "r-admin"]);
        let back_to_a = ids(&["r-loop-a", "r-admin"]);

        // A mapping hands out the role and everything it contains.
        check(
            RoleChange::UserMappings {
                before: &none,
                after: &bundle,
            },
            &["r-bundle", "r-reader"],
        );
        // Already reachable: nothing new.
        check(
            RoleChange::UserMappings {
                before: &bundle,
                after: &reader,
            },
            &[],
        );
        check(
            RoleChange::UserMappings {
                before: &bundle,
                after: &bundle_and_admin,
            },
            &["r-admin"],
        );
        // Mappings to roles that do not exist hand out nothing.
        check(
            RoleChange::UserMappings {
                before: &none,
                after: &unknown,
            },
            &[],
        );
        // A composite gains what the new list reaches and the old did not.
        check(
            RoleChange::Composites {
                role: "r-bundle",
                after: &with_admin,
            },
            &["r-admin"],
        );
        // Through a cycle: loop-b now also reaches admin, via loop-a.
        check(
            RoleChange::Composites {
                role: "r-loop-b",
                after: &back_to_a,
            },
            &["r-admin"],
        );
        check(
            RoleChange::DefaultRoles {
                before: &default_name,
                after: &both_names,
            },
            &["r-admin"],
        );
        check(
            RoleChange::ProviderMappings {
                before: &none,
                after: &admin_name,
            },
            &["r-admin"],
        );
        check(
            RoleChange::ScopeMappings {
                before: &reader,
                after: &bundle,
            },
            &["r-bundle"],
        );
        check(
            RoleChange::GroupMappings {
                before: &reader,
                after: &with_admin,
            },
            &["r-admin"],
        );
    }

    #[test]
    fn gains_through_groups() {
        let snap = snapshot().with_groups(vec![
            group("g-admins", None, &["r-admin"]),
            group("g-staff", None, &["r-bundle"]),
            group("g-team", Some("g-staff"), &[]),
            group("g-ops", Some("g-admins"), &[]),
        ]);
        let gained = |change| -> Vec<String> { snap.roles_gained(change).into_iter().collect() };
        let none: Vec<String> = vec![];
        let team = ids(&["g-team"]);
        let ops = ids(&["g-ops"]);
        let staff = ids(&["g-staff"]);
        // Joining a subgroup hands out what every group above it carries.
        assert_eq!(
            gained(RoleChange::GroupMembership {
                before: &none,
                after: &ops,
            }),
            ["r-admin"]
        );
        assert_eq!(
            gained(RoleChange::GroupMembership {
                before: &staff,
                after: &team,
            }),
            Vec::<String>::new()
        );
        // Moving a group under another parent hands out the new parent's roles.
        assert_eq!(
            gained(RoleChange::GroupParent {
                group: "g-team",
                parent: Some("g-admins"),
            }),
            ["r-admin"]
        );
        assert_eq!(
            gained(RoleChange::GroupParent {
                group: "g-ops",
                parent: None,
            }),
            Vec::<String>::new()
        );
    }
}
