//! Groups in the realm snapshot: their paths and subgroups, and the roles a group confers on
//! its members (its own and those of every group above it, as in Keycloak). Also the claim of
//! the group membership protocol mapper.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use crate::model::{Client, GROUP_MEMBERSHIP_MAPPER, Group, ProtocolMapper, User};
use crate::realm::RealmSnapshot;
use crate::scope::GrantedScope;

/// How many levels a group hierarchy may have. Every walk over a hierarchy (paths, searches,
/// nested representations and their JSON) is then bounded by it, and a realm export of the
/// deepest hierarchy still parses within the JSON reader's nesting limit. The admin API and
/// imports refuse deeper hierarchies; the index leaves out any group deeper than this.
pub const MAX_GROUP_DEPTH: usize = 32;

/// The groups of one realm, indexed. Only groups whose parents lead to the top within
/// [`MAX_GROUP_DEPTH`] levels are kept: a group whose parent is missing, that sits in a loop of
/// parents or too deep (which the admin API never makes, but a damaged document or two nodes
/// moving groups at once could), has no path and confers nothing.
#[derive(Debug, Clone, Default)]
pub struct GroupIndex {
    groups: HashMap<String, Group>,
    paths: HashMap<String, String>,
    by_path: HashMap<String, String>,
    /// Subgroup ids by parent id, and the top-level ids under "", each ordered by name.
    children: HashMap<String, Vec<String>>,
}

impl GroupIndex {
    fn new(groups: Vec<Group>) -> GroupIndex {
        let all: HashMap<&str, &Group> = groups.iter().map(|g| (g.id.as_str(), g)).collect();
        let mut paths: HashMap<String, String> = HashMap::new();
        for group in &groups {
            if let Some(path) = path_of(&all, group) {
                paths.insert(group.id.clone(), path);
            }
        }
        let mut index = GroupIndex::default();
        for group in groups {
            let Some(path) = paths.remove(&group.id) else {
                continue;
            };
            index.by_path.insert(path.clone(), group.id.clone());
            index.paths.insert(group.id.clone(), path);
            let parent = group.parent_id.clone().unwrap_or_default();
            index
                .children
                .entry(parent)
                .or_default()
                .push(group.id.clone());
            index.groups.insert(group.id.clone(), group);
        }
        let names: HashMap<&str, &str> = index
            .groups
            .values()
            .map(|g| (g.id.as_str(), g.name.as_str()))
            .collect();
        for ids in index.children.values_mut() {
            ids.sort_by(|a, b| names.get(a.as_str()).cmp(&names.get(b.as_str())));
        }
        index
    }
}

/// `/top/.../name`, or None when a parent is missing, the parents loop or the group is deeper
/// than [`MAX_GROUP_DEPTH`].
fn path_of(all: &HashMap<&str, &Group>, group: &Group) -> Option<String> {
    let mut names = vec![group.name.as_str()];
    let mut current = group;
    for _ in 0..MAX_GROUP_DEPTH {
        let Some(parent) = &current.parent_id else {
            names.reverse();
            return Some(format!("/{}", names.join("/")));
        };
        current = all.get(parent.as_str())?;
        names.push(current.name.as_str());
    }
    None
}

