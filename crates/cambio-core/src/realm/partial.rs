//! Changes to one kind of object put in place in a copy of a snapshot, with every index that
//! derives from that kind updated and nothing else rebuilt, so that an admin change in a realm
//! of many clients and roles costs what the changed objects cost. Each gives exactly the
//! snapshot that [`RealmSnapshot::new`] would build from the changed objects (the tests below
//! compare the two).

use std::sync::Arc;

use crate::model::{ClientScope, Role};
use crate::realm::RealmSnapshot;

impl RealmSnapshot {
    /// The realm with one role put in place (`Some`) or taken out (`None`), its name indexes
    /// following a rename. Roles holding it as a composite need no change: composites are
    /// held by id and resolved when a token is issued, and an id no role has is ignored.
    pub fn with_role(mut self, id: &str, role: Option<Role>) -> Self {
        if let Some(old) = self.roles.remove(id) {
            self.unindex_role_name(&old);
        }
        if let Some(role) = role {
            self.insert_role(role);
        }
        self
    }

    /// The realm with `roles` as all of its roles, in place of the ones it had.
    pub fn with_roles(mut self, roles: Vec<Role>) -> Self {
        self.roles.clear();
        self.realm_role_by_name.clear();
        self.client_role_by_name.clear();
        for role in roles {
            self.insert_role(role);
        }
        self
    }

    /// The realm with the client scope of id `id` put in place (`Some`, with its protocol
    /// mappers) or taken out (`None`). Scopes are found by name, so a renamed scope is no
    /// longer found under its old name.
    pub fn with_scope(mut self, id: &str, scope: Option<ClientScope>) -> Self {
        Arc::make_mut(&mut self.scopes).retain(|_, kept| kept.id != id);
        if let Some(scope) = scope {
            Arc::make_mut(&mut self.scopes).insert(scope.name.clone(), scope);
        }
        self
    }

    /// Adds a role and its name index.
    pub(super) fn insert_role(&mut self, role: Role) {
        match &role.client_id {
            None => {
                self.realm_role_by_name
                    .insert(role.name.clone(), role.id.clone());
            }
            Some(client) => {
                self.client_role_by_name
                    .insert((client.clone(), role.name.clone()), role.id.clone());
            }
        }
        self.roles.insert(role.id.clone(), Arc::new(role));
    }

