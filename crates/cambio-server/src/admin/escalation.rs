//! The escalation guard: one rule for every path to roles.
//!
//! An administrator may only cause someone to receive roles it could grant itself. Every
//! stored change that can alter the roles anyone ends up with (a user's or service account's
//! mappings and group memberships, a role's composites, the realm's default roles, a client's
//! scope mappings, an identity provider's role mappings, a group's mappings, parent or
//! deletion) is written through [`AppState`] functions that accept
//! only an [`Approved`] value, and the only ways to make one are the `approve_*` functions
//! below, which compute what the change hands out (`cambio_core::role_change`) and refuse it
//! with 403 unless the caller may grant every role in it. A new endpoint cannot store such a
//! change without passing here.
//!
//! [`Approved::by_system`] is for writes no administrator asks for: the first-start bootstrap,
//! the operator's `cambio realm import`, a realm created from a representation by a `master`
//! administrator (who may grant everything), first-use provisioning of external users
//! (which maps no role itself; the provider's mappings were approved when it was stored), and
//! the rehash of an imported password hash after a successful login (the hash alone changes), and
//! the users whose memberships an approved group removal ends (they only lose roles).
//!
//! What an administrator "may grant" follows Keycloak: roles that confer no administration are
//! grantable by whoever may manage the thing being changed; the `realm-management` client's
//! roles only by an administrator holding them now (or `realm-admin`); the `master` realm's
//! `admin` role only by a `master` administrator. Composites are followed, so a harmless-looking
//! role that contains an administrative one is administrative.

use std::ops::Deref;

use cambio_core::federation::{IdentityProvider, ProviderTrust};
use cambio_core::model::{Client, Group, Realm, Role, User};
use cambio_core::role_change::RoleChange;

use super::{Admin, forbidden};
use crate::bootstrap::{ADMIN_ROLE, MASTER, REALM_MANAGEMENT};
use crate::error::ApiResult;
use crate::state::{GroupRemoval, RealmRuntime};

/// A value that passed the escalation guard, ready to be stored.
#[derive(Debug, Clone)]
pub struct Approved<T>(T);

impl<T> Approved<T> {
    /// A write no administrator asked for (see the module documentation for the list).
    pub fn by_system(value: T) -> Self {
        Approved(value)
    }
}

impl<T> Deref for Approved<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A user (or service account) as created or changed: the mappings it gains, and the roles
/// of the groups it joins (with every group above them), must be grantable by the caller.
pub fn approve_user(
    admin: &Admin,
    rt: &RealmRuntime,
    before: Option<&User>,
    after: User,
) -> ApiResult<Approved<User>> {
    let mappings = RoleChange::UserMappings {
        before: before.map(|user| user.role_ids.as_slice()).unwrap_or(&[]),
        after: &after.role_ids,
    };
    let membership = RoleChange::GroupMembership {
        before: before.map(|user| user.groups.as_slice()).unwrap_or(&[]),
        after: &after.groups,
    };
    let mut gained = rt.snapshot.roles_gained(mappings);
    gained.extend(rt.snapshot.roles_gained(membership));
    ensure_grantable(admin, rt, gained)?;
    Ok(Approved(after))
}

/// A group as created or changed. A change to a group that confers roles the caller could
/// not grant is refused outright (as a change to a user holding such roles is): renaming,
/// moving or unmapping it would take those roles from its members. Then whatever the change
/// hands out must be grantable: roles newly mapped to the group, and the roles of a new
/// parent and the groups above it, which the members of the group and of its subgroups get.
pub fn approve_group(
    admin: &Admin,
    rt: &RealmRuntime,
    before: Option<&Group>,
    after: Group,
) -> ApiResult<Approved<Group>> {
    if let Some(before) = before {
        ensure_may_manage_groups(admin, rt, [before.id.as_str()])?;
    }
    let mappings = RoleChange::GroupMappings {
        before: before.map(|g| g.role_ids.as_slice()).unwrap_or(&[]),
        after: &after.role_ids,
    };
    let mut gained = rt.snapshot.roles_gained(mappings);
    let moved = before.is_none_or(|b| b.parent_id != after.parent_id);
    if moved {
        let parent = after.parent_id.as_deref();
        match before {
            Some(_) => gained.extend(rt.snapshot.roles_gained(RoleChange::GroupParent {
                group: &after.id,
                parent,
            })),
            // A new group has no members yet; counting its parent's roles anyway keeps the
            // bound an upper one whatever the group is given later.
            None => gained.extend(
                rt.snapshot
                    .role_closure(rt.snapshot.roles_through_groups(parent), None),
            ),
        }
    }
    ensure_grantable(admin, rt, gained)?;
    Ok(Approved(after))
}

/// Deleting a group deletes the groups below it and every membership of them: the members
/// lose roles. Like a change, it needs the right to grant everything those groups confer.
pub fn approve_group_removal(
    admin: &Admin,
    rt: &RealmRuntime,
    group: &Group,
) -> ApiResult<Approved<GroupRemoval>> {
    let group_ids: Vec<String> = rt
        .snapshot
        .group_subtree(&group.id)
        .iter()
        .map(|g| g.id.clone())
        .collect();
    ensure_may_manage_groups(admin, rt, group_ids.iter().map(String::as_str))?;
    Ok(Approved(GroupRemoval { group_ids }))
}

/// Refuses to let `admin` change groups that confer (themselves or through a group above
/// them) roles it could not grant.
fn ensure_may_manage_groups<'a>(
    admin: &Admin,
    rt: &'a RealmRuntime,
    ids: impl IntoIterator<Item = &'a str>,
) -> ApiResult<()> {
    let conferred: Vec<String> = rt
        .snapshot
        .roles_through_groups(ids)
        .into_iter()
        .map(str::to_owned)
        .collect();
    ensure_grantable(admin, rt, conferred)
}