impl RealmSnapshot {
    /// Adds the realm's groups.
    pub fn with_groups(mut self, groups: Vec<Group>) -> Self {
        self.groups = GroupIndex::new(groups);
        self
    }

    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.groups.get(id)
    }

    pub fn group_path(&self, id: &str) -> Option<&str> {
        self.groups.paths.get(id).map(String::as_str)
    }

    pub fn group_by_path(&self, path: &str) -> Option<&Group> {
        self.groups
            .by_path
            .get(path)
            .and_then(|id| self.groups.groups.get(id))
    }

    /// The subgroups of `parent` (None: the top-level groups), ordered by name.
    pub fn subgroups(&self, parent: Option<&str>) -> impl Iterator<Item = &Group> {
        self.groups
            .children
            .get(parent.unwrap_or(""))
            .into_iter()
            .flatten()
            .filter_map(|id| self.groups.groups.get(id))
    }

    /// Every group, ordered by path.
    pub fn groups(&self) -> Vec<&Group> {
        let mut all: Vec<&Group> = self.groups.groups.values().collect();
        all.sort_by(|a, b| self.group_path(&a.id).cmp(&self.group_path(&b.id)));
        all
    }

    /// The group and every group above it, nearest first (empty for an unknown id).
    pub fn group_and_ancestors(&self, id: &str) -> Vec<&Group> {
        let mut found = Vec::new();
        let mut next = self.group(id);
        // The index holds no loops; the bound only keeps the walk finite whatever happens.
        while let Some(group) = next {
            if found.len() > self.groups.groups.len() {
                break;
            }
            found.push(group);
            next = group.parent_id.as_deref().and_then(|p| self.group(p));
        }
        found
    }

    /// The group and every group below it (empty for an unknown id).
    pub fn group_subtree(&self, id: &str) -> Vec<&Group> {
        let mut found: Vec<&Group> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut pending: Vec<&str> = self.group(id).map(|g| g.id.as_str()).into_iter().collect();
        while let Some(id) = pending.pop() {
            let Some(group) = self.group(id) else {
                continue;
            };
            if !seen.insert(group.id.as_str()) {
                continue;
            }
            found.push(group);
            pending.extend(self.subgroups(Some(id)).map(|g| g.id.as_str()));
        }
        found
    }

    /// How many levels a hierarchy has from the top down to `id` (1 for a top-level group, 0
    /// for None or an unknown id).
    pub fn group_depth(&self, id: Option<&str>) -> usize {
        id.map_or(0, |id| self.group_and_ancestors(id).len())
    }

    /// How many levels the subtree of `id` has (1 for a group without subgroups).
    pub fn group_height(&self, id: &str) -> usize {
        let top = self.group_depth(Some(id));
        self.group_subtree(id)
            .iter()
            .map(|g| self.group_depth(Some(&g.id)) + 1 - top)
            .max()
            .unwrap_or(0)
    }

    /// The first path that `group` (None: a new group) or a group below it would share with
    /// another group if it were named `name` and placed under `parent` (None: the top).
    ///
    /// Group names may hold `/`, and paths do not escape it (as in Keycloak unless it is
    /// started with slash escaping), so `/a/b` could be both `b` under `a` and a top-level
    /// group named `a/b`. Keycloak then resolves a path by trying each split; Cambio refuses
    /// the second such group instead, so that a path (in a token's `groups` claim, a user's
    /// `groups` on import, `group-by-path`) always names exactly one group.
    pub fn path_clash(
        &self,
        group: Option<&str>,
        parent: Option<&str>,
        name: &str,
    ) -> Option<String> {
        let prefix = match parent {
            Some(parent) => self.group_path(parent)?,
            None => "",
        };
        let new_path = format!("{prefix}/{name}");
        let moving = group.map(|id| self.group_subtree(id)).unwrap_or_default();
        let moving_ids: HashSet<&str> = moving.iter().map(|g| g.id.as_str()).collect();
        let old_path = group.and_then(|id| self.group_path(id));
        let mut paths = vec![new_path.clone()];
        if let Some(old_path) = old_path {
            for below in moving.iter().filter(|g| Some(g.id.as_str()) != group) {
                if let Some(rest) = self
                    .group_path(&below.id)
                    .and_then(|p| p.strip_prefix(old_path))
                {
                    paths.push(format!("{new_path}{rest}"));
                }
            }
        }
        paths.into_iter().find(|path| {
            self.groups
                .by_path
                .get(path)
                .is_some_and(|owner| !moving_ids.contains(owner.as_str()))
        })
    }

    /// Whether `group` placed under `parent` would be its own ancestor.
    pub fn would_loop(&self, group: &str, parent: &str) -> bool {
        self.group_and_ancestors(parent)
            .iter()
            .any(|ancestor| ancestor.id == group)
    }

    /// The role ids the groups `ids` confer: each group's mappings and those of every group
    /// above it. Unknown (deleted) groups confer nothing.
    pub fn roles_through_groups<'s>(
        &'s self,
        ids: impl IntoIterator<Item = &'s str>,
    ) -> Vec<&'s str> {
        ids.into_iter()
            .flat_map(|id| self.group_and_ancestors(id))
            .flat_map(|g| g.role_ids.iter().map(String::as_str))
            .collect()
    }

    /// The user's existing groups, as names or as full paths, ordered.
    pub fn group_claim(&self, user: &User, full_path: bool) -> Vec<String> {
        let mut out: Vec<String> = user
            .groups
            .iter()
            .filter_map(|id| {
                let group = self.group(id)?;
                if full_path {
                    self.group_path(id).map(str::to_owned)
                } else {
                    Some(group.name.clone())
                }
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Which token a mapper's claim goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimTarget {
    Access,
    Id,
    Userinfo,
    /// The introspection answer for an access token.
    Introspection,
}

/// Claim names Cambio sets itself; a mapper may not replace them (a token must never say two
/// things under one name).
const RESERVED_CLAIMS: &[&str] = &[
    "exp",
    "iat",
    "nbf",
    "auth_time",
    "jti",
    "iss",
    "aud",
    "sub",
    "typ",
    "azp",
    "client_id",
    "sid",
    "scope",
    "realm_access",
    "resource_access",
    "preferred_username",
    "email",
    "email_verified",
    "name",
    "given_name",
    "family_name",
    "act",
    "exchanged_from",
    "may_act",
    "cnf",
    "nonce",
    "active",
    "token_type",
    "username",
];

/// Whether the mapper writes to `target`. Keycloak's defaults: the access token unless
/// `access.token.claim` says otherwise, the ID token only when `id.token.claim` is true,
/// userinfo when `userinfo.token.claim` is true or, absent, when the ID token gets it, and
/// introspection when `introspection.token.claim` is true or, absent, when the access token
/// gets it.
fn mapper_targets(mapper: &ProtocolMapper, target: ClaimTarget) -> bool {
    let flag = |name: &str| mapper.config.get(name).map(|v| v == "true");
    match target {
        ClaimTarget::Access => flag("access.token.claim").unwrap_or(true),
        ClaimTarget::Id => flag("id.token.claim").unwrap_or(false),
        ClaimTarget::Userinfo => {
            flag("userinfo.token.claim").unwrap_or_else(|| flag("id.token.claim").unwrap_or(false))
        }
        ClaimTarget::Introspection => flag("introspection.token.claim")
            .unwrap_or_else(|| mapper_targets(mapper, ClaimTarget::Access)),
    }
}

/// The claims protocol mappers add for one token: the mappers of the client the token is
/// issued to and of the client scopes granted. Only the group membership mapper is
/// implemented; its claim lists the user's groups (`full.path` true: their paths). A dotted
/// claim name nests (`a.b` is `{"a": {"b": ...}}`), as in Keycloak.
pub fn mapped_claims(
    realm: &RealmSnapshot,
    client: &Client,
    scope: &GrantedScope,
    user: &User,
    target: ClaimTarget,
) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let scoped = scope
        .names
        .iter()
        .filter_map(|name| realm.client_scope(name))
        .flat_map(|s| s.protocol_mappers.iter());
    for mapper in client.protocol_mappers.iter().chain(scoped) {
        if mapper.protocol_mapper != GROUP_MEMBERSHIP_MAPPER || !mapper_targets(mapper, target) {
            continue;
        }
        let claim = mapper
            .config
            .get("claim.name")
            .map(String::as_str)
            .filter(|c| !c.is_empty())
            .unwrap_or("groups");
        let full_path = mapper.config.get("full.path").is_some_and(|v| v == "true");
        let value = Value::from(realm.group_claim(user, full_path));
        insert_claim(&mut out, claim, value);
    }
    out
}

fn insert_claim(out: &mut BTreeMap<String, Value>, claim: &str, value: Value) {
    let mut parts = claim.split('.').filter(|p| !p.is_empty());
    let Some(first) = parts.next() else {
        return;
    };
    if RESERVED_CLAIMS.contains(&first) {
        return;
    }
    let rest: Vec<&str> = parts.collect();
    let mut nested = value;
    for part in rest.iter().rev() {
        let mut object = serde_json::Map::new();
        object.insert((*part).to_owned(), nested);
        nested = Value::Object(object);
    }
    match (out.get_mut(first), nested) {
        (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
        (_, nested) => {
            out.insert(first.to_owned(), nested);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientScope, Realm, Role};

    fn group(id: &str, name: &str, parent: Option<&str>, roles: &[&str]) -> Group {
        Group {
            id: id.into(),
            name: name.into(),
            parent_id: parent.map(String::from),
            role_ids: roles.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        }
    }

    fn snapshot() -> RealmSnapshot {
        let roles = ["r-top", "r-mid", "r-leaf", "r-other"]
            .map(|id| Role {
                id: id.into(),
                name: id.trim_start_matches("r-").into(),
                ..Default::default()
            })
            .to_vec();
        let scope = ClientScope {
            name: "groups".into(),
            protocol_mappers: vec![ProtocolMapper {
                protocol_mapper: GROUP_MEMBERSHIP_MAPPER.into(),
                config: [("full.path".to_string(), "true".to_string())].into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let realm = Realm {
            default_roles: vec![],
            ..Default::default()
        };
        RealmSnapshot::new(realm, String::new(), vec![], roles, vec![scope]).with_groups(vec![
            group("g-top", "top", None, &["r-top"]),
            group("g-mid", "mid", Some("g-top"), &["r-mid"]),
            group("g-leaf", "leaf", Some("g-mid"), &["r-leaf"]),
            group("g-orphan", "orphan", Some("g-gone"), &["r-other"]),
            group("g-loop-a", "a", Some("g-loop-b"), &["r-other"]),
            group("g-loop-b", "b", Some("g-loop-a"), &["r-other"]),
        ])
    }

    #[test]
    fn paths_and_ancestry() {
        let snap = snapshot();
        assert_eq!(snap.group_path("g-leaf"), Some("/top/mid/leaf"));
        assert_eq!(
            snap.group_by_path("/top/mid").map(|g| g.id.as_str()),
            Some("g-mid")
        );
        // Groups without a way to the top are left out.
        for id in ["g-orphan", "g-loop-a", "g-loop-b"] {
            assert!(snap.group(id).is_none(), "{id}");
        }
        assert_eq!(snap.group_depth(Some("g-leaf")), 3);
        assert_eq!(snap.group_height("g-top"), 3);
        assert_eq!(snap.group_height("g-leaf"), 1);
        assert!(snap.would_loop("g-top", "g-leaf"));
        assert!(snap.would_loop("g-mid", "g-mid"));
        assert!(!snap.would_loop("g-leaf", "g-top"));
        let subtree: Vec<_> = snap
            .group_subtree("g-mid")
            .iter()
            .map(|g| g.id.as_str())
            .collect();
        assert_eq!(subtree, ["g-mid", "g-leaf"]);
    }

    #[test]
    fn a_path_names_one_group_even_when_names_hold_slashes() {
        let snap = snapshot();
        // A top-level "top/mid" would share /top/mid with the existing subgroup.
        assert_eq!(
            snap.path_clash(None, None, "top/mid").as_deref(),
            Some("/top/mid")
        );
        assert_eq!(snap.path_clash(None, None, "top/other"), None);
        // Renaming in place is no clash with itself or its own subgroups.
        assert_eq!(snap.path_clash(Some("g-mid"), Some("g-top"), "mid"), None);
        // A group moved to the top as "top" clashes; so does a subtree whose groups would
        // land on existing paths.
        let snap = snap.with_groups(vec![
            group("g-top", "top", None, &[]),
            group("g-mid", "mid", Some("g-top"), &[]),
            group("g-leaf", "leaf", Some("g-mid"), &[]),
            group("g-x", "x", None, &[]),
            group("g-xmid", "mid/leaf", Some("g-x"), &[]),
        ]);
        assert_eq!(
            snap.path_clash(Some("g-xmid"), Some("g-top"), "mid/leaf")
                .as_deref(),
            Some("/top/mid/leaf")
        );
        assert_eq!(
            snap.path_clash(Some("g-x"), None, "top").as_deref(),
            Some("/top")
        );
        assert_eq!(
            snap.path_clash(Some("g-x"), None, "top/mid").as_deref(),
            Some("/top/mid")
        );
        assert_eq!(snap.path_clash(Some("g-x"), None, "y"), None);
        // Under "top", x's subgroup would be /top/x/mid/leaf: free.
        assert_eq!(snap.path_clash(Some("g-x"), Some("g-top"), "x"), None);
    }

    #[test]
    fn hierarchies_deeper_than_the_bound_are_left_out() {
        let chain: Vec<Group> = (0..=MAX_GROUP_DEPTH)
            .map(|level| {
                let parent = level.checked_sub(1).map(|p| format!("g{p}"));
                group(&format!("g{level}"), "level", parent.as_deref(), &[])
            })
            .collect();
        let snap = RealmSnapshot::default().with_groups(chain);
        let deepest_kept = format!("g{}", MAX_GROUP_DEPTH - 1);
        assert_eq!(snap.group_depth(Some(&deepest_kept)), MAX_GROUP_DEPTH);
        assert!(snap.group(&format!("g{MAX_GROUP_DEPTH}")).is_none());
    }

    #[test]
    fn members_hold_the_roles_of_every_ancestor() {
        let snap = snapshot();
        let user = User {
            groups: vec!["g-leaf".into(), "g-orphan".into(), "g-deleted".into()],
            ..Default::default()
        };
        let ids: Vec<_> = snap.effective_role_ids(&user).into_iter().collect();
        assert_eq!(ids, ["r-leaf", "r-mid", "r-top"]);
    }

    #[test]
    fn the_mapper_lists_direct_groups() {
        let snap = snapshot();
        let user = User {
            groups: vec!["g-mid".into(), "g-leaf".into()],
            ..Default::default()
        };
        let scope = GrantedScope {
            openid: true,
            names: ["groups".to_string()].into(),
        };
        let client = Client::default();
        let claims = mapped_claims(&snap, &client, &scope, &user, ClaimTarget::Access);
        assert_eq!(
            Value::from(claims.get("groups").cloned()),
            serde_json::json!(["/top/mid", "/top/mid/leaf"])
        );
        assert!(mapped_claims(&snap, &client, &scope, &user, ClaimTarget::Id).is_empty());
        // Without the scope (and no mapper on the client) there is no claim.
        let none = mapped_claims(
            &snap,
            &client,
            &GrantedScope::default(),
            &user,
            ClaimTarget::Access,
        );
        assert!(none.is_empty());
        // Short names, a nested claim name, and a reserved name refused.
        let mut out = BTreeMap::new();
        insert_claim(
            &mut out,
            "org.groups",
            Value::from(snap.group_claim(&user, false)),
        );
        insert_claim(&mut out, "sub", Value::from("x"));
        assert_eq!(
            Value::Object(out.into_iter().collect()),
            serde_json::json!({"org": {"groups": ["leaf", "mid"]}})
        );
    }
}