    /// Removes a role's name from the name indexes, if the name still leads to it.
    fn unindex_role_name(&mut self, old: &Role) {
        match &old.client_id {
            None => {
                if self.realm_role_by_name.get(&old.name) == Some(&old.id) {
                    self.realm_role_by_name.remove(&old.name);
                }
            }
            Some(client) => {
                let key = (client.clone(), old.name.clone());
                if self.client_role_by_name.get(&key) == Some(&old.id) {
                    self.client_role_by_name.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::federation::{IdentityProvider, config_keys};
    use crate::model::{Client, ClientScope, Group, ProtocolMapper, Realm, Role, User};
    use crate::permissions::{AuthzPolicy, Permissions};
    use crate::realm::RealmSnapshot;
    use crate::realm::tests::role;

    fn scope(id: &str, name: &str, mapper: &str) -> ClientScope {
        ClientScope {
            id: id.into(),
            name: name.into(),
            protocol_mappers: vec![ProtocolMapper {
                id: format!("{id}-mapper"),
                name: mapper.into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn clients() -> Vec<Client> {
        vec![
            Client {
                id: "c-orders".into(),
                client_id: "orders-api".into(),
                ..Default::default()
            },
            Client {
                id: "c-narrow".into(),
                client_id: "narrow".into(),
                full_scope_allowed: false,
                scope_role_ids: vec!["r-user".into(), "r-read".into()],
                ..Default::default()
            },
        ]
    }

    fn realm() -> Realm {
        Realm {
            default_roles: vec!["offline_access".into(), "reader".into()],
            ..Default::default()
        }
    }

    fn build(roles: Vec<Role>, scopes: Vec<ClientScope>) -> RealmSnapshot {
        RealmSnapshot::new(
            realm(),
            "http://x/realms/r".into(),
            clients(),
            roles,
            scopes,
        )
    }

    /// Every answer the snapshot gives about roles and scopes that a request could depend
    /// on: each role by id, each name lookup (also of names that should be gone), and the
    /// resolved roles of users holding each role, through each client.
    fn view(snapshot: &RealmSnapshot, names: &[&str]) -> Vec<String> {
        let mut view: Vec<String> = snapshot.roles().map(|r| format!("{r:?}")).collect();
        for name in names {
            view.push(format!(
                "realm {name} -> {:?}",
                snapshot.realm_role_id(name)
            ));
            for client in ["c-orders", "c-narrow"] {
                view.push(format!(
                    "{client} {name} -> {:?}",
                    snapshot.client_role_id(client, name)
                ));
            }
            view.push(format!("scope {name} -> {:?}", snapshot.client_scope(name)));
        }
        let mut ids: Vec<String> = snapshot.roles().map(|r| r.id.clone()).collect();
        ids.extend(["r-gone".to_owned(), "r-new".to_owned()]);
        ids.sort();
        ids.dedup();
        for id in &ids {
            let user = User {
                role_ids: vec![id.clone()],
                ..Default::default()
            };
            view.push(format!(
                "{id} holds {:?}",
                snapshot.effective_role_ids(&user)
            ));
            for client in snapshot.clients() {
                view.push(format!(
                    "{id} via {} {:?}",
                    client.client_id,
                    snapshot.roles_in_scope(&user, client)
                ));
            }
        }
        let mut scopes: Vec<String> = snapshot.client_scopes().map(|s| format!("{s:?}")).collect();
        scopes.sort();
        view.extend(scopes);
        view.sort();
        view
    }

    const NAMES: &[&str] = &[
        "user",
        "admin",
        "read",
        "reader",
        "offline_access",
        "write",
        "writer",
        "audit",
        "profile",
        "profile-renamed",
        "email",
    ];

    #[test]
    fn roles_and_scopes_put_in_place_give_the_realm_a_full_rebuild_would() {
        let base = build(
            vec![
                role("r-user", "user", None, &[]),
                role("r-admin", "admin", None, &["r-user", "r-read"]),
                role("r-read", "read", Some("c-orders"), &["r-admin"]),
                role("r-write", "write", Some("c-orders"), &[]),
                role("r-offline", "offline_access", None, &[]),
                role("r-gone", "audit", None, &["r-write"]),
            ],
            vec![
                scope("s-profile", "profile", "m1"),
                scope("s-email", "email", "m2"),
            ],
        );
        // A composite loses a role, a realm role and a client role are renamed (the new name
        // of one is a default role), a role is deleted while another still names it as a
        // composite, a role is created, a scope is renamed with new mappers, one is deleted.
        let changed = base
            .clone()
            .with_role("r-admin", Some(role("r-admin", "admin", None, &["r-user"])))
            .with_role("r-user", Some(role("r-user", "reader", None, &[])))
            .with_role(
                "r-write",
                Some(role("r-write", "writer", Some("c-orders"), &["r-admin"])),
            )
            .with_role("r-gone", None)
            .with_role(
                "r-new",
                Some(role("r-new", "audit", None, &["r-gone", "r-write"])),
            )
            .with_scope(
                "s-profile",
                Some(scope("s-profile", "profile-renamed", "m3")),
            )
            .with_scope("s-email", None);
        let roles = vec![
            role("r-user", "reader", None, &[]),
            role("r-admin", "admin", None, &["r-user"]),
            role("r-read", "read", Some("c-orders"), &["r-admin"]),
            role("r-write", "writer", Some("c-orders"), &["r-admin"]),
            role("r-offline", "offline_access", None, &[]),
            role("r-new", "audit", None, &["r-gone", "r-write"]),
        ];
        let scopes = vec![scope("s-profile", "profile-renamed", "m3")];
        let rebuilt = build(roles.clone(), scopes);
        assert_eq!(view(&changed, NAMES), view(&rebuilt, NAMES));

        // The renames and deletes, spelled out.
        assert_eq!(changed.realm_role_id("user"), None);
        assert_eq!(changed.realm_role_id("reader"), Some("r-user"));
        assert_eq!(changed.client_role_id("c-orders", "write"), None);
        assert_eq!(
            changed.client_role_id("c-orders", "writer"),
            Some("r-write")
        );
        assert_eq!(changed.realm_role_id("audit"), Some("r-new"));
        assert!(changed.role("r-gone").is_none());
        assert!(changed.client_scope("profile").is_none());
        assert!(changed.client_scope("email").is_none());
        // The composite lost `read`: holding admin no longer gives it.
        let admin = User {
            role_ids: vec!["r-admin".into()],
            ..Default::default()
        };
        assert!(!changed.effective_role_ids(&admin).contains("r-read"));
        assert!(base.effective_role_ids(&admin).contains("r-read"));
        // The renamed role became a default role by its new name.
        assert!(
            changed
                .effective_role_ids(&User::default())
                .contains("r-user")
        );

        // All roles at once, from a snapshot that had other ones (its scopes stay).
        let replaced = base.clone().with_roles(roles.clone());
        let rebuilt = build(roles, base.client_scopes().cloned().collect());
        assert_eq!(view(&replaced, NAMES), view(&rebuilt, NAMES));
    }

    #[test]
    fn groups_permissions_and_providers_replace_what_was_there() {
        let groups = |role: &str| {
            vec![Group {
                id: "g-ops".into(),
                name: "ops".into(),
                role_ids: vec![role.into()],
                ..Default::default()
            }]
        };
        let policy = |id: &str, name: &str| AuthzPolicy {
            id: id.into(),
            name: name.into(),
            ..Default::default()
        };
        let provider = |alias: &str| IdentityProvider {
            alias: alias.into(),
            internal_id: format!("i-{alias}"),
            config: [
                (config_keys::ISSUER, format!("https://{alias}.example")),
                (
                    config_keys::JWKS_URL,
                    format!("https://{alias}.example/jwks"),
                ),
            ]
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
            ..Default::default()
        };
        let roles = vec![
            role("r-user", "user", None, &[]),
            role("r-admin", "admin", None, &[]),
        ];
        let base = build(roles.clone(), vec![])
            .with_groups(groups("r-user"))
            .with_permissions(Permissions::new(vec![policy("p-1", "one")]))
            .with_providers(&[provider("old"), provider("kept")]);
        let changed = base
            .clone()
            .with_groups(groups("r-admin"))
            .with_permissions(Permissions::new(vec![policy("p-2", "two")]))
            .with_providers(&[provider("kept")]);
        let rebuilt = build(roles, vec![])
            .with_groups(groups("r-admin"))
            .with_permissions(Permissions::new(vec![policy("p-2", "two")]))
            .with_providers(&[provider("kept")]);
        let member = User {
            groups: vec!["g-ops".into()],
            ..Default::default()
        };
        for snapshot in [&changed, &rebuilt] {
            let held = snapshot.effective_role_ids(&member);
            assert!(held.contains("r-admin") && !held.contains("r-user"));
            assert!(snapshot.permissions.by_name("one").is_none());
            assert_eq!(
                snapshot.permissions.by_name("two").map(|p| p.id.as_str()),
                Some("p-2")
            );
            assert!(snapshot.provider("old").is_none());
        }
        assert!(changed.provider("kept").is_some() && rebuilt.provider("kept").is_some());
        let mut aliases: Vec<&str> = changed.providers().map(|p| p.alias.as_str()).collect();
        aliases.sort();
        assert_eq!(
            aliases,
            rebuilt
                .providers()
                .map(|p| p.alias.as_str())
                .collect::<Vec<_>>()
        );
    }
}