/// A role as created or changed: whatever its composites newly contain must be grantable.
pub fn approve_role(admin: &Admin, rt: &RealmRuntime, after: Role) -> ApiResult<Approved<Role>> {
    let gained = if rt.snapshot.role(&after.id).is_some() {
        rt.snapshot.roles_gained(RoleChange::Composites {
            role: &after.id,
            after: &after.composites,
        })
    } else {
        rt.snapshot
            .role_closure(after.composites.iter().map(String::as_str), None)
    };
    ensure_grantable(admin, rt, gained)?;
    Ok(Approved(after))
}

/// Realm settings: new default roles reach every user, so they must be grantable.
pub fn approve_realm(admin: &Admin, rt: &RealmRuntime, after: Realm) -> ApiResult<Approved<Realm>> {
    let change = RoleChange::DefaultRoles {
        before: &rt.snapshot.realm.default_roles,
        after: &after.default_roles,
    };
    ensure_grantable(admin, rt, rt.snapshot.roles_gained(change))?;
    Ok(Approved(after))
}

/// A client as created or changed: roles added to its scope mappings must be grantable.
pub fn approve_client(
    admin: &Admin,
    rt: &RealmRuntime,
    before: Option<&Client>,
    after: Client,
) -> ApiResult<Approved<Client>> {
    let change = RoleChange::ScopeMappings {
        before: before.map(|c| c.scope_role_ids.as_slice()).unwrap_or(&[]),
        after: &after.scope_role_ids,
    };
    ensure_grantable(admin, rt, rt.snapshot.roles_gained(change))?;
    Ok(Approved(after))
}

/// An identity provider as created or changed: the realm roles its mappings put in the tokens
/// of the users it signs in must be grantable.
pub fn approve_provider(
    admin: &Admin,
    rt: &RealmRuntime,
    before: Option<&IdentityProvider>,
    after: IdentityProvider,
) -> ApiResult<Approved<IdentityProvider>> {
    let mapped = |idp: Option<&IdentityProvider>| -> Vec<String> {
        idp.and_then(|idp| ProviderTrust::from_provider(idp).ok())
            .map(|trust| trust.role_mappings.into_iter().map(|(_, to)| to).collect())
            .unwrap_or_default()
    };
    let (before_roles, after_roles) = (mapped(before), mapped(Some(&after)));
    let change = RoleChange::ProviderMappings {
        before: &before_roles,
        after: &after_roles,
    };
    ensure_grantable(admin, rt, rt.snapshot.roles_gained(change))?;
    Ok(Approved(after))
}

/// Refuses to let `admin` act on a principal that holds roles it could not grant: changing
/// its password, links or credentials, or reading its client's secret, would be a way to
/// become it.
pub fn ensure_may_act_as(admin: &Admin, rt: &RealmRuntime, principal: &User) -> ApiResult<()> {
    ensure_grantable(admin, rt, rt.snapshot.effective_role_ids(principal))
}

/// Whether `admin` may hand out every role of `ids` and everything they contain.
pub fn may_grant(admin: &Admin, rt: &RealmRuntime, ids: impl IntoIterator<Item = String>) -> bool {
    if admin.superuser {
        return true;
    }
    let ids: Vec<String> = ids.into_iter().collect();
    rt.snapshot
        .role_closure(ids.iter().map(String::as_str), None)
        .iter()
        .filter_map(|id| rt.snapshot.role(id))
        .all(|role| holds(admin, rt, role))
}

fn ensure_grantable(
    admin: &Admin,
    rt: &RealmRuntime,
    ids: impl IntoIterator<Item = String>,
) -> ApiResult<()> {
    if may_grant(admin, rt, ids) {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// Whether `admin` holds `role` as far as administration is concerned: a role that confers
/// no administration counts as held.
fn holds(admin: &Admin, rt: &RealmRuntime, role: &Role) -> bool {
    if admin.superuser {
        return true;
    }
    match &role.client_id {
        None => !(rt.name() == MASTER && role.name == ADMIN_ROLE),
        Some(client) if is_management_client(rt, client) => {
            admin.roles.contains("realm-admin") || admin.roles.contains(&role.name)
        }
        Some(_) => true,
    }
}

pub fn is_management_client(rt: &RealmRuntime, client_uuid: &str) -> bool {
    rt.snapshot
        .client(client_uuid)
        .is_some_and(|c| c.client_id == REALM_MANAGEMENT)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The guard holds by construction only while role-affecting objects are written nowhere
    /// but through `AppState`'s functions that take [`super::Approved`]: no other file may
    /// hand such an object to the store's raw writes.
    #[test]
    fn role_affecting_objects_are_written_only_through_approved_values() {
        const GUARDED_KINDS: [&str; 6] = [
            "KIND_USER",
            "KIND_ROLE",
            "KIND_REALM",
            "KIND_CLIENT,",
            "KIND_IDP",
            "KIND_GROUP",
        ];
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut pending = vec![src.clone()];
        let mut offences = Vec::new();
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                    continue;
                }
                let in_state = path == src.join("state.rs") || path.starts_with(src.join("state"));
                if path.extension().is_none_or(|e| e != "rs") || in_state {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                for (n, line) in lines.iter().enumerate() {
                    if !(line.contains("insert_object(") || line.contains("update_object(")) {
                        continue;
                    }
                    // The object being written is built within the next few lines.
                    let call = lines[n..lines.len().min(n + 8)].join(" ");
                    if let Some(kind) = GUARDED_KINDS.iter().find(|k| call.contains(*k)) {
                        offences.push(format!("{}:{} writes {kind}", path.display(), n + 1));
                    }
                }
            }
        }
        assert!(offences.is_empty(), "{offences:#?}");
    }
}
