//! Groups in realm representations: `groups` (nested through `subGroups`, with `realmRoles`,
//! `clientRoles` and `attributes`) and each user's `groups` (paths).

use std::collections::{BTreeMap, HashMap};

use cambio_core::groups::MAX_GROUP_DEPTH;
use cambio_core::model::{Group, User};
use cambio_core::realm::RealmSnapshot;
use cambio_proto::admin::{GroupRep, UserRep};

use super::{ClientIndex, RealmIoError, RoleTable, invalid, resolve_roles};
use crate::state::RealmRuntime;

/// The groups of a representation, parents before children, and their ids by path.
pub(crate) struct ImportedGroups {
    pub groups: Vec<Group>,
    pub by_path: HashMap<String, String>,
}

/// Reads the groups of a full realm import. Role names resolve like users' role mappings.
pub(super) fn from_rep(
    reps: &[GroupRep],
    table: &RoleTable,
    clients: &ClientIndex,
) -> Result<ImportedGroups, RealmIoError> {
    build(reps, |realm, client| {
        resolve_roles(table, clients, realm, client)
    })
}

/// Reads nested group representations as top-level groups, resolving each group's
/// `realmRoles` and `clientRoles` through `roles`. Siblings may not share a name, no two
/// groups may share a path, ids may not repeat, and a hierarchy has at most
/// `MAX_GROUP_DEPTH` levels.
pub(crate) fn build<E: From<RealmIoError>>(
    reps: &[GroupRep],
    mut roles: impl FnMut(
        Option<&Vec<String>>,
        Option<&BTreeMap<String, Vec<String>>>,
    ) -> Result<Vec<String>, E>,
) -> Result<ImportedGroups, E> {
    let mut out = ImportedGroups {
        groups: Vec::new(),
        by_path: HashMap::new(),
    };
    let mut pending: Vec<(&GroupRep, Option<String>, String)> = reps
        .iter()
        .rev()
        .map(|rep| (rep, None, String::new()))
        .collect();
    while let Some((rep, parent_id, parent_path)) = pending.pop() {
        let name = rep
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| E::from(invalid("Group name is missing")))?;
        // A `/` in a name is allowed, as in Keycloak; a path that would then name two groups
        // is refused below.
        if name.chars().any(char::is_control) {
            return Err(invalid(format!("Invalid group name {name}")).into());
        }
        let path = format!("{parent_path}/{name}");
        if path.matches('/').count() > MAX_GROUP_DEPTH {
            return Err(invalid(format!(
                "A group hierarchy may have at most {MAX_GROUP_DEPTH} levels"
            ))
            .into());
        }
        let id = rep
            .id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(crate::random::uuid);
        if let Some(other) = out.by_path.get(&path) {
            let sibling = out.groups.iter().any(|g| &g.id == other && g.name == name);
            return Err(RealmIoError::Conflict(if sibling {
                format!("Sibling group named '{name}' already exists.")
            } else {
                format!("A group with path '{path}' already exists.")
            })
            .into());
        }
        if out.groups.iter().any(|g| g.id == id) {
            return Err(invalid(format!("Duplicate group id {id}")).into());
        }
        let role_ids = roles(rep.realm_roles.as_ref(), rep.client_roles.as_ref())?;
        out.by_path.insert(path.clone(), id.clone());
        out.groups.push(Group {
            id: id.clone(),
            name: name.to_owned(),
            parent_id,
            attributes: rep.attributes.clone().unwrap_or_default(),
            role_ids,
        });
        for child in rep.sub_groups.iter().flatten().rev() {
            pending.push((child, Some(id.clone()), path.clone()));
        }
    }
    Ok(out)
}

/// A user's memberships by path; an unknown path fails the import, as in Keycloak.
pub(super) fn memberships(
    rep: &UserRep,
    groups: &ImportedGroups,
) -> Result<Vec<String>, RealmIoError> {
    let mut ids: Vec<String> = Vec::new();
    for path in rep.groups.iter().flatten() {
        let path = format!("/{}", path.trim_start_matches('/'));
        // A Keycloak started with slash escaping writes a `/` inside a name as `~/`.
        let id = groups
            .by_path
            .get(&path)
            .or_else(|| groups.by_path.get(&path.replace("~/", "/")))
            .ok_or_else(|| invalid(format!("Group {path} not found")))?;
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    Ok(ids)
}

/// The realm's groups as nested representations, ordered by name at each level.
pub(super) fn to_rep(rt: &RealmRuntime) -> Vec<GroupRep> {
    fn one(rt: &RealmRuntime, group: &Group) -> GroupRep {
        let mut rep = crate::admin::groups::group_rep(rt, group, false, None);
        rep.sub_groups = Some(
            rt.snapshot
                .subgroups(Some(&group.id))
                .map(|child| one(rt, child))
                .collect(),
        );
        rep
    }
    rt.snapshot.subgroups(None).map(|g| one(rt, g)).collect()
}

/// A user's group paths, ordered.
pub(super) fn paths_of(snapshot: &RealmSnapshot, user: &User) -> Vec<String> {
    let mut paths: Vec<String> = user
        .groups
        .iter()
        .filter_map(|id| snapshot.group_path(id).map(str::to_owned))
        .collect();
    paths.sort();
    paths.dedup();
    paths
}
